"""The store contract's Hypothesis run: the store under test and the in-memory store answer
alike to any sequence of writes and reads, and refuse the same stale writes.

The in-memory store is the reference: it keeps the contract's orders and scoping in plain
Python. The operations stay within what the service does (one reply in progress per session
at most, as a store may enforce), but race as it never would: stale copies, ties of time,
recovery at any moment.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.domain import branches
from conversation_service.domain.errors import DomainError, InvalidTransition
from conversation_service.domain.model import (
    ChatSession,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    Usage,
)
from conversation_service.domain.session_machine import SessionInput
from conversation_service.ports.storage import StaleVersion
from conversation_service.testing.store_contract.base import ContractBase, Store, StoreFactory
from conversation_service.testing.values import Values

# -- the two stores agree on any sequence of writes and reads, refusing the same stale writes --
_at = st.integers(min_value=0, max_value=3)  # few instants, so ties are common
_org = st.sampled_from([0, 0, 0, 1])  # mostly one org, so its listings are long
_page = st.tuples(st.integers(min_value=0, max_value=4), st.integers(min_value=0, max_value=6))
OPERATIONS = st.one_of(
    st.tuples(st.just("conversation"), _org, st.booleans(), _at),
    st.tuples(st.just("session"), st.integers(min_value=0), _at),
    st.tuples(st.just("message"), st.integers(min_value=0), _at, st.sampled_from(MessageStatus)),
    st.tuples(st.just("finish"), st.integers(min_value=0), _at),
    st.tuples(st.just("list_conversations"), _org, st.sampled_from([None, True, False]), _page),
    st.tuples(st.just("list_messages"), st.integers(min_value=0), _page),
    st.tuples(st.just("recover"), _at),
    st.tuples(
        st.just("transition"),
        st.integers(min_value=0),
        st.sampled_from(SessionInput),
        st.booleans(),
        _at,
    ),
    st.tuples(st.just("turn"), st.integers(min_value=0), _at),
    # Branches: another reply to a session's last question, a branch chosen, a branch listed.
    st.tuples(st.just("regenerate"), st.integers(min_value=0), _at),
    st.tuples(st.just("select"), st.integers(min_value=0), st.integers(min_value=0), _at),
    st.tuples(st.just("list_branch"), st.integers(min_value=0), st.integers(min_value=0), _page),
)


class AgreementContract(ContractBase):
    """The Hypothesis agreement run (a new store per example, from `store_factory`)."""

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(operations=st.lists(OPERATIONS, max_size=25))
    async def test_agrees_with_the_in_memory_store_on_any_sequence(
        self, store_factory: StoreFactory, operations: list[tuple[Any, ...]]
    ) -> None:
        async with store_factory() as store:
            run = SideBySide(InMemoryStore(), store, Values())
            await run.start()
            for kind, *args in operations:
                await getattr(run, kind)(*args)
            await run.compare_everything()


class SideBySide:
    """Applies each operation to both stores and checks that every answer is the same."""

    def __init__(self, reference: Store, tested: Store, values: Values) -> None:
        self.stores = (reference, tested)
        self.values = values
        self.orgs = (values.org(name="first"), values.org(name="second"))
        self.conversations: list[Conversation] = []
        self.sessions: list[ChatSession] = []
        self.copies: dict[Any, list[ChatSession]] = {}  # every copy of a session ever read
        self.messages: list[Message] = []
        # The message in progress of each session that has one: one at most, as the service
        # writes them (a store may refuse a second).
        self.writing: dict[Any, Any] = {}

    async def both(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The answer both stores gave; a write both refused as stale answers None."""
        results: list[tuple[Any, str | None]] = []
        for store in self.stores:
            try:
                results.append((await getattr(store, method)(*args, **kwargs), None))
            except StaleVersion:
                results.append((None, "stale"))
        assert results[0] == results[1], f"{method} differs: {results}"
        return results[0][0]

    async def start(self) -> None:
        for org in self.orgs:
            await self.both("add_org", org)

    async def conversation(self, which_org: int, archived: bool, created: int) -> None:
        org = self.orgs[which_org]
        self.conversations.append(self.values.conversation(org, created=created, archived=archived))
        await self.both("add_conversation", self.conversations[-1])

    async def session(self, which: int, created: int) -> None:
        if self.conversations:
            conversation = self.conversations[which % len(self.conversations)]
            self.sessions.append(self.values.session(conversation, created=created))
            await self.both("add_session", self.sessions[-1])

    async def message(self, which: int, created: int, status: MessageStatus) -> None:
        if self.sessions:
            session = self.sessions[which % len(self.sessions)]
            if status is MessageStatus.IN_PROGRESS and session.id in self.writing:
                status = MessageStatus.COMPLETED
            self.messages.append(self.values.message(session, created=created, status=status))
            await self.both("add_message", self.messages[-1])
            await self._written(self.messages[-1])

    async def finish(self, which: int, when: int) -> None:
        if self.messages:
            added = self.messages[which % len(self.messages)]
            message = await self.both("get_message", added.org_id, added.id)
            finished = message.finished(
                content="done",
                status=MessageStatus.FAILED if when % 2 else MessageStatus.COMPLETED,
                finish_reason="error" if when % 2 else "stop",
                usage=None
                if when % 2
                else Usage(prompt_tokens=when, completion_tokens=1, estimated=False),
                at=self.values.at(when),
                error=("provider_error", "reset") if when % 2 else None,
            )
            await self.both("update_message", finished)
            await self._written(added)

    async def list_conversations(
        self, which_org: int, is_archived: bool | None, page: tuple[int, int]
    ) -> None:
        limit, offset = page
        org_id = self.orgs[which_org].id
        await self.both(
            "list_conversations", org_id, is_archived=is_archived, limit=limit, offset=offset
        )

    async def list_messages(self, which: int, page: tuple[int, int]) -> None:
        if self.conversations:
            limit, offset = page
            conversation = self.conversations[which % len(self.conversations)]
            await self.both(
                "list_messages", conversation.org_id, conversation.id, limit=limit, offset=offset
            )

    async def transition(self, which: int, event: SessionInput, stale: bool, when: int) -> None:
        """Apply an input to the newest copy of a session read, or (stale) the oldest."""
        if self.sessions:
            added = self.sessions[which % len(self.sessions)]
            copies = self.copies.setdefault(added.id, [added])
            copies.append(await self.both("get_session", added.org_id, added.id))
            copy = copies[0] if stale else copies[-1]
            try:
                changed = copy.apply(event, self.values.at(when))
            except InvalidTransition:
                return
            await self.both("update_session", changed)

    async def turn(self, which: int, when: int) -> None:
        """Begin a reply on a session and end it, over whatever version is stored."""
        if self.sessions:
            added = self.sessions[which % len(self.sessions)]
            session = await self.both("get_session", added.org_id, added.id)
            if session.id in self.writing:
                return  # the service begins no reply beside one in progress
            try:
                start = branches.ask(
                    session, text="hi", question_id=uuid4(), reply_id=uuid4(),
                    at=self.values.at(when),
                )  # fmt: skip
            except InvalidTransition:
                return
            await self._run_turn(start, when)

    async def _run_turn(self, start: branches.TurnStart, when: int) -> None:
        if start.asked:
            self.messages.append(start.question)
        self.messages.append(start.reply)
        user = start.question if start.asked else None
        await self.both("begin_reply", user, start.reply, start.session, history_limit=when + 1)
        done = start.reply.finished(
            content=f"done {when}", status=MessageStatus.COMPLETED, finish_reason="stop",
            usage=None, at=self.values.at(when),
        )  # fmt: skip
        idle = start.session.apply(SessionInput.FINISH, self.values.at(when))
        await self.both("end_reply", done, idle)
        await self._written(start.reply)

    async def regenerate(self, which: int, when: int) -> None:
        """Another reply to the question of a session's head reply, if it has one."""
        if self.sessions:
            added = self.sessions[which % len(self.sessions)]
            session = await self.both("get_session", added.org_id, added.id)
            if session.id in self.writing:
                return  # the service begins no reply beside one in progress
            target = session.head_id and await self.both(
                "get_message", added.org_id, session.head_id
            )
            if not target or target.role is not MessageRole.ASSISTANT:
                return
            question = await self.both("get_message", added.org_id, target.parent_id)
            try:
                start = branches.regenerate(
                    session, target=target, question=question, on_branch=True,
                    reply_id=uuid4(), at=self.values.at(when),
                )  # fmt: skip
            except (InvalidTransition, DomainError):
                return
            await self._run_turn(start, when)

    async def select(self, which: int, message: int, when: int) -> None:
        """A session's head moved to the newest leaf below one of its messages."""
        if self.sessions:
            added = self.sessions[which % len(self.sessions)]
            theirs = [m for m in self.messages if m.chat_session_id == added.id]
            if not theirs:
                return
            target = theirs[message % len(theirs)]
            assert await self.both("on_branch", added.org_id, target.id, target.id)
            leaf = await self.both("newest_leaf", added.org_id, target.id)
            session = await self.both("get_session", added.org_id, added.id)
            await self.both("update_session", session.moved_to(leaf, self.values.at(when)))

    async def list_branch(self, which: int, message: int, page: tuple[int, int]) -> None:
        if self.conversations:
            limit, offset = page
            conversation = self.conversations[which % len(self.conversations)]
            theirs = [m for m in self.messages if m.conversation_id == conversation.id]
            through = theirs[message % len(theirs)] if theirs and message % 2 else None
            await self.both(
                "list_branch", conversation.org_id, conversation.id, through=through,
                limit=limit, offset=offset,
            )  # fmt: skip

    async def _written(self, message: Message) -> None:
        """Note whether `message` is in progress, as stored."""
        stored = await self.both("get_message", message.org_id, message.id)
        if stored is not None and stored.status is MessageStatus.IN_PROGRESS:
            self.writing[message.chat_session_id] = message.id
        elif self.writing.get(message.chat_session_id) == message.id:
            del self.writing[message.chat_session_id]

    async def recover(self, when: int) -> None:
        await self.both("recover_interrupted", self.values.at(when))
        self.writing.clear()

    async def compare_everything(self) -> None:
        for org in self.orgs:
            await self.both("list_conversations", org.id, is_archived=None, limit=100, offset=0)
        for conversation in self.conversations:
            org_id = conversation.org_id
            await self.both("list_sessions", org_id, conversation.id)
            await self.both("list_messages", org_id, conversation.id, limit=100, offset=0)
            await self.both(
                "list_branch", org_id, conversation.id, through=None, limit=100, offset=0
            )
        for session in self.sessions:
            await self.both("get_session", session.org_id, session.id)
            await self.both("session_messages", session.org_id, session.id)
