"""The use cases, callable from HTTP handlers or straight from Python.

Every call names the caller (a Principal) and the organisation it acts in; the domain's
access rules decide, the ports do the rest. This is the library's front door.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import attrs

from conversation_service.adapters.actors.commands import Cancel, Complete, Multitask, Send, Verdict
from conversation_service.adapters.actors.replay import replay_stored
from conversation_service.adapters.actors.reply_log import ReplyFollower, ReplyLog
from conversation_service.adapters.actors.supervisor import SessionSupervisor
from conversation_service.domain.access import Action, authorize
from conversation_service.domain.context import check_message_fits
from conversation_service.domain.errors import (
    ConversationNotFound,
    MessageNotFound,
    SessionNotFound,
)
from conversation_service.domain.model import (
    ChatSession,
    ContextScope,
    Conversation,
    GenerationParams,
    Message,
    MessageRole,
    Page,
    Principal,
)
from conversation_service.domain.rules import (
    InputLimits,
    check_message,
    new_conversation,
    new_session,
)
from conversation_service.ports.clock import Clock, IdGenerator
from conversation_service.ports.language_model import ModelCatalog, ModelInfo
from conversation_service.ports.storage import ConversationStore, ModelUsage


@attrs.frozen(kw_only=True)
class ConversationWithSessions:
    conversation: Conversation
    sessions: tuple[ChatSession, ...]


class ConversationService:
    """Conversations, sessions and replies for the organisations of one store."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        catalog: ModelCatalog,
        supervisor: SessionSupervisor,
        clock: Clock,
        ids: IdGenerator,
        limits: InputLimits | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.supervisor = supervisor
        self._clock = clock
        self._ids = ids
        self.limits = limits or InputLimits()

    # -- conversations --------------------------------------------------------------------
    async def create_conversation(
        self, who: Principal, org_id: UUID, *, title: str, is_archived: bool = False
    ) -> Conversation:
        authorize(who, org_id, Action.WRITE)
        conversation = new_conversation(
            id=self._ids.new_id(),
            org_id=org_id,
            title=title,
            is_archived=is_archived,
            at=self._clock.now(),
            limits=self.limits,
        )
        await self.store.add_conversation(conversation)
        return conversation

    async def list_conversations(
        self,
        who: Principal,
        org_id: UUID,
        *,
        is_archived: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[Conversation]:
        authorize(who, org_id, Action.READ)
        return await self.store.list_conversations(
            org_id, is_archived=is_archived, limit=limit, offset=offset
        )

    async def get_conversation(
        self, who: Principal, org_id: UUID, conversation_id: UUID
    ) -> Conversation:
        authorize(who, org_id, Action.READ)
        conversation = await self.store.get_conversation(org_id, conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        return conversation

    async def get_with_sessions(
        self, who: Principal, org_id: UUID, conversation_id: UUID
    ) -> ConversationWithSessions:
        conversation = await self.get_conversation(who, org_id, conversation_id)
        sessions = await self.store.list_sessions(org_id, conversation_id)
        return ConversationWithSessions(
            conversation=conversation, sessions=tuple(self._live(s) for s in sessions)
        )

    async def list_messages(
        self,
        who: Principal,
        org_id: UUID,
        conversation_id: UUID,
        *,
        limit: int = 20,
        offset: int = 0,
    ) -> Page[Message]:
        await self.get_conversation(who, org_id, conversation_id)
        return await self.store.list_messages(org_id, conversation_id, limit=limit, offset=offset)

    # -- sessions -------------------------------------------------------------------------
    def list_models(self, who: Principal, org_id: UUID) -> Sequence[ModelInfo]:
        authorize(who, org_id, Action.READ)
        return self.catalog.models_for(org_id)

    async def create_session(
        self,
        who: Principal,
        org_id: UUID,
        *,
        conversation_id: UUID,
        model_id: UUID,
        system_prompt: str | None = None,
        params: GenerationParams | None = None,
        context: ContextScope = ContextScope.SESSION,
    ) -> ChatSession:
        authorize(who, org_id, Action.WRITE)
        model = self.catalog.get(org_id, model_id)  # ModelNotFound before anything is written
        conversation = await self.get_conversation(who, org_id, conversation_id)
        session = new_session(
            id=self._ids.new_id(),
            conversation=conversation,
            model_id=model_id,
            at=self._clock.now(),
            system_prompt=system_prompt,
            params=params,
            context=context,
            max_output_tokens=model.max_output_tokens,
            limits=self.limits,
        )
        await self.store.add_session(session)
        return session

    async def get_session(self, who: Principal, org_id: UUID, session_id: UUID) -> ChatSession:
        authorize(who, org_id, Action.READ)
        session = await self.store.get_session(org_id, session_id)
        if session is None:
            raise SessionNotFound(session_id)
        return self._live(session)

    async def complete_session(self, who: Principal, org_id: UUID, session_id: UUID) -> ChatSession:
        authorize(who, org_id, Action.WRITE)
        session = await self.get_session(who, org_id, session_id)
        actor = self.supervisor.actor_for(session)
        verdict = Verdict()
        actor.tell(Complete(verdict=verdict))
        await verdict.wait()
        return actor.session

    # -- replies --------------------------------------------------------------------------
    async def send_message(
        self,
        who: Principal,
        org_id: UUID,
        session_id: UUID,
        text: str,
        *,
        multitask: Multitask = Multitask.ENQUEUE,
    ) -> ReplyLog:
        """Queue the message on the session's actor; the reply's events appear in the log.

        Raises before anything is stored when the session cannot take the message.
        """
        authorize(who, org_id, Action.WRITE)
        text = check_message(text, self.limits)
        session = await self.get_session(who, org_id, session_id)
        model = self.catalog.get(org_id, session.model_id)
        check_message_fits(
            session,
            text,
            model_name=model.name,
            context_window=model.context_window,
            max_output_tokens=model.max_output_tokens,
        )
        reply = ReplyLog(
            message_id=self._ids.new_id(),
            user_message_id=self._ids.new_id(),
            chat_session_id=session.id,
        )
        verdict = Verdict()
        self.supervisor.actor_for(session).tell(
            Send(text=text, multitask=multitask, reply=reply, verdict=verdict)
        )
        await verdict.wait()
        return reply

    async def cancel(
        self, who: Principal, org_id: UUID, session_id: UUID, message_id: UUID | None = None
    ) -> None:
        """Stop the session's running reply (or the one named); harmless when none runs."""
        authorize(who, org_id, Action.WRITE)
        await self.get_session(who, org_id, session_id)
        actor = self.supervisor.find(session_id)
        if actor is None:
            return
        verdict = Verdict()
        actor.tell(Cancel(message_id=message_id, verdict=verdict))
        await verdict.wait()

    async def attach(
        self,
        who: Principal,
        org_id: UUID,
        session_id: UUID,
        message_id: UUID,
        *,
        after: int | None = None,
    ) -> ReplyFollower:
        """Follow a reply, running or finished, from just after event id `after`."""
        await self.get_session(who, org_id, session_id)
        actor = self.supervisor.find(session_id)
        live = actor.find_reply(message_id) if actor is not None else None
        if live is not None:
            return live.follow(after)
        message = await self.store.get_message(org_id, message_id)
        if (
            message is None
            or message.chat_session_id != session_id
            or message.role is not MessageRole.ASSISTANT
        ):
            raise MessageNotFound(message_id)
        history = await self.store.session_messages(org_id, session_id)
        user_message_id = None
        for earlier, current in zip(history, history[1:], strict=False):
            if current.id == message_id and earlier.role is MessageRole.USER:
                user_message_id = earlier.id
        return replay_stored(message, user_message_id=user_message_id, after=after).follow(after)

    async def usage(
        self, who: Principal, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelUsage]:
        """Replies and tokens per model for replies created in [start, end)."""
        authorize(who, org_id, Action.READ)
        return await self.store.usage_by_model(org_id, start=start, end=end)

    def _live(self, session: ChatSession) -> ChatSession:
        actor = self.supervisor.find(session.id)
        return actor.session if actor is not None else session
