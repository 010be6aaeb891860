"""One reply of one session while its model writes it: the generation task.

The session actor begins a turn (stores the user's message and the reply, moves the session)
and ends it (stores the outcome, moves the session back); in between, the turn streams the
model into the reply's log and flushes the text written so far to storage now and then.
It changes no session: when the model is done it reports the outcome to the actor's mailbox.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

import attrs
import trio

from conversation_service.adapters.actors.commands import Command, Generated, Send
from conversation_service.adapters.actors.reply_log import ReplyLog
from conversation_service.domain.context import PromptMessage, estimated_usage
from conversation_service.domain.model import GenerationParams, Latency, Message
from conversation_service.domain.replies import INTERNAL_ERROR, ReplyOutcome
from conversation_service.ports.clock import Clock
from conversation_service.ports.language_model import LanguageModel, ModelFailure, ModelInfo
from conversation_service.ports.storage import ConversationStore, StorageUnavailable
from conversation_service.ports.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class FlushPolicy:
    """How often a reply's partial text is written while it streams."""

    interval: float = 0.5
    max_chunks: int = 64


class Turn:
    """A reply from the moment its session takes it up until its outcome is stored."""

    def __init__(
        self,
        *,
        send: Send,
        model: LanguageModel,
        info: ModelInfo,
        store: ConversationStore,
        clock: Clock,
        flush: FlushPolicy,
        news: Callable[[UUID], Awaitable[None]] | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.send = send
        self._telemetry = telemetry
        self._news = news
        self.reply: ReplyLog = send.reply
        self.model_info = info
        self._model = model
        self._store = store
        self._clock = clock
        self._flush = flush
        self.cancel_scope = trio.CancelScope()  # cancelled by `cancel`, before or after it runs
        self.assistant: Message | None = None  # the reply in progress, as it is stored
        # Set once the reply is stored (and started): the model may be asked before, but
        # its text goes into the reply only after.
        self.stored = trio.Event()
        self._started_at: float | None = None
        self._first_token_at: float | None = None
        self._unflushed = 0
        self._last_flush = 0.0
        self._now = trio.lowlevel.current_clock().current_time  # read for every chunk

    @property
    def message_id(self) -> UUID:
        return self.reply.message_id

    async def generate(
        self,
        prompt: Sequence[PromptMessage],
        params: GenerationParams,
        report: trio.MemorySendChannel[Command],
    ) -> None:
        """Stream the model into the reply, then report how it ended to the actor."""
        async with report:
            outcome = await self._run_model(prompt, params)
            report.send_nowait(Generated(turn=self, outcome=outcome))

    async def _run_model(
        self, prompt: Sequence[PromptMessage], params: GenerationParams
    ) -> ReplyOutcome:
        self._started_at = self._last_flush = trio.current_time()
        outcome: ReplyOutcome | None = None
        with self.cancel_scope:
            try:
                result = await self._model.generate(prompt, self._emit, params)
            except ModelFailure as failure:
                self._telemetry.model_failed(self.model_info, failure.code)
                log.warning(
                    "reply %s: model %s failed: %s: %s",
                    self.message_id,
                    self.model_info.name,
                    failure.code,
                    failure,
                )
                outcome = ReplyOutcome.failed(failure.code, failure.message)
            except Exception:
                # A bug in a provider, or a store call that broke in a way it should not:
                # this reply fails, its session goes on.
                log.exception(
                    "chat session %s, reply %s: generation failed",
                    self.reply.chat_session_id,
                    self.message_id,
                )
                outcome = ReplyOutcome.failed(*INTERNAL_ERROR)
            else:
                usage = result.usage or estimated_usage(prompt, self.reply.text())
                outcome = ReplyOutcome.completed(result.finish_reason, usage)
        if self.cancel_scope.cancelled_caught:
            return ReplyOutcome.cancelled()
        assert outcome is not None
        return outcome

    async def _emit(self, chunk: str) -> None:
        if not chunk:
            return
        first = self._first_token_at is None
        if first:
            if not self.stored.is_set():
                await self.stored.wait()
            self._first_token_at = trio.current_time()
            assert self._started_at is not None
            self._telemetry.first_token(self.model_info, self._first_token_at - self._started_at)
        self.reply.content(chunk)
        if first:
            # A model whose reply arrives in one burst would otherwise be parsed whole
            # before any reader runs: let the first text go out at once.
            await trio.lowlevel.checkpoint()
        self._unflushed += 1
        now = self._now()
        if (
            self._unflushed >= self._flush.max_chunks
            or now - self._last_flush >= self._flush.interval
        ):
            self._unflushed = 0
            self._last_flush = now
            assert self.assistant is not None
            partial = self.assistant.with_content(self.reply.text(), self._clock.now())
            try:
                await self._store.update_message(partial)
                if self._news is not None:  # followers on other instances read it now
                    await self._news(self.message_id)
            except StorageUnavailable as error:
                # The final write will try again; the stream goes on meanwhile.
                log.warning("reply %s: partial flush failed: %s", self.message_id, error)

    def final_message(self, outcome: ReplyOutcome) -> Message:
        """The stored form of the reply once it has ended with `outcome`."""
        assert self.assistant is not None
        return self.assistant.finished(
            content=self.reply.text(),
            status=outcome.status,
            finish_reason=outcome.finish_reason,
            usage=outcome.usage,
            at=self._clock.now(),
            error=outcome.error,
            latency=self._latency(),
        )

    def _latency(self) -> Latency | None:
        if self._started_at is None:
            return None
        now = trio.current_time()
        first = self._first_token_at
        return Latency(
            first_token_ms=None if first is None else round((first - self._started_at) * 1000),
            total_ms=round((now - self._started_at) * 1000),
        )
