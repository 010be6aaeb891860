"""One set of behaviours that both the in-memory and the SQL store must show."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory_store import InMemoryStore
from adapters.sql import open_sql_store
from domain.model import (
    AccessRole,
    ChatSession,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    Principal,
    Usage,
)
from domain.session_machine import SessionState

Store = Any  # InMemoryStore | SqlStore: both implement ConversationStore and AccessStore


async def _org_with_session(store: Store, values: Any) -> tuple[Any, Any, Any]:
    org = values.org()
    conversation = values.conversation(org)
    session = values.session(conversation, created=1)
    await store.add_org(org)
    await store.add_conversation(conversation)
    await store.add_session(session)
    return org, conversation, session


async def test_org_round_trips_and_is_counted(store: Store, values: Any) -> None:
    assert await store.count_orgs() == 0
    org = values.org(name="Ünïcode org ✓")
    await store.add_org(org)
    await store.add_org(values.org(name="other"))

    assert await store.get_org(org.id) == org
    assert await store.get_org(values.org().id) is None
    assert await store.count_orgs() == 2


async def test_conversation_and_session_round_trip(store: Store, values: Any) -> None:
    org = values.org()
    await store.add_org(org)
    conversation = values.conversation(org, title="archived one", archived=True)
    await store.add_conversation(conversation)
    session = values.session(conversation, status=SessionState.RESPONDING)
    await store.add_session(session)

    assert await store.get_conversation(org.id, conversation.id) == conversation
    assert await store.get_session(org.id, session.id) == session


@pytest.mark.parametrize(
    "reply",
    [
        {},
        {
            "role": MessageRole.ASSISTANT,
            "status": MessageStatus.FAILED,
            "finish_reason": "error",
            "usage": Usage(prompt_tokens=12, completion_tokens=0, estimated=True),
            "error_code": "provider_error",
            "error_message": "the provider answered 502",
        },
        {
            "role": MessageRole.ASSISTANT,
            "status": MessageStatus.COMPLETED,
            "finish_reason": "stop",
            "usage": Usage(prompt_tokens=3, completion_tokens=40, estimated=False),
        },
        {"role": MessageRole.ASSISTANT, "status": MessageStatus.IN_PROGRESS, "content": ""},
    ],
)
async def test_message_round_trips(store: Store, values: Any, reply: dict[str, Any]) -> None:
    org, _, session = await _org_with_session(store, values)
    model_id = session.model_id if reply else None
    message = values.message(session, model_id=model_id, **reply)
    await store.add_message(message)

    assert await store.get_message(org.id, message.id) == message


async def test_another_orgs_objects_are_not_found(store: Store, values: Any) -> None:
    org, conversation, session = await _org_with_session(store, values)
    message = values.message(session)
    await store.add_message(message)
    other = values.org()
    await store.add_org(other)

    assert await store.get_conversation(other.id, conversation.id) is None
    assert await store.get_session(other.id, session.id) is None
    assert await store.get_message(other.id, message.id) is None
    page = await store.list_conversations(other.id, is_archived=None, limit=10, offset=0)
    assert page.items == ()
    assert await store.list_sessions(other.id, conversation.id) == []
    messages = await store.list_messages(other.id, conversation.id, limit=10, offset=0)
    assert messages.items == ()
    assert await store.session_messages(other.id, session.id) == []


async def test_conversations_list_newest_update_first_with_ties_broken(
    store: Store, values: Any
) -> None:
    org = values.org()
    await store.add_org(org)
    old = values.conversation(org, created=1)
    new = values.conversation(org, created=5)
    # Same updated_at as `new`: the newer created_at wins, then the greater id.
    tie_a = attrs.evolve(values.conversation(org, created=2), updated_at=values.at(5))
    tie_b = attrs.evolve(tie_a, id=values.conversation(org).id)
    for conversation in (old, new, tie_a, tie_b):
        await store.add_conversation(conversation)

    page = await store.list_conversations(org.id, is_archived=None, limit=10, offset=0)

    ties = sorted([tie_a, tie_b], key=lambda c: str(c.id), reverse=True)
    assert page.items == (new, *ties, old)


async def test_new_session_or_message_moves_its_conversation_up(store: Store, values: Any) -> None:
    org = values.org()
    await store.add_org(org)
    first = values.conversation(org, created=1)
    second = values.conversation(org, created=2)
    await store.add_conversation(first)
    await store.add_conversation(second)

    session = values.session(first, created=10)
    await store.add_session(session)
    page = await store.list_conversations(org.id, is_archived=None, limit=10, offset=0)
    assert [c.id for c in page.items] == [first.id, second.id]
    assert page.items[0].updated_at == values.at(10)

    await store.add_session(values.session(second, created=11))
    await store.add_message(values.message(session, created=12))
    page = await store.list_conversations(org.id, is_archived=None, limit=10, offset=0)
    assert [c.id for c in page.items] == [first.id, second.id]
    fetched = await store.get_conversation(org.id, first.id)
    assert fetched == attrs.evolve(first, updated_at=values.at(12))


async def test_an_older_write_never_moves_updated_at_back(store: Store, values: Any) -> None:
    org = values.org()
    await store.add_org(org)
    conversation = values.conversation(org, created=20)
    await store.add_conversation(conversation)
    session = values.session(conversation, created=5)
    await store.add_session(session)
    await store.add_message(values.message(session, created=6))

    assert await store.get_conversation(org.id, conversation.id) == conversation


async def test_archived_filter(store: Store, values: Any) -> None:
    org = values.org()
    await store.add_org(org)
    kept = values.conversation(org, created=1)
    archived = values.conversation(org, created=2, archived=True)
    await store.add_conversation(kept)
    await store.add_conversation(archived)

    async def listed(is_archived: bool | None) -> tuple[Any, ...]:
        page = await store.list_conversations(org.id, is_archived=is_archived, limit=10, offset=0)
        return page.items

    assert await listed(None) == (archived, kept)
    assert await listed(True) == (archived,)
    assert await listed(False) == (kept,)


@pytest.mark.parametrize(
    ("limit", "offset", "expected", "has_more"),
    [
        (5, 0, [0, 1, 2, 3, 4], False),
        (4, 0, [0, 1, 2, 3], True),
        (6, 0, [0, 1, 2, 3, 4], False),
        (2, 2, [2, 3], True),
        (2, 3, [3, 4], False),
        (1, 4, [4], False),
        (3, 5, [], False),
        (3, 9, [], False),
        (0, 0, [], True),
        (0, 5, [], False),
    ],
)
async def test_paging_is_exact_at_the_boundaries(
    store: Store, values: Any, limit: int, offset: int, expected: list[int], has_more: bool
) -> None:
    org, conversation, session = await _org_with_session(store, values)
    messages = [values.message(session, created=2, content=str(i)) for i in range(5)]
    for message in messages:
        await store.add_message(message)
    # Five conversations, newest first, indexed the same way as the messages.
    conversations = [values.conversation(org, created=100 - i) for i in range(4)]
    for c in conversations:
        await store.add_conversation(c)
    all_conversations = [*conversations, conversation]

    page = await store.list_messages(org.id, conversation.id, limit=limit, offset=offset)
    assert page.items == tuple(messages[i] for i in expected)
    assert (page.limit, page.offset, page.has_more) == (limit, offset, has_more)

    page = await store.list_conversations(org.id, is_archived=None, limit=limit, offset=offset)
    assert [c.id for c in page.items] == [all_conversations[i].id for i in expected]
    assert page.has_more == has_more


async def test_messages_keep_insertion_order_whatever_their_timestamps(
    store: Store, values: Any
) -> None:
    org, conversation, session = await _org_with_session(store, values)
    later_session = values.session(conversation, created=2)
    await store.add_session(later_session)
    # Identical timestamps, then timestamps going backwards, across two sessions.
    added = [values.message(session, created=3, content=f"same {i}") for i in range(4)]
    added += [values.message(later_session, created=3 - i, content=f"back {i}") for i in range(3)]
    added.append(values.message(session, created=0, content="last"))
    for message in added:
        await store.add_message(message)

    page = await store.list_messages(org.id, conversation.id, limit=100, offset=0)
    assert page.items == tuple(added)
    assert await store.session_messages(org.id, session.id) == [
        m for m in added if m.chat_session_id == session.id
    ]
    assert await store.session_messages(org.id, later_session.id) == [
        m for m in added if m.chat_session_id == later_session.id
    ]


async def test_sessions_list_oldest_first(store: Store, values: Any) -> None:
    org, conversation, first = await _org_with_session(store, values)
    second = values.session(conversation, created=2)
    third = values.session(conversation, created=2)
    await store.add_session(second)
    await store.add_session(third)
    other_conversation = values.conversation(org)
    await store.add_conversation(other_conversation)
    await store.add_session(values.session(other_conversation))

    assert await store.list_sessions(org.id, conversation.id) == [first, second, third]


async def test_update_message_stores_the_reply(store: Store, values: Any) -> None:
    org, _, session = await _org_with_session(store, values)
    reply = values.message(
        session,
        role=MessageRole.ASSISTANT,
        status=MessageStatus.IN_PROGRESS,
        content="",
        model_id=session.model_id,
    )
    await store.add_message(reply)

    partial = reply.with_content("Hel", values.at(3))
    await store.update_message(partial)
    assert await store.get_message(org.id, reply.id) == partial

    failed = partial.finished(
        content="Hel",
        status=MessageStatus.FAILED,
        finish_reason="error",
        usage=None,
        at=values.at(4),
        error=("provider_error", "connection reset"),
    )
    await store.update_message(failed)
    assert await store.get_message(org.id, reply.id) == failed

    done = partial.finished(
        content="Hello",
        status=MessageStatus.COMPLETED,
        finish_reason="stop",
        usage=Usage(prompt_tokens=4, completion_tokens=2, estimated=False),
        at=values.at(5),
    )
    await store.update_message(done)
    assert await store.get_message(org.id, reply.id) == done


async def test_update_session_stores_status_and_updated_at(store: Store, values: Any) -> None:
    org, _, session = await _org_with_session(store, values)
    responding = attrs.evolve(session, status=SessionState.RESPONDING, updated_at=values.at(7))
    await store.update_session(responding)

    assert await store.get_session(org.id, session.id) == responding


async def test_updating_an_unknown_object_changes_nothing(store: Store, values: Any) -> None:
    org, conversation, session = await _org_with_session(store, values)
    ghost_session = values.session(conversation)
    ghost_message = values.message(session)
    await store.update_session(ghost_session)
    await store.update_message(ghost_message)

    assert await store.get_session(org.id, ghost_session.id) is None
    assert await store.get_message(org.id, ghost_message.id) is None


async def test_recover_interrupted_marks_replies_and_frees_sessions(
    store: Store, values: Any
) -> None:
    org, conversation, session = await _org_with_session(store, values)
    busy = attrs.evolve(session, status=SessionState.RESPONDING)
    await store.update_session(busy)
    idle = values.session(conversation, created=2)
    closed = values.session(conversation, created=2, status=SessionState.COMPLETED)
    await store.add_session(idle)
    await store.add_session(closed)
    question = values.message(session)
    reply = values.message(
        session, role=MessageRole.ASSISTANT, status=MessageStatus.IN_PROGRESS, content="Hal"
    )
    failed = values.message(
        idle, role=MessageRole.ASSISTANT, status=MessageStatus.FAILED, finish_reason="error"
    )
    for message in (question, reply, failed):
        await store.add_message(message)

    assert await store.recover_interrupted(values.at(50)) == 1

    assert await store.get_message(org.id, reply.id) == attrs.evolve(
        reply,
        status=MessageStatus.INCOMPLETE,
        finish_reason="interrupted",
        updated_at=values.at(50),
    )
    assert await store.get_message(org.id, question.id) == question
    assert await store.get_message(org.id, failed.id) == failed
    assert await store.get_session(org.id, session.id) == attrs.evolve(
        busy, status=SessionState.ACTIVE, updated_at=values.at(50)
    )
    assert await store.get_session(org.id, idle.id) == idle
    assert await store.get_session(org.id, closed.id) == closed
    assert await store.recover_interrupted(values.at(60)) == 0


async def test_find_token_gives_the_principal(store: Store, values: Any) -> None:
    org = values.org()
    await store.add_org(org)
    admin, viewer = values.org().id, values.org().id  # fresh ids for the tokens
    await store.add_token(
        token_id=admin, org_id=org.id, role=AccessRole.ADMIN, token_hash="a" * 64, at=values.at(1)
    )
    await store.add_token(
        token_id=viewer, org_id=org.id, role=AccessRole.VIEWER, token_hash="b" * 64, at=values.at(1)
    )

    assert await store.find_token("a" * 64, values.at(2)) == Principal(
        token_id=admin, org_id=org.id, role=AccessRole.ADMIN
    )
    assert await store.find_token("b" * 64, values.at(2)) == Principal(
        token_id=viewer, org_id=org.id, role=AccessRole.VIEWER
    )
    assert await store.find_token("c" * 64, values.at(2)) is None


async def test_expired_and_revoked_tokens_are_not_found_but_listed(
    store: Store, values: Any
) -> None:
    org, other = values.org(), values.org()
    await store.add_org(org)
    await store.add_org(other)
    lasting, brief, theirs = values.org().id, values.org().id, values.org().id
    await store.add_token(
        token_id=lasting,
        org_id=org.id,
        role=AccessRole.MEMBER,
        token_hash="a" * 64,
        at=values.at(1),
    )
    await store.add_token(
        token_id=brief,
        org_id=org.id,
        role=AccessRole.MEMBER,
        token_hash="b" * 64,
        at=values.at(2),
        expires_at=values.at(10),
    )
    await store.add_token(
        token_id=theirs,
        org_id=other.id,
        role=AccessRole.ADMIN,
        token_hash="c" * 64,
        at=values.at(3),
    )
    assert await store.find_token("b" * 64, values.at(9)) is not None
    assert await store.find_token("b" * 64, values.at(10)) is None  # expiry is exclusive

    revoked = await store.revoke_token(lasting, values.at(20))
    assert revoked is not None and revoked.revoked_at == values.at(20)
    again = await store.revoke_token(lasting, values.at(30))
    assert again is not None and again.revoked_at == values.at(20)  # the first time stays
    assert await store.find_token("a" * 64, values.at(21)) is None
    assert await store.revoke_token(values.org().id, values.at(30)) is None

    listed = await store.list_tokens(org.id)
    assert [(t.id, t.role, t.expires_at, t.revoked_at) for t in listed] == [
        (lasting, AccessRole.MEMBER, None, values.at(20)),
        (brief, AccessRole.MEMBER, values.at(10), None),
    ]
    assert [t.id for t in await store.list_tokens(other.id)] == [theirs]


# -- the two stores agree on any sequence of writes and reads ---------------------------------
_at = st.integers(min_value=0, max_value=3)  # few instants, so ties are common
_org = st.sampled_from([0, 0, 0, 1])  # mostly one org, so its listings are long
_page = st.tuples(st.integers(min_value=0, max_value=4), st.integers(min_value=0, max_value=6))
_operation = st.one_of(
    st.tuples(st.just("conversation"), _org, st.booleans(), _at),
    st.tuples(st.just("session"), st.integers(min_value=0), _at),
    st.tuples(st.just("message"), st.integers(min_value=0), _at, st.sampled_from(MessageStatus)),
    st.tuples(st.just("finish"), st.integers(min_value=0), _at),
    st.tuples(st.just("list_conversations"), _org, st.sampled_from([None, True, False]), _page),
    st.tuples(st.just("list_messages"), st.integers(min_value=0), _page),
    st.tuples(st.just("recover"), _at),
)


# `values` holds no state between examples, so sharing the function-scoped fixture is safe.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(operations=st.lists(_operation, max_size=25))
async def test_both_stores_agree_on_any_sequence(
    tmp_path_factory: pytest.TempPathFactory, values: Any, operations: list[tuple[Any, ...]]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('agree')}/conversations.db"
    async with trio_asyncio.open_loop(), open_sql_store(url) as sql:
        run = _SideBySide(InMemoryStore(), sql, values)
        await run.start()
        for kind, *args in operations:
            await getattr(run, kind)(*args)
        await run.compare_everything()


class _SideBySide:
    """Applies each operation to both stores and checks that every answer is the same."""

    def __init__(self, memory: Store, sql: Store, values: Any) -> None:
        self.stores = (memory, sql)
        self.values = values
        self.orgs = (values.org(name="first"), values.org(name="second"))
        self.conversations: list[Conversation] = []
        self.sessions: list[ChatSession] = []
        self.messages: list[Message] = []

    async def both(self, method: str, *args: Any, **kwargs: Any) -> Any:
        results = [await getattr(store, method)(*args, **kwargs) for store in self.stores]
        assert results[0] == results[1], f"{method} differs"
        return results[0]

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
            self.messages.append(self.values.message(session, created=created, status=status))
            await self.both("add_message", self.messages[-1])

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

    async def recover(self, when: int) -> None:
        await self.both("recover_interrupted", self.values.at(when))

    async def compare_everything(self) -> None:
        for org in self.orgs:
            await self.both("list_conversations", org.id, is_archived=None, limit=100, offset=0)
        for conversation in self.conversations:
            org_id = conversation.org_id
            await self.both("list_sessions", org_id, conversation.id)
            await self.both("list_messages", org_id, conversation.id, limit=100, offset=0)
        for session in self.sessions:
            await self.both("get_session", session.org_id, session.id)
            await self.both("session_messages", session.org_id, session.id)
