"""One chat session's actor: the only task that changes the session while it is live.

Commands arrive in the actor's mailbox (a trio memory channel). Replies run one at a time in
the actor's own nursery, in the order their messages were accepted, so two replies of one
session never interleave. With no work for `idle_timeout` seconds the actor retires; the next
message brings the session back from storage.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from uuid import UUID

import attrs
import trio

from conversation_service.adapters.actors.commands import (
    Cancel,
    Command,
    Complete,
    Multitask,
    ReplyDone,
    Send,
    Verdict,
)
from conversation_service.adapters.actors.reply_log import ReplyLog
from conversation_service.adapters.actors.reply_writer import FlushPolicy, ReplyWriter
from conversation_service.domain.errors import RateLimited, SessionBusy, Unavailable
from conversation_service.domain.model import ChatSession, ContextScope, Message, MessageStatus
from conversation_service.domain.rules import check_can_take_message
from conversation_service.domain.session_machine import SessionInput
from conversation_service.ports.clock import Clock
from conversation_service.ports.language_model import ModelCatalog
from conversation_service.ports.storage import ConversationStore, StorageUnavailable

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class ActorSettings:
    """Tunables of every session actor."""

    idle_timeout: float = 60.0
    max_queued: int = 8  # messages waiting behind the running reply
    recent_replies: int = 16  # finished replies kept in memory for re-attaching streams
    flush: FlushPolicy = FlushPolicy()


class SessionActor:
    """The live state of one chat session, driven through its mailbox."""

    def __init__(
        self,
        *,
        session: ChatSession,
        store: ConversationStore,
        catalog: ModelCatalog,
        clock: Clock,
        settings: ActorSettings,
        on_retire: Callable[[SessionActor], None],
        on_idle: Callable[[], None] = lambda: None,
    ) -> None:
        self.session = session
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._settings = settings
        self._on_retire = on_retire
        self._on_idle = on_idle
        # Unbounded on purpose: `Send` is bounded by max_queued inside the actor, and the
        # other commands are one per request or per reply.
        self._mailbox, self._inbox = trio.open_memory_channel[Command](math.inf)
        self._queue: deque[Send] = deque()
        self._running: ReplyWriter | None = None
        self._replies: OrderedDict[UUID, ReplyLog] = OrderedDict()
        self._history: list[Message] | None = None
        self.retired = False

    @property
    def session_id(self) -> UUID:
        return self.session.id

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._queue)

    def find_reply(self, message_id: UUID) -> ReplyLog | None:
        """A running, queued or recently finished reply of this session."""
        return self._replies.get(message_id)

    def tell(self, command: Command) -> None:
        """Put a command in the mailbox; the caller awaits its verdict."""
        if self.retired:
            raise RuntimeError("session actor has retired")
        self._mailbox.send_nowait(command)

    # -- the actor's own task -------------------------------------------------------------
    async def run(self) -> None:
        """Serve the mailbox until idle for `idle_timeout` or cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    with trio.move_on_after(self._settings.idle_timeout) as idle:
                        command = await self._inbox.receive()
                    if idle.cancelled_caught:
                        if not self.busy and self._inbox.statistics().current_buffer_used == 0:
                            self._retire()
                            break
                        continue
                    self._handle(command, nursery)
        finally:
            self._retire()
            self._refuse_leftovers()

    def _handle(self, command: Command, nursery: trio.Nursery) -> None:
        match command:
            case Send():
                self._on_send(command, nursery)
            case Cancel():
                self._on_cancel(command)
            case Complete():
                self._on_complete(command, nursery)
            case ReplyDone():
                self._running = None
                self._start_next(nursery)
                if not self.busy:
                    self._on_idle()

    def _on_send(self, send: Send, nursery: trio.Nursery) -> None:
        try:
            check_can_take_message(self.session)
            if self.busy and send.multitask is Multitask.REJECT:
                raise SessionBusy(self.session.id)
            if len(self._queue) >= self._settings.max_queued:
                raise RateLimited(
                    f"chat session {self.session.id} already has "
                    f"{len(self._queue)} messages waiting",
                    retry_after=1.0,
                )
        except Exception as error:  # noqa: BLE001 - handed to the sender, not swallowed
            send.verdict.refuse(error)
            return
        self._remember(send.reply)
        if send.multitask is Multitask.INTERRUPT:
            if self._running is not None:
                self._running.cancel_scope.cancel()
            self._queue.appendleft(send)
        else:
            self._queue.append(send)
        send.verdict.accept()
        self._start_next(nursery)

    def _on_cancel(self, cancel: Cancel) -> None:
        running = self._running
        if running is not None and cancel.message_id in (None, running.reply.message_id):
            running.cancel_scope.cancel()
        for queued in list(self._queue):
            if cancel.message_id == queued.reply.message_id:
                self._queue.remove(queued)
                queued.reply.end("cancelled")
        cancel.verdict.accept()

    def _on_complete(self, complete: Complete, nursery: trio.Nursery) -> None:
        try:
            completed = self.session.apply(SessionInput.COMPLETE, self._clock.now())
        except Exception as error:  # noqa: BLE001 - handed to the sender
            complete.verdict.refuse(error)
            return
        nursery.start_soon(self._store_completion, completed, complete.verdict)

    async def _store_completion(self, completed: ChatSession, verdict: Verdict) -> None:
        try:
            await self._store.update_session(completed)
        except StorageUnavailable as error:
            verdict.refuse(error)
            return
        self.session = completed
        verdict.accept()

    def _start_next(self, nursery: trio.Nursery) -> None:
        if self._running is not None or not self._queue:
            return
        send = self._queue.popleft()
        writer = ReplyWriter(
            session=lambda: self.session,
            set_session=self._set_session,
            load_history=self._load_history,
            text=send.text,
            reply=send.reply,
            model=self._catalog.language_model(self.session.model_id),
            model_info=self._catalog.get(self.session.org_id, self.session.model_id),
            store=self._store,
            clock=self._clock,
            flush=self._settings.flush,
        )
        self._running = writer
        nursery.start_soon(self._generate, writer)

    async def _generate(self, writer: ReplyWriter) -> None:
        try:
            await writer.run()
        finally:
            self._mailbox.send_nowait(ReplyDone(reply=writer.reply))

    async def _load_history(self) -> list[Message]:
        """The messages the model is shown before the new one.

        A session's own messages are read once per actor life and then kept up to date here;
        a conversation-wide context is read afresh each turn, since other sessions add to it.
        """
        if self.session.context is ContextScope.CONVERSATION:
            everything = await self._store.conversation_messages(
                self.session.org_id, self.session.conversation_id
            )
            # Other sessions' replies still being written are not shown half-done.
            return [m for m in everything if m.status is not MessageStatus.IN_PROGRESS]
        if self._history is None:
            self._history = list(
                await self._store.session_messages(self.session.org_id, self.session.id)
            )
        return self._history

    def _set_session(self, session: ChatSession) -> None:
        self.session = session

    def _remember(self, reply: ReplyLog) -> None:
        self._replies[reply.message_id] = reply
        while len(self._replies) > self._settings.recent_replies:
            oldest = next(iter(self._replies.values()))
            if not oldest.ended:
                break
            self._replies.popitem(last=False)

    def _retire(self) -> None:
        if not self.retired:
            self.retired = True
            self._on_retire(self)

    def _refuse_leftovers(self) -> None:
        """Answer what is still queued when the actor stops, so no sender waits forever."""
        stopping = Unavailable("the service is stopping")
        while True:
            try:
                command = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if isinstance(command, Send | Cancel | Complete) and not command.verdict.decided:
                command.verdict.refuse(stopping)
        for send in self._queue:
            if not send.reply.ended:
                send.reply.fail("shutting_down", "the service is stopping")
        self._queue.clear()
