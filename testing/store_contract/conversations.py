"""The store contract: conversations, sessions and messages (round trips, scoping to an
organisation, the orders of the listings, paging, usage)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation_service.domain.model import (
    ContextScope,
    GenerationParams,
    MessageRole,
    MessageStatus,
    Usage,
)
from conversation_service.domain.session_machine import SessionState
from conversation_service.testing import strategies as cs
from conversation_service.testing.store_contract.base import ContractBase, Store, StoreFactory
from conversation_service.testing.values import org_with_session


def _one_in_progress(messages: list[Any]) -> bool:
    # The service writes one reply at a time in a session; a store may refuse a second.
    return sum(m.status is MessageStatus.IN_PROGRESS for m in messages) <= 1


class ConversationContract(ContractBase):
    """Conversations, sessions and messages: round trips, scoping, order, paging, usage."""

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data())
    async def test_any_valid_value_round_trips_exactly(
        self, store_factory: StoreFactory, data: st.DataObject
    ) -> None:
        """Whatever the kit's strategies make (any text, instant, state, params, outcome) is
        read back equal."""
        async with store_factory() as store:
            org = data.draw(cs.orgs(), label="org")
            await store.add_org(org)
            assert await store.get_org(org.id) == org
            conversation = data.draw(cs.conversations(org.id), label="conversation")
            await store.add_conversation(conversation)
            assert await store.get_conversation(org.id, conversation.id) == conversation
            session = data.draw(cs.chat_sessions(conversation), label="session")
            await store.add_session(session)
            assert await store.get_session(org.id, session.id) == session
            messages = data.draw(
                st.lists(cs.messages(session), max_size=4).filter(_one_in_progress),
                label="messages",
            )
            for message in messages:
                await store.add_message(message)
            for message in messages:
                assert await store.get_message(org.id, message.id) == message
            assert list(await store.session_messages(org.id, session.id)) == messages

    async def test_org_round_trips_and_is_counted(self, store: Store, values: Any) -> None:
        assert await store.count_orgs() == 0
        org = values.org(name="Ünïcode org ✓")
        await store.add_org(org)
        await store.add_org(values.org(name="other"))

        assert await store.get_org(org.id) == org
        assert await store.get_org(values.org().id) is None
        assert await store.count_orgs() == 2

    async def test_conversation_and_session_round_trip(self, store: Store, values: Any) -> None:
        org = values.org()
        await store.add_org(org)
        conversation = values.conversation(org, title="archived one", archived=True)
        await store.add_conversation(conversation)
        session = values.session(conversation, status=SessionState.RESPONDING)
        await store.add_session(session)

        assert await store.get_conversation(org.id, conversation.id) == conversation
        assert await store.get_session(org.id, session.id) == session

    async def test_a_sessions_settings_round_trip_exactly(self, store: Store, values: Any) -> None:
        org = values.org()
        await store.add_org(org)
        conversation = values.conversation(org)
        await store.add_conversation(conversation)
        session = attrs.evolve(
            values.session(conversation),
            system_prompt="Answer briefly. ✓",
            # Floats that a 4-byte REAL would not keep (0.2 would read back as 0.200000003).
            params=GenerationParams(temperature=0.2, top_p=0.95, max_tokens=4096),
            context=ContextScope.CONVERSATION,
        )
        await store.add_session(session)

        stored = await store.get_session(org.id, session.id)
        assert stored == session
        assert stored.params.temperature == 0.2 and stored.params.top_p == 0.95

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
    async def test_message_round_trips(
        self, store: Store, values: Any, reply: dict[str, Any]
    ) -> None:
        org, _, session = await org_with_session(store, values)
        model_id = session.model_id if reply else None
        message = values.message(session, model_id=model_id, **reply)
        await store.add_message(message)

        assert await store.get_message(org.id, message.id) == message

    async def test_another_orgs_objects_are_not_found(self, store: Store, values: Any) -> None:
        org, conversation, session = await org_with_session(store, values)
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
        self, store: Store, values: Any
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

    async def test_new_session_or_message_moves_its_conversation_up(
        self, store: Store, values: Any
    ) -> None:
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

    async def test_an_older_write_never_moves_updated_at_back(
        self, store: Store, values: Any
    ) -> None:
        org = values.org()
        await store.add_org(org)
        conversation = values.conversation(org, created=20)
        await store.add_conversation(conversation)
        session = values.session(conversation, created=5)
        await store.add_session(session)
        await store.add_message(values.message(session, created=6))

        assert await store.get_conversation(org.id, conversation.id) == conversation

    async def test_archived_filter(self, store: Store, values: Any) -> None:
        org = values.org()
        await store.add_org(org)
        kept = values.conversation(org, created=1)
        archived = values.conversation(org, created=2, archived=True)
        await store.add_conversation(kept)
        await store.add_conversation(archived)

        async def listed(is_archived: bool | None) -> tuple[Any, ...]:
            page = await store.list_conversations(
                org.id, is_archived=is_archived, limit=10, offset=0
            )
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
        self,
        store: Store,
        values: Any,
        limit: int,
        offset: int,
        expected: list[int],
        has_more: bool,
    ) -> None:
        org, conversation, session = await org_with_session(store, values)
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
        self, store: Store, values: Any
    ) -> None:
        org, conversation, session = await org_with_session(store, values)
        later_session = values.session(conversation, created=2)
        await store.add_session(later_session)
        # Identical timestamps, then timestamps going backwards, across two sessions.
        added = [values.message(session, created=3, content=f"same {i}") for i in range(4)]
        added += [
            values.message(later_session, created=3 - i, content=f"back {i}") for i in range(3)
        ]
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

    async def test_sessions_list_oldest_first(self, store: Store, values: Any) -> None:
        org, conversation, first = await org_with_session(store, values)
        second = values.session(conversation, created=2)
        third = values.session(conversation, created=2)
        await store.add_session(second)
        await store.add_session(third)
        other_conversation = values.conversation(org)
        await store.add_conversation(other_conversation)
        await store.add_session(values.session(other_conversation))

        assert await store.list_sessions(org.id, conversation.id) == [first, second, third]

    async def test_conversation_messages_span_its_sessions_in_order(
        self, store: Store, values: Any
    ) -> None:
        org, conversation, first = await org_with_session(store, values)
        second = values.session(conversation, created=2)
        await store.add_session(second)
        elsewhere = values.conversation(org)
        await store.add_conversation(elsewhere)
        await store.add_session(values.session(elsewhere))
        added = [
            values.message(first, created=5),
            values.message(second, created=3),
            values.message(first, created=4),
        ]
        for message in added:
            await store.add_message(message)
        listed = await store.conversation_messages(org.id, conversation.id)
        assert [m.id for m in listed] == [m.id for m in added]
        assert list(await store.conversation_messages(values.org().id, conversation.id)) == []

    async def test_usage_sums_replies_per_model_over_a_period(
        self, store: Store, values: Any
    ) -> None:
        org, _, session = await org_with_session(store, values)
        _, _, theirs = await org_with_session(store, values)
        model = session.model_id
        for created, usage in ((1, (3, 5)), (2, (10, 1)), (9, (100, 100))):
            reply = values.message(
                session,
                created=created,
                role=MessageRole.ASSISTANT,
                model_id=model,
                status=MessageStatus.IN_PROGRESS,
            )
            await store.add_message(reply)
            await store.update_message(
                reply.finished(
                    content="x", status=MessageStatus.COMPLETED, finish_reason="stop",
                    usage=Usage(prompt_tokens=usage[0], completion_tokens=usage[1],
                                estimated=created == 2),
                    at=values.at(created),
                )
            )  # fmt: skip
        await store.add_message(values.message(session, created=3))  # a user message: no model
        await store.add_message(  # another organisation's reply on the same model
            values.message(theirs, created=3, role=MessageRole.ASSISTANT, model_id=model)
        )
        usage = await store.usage_by_model(org.id, start=values.at(0), end=values.at(9))
        assert [(u.model_id, u.replies, u.prompt_tokens, u.completion_tokens, u.estimated_replies)
                for u in usage] == [(model, 2, 13, 6, 1)]  # fmt: skip
        assert (
            list(await store.usage_by_model(org.id, start=values.at(20), end=values.at(30))) == []
        )
