"""Conversations people keep, as every store must keep them: changes, generated titles,
deletion, feedback, export and import (in memory, on SQLite and on PostgreSQL)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest

from conversation_service.domain.feedback import Feedback, Rating
from conversation_service.domain.model import (
    ChatSession,
    Conversation,
    Latency,
    Message,
    MessageRole,
    MessageStatus,
    Usage,
)
from conversation_service.domain.transfer import MessageRecord, TransferRecord, as_imported
from conversation_service.ports.storage import ModelFeedback
from tests.adapters.conftest import Values, org_with_session

Store = Any  # InMemoryStore | SqlStore


def reply(values: Values, session: ChatSession, created: float, text: str = "ok") -> Message:
    return attrs.evolve(
        values.message(
            session,
            created=created,
            content=text,
            role=MessageRole.ASSISTANT,
            model_id=session.model_id,
            finish_reason="stop",
            usage=Usage(prompt_tokens=3, completion_tokens=4, estimated=False),
        ),
        latency=Latency(first_token_ms=12, total_ms=40),
    )


def feedback(message: Message, rating: Rating, at: float, comment: str | None = None) -> Feedback:
    return Feedback(
        message_id=message.id,
        org_id=message.org_id,
        conversation_id=message.conversation_id,
        rating=rating,
        comment=comment,
        created_at=Values().at(at),
        updated_at=Values().at(at),
    )


async def test_an_untitled_conversation_round_trips_and_takes_one_generated_title(
    store: Store, values: Values
) -> None:
    org = values.org()
    await store.add_org(org)
    untitled = values.conversation(org, title=None)
    await store.add_conversation(untitled)
    assert await store.get_conversation(org.id, untitled.id) == untitled

    assert await store.set_generated_title(org.id, untitled.id, "From the model")
    assert not await store.set_generated_title(org.id, untitled.id, "A second one")
    assert not await store.set_generated_title(values.org().id, untitled.id, "Another org's")
    assert not await store.set_generated_title(org.id, uuid4(), "Nothing there")
    found = await store.get_conversation(org.id, untitled.id)
    assert found == attrs.evolve(untitled, title="From the model")  # updated_at unmoved


async def test_a_title_the_user_set_is_never_replaced_by_a_generated_one(
    store: Store, values: Values
) -> None:
    org = values.org()
    await store.add_org(org)
    conversation = values.conversation(org, title=None)
    await store.add_conversation(conversation)

    # The user's rename lands between the title model's start and its write.
    renamed = await store.update_conversation(
        org.id, conversation.id, title="Mine", is_archived=None, at=values.at(5)
    )
    assert renamed is not None and renamed.title == "Mine"
    assert not await store.set_generated_title(org.id, conversation.id, "Generated")
    assert (await store.get_conversation(org.id, conversation.id)).title == "Mine"


async def test_an_update_changes_only_what_it_is_given(store: Store, values: Values) -> None:
    org = values.org()
    await store.add_org(org)
    conversation = values.conversation(org, created=10, title="Before")
    await store.add_conversation(conversation)

    archived = await store.update_conversation(
        org.id, conversation.id, title=None, is_archived=True, at=values.at(20)
    )
    assert archived == attrs.evolve(conversation, is_archived=True, updated_at=values.at(20))
    # An older instant never moves updated_at back; a generated title written meanwhile stays.
    renamed = await store.update_conversation(
        org.id, conversation.id, title="After ✓", is_archived=None, at=values.at(15)
    )
    assert renamed == attrs.evolve(archived, title="After ✓")
    assert await store.get_conversation(org.id, conversation.id) == renamed
    listed = await store.list_conversations(org.id, is_archived=True, limit=10, offset=0)
    assert listed.items == (renamed,)

    nobody = values.org()
    assert (
        await store.update_conversation(
            nobody.id, conversation.id, title="x", is_archived=None, at=values.at(30)
        )
        is None
    )
    assert (
        await store.update_conversation(
            org.id, uuid4(), title=None, is_archived=False, at=values.at(30)
        )
        is None
    )


async def test_feedback_is_kept_replaced_counted_and_cleared(store: Store, values: Values) -> None:
    org, conversation, session = await org_with_session(store, values)
    other_model = attrs.evolve(values.session(conversation), model_id=uuid4())
    await store.add_session(other_model)
    first, second = reply(values, session, 2), reply(values, session, 3)
    third = reply(values, other_model, 4)
    late = reply(values, session, 100)
    for message in (first, second, third, late):
        await store.add_message(message)

    assert await store.get_feedback(org.id, first.id) is None
    await store.put_feedback(feedback(first, Rating.DOWN, 5, "too long"))
    replaced = attrs.evolve(
        feedback(first, Rating.UP, 6, "fine after all ✓"), created_at=values.at(5)
    )
    await store.put_feedback(replaced)
    await store.put_feedback(feedback(second, Rating.DOWN, 7))
    await store.put_feedback(feedback(third, Rating.UP, 8))
    await store.put_feedback(feedback(late, Rating.UP, 101))

    assert await store.get_feedback(org.id, first.id) == replaced
    assert await store.get_feedback(values.org().id, first.id) is None
    found = await store.feedback_for(org.id, [first.id, second.id, uuid4(), third.id])
    assert set(found) == {first.id, second.id, third.id}
    assert found[first.id] == replaced
    assert await store.feedback_for(values.org().id, [first.id]) == {}
    assert len(await store.feedback_for(org.id, [first.id] * 250)) == 1  # past one lookup

    counted = await store.feedback_by_model(org.id, start=values.at(0), end=values.at(50))
    assert sorted(counted, key=lambda row: -row.down) == [
        ModelFeedback(model_id=session.model_id, up=1, down=1),
        ModelFeedback(model_id=other_model.model_id, up=1, down=0),
    ]
    assert [str(row.model_id) for row in counted] == sorted(str(row.model_id) for row in counted)

    assert await store.delete_feedback(org.id, first.id)
    assert not await store.delete_feedback(org.id, first.id)
    assert not await store.delete_feedback(values.org().id, second.id)
    assert await store.get_feedback(org.id, first.id) is None
    assert await store.get_feedback(org.id, second.id) is not None


async def test_a_deleted_conversation_leaves_nothing_of_itself(
    store: Store, values: Values
) -> None:
    org, conversation, session = await org_with_session(store, values)
    second = values.session(conversation, created=2)
    await store.add_session(second)
    kept_conversation = values.conversation(org, created=3)
    await store.add_conversation(kept_conversation)
    kept_session = values.session(kept_conversation, created=4)
    await store.add_session(kept_session)
    answer = reply(values, session, 5)
    for message in (values.message(session, created=5), answer, reply(values, second, 6)):
        await store.add_message(message)
    kept_reply = reply(values, kept_session, 7)
    await store.add_message(kept_reply)
    await store.put_feedback(feedback(answer, Rating.UP, 8))
    await store.put_feedback(feedback(kept_reply, Rating.DOWN, 8))
    scope, other_scope = f"{org.id}/{uuid4()}", f"{uuid4()}/{uuid4()}"
    for key, body in {
        "create": f'{{"id":"{conversation.id}","title":"t"}}',
        "stream": f'{{"stream":{{"chat_session_id":"{second.id}"}}}}',
        "kept": f'{{"id":"{kept_conversation.id}"}}',
    }.items():
        assert await store.claim_key(scope, key, "f", values.at(9)) is None
        await store.finish_key(scope, key, 201, body)
    assert await store.claim_key(other_scope, "x", "f", values.at(9)) is None
    await store.finish_key(other_scope, "x", 201, f'{{"id":"{conversation.id}"}}')

    assert await store.delete_conversation(values.org().id, conversation.id) is None
    deleted = await store.delete_conversation(org.id, conversation.id)

    assert deleted == [session.id, second.id]
    assert await store.get_conversation(org.id, conversation.id) is None
    assert await store.list_sessions(org.id, conversation.id) == []
    assert await store.get_session(org.id, session.id) is None
    assert await store.get_message(org.id, answer.id) is None
    assert await store.get_feedback(org.id, answer.id) is None
    page = await store.list_conversations(org.id, is_archived=None, limit=10, offset=0)
    assert [c.id for c in page.items] == [kept_conversation.id]
    assert [m.id for m in await store.conversation_messages(org.id, kept_conversation.id)] == [
        kept_reply.id
    ]
    assert await store.get_feedback(org.id, kept_reply.id) is not None
    # Kept answers naming it (or its sessions) are gone; others, and other orgs', stay.
    assert await store.claim_key(scope, "create", "g", values.at(10)) is None
    assert await store.claim_key(scope, "stream", "g", values.at(10)) is None
    assert (await store.claim_key(scope, "kept", "f", values.at(10))).done
    assert (await store.claim_key(other_scope, "x", "f", values.at(10))).done
    assert await store.delete_conversation(org.id, conversation.id) is None


async def filled_org(store: Store, values: Values, conversations: int = 3) -> list[Any]:
    """An organisation with conversations, sessions, messages (each following its parent,
    one reply regenerated beside the first in each conversation) and feedback, each session
    at a head; its records in export order."""
    org = values.org()
    await store.add_org(org)
    records: list[Any] = [org]
    for c in range(conversations):
        title = None if c == 1 else f"conversation {c} ✓"
        conversation = values.conversation(org, created=10 * c, title=title, archived=c == 2)
        await store.add_conversation(conversation)
        records.append(conversation)
        sessions = [values.session(conversation, created=10 * c + s) for s in (1, 2)]
        for session in sessions:
            await store.add_session(session)
        records.extend(sessions)
        last: dict[UUID, Message] = {}  # each session's current branch's last message
        for n in range(4):
            session = sessions[n % 2]
            parent = last.get(session.id)
            asked = attrs.evolve(
                values.message(session, created=10 * c + 3 + n, content=f"question {n}"),
                parent_id=None if parent is None else parent.id,
            )
            answered = attrs.evolve(
                reply(values, session, 10 * c + 3.5 + n, f"answer {n} ✓"), parent_id=asked.id
            )
            await store.add_message(asked)
            await store.add_message(answered)
            given = None
            if n % 2 == 0:
                given = feedback(answered, Rating.UP if n else Rating.DOWN, 10 * c + 4 + n, "c")
                await store.put_feedback(given)
            records += [
                MessageRecord(message=asked),
                MessageRecord(message=answered, feedback=given),
            ]
            last[session.id] = answered
            if n == 2:  # regenerated: the new reply beside it; the session stays on the first
                again = attrs.evolve(
                    reply(values, session, 10 * c + 3.7 + n, "answer again"), parent_id=asked.id
                )
                await store.add_message(again)
                records.append(MessageRecord(message=again))
        for session in sessions:
            moved = session.moved_to(last[session.id].id, values.at(10 * c + 9))
            await store.update_session(moved)
            records[records.index(session)] = await store.get_session(org.id, session.id)
    # As stored: the messages moved their conversations' updated_at.
    return [
        await store.get_conversation(org.id, r.id) if isinstance(r, Conversation) else r
        for r in records
    ]


async def exported(store: Store, org_id: UUID, page: int = 3) -> list[TransferRecord]:
    """Every record of the organisation, read in small batches as an export reads them."""
    found: list[TransferRecord] = []
    after = None
    while batch := await store.export_conversations(org_id, after=after, limit=page):
        for conversation in batch:
            found.append(conversation)
            found.extend(await store.list_sessions(org_id, conversation.id))
            cursor = None
            while True:
                messages = await store.export_messages(
                    org_id, conversation.id, after=cursor, limit=page
                )
                found.extend(messages.records)
                if messages.after is None:
                    break
                cursor = messages.after
        after = batch[-1]
    return found


async def test_an_export_reads_everything_in_order_in_batches(store: Store, values: Values) -> None:
    org, *records = await filled_org(store, values)
    # Two conversations created at the same instant: the id breaks the tie.
    tied = [attrs.evolve(values.conversation(org, created=40), id=uuid4()) for _ in range(2)]
    for conversation in tied:
        await store.add_conversation(conversation)
    records += sorted(tied, key=lambda c: str(c.id))

    assert await exported(store, org.id) == records
    assert await exported(store, org.id, page=1000) == records
    assert await exported(store, values.org().id) == []


async def test_an_import_recreates_an_export_in_another_org_renaming_taken_ids(
    store: Store, values: Values
) -> None:
    org, *records = await filled_org(store, values)
    target = values.org()
    await store.add_org(target)
    source = await exported(store, org.id)
    imported = [as_imported(record, target.id) for record in source]
    new_ids = iter([uuid4() for _ in range(len(source))])

    report = await store.import_records(
        target.id, lambda: iter(imported), new_id=lambda: next(new_ids)
    )

    assert (report.conversations, report.sessions, report.messages, report.feedback) == (
        3,
        6,
        27,
        6,
    )
    assert report.new_ids == 3 + 6 + 27  # every id was taken: the same store
    again = await exported(store, target.id)
    assert len(again) == len(source)
    renamed: dict[UUID, UUID] = dict(report.conversation_ids)
    assert list(renamed) == [r.id for r in source if isinstance(r, Conversation)]
    for before, after in zip(source, again, strict=True):
        assert type(before) is type(after)
        if isinstance(before, MessageRecord):
            assert isinstance(after, MessageRecord)
            renamed[before.message.id] = after.message.id
        else:
            renamed[before.id] = after.id
    assert len(set(renamed.values()) & set(renamed)) == 0
    # The same records but for the ids (all renamed, consistently) and the organisation.
    assert [_with_ids(r, renamed, target.id) for r in source] == again
    assert await exported(store, org.id) == source  # the source is untouched


async def test_an_import_into_an_empty_store_keeps_every_id(store: Store, values: Values) -> None:
    org = values.org()
    other_store_records = [r async for r in _made_elsewhere(values)]
    await store.add_org(org)
    imported = [as_imported(record, org.id) for record in other_store_records]

    report = await store.import_records(org.id, lambda: imported, new_id=uuid4)

    assert report.new_ids == 0
    assert await exported(store, org.id) == imported


async def test_an_import_that_fails_midway_stores_nothing(store: Store, values: Values) -> None:
    org = values.org()
    await store.add_org(org)
    records = [as_imported(r, org.id) async for r in _made_elsewhere(values)]

    def broken() -> Any:
        yield from records[:5]
        raise ValueError("the file broke here")

    with pytest.raises(Exception):  # noqa: B017 - the store's own kind of error
        await store.import_records(org.id, broken, new_id=uuid4)

    assert await exported(store, org.id) == []
    assert await store.get_message(org.id, records[4].message.id) is None


async def _made_elsewhere(values: Values) -> Any:
    """Records another server exported: ids this store has never seen."""
    from conversation_service.adapters.memory_store import InMemoryStore

    elsewhere = InMemoryStore()
    org, *_ = await filled_org(elsewhere, values, conversations=2)
    for record in await exported(elsewhere, org.id):
        yield record


def _with_ids(record: TransferRecord, ids: dict[UUID, UUID], org_id: UUID) -> TransferRecord:
    match record:
        case Conversation():
            return attrs.evolve(record, id=ids[record.id], org_id=org_id)
        case ChatSession():
            return attrs.evolve(
                record,
                id=ids[record.id],
                org_id=org_id,
                conversation_id=ids[record.conversation_id],
                version=1,
                head_id=None if record.head_id is None else ids[record.head_id],
            )
        case MessageRecord():
            message = attrs.evolve(
                record.message,
                id=ids[record.message.id],
                org_id=org_id,
                conversation_id=ids[record.message.conversation_id],
                chat_session_id=ids[record.message.chat_session_id],
                parent_id=None
                if record.message.parent_id is None
                else ids[record.message.parent_id],
            )
            given = record.feedback
            if given is not None:
                given = attrs.evolve(
                    given,
                    message_id=message.id,
                    org_id=org_id,
                    conversation_id=message.conversation_id,
                )
            assert message.status is not MessageStatus.IN_PROGRESS
            return MessageRecord(message=message, feedback=given)
