"""The real server on a free port, run by a thread of the test's process with its own trio
loop: synchronous tests (Hypothesis state machines, the sync client) call it over HTTP, and
`run` reaches its parts (to make organisations and tokens) on its own loop.

    with server_in_thread(Settings(port=0, data_dir=tmp)) as server:
        org_id, token = server.new_org("acme")
        httpx.get(server.base_url + "/healthz")
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import attrs
import trio

from conversation_service.client import AsyncClient, Client
from conversation_service.domain.model import AccessRole
from conversation_service.entrypoints.server import RunningServer, running_server
from conversation_service.entrypoints.settings import Settings

T = TypeVar("T")

LIFETIME = 3600.0  # seconds a server may run before it stops itself (a test left it behind)


@attrs.frozen(kw_only=True)
class ServedOrg:
    """An organisation on a running server, and a token of it."""

    base_url: str
    org_id: str
    token: str = attrs.field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def params(self) -> dict[str, str]:
        return {"org_id": self.org_id}

    def client(self, **options: Any) -> Client:
        """The Python client, acting for this organisation (close it, or use `with`)."""
        return Client(self.base_url, token=self.token, org_id=self.org_id, **options)

    def async_client(self, **options: Any) -> AsyncClient:
        return AsyncClient(self.base_url, token=self.token, org_id=self.org_id, **options)


@attrs.frozen
class ServerThread:
    """The server, running in its own thread, and how to reach its trio loop."""

    server: RunningServer
    trio_token: trio.lowlevel.TrioToken
    stop: trio.Event

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run the async `fn(*args)` in the server's loop, from another thread; 30 s at most."""

        async def bounded() -> T:
            with trio.fail_after(30):
                return await fn(*args)

        return trio.from_thread.run(bounded, trio_token=self.trio_token)

    def new_org(self, name: str, role: AccessRole = AccessRole.ADMIN) -> tuple[str, str]:
        """A new organisation and a token of `role` in it: (org id, token)."""

        async def make() -> tuple[str, str]:
            org = await self.server.services.admin.create_org(name)
            issued = await self.server.services.admin.create_token(org.id, role)
            return str(org.id), issued.token

        return self.run(make)


@contextmanager
def server_in_thread(settings: Settings, *, lifetime: float = LIFETIME) -> Iterator[ServerThread]:
    """The service serving `settings` from a thread until the block ends; it must stop
    within a minute then."""
    handoff: queue.Queue[ServerThread | BaseException] = queue.Queue()

    async def serve() -> None:
        try:
            async with running_server(settings) as server:
                stop = trio.Event()
                handoff.put(ServerThread(server, trio.lowlevel.current_trio_token(), stop))
                with trio.move_on_after(lifetime):
                    await stop.wait()
        except BaseException as error:
            handoff.put(error)
            raise

    thread = threading.Thread(target=trio.run, args=(serve,), name="served-in-thread")
    thread.start()
    started = handoff.get(timeout=120)
    if isinstance(started, BaseException):
        thread.join(timeout=60)
        raise started
    try:
        yield started
    finally:
        try:
            trio.from_thread.run_sync(started.stop.set, trio_token=started.trio_token)
        except trio.RunFinishedError:
            pass  # it stopped itself already (its lifetime ran out)
        thread.join(timeout=60)
        assert not thread.is_alive(), "the server did not stop"
