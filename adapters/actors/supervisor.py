"""Spawns, finds and retires session actors; one nursery supervises them all.

The supervisor is the SessionRuntime the use cases see. A failure inside one actor stays
there (pgjones/hypercorn's `_handle`): cancellation goes on up, anything else is logged once
with the session's id, and the actor, having ended its own replies, is simply gone; the next
command for its session starts a fresh one from storage.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from uuid import UUID

import trio

from conversation_service.adapters.actors.commands import (
    Cancel,
    Complete,
    Retire,
    SelectBranch,
    Send,
    Verdict,
)
from conversation_service.adapters.actors.reply_log import ReplyLog
from conversation_service.adapters.actors.session_actor import ActorSettings, SessionActor
from conversation_service.adapters.actors.titles import TitleSettings, TitleWriter
from conversation_service.domain.branches import TurnRequest
from conversation_service.domain.errors import (
    ModelNotFound,
    RateLimited,
    SessionNotFound,
    ShuttingDown,
    Unavailable,
)
from conversation_service.domain.model import ChatSession
from conversation_service.domain.replies import Multitask
from conversation_service.ports.clock import Clock
from conversation_service.ports.language_model import ModelCatalog
from conversation_service.ports.storage import ConversationStore
from conversation_service.ports.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)

# How long a retired session's id is refused after its retirement. Its rows are deleted
# right after, and every request reads its session from storage first: this only has to
# outlast a request that read the session just before the deletion.
RETIRED_FOR = 300.0


class SessionSupervisor:
    """The registry of live session actors, and the nursery they run in."""

    def __init__(
        self,
        *,
        nursery: trio.Nursery,
        store: ConversationStore,
        catalog: ModelCatalog,
        clock: Clock,
        settings: ActorSettings,
        titles: TitleSettings | None = None,
        news: Callable[[UUID], Awaitable[None]] | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._nursery = nursery
        self._telemetry = telemetry
        # Said of a reply whenever its stored text or state changes (other instances follow
        # it); None when nobody else could.
        self._news = news
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._settings = settings
        self._actors: dict[UUID, SessionActor] = {}  # the newest actor of each session
        self._running: set[SessionActor] = set()  # every actor whose task has not ended
        self._replies_by_org: dict[UUID, int] = {}  # replies running or waiting
        self._accepting = True
        self._changed = trio.Event()  # set (and replaced) when an actor goes idle or ends
        self._retired: dict[UUID, float] = {}  # session id -> when it was retired (trio time)
        self._titles = TitleWriter(
            nursery=nursery, store=store, catalog=catalog, settings=titles or TitleSettings()
        )

    # -- SessionRuntime -------------------------------------------------------------------
    async def send(
        self,
        session: ChatSession,
        request: TurnRequest,
        *,
        multitask: Multitask,
        message_id: UUID,
        user_message_id: UUID | None,
    ) -> ReplyLog:
        actor = self.actor_for(session)
        reply = ReplyLog(
            message_id=message_id, user_message_id=user_message_id, chat_session_id=session.id
        )
        self._hold_reply(session.org_id, reply)
        self._report_end(session, reply)
        verdict: Verdict[None] = Verdict()
        actor.tell(Send(request, multitask, reply, verdict))
        await _verdict_of_a_send(verdict)
        return reply

    def _hold_reply(self, org_id: UUID, reply: ReplyLog) -> None:
        """Count the reply against its organisation until it ends or is refused.

        Replies outlive the streams that asked for them (a client may go away), so this is
        what bounds the memory and the model calls one organisation can hold at once.
        """
        held = self._replies_by_org.get(org_id, 0)
        if held >= self._settings.max_replies_per_org:
            raise RateLimited(
                f"the organisation already has {held} replies running or waiting",
                retry_after=1.0,
            )
        self._replies_by_org[org_id] = held + 1

        def release() -> None:
            left = self._replies_by_org[org_id] - 1
            if left:
                self._replies_by_org[org_id] = left
            else:
                del self._replies_by_org[org_id]

        reply.on_finished(release)

    def _report_end(self, session: ChatSession, reply: ReplyLog) -> None:
        """Tell the telemetry how the reply ended, once it has (a refused one never began)."""
        try:
            model = self._catalog.get(session.org_id, session.model_id)
        except ModelNotFound:
            return  # the actor refuses the message

        def ended() -> None:
            if reply.outcome is not None:
                self._telemetry.reply_ended(model, reply.outcome)

        reply.on_finished(ended)

    async def cancel(self, session: ChatSession, message_id: UUID | None) -> bool:
        actor = self.find(session.id)
        if actor is None:
            return False  # nothing of this session is live
        verdict: Verdict[bool] = Verdict()
        actor.tell(Cancel(message_id, verdict))
        return await verdict.wait()

    async def complete(self, session: ChatSession) -> ChatSession:
        verdict: Verdict[ChatSession] = Verdict()
        self.actor_for(session).tell(Complete(verdict))
        return await verdict.wait()

    async def select_branch(self, session: ChatSession, message_id: UUID) -> ChatSession:
        verdict: Verdict[ChatSession] = Verdict()
        self.actor_for(session).tell(SelectBranch(message_id, verdict))
        return await verdict.wait()

    async def retire(self, session: ChatSession) -> None:
        await self.retire_session(session.id)

    async def forget(self, org_id: UUID, session_ids: Sequence[UUID]) -> None:
        for session_id in session_ids:  # those retired already return at once
            await self.retire_session(session_id)

    def was_retired(self, session_id: UUID) -> bool:
        """Whether the session was retired here (within RETIRED_FOR seconds)."""
        return session_id in self._retired

    async def retire_session(self, session_id: UUID) -> None:
        """Retire the session's actor here, and refuse its id for RETIRED_FOR seconds."""
        now = trio.current_time()
        for retired, at in list(self._retired.items()):
            if at < now - RETIRED_FOR:
                del self._retired[retired]
        self._retired[session_id] = now  # from here on no command reaches its actor
        actor = self._actors.get(session_id)
        if actor is None:
            return
        if not actor.retired:
            verdict: Verdict[None] = Verdict()
            actor.tell(Retire(verdict))
            await verdict.wait()
        await actor.finished.wait()

    def live_session(self, session_id: UUID) -> ChatSession | None:
        actor = self.find(session_id)
        return None if actor is None else actor.session

    async def find_reply(self, session: ChatSession, message_id: UUID) -> ReplyLog | None:
        return self.live_reply(session.id, message_id)

    def live_reply(self, session_id: UUID, message_id: UUID) -> ReplyLog | None:
        actor = self.find(session_id)
        return None if actor is None else actor.find_reply(message_id)

    # -- actors ---------------------------------------------------------------------------
    @property
    def live_actors(self) -> int:
        return len(self._running)

    @property
    def queued_messages(self) -> int:
        """Messages waiting behind a running reply, over every live session."""
        return sum(actor.queued for actor in self._running)

    def find(self, session_id: UUID) -> SessionActor | None:
        """The live actor of a session, if it has one."""
        actor = self._actors.get(session_id)
        if actor is None or actor.retired or session_id in self._retired:
            return None
        return actor

    def adopt(self, session: ChatSession) -> None:
        """Start the session's actor, if it has none, with no command: it loads the session
        (recovering a reply left interrupted) and retires when idle. Not one being deleted."""
        if session.id not in self._retired:
            self.actor_for(session)

    def spawn(self, task: Callable[[], Awaitable[None]], *, name: str) -> None:
        """Run a small task beside the actors (it is cancelled when they are)."""
        self._nursery.start_soon(task, name=name)

    def actor_for(self, session: ChatSession) -> SessionActor:
        """The session's live actor, started when it has none.

        Synchronous on purpose: between finding an actor and telling it a command nothing
        else runs, so an actor can never retire with a command unseen in its mailbox. A new
        actor loads the session from storage once the one before it has finished.
        """
        if not self._accepting:
            raise ShuttingDown("the service is stopping and takes no new messages")
        if session.id in self._retired:
            raise SessionNotFound(session.id)  # being deleted, or deleted
        current = self._actors.get(session.id)
        if current is not None and not current.retired:
            return current
        actor = SessionActor(
            org_id=session.org_id,
            session_id=session.id,
            store=self._store,
            catalog=self._catalog,
            clock=self._clock,
            settings=self._settings,
            predecessor=current,
            on_idle=self._notify,
            on_reply_stored=self._titles.reply_stored,
            news=self._news,
            telemetry=self._telemetry,
        )
        self._actors[session.id] = actor
        self._running.add(actor)
        # The mailbox exists before the task runs, so commands told now wait for it.
        self._nursery.start_soon(self._supervise, actor, name=f"session-actor-{session.id}")
        return actor

    async def _supervise(self, actor: SessionActor) -> None:
        self._telemetry.session_task(actor.org_id, actor.session_id)
        try:
            await actor.run()
        except trio.Cancelled:
            raise
        except BaseExceptionGroup as group:
            cancelled, rest = group.split(trio.Cancelled)
            if rest is not None:
                self._log_failure(actor, rest)
            if cancelled is not None:
                raise cancelled from None
        except Exception as error:
            self._log_failure(actor, error)
        finally:
            self._running.discard(actor)
            if self._actors.get(actor.session_id) is actor:
                del self._actors[actor.session_id]
            self._notify()

    @staticmethod
    def _log_failure(actor: SessionActor, error: BaseException) -> None:
        log.error(
            "chat session %s (org %s): its actor failed; its replies ended with internal_error",
            actor.session_id,
            actor.org_id,
            exc_info=error,
        )

    def _notify(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        return self._accepting

    def stop_accepting(self) -> None:
        """Commands are refused from now on (the service is shutting down)."""
        self._accepting = False

    async def stop(self, deadline: float = 10.0) -> None:
        """Cancel every actor and wait (up to `deadline` s) until each has stored its state."""
        self.stop_accepting()
        self._nursery.cancel_scope.cancel()
        with trio.move_on_after(deadline):
            while self._running:
                await self._changed.wait()

    async def drain(self, grace: float) -> bool:
        """Wait up to `grace` seconds for every actor to finish its work; True if all did."""
        with trio.move_on_after(grace):
            while any(actor.busy for actor in self._running):
                await self._changed.wait()
            return True
        return False


# Once a message is told to its actor, its verdict is awaited even if the sender is
# cancelled (a client gone): the message may be accepted, and whoever answers the sender
# (an Idempotency-Key kept for a retry) must know it was. The actor answers quickly; this
# bounds a stuck store.
VERDICT_DEADLINE = 30.0


async def _verdict_of_a_send(verdict: Verdict[None]) -> None:
    # One scope: shielded from the caller's cancellation, bounded by its own deadline.
    with trio.CancelScope(shield=True, deadline=trio.current_time() + VERDICT_DEADLINE):
        await verdict.wait()
        return
    raise Unavailable("the chat session did not answer in time; try again")


async def _actor_host(
    *, task_status: trio.TaskStatus[trio.Nursery] = trio.TASK_STATUS_IGNORED
) -> None:
    """The nursery every session actor runs in; cancelled on its own by `stop`."""
    async with trio.open_nursery() as nursery:
        task_status.started(nursery)
        await trio.sleep_forever()


@asynccontextmanager
async def open_supervisor(
    *,
    store: ConversationStore,
    catalog: ModelCatalog,
    clock: Clock,
    settings: ActorSettings | None = None,
    titles: TitleSettings | None = None,
    news: Callable[[UUID], Awaitable[None]] | None = None,
    telemetry: Telemetry = NO_TELEMETRY,
) -> AsyncIterator[SessionSupervisor]:
    """A running supervisor; on exit every actor is cancelled and has stored its state.

    `titles`: how untitled conversations get a title after a reply (default: the first words
    of their first message).
    """
    async with trio.open_nursery() as nursery:
        actors = await nursery.start(_actor_host)
        supervisor = SessionSupervisor(
            nursery=actors,
            store=store,
            catalog=catalog,
            clock=clock,
            settings=settings or ActorSettings(),
            titles=titles,
            news=news,
            telemetry=telemetry,
        )
        try:
            yield supervisor
        finally:
            supervisor.stop_accepting()
            nursery.cancel_scope.cancel()
