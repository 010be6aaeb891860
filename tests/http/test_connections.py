"""Connections end when HTTP says they should, and cannot outnumber the server's cap."""

from __future__ import annotations

import os
import signal
from functools import partial
from pathlib import Path

import pytest
import trio

from conversation_service.testing.served import serve
from tests.http.conftest import open_api, settings_for
from tests.http.raw_http import Reader, ask, connect, get

# Served processes keep idle connections long enough that only the behaviour under test
# (the cap, a signal) can explain a connection ending.
LONG_KEEP_ALIVE = {"CONVERSATION_SERVICE_KEEP_ALIVE_TIMEOUT": "120"}


async def test_idle_keep_alive_connections_are_closed_after_the_timeout(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, keep_alive_timeout=0.5)) as api:
        streams = []
        with trio.fail_after(60):
            for _ in range(300):
                stream = await connect(api.server.base_url)
                answer = await ask(stream, get("/healthz"))
                assert answer.status == 200 and "connection" not in answer.headers  # kept
                streams.append(stream)
            for stream in streams:
                await Reader(stream).closed()  # the server closed it: EOF, not a reset
            await api.server.http.wait_for_no_connections()
        for stream in streams:
            await stream.aclose()


async def test_a_connection_its_client_closed_is_released_at_once(tmp_path: Path) -> None:
    # Not after keep_alive_timeout: until released, each holds a descriptor and a place
    # under max_connections.
    async with open_api(settings_for(tmp_path, keep_alive_timeout=120)) as api:
        with trio.fail_after(30):
            streams = []
            for _ in range(50):
                stream = await connect(api.server.base_url)
                assert (await ask(stream, get("/healthz"))).status == 200
                streams.append(stream)
            await trio.sleep(0.2)  # the server ends each answer and waits for another request
            for stream in streams:
                await stream.aclose()
            await api.server.http.wait_for_no_connections()


@pytest.mark.parametrize(
    ("path", "status"), [("/healthz", 200), ("/api/conversation/list", 401), ("/nowhere", 404)]
)
async def test_connection_close_closes_the_socket_after_the_answer(
    tmp_path: Path, path: str, status: int
) -> None:
    async with open_api(settings_for(tmp_path, keep_alive_timeout=120)) as api:
        stream = await connect(api.server.base_url)
        with trio.fail_after(30):
            reader = Reader(stream)
            await stream.send_all(get(path, "Connection: close"))
            answer = await reader.answer()
            assert answer.status == status
            assert answer.headers["connection"] == "close"
            await reader.closed()
        await stream.aclose()


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
async def test_connections_over_the_cap_are_refused_without_using_descriptors(
    tmp_path: Path,
) -> None:
    cap = 30
    served = await trio.to_thread.run_sync(
        partial(serve, tmp_path / "data", "--max-connections", str(cap), env=LONG_KEEP_ALIVE)
    )
    kept: list[trio.SocketStream] = []
    try:
        before = _open_files(served.process.pid)
        with trio.fail_after(60):
            for _ in range(cap):
                stream = await connect(served.base_url)
                kept.append(stream)
                assert (await ask(stream, get("/healthz"))).status == 200
            for _ in range(4 * cap):
                stream = await connect(served.base_url)
                reader = Reader(stream)
                await stream.send_all(get("/healthz"))
                answer = await reader.answer()
                assert answer.status == 503, answer
                error = answer.json()["error"]
                assert error["code"] == "too_many_connections"
                assert error["request_id"] == answer.headers["x-request-id"]
                assert answer.headers["connection"] == "close"
                await reader.closed()
                await stream.aclose()
            # Over the cap, the server held no more descriptors than the cap's worth (counted
            # once it has closed its last refused socket: it waits for the client's close).
            for _ in range(100):  # 5 s at most
                if (held := _open_files(served.process.pid)) <= before + cap:
                    break
                await trio.sleep(0.05)
            assert held <= before + cap
            for stream in kept:  # and the connections it serves did not notice
                assert (await ask(stream, get("/healthz"))).status == 200
    finally:
        for stream in kept:
            await stream.aclose()
        assert served.stop() == 0


async def test_sigterm_closes_idle_connections_and_exits(tmp_path: Path) -> None:
    served = await trio.to_thread.run_sync(partial(serve, tmp_path / "data", env=LONG_KEEP_ALIVE))
    idle: list[trio.SocketStream] = []
    try:
        with trio.fail_after(60):
            for _ in range(100):
                stream = await connect(served.base_url)
                idle.append(stream)
                assert (await ask(stream, get("/healthz"))).status == 200
            served.process.send_signal(signal.SIGTERM)
            for stream in idle:
                await Reader(stream).closed()
            exit_code = await trio.to_thread.run_sync(served.process.wait)
        assert exit_code == 0
    finally:
        for stream in idle:
            await stream.aclose()
        served.stop()
