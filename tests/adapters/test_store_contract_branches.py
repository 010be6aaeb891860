"""The store contract for branches: what a reply is shown is its branch, listings show the
current branch (or a chosen one) with the alternatives at each place, and the walks a session
actor asks for (is a message on the branch, the newest leaf below one)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import attrs

from conversation_service.domain import branches
from conversation_service.domain.model import ChatSession, ContextScope, MessageStatus
from conversation_service.domain.session_machine import SessionInput
from conversation_service.ports.storage import History
from tests.adapters.conftest import org_with_session

Store = Any  # InMemoryStore | SqlStore


class Driver:
    """One session's turns, made with the domain's rules and stored as an actor stores them;
    each reply says "re: " and what it answers."""

    def __init__(self, store: Store, values: Any, session: ChatSession) -> None:
        self.store, self.values, self.session = store, values, session
        self.clock = 10.0

    def at(self) -> Any:
        self.clock += 1
        return self.values.at(self.clock)

    async def run(
        self, start: branches.TurnStart, limit: int
    ) -> tuple[branches.TurnStart, History]:
        user = start.question if start.asked else None
        shown = await self.store.begin_reply(user, start.reply, start.session, history_limit=limit)
        at = self.at()
        done = start.reply.finished(
            content=f"re: {start.question.content}", status=MessageStatus.COMPLETED,
            finish_reason="stop", usage=None, at=at,
        )  # fmt: skip
        self.session = start.session.apply(SessionInput.FINISH, at)
        await self.store.end_reply(done, self.session)
        return start, shown

    async def send(self, text: str, limit: int = 100) -> tuple[branches.TurnStart, History]:
        start = branches.ask(
            self.session, text=text, question_id=uuid4(), reply_id=uuid4(), at=self.at()
        )
        return await self.run(start, limit)

    async def regenerate(
        self, reply_id: UUID | None = None, limit: int = 100
    ) -> tuple[branches.TurnStart, History]:
        org_id = self.session.org_id
        target = await self.store.get_message(org_id, reply_id or self.session.head_id)
        start = branches.regenerate(
            self.session,
            target=target,
            question=await self.store.get_message(org_id, target.parent_id),
            on_branch=await self.store.on_branch(org_id, self.session.head_id, target.id),
            reply_id=uuid4(),
            at=self.at(),
        )
        return await self.run(start, limit)

    async def edit(
        self, message_id: UUID, text: str, limit: int = 100
    ) -> tuple[branches.TurnStart, History]:
        org_id = self.session.org_id
        start = branches.edit(
            self.session,
            target=await self.store.get_message(org_id, message_id),
            on_branch=await self.store.on_branch(org_id, self.session.head_id, message_id),
            text=text,
            question_id=uuid4(),
            reply_id=uuid4(),
            at=self.at(),
        )
        return await self.run(start, limit)

    async def select(self, message_id: UUID) -> None:
        leaf = await self.store.newest_leaf(self.session.org_id, message_id)
        self.session = self.session.moved_to(leaf, self.at())
        await self.store.update_session(self.session)


def shown(history: History) -> list[str]:
    return [m.content for m in history.messages]


async def listed(store: Store, session: ChatSession, through: Any = None, **page: int) -> list:
    found = await store.list_branch(
        session.org_id,
        session.conversation_id,
        through=through,
        limit=page.get("limit", 100),
        offset=page.get("offset", 0),
    )
    return [(m.message.content, m.sibling_count, m.sibling_index) for m in found.items]


async def test_a_reply_is_shown_its_branch_only(store: Store, values: Any) -> None:
    _, _, session = await org_with_session(store, values)
    chat = Driver(store, values, session)
    one, _ = await chat.send("one")
    two, _ = await chat.send("two")
    _, history = await chat.regenerate()
    assert shown(history) == ["one", "re: one"]  # not the first reply to "two"
    _, history = await chat.edit(two.question.id, "deux")
    assert shown(history) == ["one", "re: one"]  # not "two", nor its replies
    _, history = await chat.send("three")
    assert shown(history) == ["one", "re: one", "deux", "re: deux"]
    _, history = await chat.edit(one.question.id, "uno", limit=1)
    assert (shown(history), history.not_read) == ([], 0)  # a new first message
    await chat.select(two.question.id)
    _, history = await chat.send("after two", limit=3)
    assert (shown(history), history.not_read) == (["re: one", "two", "re: two"], 1)
    _, history = await chat.regenerate(limit=2)
    assert (shown(history), history.not_read) == (["two", "re: two"], 2)


async def test_the_current_branch_is_listed_with_its_alternatives(
    store: Store, values: Any
) -> None:
    org, conversation, session = await org_with_session(store, values)
    chat = Driver(store, values, session)
    one, _ = await chat.send("one")
    assert await listed(store, session) == [("one", 1, 1), ("re: one", 1, 1)]
    two, _ = await chat.send("two")
    await chat.regenerate()
    await chat.regenerate()
    assert await listed(store, session) == [
        ("one", 1, 1), ("re: one", 1, 1), ("two", 1, 1), ("re: two", 3, 3),
    ]  # fmt: skip
    await chat.edit(one.question.id, "uno")
    assert await listed(store, session) == [("uno", 2, 2), ("re: uno", 1, 1)]
    # Through a message: down to it, then its newest children.
    assert await listed(store, session, through=one.question) == [
        ("one", 2, 1), ("re: one", 1, 1), ("two", 1, 1), ("re: two", 3, 3),
    ]  # fmt: skip
    assert await listed(store, session, through=two.reply) == [
        ("one", 2, 1), ("re: one", 1, 1), ("two", 1, 1), ("re: two", 3, 1),
    ]  # fmt: skip
    assert await listed(store, session, through=one.question, limit=2, offset=1) == [
        ("re: one", 1, 1), ("two", 1, 1),
    ]  # fmt: skip
    page = await store.list_branch(org.id, conversation.id, through=None, limit=1, offset=1)
    assert page.has_more is False and [m.message.content for m in page.items] == ["re: uno"]
    page = await store.list_branch(org.id, conversation.id, through=None, limit=1, offset=0)
    assert page.has_more is True
    # Every message is still there, every branch's, in the order they were added.
    every = await store.list_messages(org.id, conversation.id, limit=100, offset=0)
    assert len(every.items) == 8


async def test_each_session_of_a_conversation_shows_its_own_current_branch(
    store: Store, values: Any
) -> None:
    org, conversation, session = await org_with_session(store, values)
    other = values.session(conversation, created=2)
    await store.add_session(other)
    first, second = Driver(store, values, session), Driver(store, values, other)
    mine, _ = await first.send("mine")
    await second.send("theirs")
    await first.regenerate()
    rows = await listed(store, session)
    assert rows == [("mine", 1, 1), ("theirs", 1, 1), ("re: theirs", 1, 1), ("re: mine", 2, 2)]
    # Another session's branch is left alone when one is chosen in this one.
    assert await listed(store, session, through=mine.reply) == [
        ("mine", 1, 1), ("re: mine", 2, 1), ("theirs", 1, 1), ("re: theirs", 1, 1),
    ]  # fmt: skip
    empty = values.session(conversation, created=3)
    await store.add_session(empty)
    assert len(await listed(store, empty)) == 4  # a session with no messages lists nothing


async def test_a_conversation_context_shows_the_other_sessions_current_branches(
    store: Store, values: Any
) -> None:
    _, conversation, session = await org_with_session(store, values)
    wide = attrs.evolve(values.session(conversation, created=2), context=ContextScope.CONVERSATION)
    await store.add_session(wide)
    left, right = Driver(store, values, session), Driver(store, values, wide)
    one, _ = await left.send("one")
    await left.regenerate()  # the first "re: one" is off the current branch now
    _, history = await right.send("two")
    assert shown(history) == ["one", "re: one"]
    assert history.messages[-1].id != one.reply.id
    await left.send("three")  # after "two": not shown when "two" is answered again
    _, history = await right.regenerate()
    assert shown(history) == ["one", "re: one"]
    _, history = await right.send("four")  # in the order they were added
    assert shown(history) == ["one", "re: one", "two", "three", "re: three", "re: two"]
    await left.select(one.reply.id)  # its current branch is the first reply alone
    _, history = await right.send("five")
    assert shown(history)[:2] == ["one", "re: one"] and "three" not in shown(history)
    assert history.messages[1].id == one.reply.id


async def test_the_walks_stay_inside_their_organisation(store: Store, values: Any) -> None:
    org, conversation, session = await org_with_session(store, values)
    chat = Driver(store, values, session)
    one, _ = await chat.send("one")
    two, _ = await chat.send("two")
    assert await store.on_branch(org.id, two.reply.id, one.question.id)
    assert not await store.on_branch(org.id, one.reply.id, two.question.id)
    assert await store.on_branch(org.id, one.reply.id, one.reply.id)
    assert await store.newest_leaf(org.id, one.question.id) == two.reply.id
    assert await store.newest_leaf(org.id, uuid4()) is None
    stranger = values.org()
    await store.add_org(stranger)
    assert not await store.on_branch(stranger.id, two.reply.id, one.question.id)
    assert await store.newest_leaf(stranger.id, one.question.id) is None
    page = await store.list_branch(stranger.id, conversation.id, through=None, limit=9, offset=0)
    assert page.items == ()
