"""The store contract for what the session actors write: replies while and after they are
written, session transitions over versions, and recovery of replies that were interrupted."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from conversation_service.domain.model import ContextScope, MessageRole, MessageStatus, Usage
from conversation_service.domain.replies import ReplyOutcome
from conversation_service.domain.session_machine import SessionInput, SessionState
from conversation_service.ports.storage import StaleVersion
from conversation_service.testing.store_contract.base import ContractBase, Store
from conversation_service.testing.values import org_with_session


def _turn(values: Any, session: Any, at: float) -> tuple[Any, Any]:
    user = values.message(session, created=at, content="hi")
    reply = values.message(
        session,
        created=at,
        role=MessageRole.ASSISTANT,
        status=MessageStatus.IN_PROGRESS,
        content="",
        model_id=session.model_id,
    )
    return user, reply


def _interrupted(message: Any, at: Any) -> Any:
    outcome = ReplyOutcome.interrupted(
        "interrupted", "the service stopped while writing this reply"
    )
    assert outcome.error is not None
    code, reason = outcome.error
    return attrs.evolve(
        message,
        status=outcome.status,
        finish_reason=outcome.finish_reason,
        error_code=code,
        error_message=reason,
        updated_at=at,
    )


class ReplyContract(ContractBase):
    """What the session actors write: replies, session versions, recovery."""

    async def test_a_reply_is_updated_while_in_progress_and_never_once_finished(
        self, store: Store, values: Any
    ) -> None:
        org, _, session = await org_with_session(store, values)
        _, reply = _turn(values, session, 2)
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

        late = partial.with_content("Hello", values.at(5))  # a writer that missed the end
        with pytest.raises(StaleVersion, match="failed"):
            await store.update_message(late)
        assert await store.get_message(org.id, reply.id) == failed

    async def test_a_session_is_written_only_over_the_version_before_it(
        self, store: Store, values: Any
    ) -> None:
        org, conversation, session = await org_with_session(store, values)
        responding = session.apply(SessionInput.SEND, values.at(7))
        await store.update_session(responding)
        assert await store.get_session(org.id, session.id) == responding
        assert responding.version == session.version + 1

        stale = session.apply(SessionInput.COMPLETE, values.at(8))  # made from the old copy
        with pytest.raises(StaleVersion, match="another writer"):
            await store.update_session(stale)
        assert await store.get_session(org.id, session.id) == responding

        with pytest.raises(StaleVersion, match="does not exist"):
            await store.update_session(
                values.session(conversation).apply(SessionInput.SEND, values.at(9))
            )

    async def test_updating_an_unknown_reply_fails(self, store: Store, values: Any) -> None:
        org, _, session = await org_with_session(store, values)
        _, ghost = _turn(values, session, 2)
        with pytest.raises(StaleVersion, match="does not exist"):
            await store.update_message(ghost)
        assert await store.get_message(org.id, ghost.id) is None

    async def test_a_turn_begins_and_ends_in_one_write_each(
        self, store: Store, values: Any
    ) -> None:
        org, conversation, session = await org_with_session(store, values)
        user, reply = _turn(values, session, 5)
        responding = session.apply(SessionInput.SEND, values.at(5))
        await store.begin_reply(user, reply, responding, history_limit=10)
        assert await store.session_messages(org.id, session.id) == [user, reply]
        assert await store.get_session(org.id, session.id) == responding
        assert (await store.get_conversation(org.id, conversation.id)).updated_at == values.at(5)

        done = reply.finished(
            content="Hello",
            status=MessageStatus.COMPLETED,
            finish_reason="stop",
            usage=Usage(prompt_tokens=4, completion_tokens=2, estimated=False),
            at=values.at(6),
        )
        idle = responding.apply(SessionInput.FINISH, values.at(6))
        await store.end_reply(done, idle)
        assert await store.get_message(org.id, reply.id) == done
        assert await store.get_session(org.id, session.id) == idle

    async def test_a_turn_over_a_stale_session_writes_nothing(
        self, store: Store, values: Any
    ) -> None:
        org, _, session = await org_with_session(store, values)
        completed = session.apply(SessionInput.COMPLETE, values.at(2))
        await store.update_session(completed)

        user, reply = _turn(values, session, 3)
        with pytest.raises(StaleVersion):
            await store.begin_reply(
                user, reply, session.apply(SessionInput.SEND, values.at(3)), history_limit=10
            )
        assert await store.session_messages(org.id, session.id) == []
        assert await store.get_session(org.id, session.id) == completed

        _, other_session = (await org_with_session(store, values))[1:]
        user, reply = _turn(values, other_session, 4)
        responding = other_session.apply(SessionInput.SEND, values.at(4))
        await store.begin_reply(user, reply, responding, history_limit=10)
        done = reply.finished(
            content="x", status=MessageStatus.COMPLETED, finish_reason="stop", usage=None,
            at=values.at(5),
        )  # fmt: skip
        stale_idle = other_session.apply(SessionInput.COMPLETE, values.at(5))
        with pytest.raises(StaleVersion):
            await store.end_reply(done, stale_idle)
        assert await store.get_message(other_session.org_id, reply.id) == reply  # untouched

    async def test_one_session_is_recovered_with_its_interrupted_replies(
        self, store: Store, values: Any
    ) -> None:
        org, conversation, session = await org_with_session(store, values)
        user, reply = _turn(values, session, 2)
        responding = session.apply(SessionInput.SEND, values.at(2))
        await store.begin_reply(user, reply, responding, history_limit=10)
        neighbour = values.session(conversation, created=2)
        await store.add_session(neighbour)
        _, theirs = _turn(values, neighbour, 3)
        await store.add_message(theirs)

        recovered = responding.apply(SessionInput.RECOVER, values.at(9))
        await store.recover_session(recovered)
        assert await store.get_session(org.id, session.id) == recovered
        assert recovered.status is SessionState.ACTIVE
        assert await store.get_message(org.id, reply.id) == _interrupted(reply, values.at(9))
        assert await store.get_message(org.id, user.id) == user
        assert await store.get_message(org.id, theirs.id) == theirs  # another session's
        with pytest.raises(StaleVersion):
            await store.recover_session(recovered)  # the same stale copy again

    async def test_recover_interrupted_marks_replies_and_frees_sessions(
        self, store: Store, values: Any
    ) -> None:
        org, conversation, session = await org_with_session(store, values)
        busy = session.apply(SessionInput.SEND, values.at(1))
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

        assert await store.get_message(org.id, reply.id) == _interrupted(reply, values.at(50))
        assert await store.get_message(org.id, question.id) == question
        assert await store.get_message(org.id, failed.id) == failed
        assert await store.get_session(org.id, session.id) == busy.apply(
            SessionInput.RECOVER, values.at(50)
        )
        assert await store.get_session(org.id, idle.id) == idle
        assert await store.get_session(org.id, closed.id) == closed
        assert await store.recover_interrupted(values.at(60)) == 0

    async def test_a_turn_begins_with_what_the_model_is_shown(
        self, store: Store, values: Any
    ) -> None:
        org, conversation, session = await org_with_session(store, values)
        neighbour = values.session(conversation, created=1)
        await store.add_session(neighbour)
        as_conversation = attrs.evolve(
            values.session(conversation, created=1), context=ContextScope.CONVERSATION
        )
        await store.add_session(as_conversation)
        said = []
        heads: dict[Any, Any] = {}  # each session's last message: the next one follows it
        for at, (where, role, content, status) in enumerate([
            (session, MessageRole.USER, "one", MessageStatus.COMPLETED),
            (session, MessageRole.ASSISTANT, "", MessageStatus.FAILED),  # empty: never shown
            (neighbour, MessageRole.USER, "theirs", MessageStatus.COMPLETED),
            (neighbour, MessageRole.ASSISTANT, "writing", MessageStatus.IN_PROGRESS),  # not yet
            (session, MessageRole.USER, "two", MessageStatus.COMPLETED),
            (session, MessageRole.ASSISTANT, "answer", MessageStatus.CANCELLED),
        ], start=2):  # fmt: skip
            said.append(
                values.message(where, created=at, role=role, content=content, status=status)
            )
            said[-1] = attrs.evolve(said[-1], parent_id=heads.get(where.id))
            heads[where.id] = said[-1].id
            await store.add_message(said[-1])
        for where in (session, neighbour):
            stored = await store.get_session(org.id, where.id)
            await store.update_session(stored.moved_to(heads[where.id], values.at(8)))

        async def begin(chosen: Any, text: str, limit: int) -> tuple[list[str], int]:
            """Begin and end a turn whose user says `text` and whose reply is `text` upper-cased;
            what the model was shown, and how many older messages were not read."""
            user, reply = _turn(values, chosen, 20)
            stored = await store.get_session(org.id, chosen.id)
            user = attrs.evolve(user, content=text, parent_id=stored.head_id)
            reply = attrs.evolve(reply, parent_id=user.id)
            responding = stored.apply(SessionInput.SEND, values.at(20)).at_head(reply.id)
            shown = await store.begin_reply(user, reply, responding, history_limit=limit)
            done = reply.finished(
                content=text.upper(), status=MessageStatus.COMPLETED, finish_reason="stop",
                usage=None, at=values.at(21),
            )  # fmt: skip
            await store.end_reply(done, responding.apply(SessionInput.FINISH, values.at(21)))
            return [m.content for m in shown.messages], shown.not_read

        assert await begin(session, "three", 10) == (["one", "two", "answer"], 0)
        # The newest, in order; one, two and answer left unread.
        assert await begin(session, "four", 2) == (["three", "THREE"], 3)
        # A conversation-wide context: every session's messages, the unfinished one left out.
        assert await begin(as_conversation, "five", 100) == (
            ["one", "theirs", "two", "answer", "three", "THREE", "four", "FOUR"],
            0,
        )
        assert await begin(as_conversation, "six", 1) == (["FIVE"], 9)

    async def test_a_session_holds_one_reply_in_progress_at_most(
        self, store: Store, values: Any
    ) -> None:
        # Enforced by the database on SQL (the unique index one_reply_per_session), so that
        # two instances can never write two replies of one session at once.
        org, conversation, session = await org_with_session(store, values)
        _, first = _turn(values, session, 2)
        await store.add_message(first)
        _, second = _turn(values, session, 3)
        with pytest.raises(StaleVersion, match="reply in progress"):
            await store.add_message(second)

        user, third = _turn(values, session, 4)
        responding = session.apply(SessionInput.SEND, values.at(4))
        with pytest.raises(StaleVersion, match="reply in progress"):
            await store.begin_reply(user, third, responding, history_limit=10)
        page = await store.list_messages(org.id, conversation.id, limit=10, offset=0)
        assert [m.id for m in page.items] == [first.id]  # nothing of either was written
        assert await store.get_session(org.id, session.id) == session

        other = values.session(conversation, created=5)  # another session is not held back
        await store.add_session(other)
        _, elsewhere = _turn(values, other, 6)
        await store.add_message(elsewhere)
        assert await store.get_message(org.id, elsewhere.id) == elsewhere
