"""One chat session's actor: the only code that changes the session while it is live.

Commands arrive in the actor's mailbox (a trio memory channel) and are handled one at a time.
Each session transition is applied by the actor's loop in one synchronous step, before the
store write that records it starts; the loop awaits that write before the next command, so no
command ever sees a state that is not on its way to storage. Replies run one at a time in the
actor's own nursery, in the order their messages were accepted; a reply's generation task
reports back through the mailbox and never touches the session.

When a state the actor applied cannot be stored, or its own code fails, the actor ends its
work honestly (every reply it holds ends with `error` and `end`, every waiting sender gets an
answer) and retires; the next command rebuilds the session from storage. With no work for
`idle_timeout` seconds it retires too.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from uuid import UUID

import attrs
import trio

from conversation_service.adapters.actors.commands import (
    Cancel,
    Command,
    Complete,
    Fork,
    Generated,
    Retire,
    SelectBranch,
    Send,
    Verdict,
)
from conversation_service.adapters.actors.reply_log import ReplyLog
from conversation_service.adapters.actors.shown_history import ShownHistory
from conversation_service.adapters.actors.turn import FlushPolicy, Turn
from conversation_service.domain import branches
from conversation_service.domain.branches import Edit, NewQuestion, Regenerate, TurnStart
from conversation_service.domain.context import (
    PromptPlan,
    history_limit,
    plan_prompt,
    reserve_for_reply,
)
from conversation_service.domain.errors import (
    DomainError,
    MessageNotFound,
    ModelNotFound,
    ModelUnavailable,
    NothingToRegenerate,
    RateLimited,
    SessionBusy,
    SessionCompleted,
    SessionNotFound,
    ShuttingDown,
    Unavailable,
)
from conversation_service.domain.model import ChatSession, ContextScope, Message, MessageRole
from conversation_service.domain.replies import (
    INTERNAL_ERROR,
    SHUTTING_DOWN,
    Multitask,
    ReplyOutcome,
)
from conversation_service.domain.rules import check_can_take_message
from conversation_service.domain.session_machine import SessionInput, SessionState
from conversation_service.ports.clock import Clock
from conversation_service.ports.language_model import LanguageModel, ModelCatalog, ModelInfo
from conversation_service.ports.storage import (
    ConversationStore,
    History,
    StaleVersion,
    StorageUnavailable,
)
from conversation_service.ports.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)

# Storing what the actor holds when it stops must finish even while the service is being
# cancelled, but must not hang shutdown on a dead store.
FINAL_WRITE_DEADLINE = 5.0

UNSTORED = ("storage_unavailable", "the reply could not be stored; try again")


@attrs.frozen(kw_only=True)
class ActorSettings:
    """Tunables of every session actor."""

    idle_timeout: float = 60.0
    max_queued: int = 8  # messages waiting behind the running reply
    max_replies_per_org: int = 64  # replies running or waiting, over all an org's sessions
    history_keep: float = 10.0  # idle seconds before a session forgets its last prompt
    flush: FlushPolicy = FlushPolicy()


class _OutOfStep(Exception):
    """A state the actor applied was not stored: memory and storage may now disagree."""


@attrs.frozen
class _Ending:
    """How the actor's remaining work ends when it stops early."""

    running: ReplyOutcome  # the reply being written
    waiting: ReplyOutcome  # replies not begun
    refusal: Exception  # commands not answered yet


