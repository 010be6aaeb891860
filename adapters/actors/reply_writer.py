"""Runs one reply from start to end: store the turn, stream the model, store the outcome.

The writer runs inside its session actor's nursery. Whatever happens (the reply completes,
the model fails, a user cancels, the service shuts down) the assistant message ends up stored
with the text written so far and an honest status, and every follower of the reply sees `end`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs
import trio

from conversation_service.adapters.actors.reply_log import ReplyLog
from conversation_service.domain.context import (
    PromptPlan,
    estimated_usage,
    plan_prompt,
    reserve_for_reply,
)
from conversation_service.domain.model import ChatSession, Latency, Message, MessageStatus, Usage
from conversation_service.domain.rules import assistant_message, user_message
from conversation_service.domain.session_machine import SessionInput
from conversation_service.ports.clock import Clock
from conversation_service.ports.language_model import LanguageModel, ModelFailure, ModelInfo
from conversation_service.ports.storage import ConversationStore, StorageUnavailable

log = logging.getLogger(__name__)

# Persisting the final state must finish even while the service is being cancelled, but
# must not hang shutdown on a dead store.
FINAL_WRITE_DEADLINE = 5.0


@attrs.frozen(kw_only=True)
class FlushPolicy:
    """How often a reply's partial text is written while it streams."""

    interval: float = 0.5
    max_chunks: int = 64


@attrs.define(kw_only=True)
class _Outcome:
    status: MessageStatus = MessageStatus.INCOMPLETE
    finish_reason: str = "interrupted"
    usage: Usage | None = None
    error: tuple[str, str] | None = ("shutting_down", "the service is stopping")


class ReplyWriter:
    """One reply of one session; `run` is awaited by the actor's generation task."""

    def __init__(
        self,
        *,
        session: Callable[[], ChatSession],
        set_session: Callable[[ChatSession], None],
        load_history: Callable[[], Awaitable[list[Message]]],
        text: str,
        reply: ReplyLog,
        model: LanguageModel,
        model_info: ModelInfo,
        store: ConversationStore,
        clock: Clock,
        flush: FlushPolicy,
    ) -> None:
        self._session = session
        self._set_session = set_session
        self._load_history = load_history
        self._history: list[Message] = []
        self._text = text
        self.reply = reply
        self._model = model
        self._model_info = model_info
        self._plan: PromptPlan | None = None
        self._started_at: float | None = None
        self._first_token_at: float | None = None
        self._store = store
        self._clock = clock
        self._flush = flush
        self._parts: list[str] = []
        self._unflushed = 0
        self._last_flush = 0.0
        self.cancel_scope = trio.CancelScope()
        self._assistant: Message | None = None

    async def run(self) -> None:
        """Store the turn, then stream; returns when the reply has ended, however it ended."""
        if not await self._begin():
            return
        outcome = _Outcome()
        try:
            outcome = await self._generate()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_WRITE_DEADLINE):
                await self._finish(outcome)

    async def _begin(self) -> bool:
        try:
            self._history = await self._load_history()
        except StorageUnavailable as error:
            log.warning("reply %s: history not loaded: %s", self.reply.message_id, error)
            self.reply.fail("storage_unavailable", "the session could not be loaded; try again")
            return False
        session = self._session()
        at = self._clock.now()
        # Only a reply replayed from storage may lack its user message's id; a live one has it.
        assert self.reply.user_message_id is not None
        user = user_message(id=self.reply.user_message_id, session=session, text=self._text, at=at)
        assistant = assistant_message(id=self.reply.message_id, session=session, at=at)
        responding = session.apply(SessionInput.SEND, at)
        try:
            await self._store.add_message(user)
            await self._store.add_message(assistant)
            await self._store.update_session(responding)
        except StorageUnavailable as error:
            log.warning("reply %s not started: %s", self.reply.message_id, error)
            self.reply.fail("storage_unavailable", "the message could not be stored; try again")
            return False
        self._set_session(responding)
        self._history.append(user)
        self._assistant = assistant
        self._plan = plan_prompt(
            system_prompt=session.system_prompt,
            history=self._history,
            context_window=self._model_info.context_window,
            reserve_for_reply=reserve_for_reply(session, self._model_info.max_output_tokens),
        )
        self.reply.start(session.model_id, included=self._plan.included, trimmed=self._plan.trimmed)
        return True

    async def _generate(self) -> _Outcome:
        assert self._plan is not None
        prompt = self._plan.messages
        self._started_at = self._last_flush = trio.current_time()
        outcome: _Outcome | None = None
        with self.cancel_scope:
            try:
                result = await self._model.generate(prompt, self._emit, self._session().params)
            except ModelFailure as failure:
                outcome = _Outcome(
                    status=MessageStatus.FAILED,
                    finish_reason="error",
                    error=(failure.code, failure.message),
                )
            except Exception:
                log.exception("reply %s: the model raised", self.reply.message_id)
                outcome = _Outcome(
                    status=MessageStatus.FAILED,
                    finish_reason="error",
                    error=("internal_error", "the reply failed unexpectedly"),
                )
            else:
                outcome = _Outcome(
                    status=MessageStatus.COMPLETED,
                    finish_reason=result.finish_reason,
                    usage=result.usage or estimated_usage(prompt, "".join(self._parts)),
                    error=None,
                )
        if self.cancel_scope.cancelled_caught:
            return _Outcome(status=MessageStatus.CANCELLED, finish_reason="cancelled", error=None)
        assert outcome is not None
        return outcome

    async def _emit(self, chunk: str) -> None:
        if not chunk:
            return
        if self._first_token_at is None:
            self._first_token_at = trio.current_time()
        self._parts.append(chunk)
        self.reply.content(chunk)
        self._unflushed += 1
        now = trio.current_time()
        if (
            self._unflushed >= self._flush.max_chunks
            or now - self._last_flush >= self._flush.interval
        ):
            self._unflushed = 0
            self._last_flush = now
            assert self._assistant is not None
            partial = self._assistant.with_content("".join(self._parts), self._clock.now())
            try:
                await self._store.update_message(partial)
            except StorageUnavailable as error:
                # The final write will try again; the stream goes on meanwhile.
                log.warning("reply %s: partial flush failed: %s", self.reply.message_id, error)

    async def _finish(self, outcome: _Outcome) -> None:
        assert self._assistant is not None
        at = self._clock.now()
        final = self._assistant.finished(
            content="".join(self._parts),
            status=outcome.status,
            finish_reason=outcome.finish_reason,
            usage=outcome.usage,
            at=at,
            error=outcome.error,
            latency=self._latency(),
        )
        idle = self._session().apply(SessionInput.FINISH, at)
        self._set_session(idle)
        self._history.append(final)
        try:
            await self._store.update_message(final)
            await self._store.update_session(idle)
        except StorageUnavailable as error:
            log.error("reply %s: final state not stored: %s", self.reply.message_id, error)
            if outcome.error is None:
                outcome.error = ("storage_unavailable", "the reply could not be stored")
        if outcome.error is not None:
            self.reply.error(*outcome.error)
        finish_reason = outcome.finish_reason if outcome.error is None else "error"
        self.reply.end(finish_reason, outcome.usage)

    def _latency(self) -> Latency | None:
        if self._started_at is None:
            return None
        now = trio.current_time()
        first = self._first_token_at
        return Latency(
            first_token_ms=None if first is None else round((first - self._started_at) * 1000),
            total_ms=round((now - self._started_at) * 1000),
        )
