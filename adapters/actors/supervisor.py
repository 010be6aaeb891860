"""Spawns, finds and retires session actors; one nursery supervises them all."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import trio

from conversation_service.adapters.actors.session_actor import ActorSettings, SessionActor
from conversation_service.domain.errors import Unavailable
from conversation_service.domain.model import ChatSession
from conversation_service.ports.clock import Clock
from conversation_service.ports.language_model import ModelCatalog
from conversation_service.ports.storage import ConversationStore

log = logging.getLogger(__name__)


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
    ) -> None:
        self._nursery = nursery
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._settings = settings
        self._actors: dict[UUID, SessionActor] = {}
        self._accepting = True
        self._changed = trio.Event()  # set (and replaced) when an actor goes idle or retires

    @property
    def live_actors(self) -> int:
        return len(self._actors)

    def find(self, session_id: UUID) -> SessionActor | None:
        """The live actor of a session, if it has one."""
        return self._actors.get(session_id)

    def actor_for(self, session: ChatSession) -> SessionActor:
        """The session's live actor, spawned from `session` (as stored) when it has none.

        Synchronous on purpose: between finding an actor and telling it a command nothing
        else runs, so an actor can never retire with a command unseen in its mailbox.
        """
        if not self._accepting:
            raise Unavailable("the service is stopping and takes no new messages")
        actor = self._actors.get(session.id)
        if actor is not None:
            return actor
        actor = SessionActor(
            session=session,
            store=self._store,
            catalog=self._catalog,
            clock=self._clock,
            settings=self._settings,
            on_retire=self._forget,
            on_idle=self._notify,
        )
        self._actors[session.id] = actor
        # The mailbox exists before the task runs, so commands told now wait for it.
        self._nursery.start_soon(actor.run, name=f"session-actor-{session.id}")
        return actor

    def _forget(self, actor: SessionActor) -> None:
        if self._actors.get(actor.session_id) is actor:
            del self._actors[actor.session_id]
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()

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
            while self._actors:
                await self._changed.wait()

    async def drain(self, grace: float) -> bool:
        """Wait up to `grace` seconds for every actor to finish its work; True if all did."""
        with trio.move_on_after(grace):
            while any(actor.busy for actor in self._actors.values()):
                await self._changed.wait()
            return True
        return False


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
) -> AsyncIterator[SessionSupervisor]:
    """A running supervisor; on exit every actor is cancelled and has stored its state."""
    async with trio.open_nursery() as nursery:
        actors = await nursery.start(_actor_host)
        supervisor = SessionSupervisor(
            nursery=actors,
            store=store,
            catalog=catalog,
            clock=clock,
            settings=settings or ActorSettings(),
        )
        try:
            yield supervisor
        finally:
            supervisor.stop_accepting()
            nursery.cancel_scope.cancel()