class SessionActor:
    """The live state of one chat session, driven through its mailbox."""

    def __init__(
        self,
        *,
        org_id: UUID,
        session_id: UUID,
        store: ConversationStore,
        catalog: ModelCatalog,
        clock: Clock,
        settings: ActorSettings,
        predecessor: SessionActor | None = None,
        on_idle: Callable[[], None] = lambda: None,
        on_reply_stored: Callable[[Message], None] = lambda _: None,
        news: Callable[[UUID], Awaitable[None]] | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.org_id = org_id
        self._telemetry = telemetry
        self._news = news
        self.session_id = session_id
        self.session: ChatSession | None = None  # None until loaded from storage
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._settings = settings
        self._predecessor = predecessor
        self._on_idle = on_idle
        self._on_reply_stored = on_reply_stored  # told of each finished reply once stored
        # Unbounded on purpose: `Send` is bounded by max_queued inside the actor, and the
        # other commands are one per request or per reply.
        self._mailbox, self._inbox = trio.open_memory_channel[Command](math.inf)
        self._queue: deque[Send] = deque()
        self._running: Turn | None = None
        self._replies: dict[UUID, ReplyLog] = {}  # running and waiting
        self._completing: list[Verdict[ChatSession]] = []
        self._retiring: list[Verdict[None]] = []
        self._ending: _Ending | None = None
        self._shown = ShownHistory()
        self.retired = False
        self.finished = trio.Event()

    @property
    def busy(self) -> bool:
        return (
            self._running is not None
            or bool(self._queue)
            or bool(self._completing)
            or bool(self._retiring)
        )

    @property
    def queued(self) -> int:
        """Messages waiting for the running reply to end."""
        return len(self._queue)

    def find_reply(self, message_id: UUID) -> ReplyLog | None:
        """A running or waiting reply of this session."""
        return self._replies.get(message_id)

    def tell(self, command: Command) -> None:
        """Put a command in the mailbox; the caller awaits its verdict."""
        if self.retired:
            raise RuntimeError("session actor has retired")
        self._mailbox.send_nowait(command)

    # -- the actor's own task -------------------------------------------------------------
    async def run(self) -> None:
        """Serve the mailbox until idle for `idle_timeout`, out of step, or cancelled.

        Whatever ends it, every reply it holds has ended and every command has an answer
        when it returns. An unexpected error is re-raised, for the supervisor to log.
        """
        failure: BaseException | None = None
        try:
            if self._predecessor is not None:
                await self._predecessor.finished.wait()  # one actor per session at a time
                self._predecessor = None
            if await self._load():
                async with trio.open_nursery() as nursery:
                    await self._serve(nursery)
        except BaseException as error:
            failure = error
            raise
        finally:
            self.retired = True
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_WRITE_DEADLINE):
                await self._wind_down(failure)
            self.finished.set()

    async def _load(self) -> bool:
        """The session as stored; a session left RESPONDING by a lost actor is recovered."""
        try:
            session = await self._store.get_session(self.org_id, self.session_id)
            if session is None:
                self._stop_with(SessionNotFound(self.session_id))
                return False
            if session.status is SessionState.RESPONDING:
                session = session.apply(SessionInput.RECOVER, self._clock.now())
                await self._store.recover_session(session)
                log.warning("chat session %s: recovered an interrupted reply", self.session_id)
        except (StorageUnavailable, StaleVersion) as error:
            log.warning("chat session %s not loaded: %s", self.session_id, error)
            self._stop_with(StorageUnavailable("the chat session could not be loaded"))
            return False
        self.session = session
        return True

    async def _serve(self, nursery: trio.Nursery) -> None:
        settings = self._settings
        idle_since = trio.current_time()
        while True:
            keeping = self._shown.known and settings.history_keep < settings.idle_timeout
            wait = settings.history_keep if keeping else settings.idle_timeout
            with trio.move_on_at(idle_since + wait) as idle:
                command = await self._inbox.receive()
            if idle.cancelled_caught:
                if self.busy or self._inbox.statistics().current_buffer_used:
                    idle_since = trio.current_time()
                elif keeping:
                    self._shown.forget()  # an idle session holds no history
                else:
                    self.retired = True  # synchronously: nothing can be told to it from now
                    return
                continue
            idle_since = trio.current_time()
            try:
                await self._handle(command, nursery)
                if self._retiring and self._running is None:
                    self._retire_now()
                    return
                if not self.busy:
                    self._on_idle()
            except _OutOfStep as error:
                log.warning(
                    "chat session %s: state not stored, retiring: %s", self.session_id, error
                )
                refusal = StorageUnavailable("the chat session could not be stored; try again")
                self._ending = _Ending(
                    ReplyOutcome.failed(*UNSTORED), ReplyOutcome.failed(*UNSTORED), refusal
                )
                nursery.cancel_scope.cancel()
                return

    async def _handle(self, command: Command, nursery: trio.Nursery) -> None:
        match command:
            case Send():
                await self._on_send(command, nursery)
            case Cancel():
                self._on_cancel(command)
            case Complete():
                await self._on_complete(command)
            case Retire():
                self._on_retire(command)
            case SelectBranch():
                await self._on_select(command)
            case Generated():
                await self._on_generated(command, nursery)

    @property
    def _session(self) -> ChatSession:
        assert self.session is not None  # loaded before the first command is handled
        return self.session

    def _model_for(self, session: ChatSession) -> tuple[ModelInfo, LanguageModel]:
        try:
            info = self._catalog.get(session.org_id, session.model_id)
            return info, self._catalog.language_model(session.model_id)
        except ModelNotFound:
            raise ModelUnavailable(session.model_id) from None

    async def _on_send(self, send: Send, nursery: trio.Nursery) -> None:
        session = self._session
        try:
            if self._retiring:
                raise SessionNotFound(session.id)
            check_can_take_message(session)
            if self._completing:
                raise SessionCompleted(session.id)
            if self.busy and send.multitask is Multitask.REJECT:
                raise SessionBusy(session.id)
            if len(self._queue) >= self._settings.max_queued:
                raise RateLimited(
                    f"chat session {session.id} already has {len(self._queue)} messages waiting",
                    retry_after=1.0,
                )
            self._model_for(session)
            if not self.busy and not isinstance(send.request, NewQuestion):
                # Begun at once: what it starts from is checked now, so that a refusal is
                # the request's answer (a queued one is checked when its turn comes).
                send.fork = await self._fork_of(send.request, session)
                self._turn_start(send, session, send.fork)
        except DomainError as error:
            send.verdict.refuse(error)
            send.reply.abandon()
            return
        self._replies[send.reply.message_id] = send.reply
        if send.multitask is Multitask.INTERRUPT:
            if self._running is not None:
                self._running.cancel_scope.cancel()
            self._queue.appendleft(send)
        else:
            self._queue.append(send)
        send.verdict.accept(None)
        await self._start_next(nursery)

    def _on_cancel(self, cancel: Cancel) -> None:
        stopped = False
        running = self._running
        if running is not None and cancel.message_id in (None, running.message_id):
            stopped = not running.cancel_scope.cancel_called
            running.cancel_scope.cancel()
        for waiting in list(self._queue):
            if cancel.message_id == waiting.reply.message_id:
                self._queue.remove(waiting)
                self._drop(waiting, ReplyOutcome.cancelled())
                stopped = True
        cancel.verdict.accept(stopped)

    async def _on_complete(self, complete: Complete) -> None:
        self._completing.append(complete.verdict)
        # What runs is stopped (stored as cancelled) and what waits is dropped; the session
        # completes once the running reply has ended.
        while self._queue:
            self._drop(self._queue.popleft(), ReplyOutcome.cancelled())
        if self._running is not None:
            self._running.cancel_scope.cancel()
            return
        await self._complete_now()

    def _on_retire(self, retire: Retire) -> None:
        self._retiring.append(retire.verdict)
        while self._queue:
            self._drop(self._queue.popleft(), ReplyOutcome.cancelled())
        if self._running is not None:
            self._running.cancel_scope.cancel()  # stored as cancelled once it has ended

    def _retire_now(self) -> None:
        """End the actor: nothing runs any more. Commands still in the mailbox are refused
        as for a session that no longer exists."""
        self.retired = True  # synchronously: nothing can be told to it from now
        cancelled = ReplyOutcome.cancelled()
        self._ending = _Ending(cancelled, cancelled, SessionNotFound(self.session_id))

    async def _complete_now(self) -> None:
        session = self._session
        if session.status is not SessionState.COMPLETED:
            session = session.apply(SessionInput.COMPLETE, self._clock.now())
            self.session = session
            try:
                await self._store.update_session(session)
            except (StorageUnavailable, StaleVersion) as error:
                for verdict in self._completing:
                    verdict.refuse(StorageUnavailable("the session could not be completed"))
                self._completing.clear()
                raise _OutOfStep(error) from error
        for verdict in self._completing:
            verdict.accept(session)
        self._completing.clear()

    async def _start_next(self, nursery: trio.Nursery) -> None:
        while self._running is None and self._queue:
            send = self._queue.popleft()
            session = self._session
            try:
                info, model = self._model_for(session)
            except ModelUnavailable as error:
                self._drop(send, ReplyOutcome.failed(error.code, error.message))
                continue
            turn = Turn(
                send=send,
                model=model,
                info=info,
                store=self._store,
                clock=self._clock,
                flush=self._settings.flush,
                news=self._news,
                telemetry=self._telemetry,
            )
            await self._begin(turn, session, nursery)

    async def _begin(self, turn: Turn, session: ChatSession, nursery: trio.Nursery) -> None:
        send = turn.send
        try:
            fork = send.fork or await self._fork_of(send.request, session)
            start = self._turn_start(send, session, fork)
        except DomainError as error:  # the branch moved since it was accepted, or storage
            self._drop(send, ReplyOutcome.failed(error.code, error.message))
            return
        self.session = start.session
        self._running = turn
        question = start.question
        # A session-scoped context known from the last turn is not read again, as long as
        # the new question continues the branch it was the history of.
        known = (
            self._shown.follows(question.parent_id)
            and start.asked
            and session.context is ContextScope.SESSION
        )
        limit = 0 if known else history_limit(
            session,
            context_window=turn.model_info.context_window,
            max_output_tokens=turn.model_info.max_output_tokens,
        )  # fmt: skip
        user = question if start.asked else None
        turn.assistant = start.reply
        if known:
            # The prompt is known before anything is stored: the model is asked now, while
            # the messages are stored, and its text waits for them (Turn.stored). The
            # `start` event, and so any text, still comes only once they are stored.
            shown = self._shown.history()
            candidates, plan = self._plan(turn, session, shown, question)
            self._generate(turn, plan, session, nursery)
        try:
            read = await self._store.begin_reply(
                user, start.reply, start.session, history_limit=limit
            )
        except (StorageUnavailable, StaleVersion) as error:
            # The actor retires (the early model call, if any, is cancelled with it).
            self._running = None
            self._drop(turn.send, ReplyOutcome.failed(*UNSTORED))
            raise _OutOfStep(error) from error
        if not known:
            shown = read
            candidates, plan = self._plan(turn, session, shown, question)
        if session.context is ContextScope.SESSION:
            self._shown.planned(candidates, plan.included, shown.not_read)
        trimmed = plan.trimmed + shown.not_read
        turn.reply.start(
            session.model_id, answers=question.id, included=plan.included, trimmed=trimmed
        )
        turn.stored.set()
        self._announce(turn.reply.message_id, nursery)
        if not known:
            self._generate(turn, plan, session, nursery)

    @staticmethod
    def _plan(
        turn: Turn, session: ChatSession, shown: History, question: Message
    ) -> tuple[list[Message], PromptPlan]:
        candidates = [*shown.messages, question]
        plan = plan_prompt(
            system_prompt=session.system_prompt,
            history=candidates,
            context_window=turn.model_info.context_window,
            reserve_for_reply=reserve_for_reply(session, turn.model_info.max_output_tokens),
        )
        return candidates, plan

    def _generate(
        self, turn: Turn, plan: PromptPlan, session: ChatSession, nursery: trio.Nursery
    ) -> None:
        nursery.start_soon(
            turn.generate, plan.messages, session.params, self._mailbox.clone(),
            name=f"reply-{turn.reply.message_id}",
        )  # fmt: skip

    async def _fork_of(self, request: branches.TurnRequest, session: ChatSession) -> Fork | None:
        """What storage says of the message a regenerate or an edit starts from (None for a
        new question): read before the turn's synchronous step."""
        if isinstance(request, NewQuestion):
            return None
        head = session.head_id
        target_id = request.message_id if isinstance(request, Edit) else request.reply_id or head
        if target_id is None:
            raise NothingToRegenerate(session.id)
        found = await self._store.get_message(session.org_id, target_id)
        target = branches.check_in_session(session, found, target_id)
        if isinstance(request, Regenerate) and request.reply_id is None:
            if target.role is not MessageRole.ASSISTANT:
                raise NothingToRegenerate(session.id)  # the branch ends with a question
        on_branch = target_id == head or (
            head is not None and await self._store.on_branch(session.org_id, head, target_id)
        )
        question = None
        if isinstance(request, Regenerate) and target.parent_id is not None:
            question = await self._store.get_message(session.org_id, target.parent_id)
        return Fork(target=target, question=question, on_branch=on_branch)

    def _turn_start(self, send: Send, session: ChatSession, fork: Fork | None) -> TurnStart:
        """The turn's messages and the session after it (the domain's rules): synchronous."""
        at, request, reply = self._clock.now(), send.request, send.reply
        if isinstance(request, NewQuestion):
            assert reply.user_message_id is not None  # a new question comes with its id
            return branches.ask(
                session, text=request.text, question_id=reply.user_message_id,
                reply_id=reply.message_id, at=at,
            )  # fmt: skip
        assert fork is not None
        if isinstance(request, Regenerate):
            return branches.regenerate(
                session, target=fork.target, question=fork.question, on_branch=fork.on_branch,
                reply_id=reply.message_id, at=at,
            )  # fmt: skip
        assert reply.user_message_id is not None
        return branches.edit(
            session, target=fork.target, on_branch=fork.on_branch, text=request.text,
            question_id=reply.user_message_id, reply_id=reply.message_id, at=at,
        )  # fmt: skip

    async def _on_select(self, select: SelectBranch) -> None:
        session = self._session
        try:
            if self.busy:
                raise SessionBusy(session.id)
            found = await self._store.get_message(session.org_id, select.message_id)
            target = branches.check_in_session(session, found, select.message_id)
            leaf = await self._store.newest_leaf(session.org_id, target.id)
            if leaf is None:
                raise MessageNotFound(select.message_id)
        except DomainError as error:
            select.verdict.refuse(error)
            return
        if leaf == session.head_id:
            select.verdict.accept(session)  # already the current branch: nothing changes
            return
        moved = session.moved_to(leaf, self._clock.now())
        self.session = moved
        self._shown.forget()  # another branch's history
        try:
            await self._store.update_session(moved)
        except (StorageUnavailable, StaleVersion) as error:
            select.verdict.refuse(StorageUnavailable("the branch could not be stored; try again"))
            raise _OutOfStep(error) from error
        select.verdict.accept(moved)

    async def _on_generated(self, generated: Generated, nursery: trio.Nursery) -> None:
        turn, outcome = generated.turn, generated.outcome
        final = turn.final_message(outcome)
        idle = self._session.apply(SessionInput.FINISH, final.updated_at)
        self.session = idle
        try:
            # Shielded: once the model is done, a shutdown must not lose the outcome.
            with trio.CancelScope(shield=True) as write:
                write.deadline = trio.current_time() + FINAL_WRITE_DEADLINE
                await self._store.end_reply(final, idle)
            if write.cancelled_caught:
                raise StorageUnavailable("the store did not answer in time")
        except (StorageUnavailable, StaleVersion) as error:
            self._running = None
            self._drop(turn.send, _unstored(outcome))
            raise _OutOfStep(error) from error
        # Anything else is the actor's failure: it winds down with this turn still running,
        # and stores it as failed if the store lets it.
        self._running = None
        self._shown.replied(final)
        self._announce(final.id, nursery)
        self._drop(turn.send, outcome)
        self._on_reply_stored(final)
        if self._completing:
            await self._complete_now()
        await self._start_next(nursery)

    def _announce(self, message_id: UUID, nursery: trio.Nursery) -> None:
        """Tell the other instances that the reply's row changed (they may follow it)."""
        if self._news is not None:
            nursery.start_soon(_announce, self._news, message_id)

    def _drop(self, send: Send, outcome: ReplyOutcome) -> None:
        """End a reply the actor will not write (any further) with `outcome`."""
        self._replies.pop(send.reply.message_id, None)
        if not send.reply.ended:
            send.reply.close(outcome)

    # -- stopping -------------------------------------------------------------------------
    def _stop_with(self, refusal: Exception) -> None:
        failed = ReplyOutcome.failed(getattr(refusal, "code", "unavailable"), str(refusal))
        self._ending = _Ending(failed, failed, refusal)

    async def _wind_down(self, failure: BaseException | None) -> None:
        """End every reply the actor holds and answer every command still waiting."""
        for retired in self._retiring:  # whatever ended the actor, nothing of it runs now
            retired.accept(None)
        self._retiring.clear()
        ending = self._ending or _ending_for(failure, self.session_id)
        if ending is None:
            return  # retired idle: nothing is held
        turn, self._running = self._running, None
        if turn is not None and not turn.reply.ended:
            await self._store_final(turn, ending.running)
            self._drop(turn.send, ending.running)
        while self._queue:
            self._drop(self._queue.popleft(), ending.waiting)
        for reply in self._replies.values():  # one taken from the queue as the actor failed
            if not reply.ended:
                reply.close(ending.waiting)
        self._replies.clear()
        for verdict in self._completing:
            verdict.refuse(ending.refusal)
        self._completing.clear()
        while True:
            try:
                command = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if isinstance(command, Retire):
                command.verdict.accept(None)  # it has stopped: what Retire asks
            elif (
                isinstance(command, Send | Cancel | Complete | SelectBranch)
                and not command.verdict.decided
            ):
                command.verdict.refuse(ending.refusal)
            if isinstance(command, Send):
                command.reply.abandon()

    async def _store_final(self, turn: Turn, outcome: ReplyOutcome) -> None:
        """Best effort: the reply as far as it got, and the session free again."""
        if turn.assistant is None or self.session is None:
            return  # never stored: nothing to finish
        final = turn.final_message(outcome)
        session = self.session
        if session.status is SessionState.RESPONDING:
            session = session.apply(SessionInput.FINISH, final.updated_at)
            self.session = session
        try:
            await self._store.end_reply(final, session)
        except Exception as error:  # noqa: BLE001 - the cause was logged; this is its echo
            log.warning("chat session %s: reply %s not stored: %s", session.id, final.id, error)


async def _announce(news: Callable[[UUID], Awaitable[None]], message_id: UUID) -> None:
    try:
        await news(message_id)
    except StorageUnavailable as error:  # a follower elsewhere polls: it is late, not stuck
        log.warning("reply %s: could not tell the other instances: %s", message_id, error)


def _ending_for(failure: BaseException | None, session_id: UUID) -> _Ending | None:
    if failure is None:
        return None
    if _only_cancelled(failure):
        stopping = ShuttingDown()
        interrupted = ReplyOutcome.interrupted(*SHUTTING_DOWN)
        return _Ending(interrupted, interrupted, stopping)
    broken = ReplyOutcome.failed(*INTERNAL_ERROR)
    return _Ending(broken, broken, Unavailable(f"chat session {session_id} failed; try again"))


def _only_cancelled(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return error.split(trio.Cancelled)[1] is None
    return isinstance(error, trio.Cancelled)


def _unstored(outcome: ReplyOutcome) -> ReplyOutcome:
    """What the stream says of a reply whose outcome could not be stored."""
    if outcome.error is not None:
        return outcome
    return ReplyOutcome.failed(*UNSTORED)
