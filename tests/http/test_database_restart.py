"""The service on PostgreSQL while the server stops and starts again: requests that need
storage are answered 503 meanwhile, and everything works again once it is back, with no
restart of the service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.http.conftest import open_api, settings_for
from tests.postgres_server import PostgresServer, running_server

pytestmark = pytest.mark.backends("postgres")


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server of this module's own: stopping it disturbs no other test."""
    with running_server() as server:
        yield server


async def test_storage_is_503_while_the_database_is_down_and_works_once_it_is_back(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url=own_server.create_database())
    async with open_api(settings) as api:
        conversation = await api.conversation("before")
        session = await api.session(conversation["id"])

        await trio.to_thread.run_sync(own_server.stop)
        for answer in (
            await api.get("/api/conversation/list"),
            await api.post("/api/conversation/create", {"title": "while down"}),
        ):
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert error["code"] == "storage_unavailable"
            assert error["request_id"] == answer.headers["X-Request-Id"]
        assert (await api.client.get("/healthz")).status_code == 200  # the process is fine

        await trio.to_thread.run_sync(own_server.start)
        listed = await api.get("/api/conversation/list")
        assert listed.status_code == 200, listed.text
        assert [c["title"] for c in listed.json()["conversations"]] == ["before"]
        events = await api.stream(session["id"], "are you back?")
        assert events[-1][1] == "end" and events[-1][2]["finish_reason"] == "stop"
