"""Several real `conversation-service serve` processes on one PostgreSQL, and clients of each."""

from __future__ import annotations

import inspect
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from httpx_sse import aconnect_sse

from conversation_service.testing.served import Served, serve

ECHO = "6563686f-0000-4000-8000-000000000000"


@attrs.define
class Instance:
    """One served process, and an HTTP client of it acting for the first start's org."""

    served: Served
    http: httpx.AsyncClient
    org_id: str

    @property
    def q(self) -> dict[str, str]:
        return {"org_id": self.org_id}

    async def post(self, path: str, body: Any, **params: str) -> httpx.Response:
        return await self.http.post(path, json=body, params={**self.q, **params})

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params={**self.q, **params})

    async def new_session(self, model_id: str = ECHO) -> dict[str, Any]:
        conversation = (await self.post("/api/conversation/create", {"title": "scaled"})).json()
        created = await self.post(
            "/api/conversation/create_session",
            {"conversation_id": conversation["id"], "model_id": model_id},
        )
        assert created.status_code == 201, created.text
        return dict(created.json())

    async def stream(
        self, session_id: str, message: str, events: list[tuple[int, str, dict]], **extra: Any
    ) -> int:
        """stream_chat into `events` (id, name, data) as they come; the answer's status."""
        body = {"chat_session_id": session_id, "message": message, **extra}
        return await self.streamed("stream_chat", body, events)

    async def streamed(
        self, route: str, body: dict[str, Any], events: list[tuple[int, str, dict]]
    ) -> int:
        """A streaming POST (stream_chat, regenerate, edit) into `events`; its status."""
        async with aconnect_sse(
            self.http, "POST", f"/api/conversation/{route}", params=self.q, json=body
        ) as source:
            if source.response.status_code != 200:
                await source.response.aread()
                events.append((-1, "refused", source.response.json()))
                return source.response.status_code
            async for sse in source.aiter_sse():
                events.append((int(sse.id), sse.event, sse.json()))
        return 200

    async def attach(
        self, session_id: str, message_id: str, after: int | None = None
    ) -> list[tuple[int, str, dict]]:
        headers = {} if after is None else {"Last-Event-ID": str(after)}
        events = []
        async with aconnect_sse(
            self.http,
            "GET",
            "/api/conversation/stream",
            params={**self.q, "chat_session_id": session_id, "message_id": message_id},
            headers=headers,
        ) as source:
            assert source.response.status_code == 200, await source.response.aread()
            async for sse in source.aiter_sse():
                events.append((int(sse.id), sse.event, sse.json()))
        return events

    async def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        page = await self.get(
            "/api/conversation/messages", conversation_id=conversation_id, limit="100"
        )
        assert page.status_code == 200, page.text
        return list(page.json()["messages"])


def text(events: list[tuple[int, str, dict]]) -> str:
    return "".join(d["content"] for _, kind, d in events if kind == "content")


@contextmanager
def instances(
    tmp_path: Path, count: int, *extra: str, env: dict[str, str] | None = None
) -> Iterator[list[Served]]:
    """`count` servers on the database the environment names, each with its own data dir;
    the first one's first start creates the org and its admin token."""
    started: list[Served] = []
    try:
        for index in range(count):
            started.append(serve(tmp_path / f"data{index}", *extra, env=env))
        yield started
    finally:
        for served in started:
            served.stop(signal.SIGKILL if served.process.poll() is None else signal.SIGTERM, 10)


async def clients_of(servers: list[Served]) -> list[Instance]:
    first = servers[0]
    assert first.token and first.org_id, "the first instance did not make the org"
    return [
        Instance(
            served=served,
            http=httpx.AsyncClient(
                base_url=served.base_url,
                timeout=30,
                headers={"Authorization": f"Bearer {first.token}"},
            ),
            org_id=first.org_id,
        )
        for served in servers
    ]


async def close_all(clients: list[Instance]) -> None:
    for client in clients:
        await client.http.aclose()


async def wait_for(check: Any, seconds: float = 30) -> Any:
    """Poll `check()` (sync or async) until it returns something true, within `seconds`."""
    with trio.fail_after(seconds):
        while True:  # polling the service is the point here
            found = check()
            if inspect.isawaitable(found):
                found = await found
            if found:
                return found
            await trio.sleep(0.05)
