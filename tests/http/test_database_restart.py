"""The service on PostgreSQL while the server stops and starts again: requests that need
storage are answered 503 meanwhile, and everything works again once it is back, with no
restart of the service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.http.conftest import open_api, settings_for
from tests.http.instances import clients_of, close_all, instances, text, wait_for
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


async def test_two_instances_ride_out_the_database_going_away(
    own_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVERSATION_SERVICE_DATABASE_URL", own_server.create_database())
    with instances(tmp_path, 2) as servers:
        a, b = await clients_of(servers)
        try:
            session = await a.new_session()  # run by A from now on
            await trio.to_thread.run_sync(own_server.stop)
            down = await b.post("/api/conversation/create", {"title": "while down"})
            assert down.status_code == 503 and down.json()["error"]["code"] == "storage_unavailable"
            await trio.to_thread.run_sync(own_server.start)

            async def back() -> bool:
                answer = await b.post("/api/conversation/create", {"title": "back"})
                return answer.status_code == 201

            await wait_for(back, 30)
            # B carries a message to A again (both reconnected, notifications included).
            events: list = []
            with trio.fail_after(30):
                while not events or events[-1][1] != "end":  # retried while A reconnects
                    events.clear()
                    await b.stream(session["id"], "are you back?", events)
            assert text(events) == "Echo: are you back?"
        finally:
            await close_all([a, b])
