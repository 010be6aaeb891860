"""The real server process: SIGKILL mid-stream and restart, and SIGTERM with a grace period."""

from __future__ import annotations

import gc
import signal
from pathlib import Path

import attrs
import httpx
import pytest
import trio
from httpx_sse import aconnect_sse

from conversation_service.entrypoints.server import (
    YOUNG_COLLECTION_THRESHOLD,
    _freeze_what_start_made,
)
from conversation_service.testing.served import Served, serve

ECHO = "6563686f-0000-4000-8000-000000000000"


@attrs.define
class Watched:
    session_id: str
    message: str
    events: list[tuple[str, dict]] = attrs.Factory(list)
    started: trio.Event = attrs.Factory(trio.Event)
    flowing: trio.Event = attrs.Factory(trio.Event)

    @property
    def text(self) -> str:
        return "".join(d["content"] for k, d in self.events if k == "content")


class Client:
    def __init__(self, served: Served) -> None:
        self.served = served
        self.http = httpx.AsyncClient(
            base_url=served.base_url,
            timeout=30,
            headers={"Authorization": f"Bearer {served.token}"},
        )
        self.q = {"org_id": str(served.org_id)}

    async def setup_sessions(self, count: int) -> list[str]:
        conv = (
            await self.http.post(
                "/api/conversation/create", params=self.q, json={"title": "lifecycle"}
            )
        ).json()
        self.conversation_id = conv["id"]
        return [
            (
                await self.http.post(
                    "/api/conversation/create_session",
                    params=self.q,
                    json={"conversation_id": conv["id"], "model_id": ECHO},
                )
            ).json()["id"]
            for _ in range(count)
        ]

    async def watch(self, watched: Watched) -> None:
        try:
            async with aconnect_sse(
                self.http,
                "POST",
                "/api/conversation/stream_chat",
                params=self.q,
                json={"chat_session_id": watched.session_id, "message": watched.message},
            ) as source:
                async for sse in source.aiter_sse():
                    watched.events.append((sse.event, sse.json()))
                    if sse.event == "start":
                        watched.started.set()
                    if len(watched.events) >= 3:
                        watched.flowing.set()
        except (httpx.HTTPError, httpx.StreamError):
            pass  # the server died under us: that is the point
        finally:
            watched.started.set()
            watched.flowing.set()

    async def messages(self) -> list[dict]:
        page = await self.http.get(
            "/api/conversation/messages",
            params={**self.q, "conversation_id": self.conversation_id, "limit": "100"},
        )
        assert page.status_code == 200, page.text
        return page.json()["messages"]

    async def stream_once(self, session_id: str, message: str) -> list[tuple[str, dict]]:
        watched = Watched(session_id=session_id, message=message)
        with trio.fail_after(30):
            await self.watch(watched)
        return watched.events


