"""The use cases, callable from HTTP handlers or straight from Python.

Every call names the caller (a Principal) and the organisation it acts in; the domain's
access rules decide, the ports do the rest: storage, the model catalog, and the session
runtime that owns every live session. This is the library's front door.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import attrs

from conversation_service.domain import branches
from conversation_service.domain.access import Action, authorize
from conversation_service.domain.branches import Edit, ListedMessage, NewQuestion, Regenerate
from conversation_service.domain.context import check_message_fits
from conversation_service.domain.errors import (
    ConversationNotFound,
    MessageNotFound,
    ModelNotFound,
    ModelUnavailable,
    SessionNotFound,
)
from conversation_service.domain.model import (
    ChatSession,
    ContextScope,
    Conversation,
    GenerationParams,
    MessageRole,
    Page,
    Principal,
)
from conversation_service.domain.replies import Multitask, check_resume, stored_reply_events
from conversation_service.domain.rules import (
    InputLimits,
    check_can_take_message,
    check_message,
    new_conversation,
    new_session,
)
from conversation_service.ports.clock import Clock, IdGenerator
from conversation_service.ports.language_model import ModelCatalog, ModelInfo
from conversation_service.ports.session_runtime import LiveReply, ReplyStream, SessionRuntime
from conversation_service.ports.storage import ConversationStore, ModelUsage
from conversation_service.service_layer.keeping import KeepingUseCases
from conversation_service.service_layer.search import SearchPage, search_conversations
from conversation_service.service_layer.stored_reply import StoredReplyStream


@attrs.frozen(kw_only=True)
class ConversationWithSessions:
    conversation: Conversation
    sessions: tuple[ChatSession, ...]


class ConversationService(KeepingUseCases):
    """Conversations, sessions and replies for the organisations of one store."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        catalog: ModelCatalog,
        runtime: SessionRuntime,
        clock: Clock,
        ids: IdGenerator,
        limits: InputLimits | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.runtime = runtime
        self._clock = clock
        self._ids = ids
        self.limits = limits or InputLimits()

    # -- conversations --------------------------------------------------------------------
    async def create_conversation(
        self, who: Principal, org_id: UUID, *, title: str | None = None, is_archived: bool = False
    ) -> Conversation:
        """A new conversation; without a title, it gets one after its first reply."""
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
        leaf_id: UUID | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> Page[ListedMessage]:
        """The current branch of each of the conversation's sessions, oldest first, each
        message with the alternatives at its place; with `leaf_id`, that message's session
        shows the branch through it instead (down to it, then its newest children)."""
        await self.get_conversation(who, org_id, conversation_id)
        through = None
        if leaf_id is not None:
            through = await self.store.get_message(org_id, leaf_id)
            if through is None or through.conversation_id != conversation_id:
                raise MessageNotFound(leaf_id)
        return await self.store.list_branch(
            org_id, conversation_id, through=through, limit=limit, offset=offset
        )

    async def search(
        self,
        who: Principal,
        org_id: UUID,
        text: str | None,
        *,
        is_archived: bool | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchPage:
        """Conversations whose title or messages hold every term of `text`, best first, each
        with its matching messages and a snippet (domain/search.py has the query's rules)."""
        authorize(who, org_id, Action.READ)
        return await search_conversations(
            self.store, org_id, text, is_archived=is_archived, limit=limit, offset=offset
        )

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
        # A live session's state is the runtime's (and newer than storage's): no read needed.
        live = self.runtime.live_session(session_id)
        if live is not None and live.org_id == org_id:
            return live
        session = await self.store.get_session(org_id, session_id)
        if session is None:
            raise SessionNotFound(session_id)
        return self._live(session)

    async def complete_session(self, who: Principal, org_id: UUID, session_id: UUID) -> ChatSession:
        """Close the session for new messages; a reply it is writing is stopped (cancelled)."""
        authorize(who, org_id, Action.WRITE)
        session = await self.get_session(who, org_id, session_id)
        return await self.runtime.complete(session)

    # -- replies --------------------------------------------------------------------------
    async def send_message(
        self,
        who: Principal,
        org_id: UUID,
        session_id: UUID,
        text: str,
        *,
        multitask: Multitask = Multitask.ENQUEUE,
    ) -> LiveReply:
        """Hand the message to the session; the reply's events appear on the result.

        Raises before anything is stored when the session cannot take the message.
        """
        authorize(who, org_id, Action.WRITE)
        text = check_message(text, self.limits)
        session = await self.get_session(who, org_id, session_id)
        check_can_take_message(session)
        self._check_fits(session, text, "message")
        return await self.runtime.send(
            session,
            NewQuestion(text=text),
            multitask=multitask,
            message_id=self._ids.new_id(),
            user_message_id=self._ids.new_id(),
        )

    async def regenerate(
        self,
        who: Principal,
        org_id: UUID,
        session_id: UUID,
        reply_id: UUID | None = None,
        *,
        multitask: Multitask = Multitask.ENQUEUE,
    ) -> LiveReply:
        """A new reply to the user message `reply_id` answered (None: the session's head
        reply), beside it; the session's current branch moves to it. Streamed like a reply
        to send_message; the reply must be on the current branch and finished."""
        authorize(who, org_id, Action.WRITE)
        session = await self.get_session(who, org_id, session_id)
        if reply_id is not None:
            target = await self.store.get_message(org_id, reply_id)
            branches.check_reply_to_regenerate(
                session, branches.check_in_session(session, target, reply_id)
            )
        check_can_take_message(session)
        self._session_model(session)
        return await self.runtime.send(
            session,
            Regenerate(reply_id=reply_id),
            multitask=multitask,
            message_id=self._ids.new_id(),
            user_message_id=None,
        )

    async def edit_message(
        self,
        who: Principal,
        org_id: UUID,
        session_id: UUID,
        message_id: UUID,
        text: str,
        *,
        multitask: Multitask = Multitask.ENQUEUE,
    ) -> LiveReply:
        """A new version of the user message `message_id` (beside it: the first stays),
        answered anew; the session's current branch moves to it. InvalidField names
        `content` for a text send_message would refuse as `message`."""
        authorize(who, org_id, Action.WRITE)
        text = check_message(text, self.limits, field="content")
        session = await self.get_session(who, org_id, session_id)
        target = await self.store.get_message(org_id, message_id)
        branches.check_message_to_edit(
            session, branches.check_in_session(session, target, message_id)
        )
        check_can_take_message(session)
        self._check_fits(session, text, "content")
        return await self.runtime.send(
            session,
            Edit(message_id=message_id, text=text),
            multitask=multitask,
            message_id=self._ids.new_id(),
            user_message_id=self._ids.new_id(),
        )

    async def select_branch(
        self, who: Principal, org_id: UUID, session_id: UUID, message_id: UUID
    ) -> ChatSession:
        """Make the branch through `message_id` the session's current one (its head the
        newest leaf below the message); the session as it is then."""
        authorize(who, org_id, Action.WRITE)
        session = await self.get_session(who, org_id, session_id)
        branches.check_in_session(session, await self.store.get_message(org_id, message_id),
                                  message_id)  # fmt: skip
        return await self.runtime.select_branch(session, message_id)

    async def cancel(
        self, who: Principal, org_id: UUID, session_id: UUID, message_id: UUID | None = None
    ) -> bool:
        """Stop the session's running reply (or the one named, running or waiting), keeping
        what was written. True if one was stopped; harmless (False) when none runs."""
        authorize(who, org_id, Action.WRITE)
        session = await self.get_session(who, org_id, session_id)
        return await self.runtime.cancel(session, message_id)

    async def attach(
        self,
        who: Principal,
        org_id: UUID,
        session_id: UUID,
        message_id: UUID,
        *,
        after: int | None = None,
    ) -> ReplyStream | None:
        """Follow a reply, running or finished, from just after event id `after`.

        None when the reply has ended and `after` is its last event (nothing follows);
        ResumedPastEnd when `after` is beyond it.
        """
        session = await self.get_session(who, org_id, session_id)
        live = await self.runtime.find_reply(session, message_id)
        if live is not None:
            last = live.last_event_id
            if last is not None and not check_resume(after, last):
                return None
            return live.follow(after)
        message = await self.store.get_message(org_id, message_id)
        if (
            message is None
            or message.chat_session_id != session_id
            or message.role is not MessageRole.ASSISTANT
        ):
            raise MessageNotFound(message_id)
        # A reply follows the user message it answers.
        events = stored_reply_events(message, user_message_id=message.parent_id, after=after)
        return None if events is None else StoredReplyStream(events)

    async def usage(
        self, who: Principal, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelUsage]:
        """Replies and tokens per model for replies created in [start, end)."""
        authorize(who, org_id, Action.READ)
        return await self.store.usage_by_model(org_id, start=start, end=end)

    def _live(self, session: ChatSession) -> ChatSession:
        return self.runtime.live_session(session.id) or session

    def _check_fits(self, session: ChatSession, text: str, field: str) -> None:
        """InvalidField on `field` for a user message the session's model cannot read."""
        model = self._session_model(session)
        check_message_fits(
            session,
            text,
            model_name=model.name,
            context_window=model.context_window,
            max_output_tokens=model.max_output_tokens,
            field=field,
        )

    def _session_model(self, session: ChatSession) -> ModelInfo:
        try:
            return self.catalog.get(session.org_id, session.model_id)
        except ModelNotFound:
            raise ModelUnavailable(session.model_id) from None
