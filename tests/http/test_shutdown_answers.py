"""SIGTERM under load: every request the server took gets a whole answer, never a reset.

New connections may be refused once the server stops listening (a refused connect is not
a request the server took); a request sent on a connection it accepted is answered, normally
or 503 `shutting_down`, with `Connection: close`.
"""

from __future__ import annotations

import itertools
import signal
from functools import partial
from pathlib import Path

import attrs
import httpx
import trio

from conversation_service.testing.served import Served, serve
from tests.http.raw_http import Reader, ask, connect, get

CLIENTS = 32


@attrs.define
class Tally:
    signalled: trio.Event = attrs.Factory(trio.Event)
    warmed: trio.Event = attrs.Factory(trio.Event)
    answers: int = 0
    after_signal: int = 0
    closing: int = 0  # answers that said Connection: close
    stopping: int = 0  # 503s for the service stopping
    refused: int = 0
    broken: list[str] = attrs.Factory(list)

    def record(self, response: httpx.Response) -> None:
        assert response.status_code in (200, 201, 503), response.text
        body = response.json()  # whole, and JSON
        if response.status_code == 503:
            assert body["error"]["code"] in ("shutting_down", "unavailable"), body
            assert body["error"]["request_id"] == response.headers["x-request-id"]
            self.stopping += 1
        self.answers += 1
        self.closing += response.headers.get("connection") == "close"
        if self.signalled.is_set():
            self.after_signal += 1
        if self.answers >= 10 * CLIENTS:
            self.warmed.set()


async def _hammer(served: Served, n: int, tally: Tally) -> None:
    q = {"org_id": str(served.org_id)}
    async with httpx.AsyncClient(
        base_url=served.base_url,
        headers={"Authorization": f"Bearer {served.token}"},
        timeout=30,
    ) as client:
        for i in itertools.count():
            try:
                if i % 3 == 0:
                    response = await client.get("/healthz")
                elif i % 3 == 1:
                    response = await client.get("/api/conversation/list", params=q)
                else:
                    response = await client.post(
                        "/api/conversation/create", params=q, json={"title": f"load {n}.{i}"}
                    )
            except httpx.ConnectError:
                if not tally.signalled.is_set():
                    raise
                tally.refused += 1  # the server stopped listening: this client is done
                return
            except httpx.TransportError as error:
                tally.broken.append(f"client {n} request {i}: {error!r}")
                return
            tally.record(response)


async def test_requests_during_sigterm_under_load_all_get_whole_answers(tmp_path: Path) -> None:
    served = await trio.to_thread.run_sync(
        partial(
            serve,
            tmp_path / "data",
            "--shutdown-grace",
            "1",
            "--rate-limit",
            "1000000/minute",
        )
    )
    tally = Tally()
    try:
        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                for n in range(CLIENTS):
                    nursery.start_soon(_hammer, served, n, tally)
                await tally.warmed.wait()
                served.process.send_signal(signal.SIGTERM)
                tally.signalled.set()
            exit_code = await trio.to_thread.run_sync(served.process.wait)
    finally:
        served.stop()
    assert tally.broken == [], f"{len(tally.broken)} of {tally.answers} broken: {tally.broken[:5]}"
    assert exit_code == 0
    assert tally.refused == CLIENTS  # every client ended on a refused connect, none on a reset
    assert tally.after_signal > 0 and tally.closing > 0


async def test_requests_taken_when_the_http_server_stops_are_answered_503(
    tmp_path: Path,
) -> None:
    served = await trio.to_thread.run_sync(
        partial(
            serve,
            tmp_path / "data",
            env={"CONVERSATION_SERVICE_KEEP_ALIVE_TIMEOUT": "120"},
        )
    )
    head = (
        f"POST /api/conversation/create?org_id={served.org_id} HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {served.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 20\r\n\r\n"
    ).encode()
    try:
        with trio.fail_after(60):
            idle = await connect(served.base_url)
            assert (await ask(idle, get("/healthz"))).status == 200
            late = await connect(served.base_url)  # its body ends after the stop began
            await late.send_all(head + b'{"title": ')
            stuck = await connect(served.base_url)  # its body never ends
            await stuck.send_all(head + b'{"title": ')
            halfway = await connect(served.base_url)  # idle, its request head half sent
            await halfway.send_all(b"GET /healthz HTTP/1.1\r\nHost: te")
            await trio.sleep(0.2)  # let the server read both heads (either way, a 503)
            served.process.send_signal(signal.SIGTERM)
            await Reader(idle).closed()  # the HTTP server is stopping now
            try:
                await late.send_all(b'"late"}    ')
            except trio.BrokenResourceError:
                pass  # answered already, as the stop found its head in the socket
            for stream in (late, stuck, halfway):
                reader = Reader(stream)
                answer = await reader.answer()
                assert answer.status == 503, answer
                assert answer.json()["error"]["code"] == "shutting_down"
                assert answer.headers["connection"] == "close"
                await reader.closed()
            exit_code = await trio.to_thread.run_sync(served.process.wait)
        assert exit_code == 0
    finally:
        served.stop()
