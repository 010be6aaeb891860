"""An Idempotency-Key whose first request is still running is refused with 409."""

from __future__ import annotations

from uuid import uuid4

import trio
from quart import Response
from quart_trio import QuartTrio

from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.adapters.system import SystemClock
from conversation_service.domain.errors import DomainError
from conversation_service.domain.model import AccessRole, Principal
from conversation_service.entrypoints.http.errors import on_domain_error
from conversation_service.entrypoints.http.idempotency import Answer, Idempotency


async def test_a_key_still_in_flight_is_409_and_then_replays() -> None:
    store = InMemoryStore()
    idempotency = Idempotency(store, SystemClock())
    who = Principal(token_id=uuid4(), org_id=uuid4(), role=AccessRole.MEMBER)
    release, running = trio.Event(), trio.Event()
    runs = 0
    app = QuartTrio("in-flight")
    app.register_error_handler(DomainError, on_domain_error)

    @app.post("/slow")
    async def slow() -> Response:
        async def handle() -> Answer:
            nonlocal runs
            runs += 1
            running.set()
            await release.wait()
            return Answer.json({"n": runs}, 201)

        async def no_stream(_: dict) -> Response:
            raise AssertionError("not a stream")

        return await idempotency.run(who, who.org_id, handle, no_stream)

    client = app.test_client()
    headers = {"Idempotency-Key": "same"}
    answers = {}

    async def first() -> None:
        answers["first"] = await client.post("/slow", json={"a": 1}, headers=headers)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await running.wait()
            busy = await client.post("/slow", json={"a": 1}, headers=headers)
            assert busy.status_code == 409
            assert (await busy.get_json())["error"]["code"] == "idempotency_key_in_flight"
            release.set()
        again = await client.post("/slow", json={"a": 1}, headers=headers)
    assert answers["first"].status_code == again.status_code == 201
    assert await again.get_json() == await answers["first"].get_json() == {"n": 1}
    assert again.headers["Idempotent-Replayed"] == "true" and runs == 1
