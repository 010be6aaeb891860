"""The real app on a real socket, over a real database; clients speak HTTP to it.

Every test here runs twice, on a SQLite file and on a PostgreSQL database (a new one per
test, on the session's server), unless it is marked `backends(...)`: the database is named
by CONVERSATION_SERVICE_DATABASE_URL, as an operator would, so served processes and the
CLI use it too, and `settings_for` reads it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
import httpx
import pytest
import trio
from httpx_sse import EventSource, aconnect_sse

from conversation_service.domain.model import AccessRole
from conversation_service.entrypoints.server import RunningServer, running_server
from conversation_service.entrypoints.settings import ENV_PREFIX, Settings
from tests import postgres_server

ECHO = "6563686f-0000-4000-8000-000000000000"
DATABASE_URL = ENV_PREFIX + "DATABASE_URL"
BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        backends = marker.args if marker else BACKENDS
        metafunc.parametrize("backend", backends, indirect=True, scope="module")


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """The database the module's tests run on: "sqlite" or "postgres"."""
    return str(request.param)


@pytest.fixture(autouse=True)
def database_url(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str | None]:
    """A new PostgreSQL database for each test on "postgres", named in the environment;
    None on "sqlite" (the file in the data directory)."""
    if backend == "sqlite":
        monkeypatch.delenv(DATABASE_URL, raising=False)
        yield None
        return
    postgres = request.getfixturevalue("postgres")
    url = postgres.create_database()
    monkeypatch.setenv(DATABASE_URL, url)
    yield url
    postgres.drop_database(url)


def stored_text(data_dir: Path) -> bytes:
    """Everything the service stored, as bytes: the SQLite file, or every row of the
    PostgreSQL database the environment names."""
    url = os.environ.get(DATABASE_URL)
    if url:
        return postgres_server.dump(url).encode()
    return (data_dir / "conversations.db").read_bytes()


@attrs.define
class Tenant:
    org_id: UUID
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def q(self) -> dict[str, str]:
        return {"org_id": str(self.org_id)}


@attrs.define
class Api:
    server: RunningServer
    client: httpx.AsyncClient
    a: Tenant
    b: Tenant

    async def tenant(
        self, role: AccessRole = AccessRole.MEMBER, org_id: UUID | None = None
    ) -> Tenant:
        admin = self.server.services.admin
        if org_id is None:
            org_id = (await admin.create_org("extra")).id
        issued = await admin.create_token(org_id, role)
        return Tenant(org_id=org_id, token=issued.token)

    async def post(
        self, path: str, body: Any, who: Tenant | None = None, **params: str
    ) -> httpx.Response:
        who = who or self.a
        return await self.client.post(path, json=body, headers=who.auth, params={**who.q, **params})

    async def get(self, path: str, who: Tenant | None = None, **params: str) -> httpx.Response:
        who = who or self.a
        return await self.client.get(path, headers=who.auth, params={**who.q, **params})

    async def conversation(
        self, title: str = "Project Discussion", who: Tenant | None = None
    ) -> dict:
        response = await self.post("/api/conversation/create", {"title": title}, who)
        assert response.status_code == 201, response.text
        return response.json()

    async def session(
        self, conversation_id: str, model_id: str = ECHO, who: Tenant | None = None
    ) -> dict:
        response = await self.post(
            "/api/conversation/create_session",
            {"conversation_id": conversation_id, "model_id": model_id},
            who,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def open_stream(
        self, session_id: str, message: str, who: Tenant | None = None, **extra: Any
    ) -> AbstractAsyncContextManager[EventSource]:
        """A stream_chat call as httpx-sse sees it."""
        who = who or self.a
        return aconnect_sse(
            self.client,
            "POST",
            "/api/conversation/stream_chat",
            params=who.q,
            headers=who.auth,
            json={"chat_session_id": session_id, "message": message, **extra},
        )

    async def stream(
        self, session_id: str, message: str, who: Tenant | None = None, **extra: Any
    ) -> list[tuple[str, str, dict]]:
        """(id, event, data) of every event of a stream_chat call, parsed by httpx-sse."""
        events = []
        with trio.fail_after(30):
            async with self.open_stream(session_id, message, who, **extra) as source:
                assert source.response.status_code == 200, await source.response.aread()
                async for sse in source.aiter_sse():
                    events.append((sse.id, sse.event, sse.json()))
        return events


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        port=0,
        data_dir=tmp_path / "data",
        database_url=os.environ.get(DATABASE_URL),  # the test's database, if not SQLite's
        echo_delay_ms=1,
        shutdown_grace=2.0,
    )
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def open_api(
    settings: Settings, app_config: dict[str, object] | None = None
) -> AsyncIterator[Api]:
    async with running_server(settings, app_config=app_config) as server:
        admin = server.services.admin
        tenants = []
        for name in ("org-a", "org-b"):
            org = await admin.create_org(name)
            issued = await admin.create_token(org.id, AccessRole.MEMBER)
            tenants.append(Tenant(org_id=org.id, token=issued.token))
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            yield Api(server=server, client=client, a=tenants[0], b=tenants[1])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(settings_for(tmp_path)) as opened:
        yield opened
