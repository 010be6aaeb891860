"""The use cases of conversations people keep: change, delete, rate, export and import.

ConversationService inherits them; they reach storage and the live sessions through the
same ports, and decide access by the same rules: viewers read (and export), members write
(change, delete, rate), admins also import, since an import writes what no member can write
otherwise (usage, statuses, timestamps).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from conversation_service.domain.access import Action, authorize
from conversation_service.domain.errors import ConversationNotFound, MessageNotFound
from conversation_service.domain.feedback import Feedback, Rating, check_comment, give_feedback
from conversation_service.domain.model import Conversation, Principal
from conversation_service.domain.rules import InputLimits, check_text
from conversation_service.domain.transfer import (
    ImportReport,
    TransferRecord,
    as_imported,
)
from conversation_service.ports.clock import Clock, IdGenerator
from conversation_service.ports.session_runtime import SessionRuntime
from conversation_service.ports.storage import (
    ConversationStore,
    ModelFeedback,
    StorageUnavailable,
)

EXPORT_BATCH = 500  # conversations, or messages, read from storage at a time


class KeepingUseCases:
    """Use cases over ConversationService's store, runtime, clock and ids."""

    store: ConversationStore
    runtime: SessionRuntime
    limits: InputLimits
    _clock: Clock
    _ids: IdGenerator

    async def _conversation(self, org_id: UUID, conversation_id: UUID) -> Conversation:
        found = await self.store.get_conversation(org_id, conversation_id)
        if found is None:
            raise ConversationNotFound(conversation_id)
        return found

    # -- change and delete ----------------------------------------------------------------
    async def update_conversation(
        self,
        who: Principal,
        org_id: UUID,
        conversation_id: UUID,
        *,
        title: str | None = None,
        is_archived: bool | None = None,
    ) -> Conversation:
        """Rename or (un)archive a conversation; what is None stays. A change moves its
        `updated_at` forward; nothing to change changes nothing."""
        authorize(who, org_id, Action.WRITE)
        if title is not None:
            title = check_text("title", title, self.limits.max_title_chars)
        if title is None and is_archived is None:
            return await self._conversation(org_id, conversation_id)
        updated = await self.store.update_conversation(
            org_id, conversation_id, title=title, is_archived=is_archived, at=self._clock.now()
        )
        if updated is None:
            raise ConversationNotFound(conversation_id)
        return updated

    async def delete_conversation(
        self, who: Principal, org_id: UUID, conversation_id: UUID
    ) -> None:
        """Delete a conversation and everything in it, for good.

        Its sessions are retired first: a reply running in one is cancelled (its model's
        request closed) and no session takes another message. Then its rows go, all in one
        transaction. Every later call naming it, its sessions or its messages is a 404.
        """
        authorize(who, org_id, Action.WRITE)
        await self._conversation(org_id, conversation_id)
        for session in await self.store.list_sessions(org_id, conversation_id):
            await self.runtime.retire(session)
        deleted = await self.store.delete_conversation(org_id, conversation_id)
        if deleted is None:  # another request deleted it meanwhile
            raise ConversationNotFound(conversation_id)
        # Also stops a session made while the others were retired.
        await self.runtime.forget(org_id, deleted)

    # -- feedback -------------------------------------------------------------------------
    async def set_feedback(
        self,
        who: Principal,
        org_id: UUID,
        message_id: UUID,
        *,
        rating: Rating,
        comment: str | None = None,
    ) -> Feedback:
        """Rate an assistant reply (and say why, optionally); replaces earlier feedback."""
        authorize(who, org_id, Action.WRITE)
        check_comment(comment, self.limits)  # before the lookup: a bad comment is 400, found or not
        message = await self.store.get_message(org_id, message_id)
        if message is None:
            raise MessageNotFound(message_id)
        feedback = give_feedback(
            message=message,
            rating=rating,
            comment=comment,
            at=self._clock.now(),
            previous=await self.store.get_feedback(org_id, message_id),
            limits=self.limits,
        )
        try:
            await self.store.put_feedback(feedback)
        except StorageUnavailable:
            if await self.store.get_message(org_id, message_id) is None:
                raise MessageNotFound(message_id) from None  # deleted meanwhile
            raise
        return feedback

    async def clear_feedback(self, who: Principal, org_id: UUID, message_id: UUID) -> bool:
        """Remove the feedback on a reply; False if it had none."""
        authorize(who, org_id, Action.WRITE)
        if await self.store.get_message(org_id, message_id) is None:
            raise MessageNotFound(message_id)
        return await self.store.delete_feedback(org_id, message_id)

    async def feedback_for(
        self, who: Principal, org_id: UUID, message_ids: Sequence[UUID]
    ) -> Mapping[UUID, Feedback]:
        """The feedback on those of the messages that have some."""
        authorize(who, org_id, Action.READ)
        return await self.store.feedback_for(org_id, message_ids) if message_ids else {}

    async def feedback_by_model(
        self, who: Principal, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelFeedback]:
        """Ratings of the replies created in [start, end), per model."""
        authorize(who, org_id, Action.READ)
        return await self.store.feedback_by_model(org_id, start=start, end=end)

    # -- export and import ----------------------------------------------------------------
    async def open_export(
        self, who: Principal, org_id: UUID, conversation_id: UUID | None = None
    ) -> Export:
        """One conversation (or, with None, every one of the organisation) to export; the
        checks are made here, before anything is read."""
        authorize(who, org_id, Action.READ)
        only = (
            None if conversation_id is None else await self._conversation(org_id, conversation_id)
        )
        return Export(self.store, org_id, only)

    async def import_records(
        self,
        who: Principal,
        org_id: UUID,
        records: Callable[[], Iterable[TransferRecord]],
    ) -> ImportReport:
        """Recreate exported conversations in this organisation, all or nothing.

        `records()` gives them in an export's order and must pass domain.transfer's
        ImportCheck (the HTTP edge checks each line before it calls this); it is called again
        if the store has to retry. Ids that are taken are replaced by new ones everywhere.
        """
        authorize(who, org_id, Action.ADMINISTER)
        return await self.store.import_records(
            org_id,
            lambda: (as_imported(record, org_id) for record in records()),
            new_id=self._ids.new_id,
        )


class Export:
    """What an export reads, batch by batch: memory stays the same however much it holds."""

    def __init__(self, store: ConversationStore, org_id: UUID, only: Conversation | None) -> None:
        self._store = store
        self.org_id = org_id
        self.conversation = only  # None: the whole organisation

    async def batches(self) -> AsyncIterator[Sequence[TransferRecord]]:
        """Each conversation with its sessions, then its messages (with their feedback) a
        batch at a time; conversations oldest first. A conversation deleted meanwhile ends
        early or is left out; one created meanwhile may be left out."""
        if self.conversation is not None:
            async for batch in self._conversation(self.conversation):
                yield batch
            return
        after: Conversation | None = None
        while found := await self._store.export_conversations(
            self.org_id, after=after, limit=EXPORT_BATCH
        ):
            for conversation in found:
                async for batch in self._conversation(conversation):
                    yield batch
            after = found[-1]

    async def _conversation(
        self, conversation: Conversation
    ) -> AsyncIterator[Sequence[TransferRecord]]:
        sessions = await self._store.list_sessions(self.org_id, conversation.id)
        yield (conversation, *sessions)
        cursor: int | None = None
        while True:
            batch = await self._store.export_messages(
                self.org_id, conversation.id, after=cursor, limit=EXPORT_BATCH
            )
            if batch.records:
                yield batch.records
            if batch.after is None:
                return
            cursor = batch.after