async def test_sigkill_mid_stream_then_restart_keeps_what_was_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL the replies of a killed instance are taken over once its lease has run
    # out (other instances may share the database); a short one keeps the test short.
    monkeypatch.setenv("CONVERSATION_SERVICE_LEASE_TIMEOUT", "2")
    data = tmp_path / "data"
    served = await trio.to_thread.run_sync(serve, data, "--echo-delay-ms", "40")
    client = Client(served)
    try:
        sessions = await client.setup_sessions(8)
        words = [" ".join(f"s{n}w{i}" for i in range(200)) for n in range(len(sessions))]
        watched = [Watched(session_id=s, message=w) for s, w in zip(sessions, words, strict=True)]
        async with trio.open_nursery() as nursery:
            for item in watched:
                nursery.start_soon(client.watch, item)
            with trio.fail_after(30):
                for item in watched:
                    await item.flowing.wait()
            await trio.sleep(1.2)  # past at least one flush interval
            served.process.send_signal(signal.SIGKILL)
    finally:
        served.stop()
        await client.http.aclose()
    assert all(item.events and item.events[0][0] == "start" for item in watched)

    again = await trio.to_thread.run_sync(serve, data)
    again.org_id, again.token = served.org_id, served.token  # from the first start
    client = Client(again)
    client.conversation_id = (
        await client.http.get("/api/conversation/list", params=client.q)
    ).json()["conversations"][0]["id"]
    try:
        stored = await client.messages()
        with trio.fail_after(30):  # on SQLite at once; on PostgreSQL within the lease timeout
            for _ in range(150):  # polling the API is the point here
                if not any(m["status"] == "in_progress" for m in stored):
                    break
                await trio.sleep(0.2)
                stored = await client.messages()
        by_id = {m["id"]: m for m in stored}
        flushed_any = False
        for item in watched:
            start = item.events[0][1]
            user = by_id[start["user_message_id"]]
            reply = by_id[start["message_id"]]
            assert user["content"] == item.message and user["status"] == "completed"
            assert reply["status"] == "incomplete"
            assert reply["finish_reason"] == "error"
            assert reply["error"]["code"] == "interrupted"
            assert ("Echo: " + item.message).startswith(reply["content"])
            assert len(reply["content"]) <= len(item.text)
            flushed_any = flushed_any or bool(reply["content"])
        assert flushed_any
        for session_id in sessions:  # every interrupted session takes new messages
            events = await client.stream_once(session_id, "are you back?")
            assert events[-1] == ("end", events[-1][1]) and events[-1][1]["finish_reason"] == "stop"
    finally:
        assert again.stop() == 0
        await client.http.aclose()


async def test_sigterm_lets_short_replies_finish_and_stops_long_ones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    served = await trio.to_thread.run_sync(
        serve, data, "--echo-delay-ms", "100", "--shutdown-grace", "1.5"
    )
    client = Client(served)
    short_session, long_session = await client.setup_sessions(2)
    short = Watched(session_id=short_session, message="quick one")
    long = Watched(session_id=long_session, message=" ".join(["slow"] * 200))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.watch, short)
            nursery.start_soon(client.watch, long)
            with trio.fail_after(30):
                await short.started.wait()
                await long.flowing.wait()
            served.process.send_signal(signal.SIGTERM)
        exit_code = await trio.to_thread.run_sync(served.process.wait, 30)
    finally:
        served.stop()
        await client.http.aclose()
    assert exit_code == 0
    assert short.events[-1][0] == "end" and short.events[-1][1]["finish_reason"] == "stop"
    assert short.text == "Echo: quick one"
    assert [k for k, _ in long.events[-2:]] == ["error", "end"]
    assert long.events[-2][1]["code"] == "shutting_down"

    again = await trio.to_thread.run_sync(serve, data)
    again.org_id, again.token = served.org_id, served.token  # from the first start
    client = Client(again)
    client.conversation_id = (
        await client.http.get("/api/conversation/list", params=client.q)
    ).json()["conversations"][0]["id"]
    try:
        replies = {
            m["chat_session_id"]: m for m in await client.messages() if m["role"] == "assistant"
        }
        assert replies[short_session]["status"] == "completed"
        assert replies[long_session]["status"] == "incomplete"
        assert replies[long_session]["content"] == long.text  # the final write has everything
        # Stored as its stream ended it: the same finish reason, the same error.
        assert replies[long_session]["finish_reason"] == long.events[-1][1]["finish_reason"]
        assert replies[long_session]["error"] == long.events[-2][1]
    finally:
        assert again.stop() == 0
        await client.http.aclose()


def test_what_start_made_is_kept_out_of_the_collectors_scans() -> None:
    made_at_start = [[n] for n in range(1000)]  # containers, as the app's own are
    before = gc.get_threshold()
    try:
        _freeze_what_start_made()
        assert gc.get_freeze_count() >= len(made_at_start)
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
        # A cycle made afterwards is still collected.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
