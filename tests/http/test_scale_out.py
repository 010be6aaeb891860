"""Several instances on one PostgreSQL, any of which may receive any request: every rule is
held by the database, whichever instance a request reaches."""

from __future__ import annotations

from pathlib import Path

import httpx
import httpx_sse
import pytest
import trio
from cryptography.fernet import Fernet

from conversation_service.testing.upstream import (
    UPSTREAM_MODEL_ID,
    Exchange,
    chunk,
    registry_file,
    start_fake_openai,
)
from tests.http.instances import (
    Instance,
    clients_of,
    close_all,
    instances,
    text,
    wait_for,
)

pytestmark = pytest.mark.backends("postgres")

SLOW = ("--echo-delay-ms", "60")  # an echo reply of n words takes n * 60 ms
WORDS = " ".join(f"w{i}" for i in range(40))  # ~2.4 s of reply


async def test_a_session_replies_once_at_a_time_whichever_instance_is_asked(
    tmp_path: Path,
) -> None:
    with instances(tmp_path, 2, *SLOW) as servers:
        a, b = await clients_of(servers)
        try:
            session = await a.new_session()
            first: list = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.stream, session["id"], WORDS, first)
                await wait_for(lambda: _started(first))
                # B refuses with reject, queues with enqueue: the session runs on A.
                refused: list = []
                assert await b.stream(session["id"], "no", refused, multitask="reject") == 409
                assert refused[0][2]["error"]["code"] == "session_busy"
                queued: list = []
                nursery.start_soon(b.stream, session["id"], "after", queued)
            assert first[-1][1] == "end" and text(first) == "Echo: " + WORDS
            assert queued[0][1] == "start" and text(queued) == "Echo: after"
            stored = await b.messages(session["conversation_id"])
            assert [m["content"] for m in stored] == [
                WORDS, "Echo: " + WORDS, "after", "Echo: after",
            ]  # fmt: skip

            # interrupt from B stops A's running reply first
            long: list = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.stream, session["id"], WORDS, long)
                await wait_for(lambda: _started(long))
                interrupting: list = []
                await b.stream(session["id"], "now", interrupting, multitask="interrupt")
            assert long[-1][2]["finish_reason"] == "cancelled"
            assert text(interrupting) == "Echo: now"
        finally:
            await close_all([a, b])


async def test_a_reply_is_followed_from_another_instance_each_event_once(tmp_path: Path) -> None:
    with instances(tmp_path, 2, *SLOW) as servers:
        a, b = await clients_of(servers)
        try:
            session = await a.new_session()
            live: list = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.stream, session["id"], WORDS, live)
                await wait_for(lambda: len([e for e in live if e[1] == "content"]) >= 5)
                seen = list(live)
                message_id = seen[0][2]["message_id"]
                rest = await b.attach(session["id"], message_id, after=seen[-1][0])
            assert rest[-1][1] == "end"
            ids = [event_id for event_id, _, _ in rest]
            assert ids == sorted(set(ids)) and ids[0] > seen[-1][0]
            assert text(seen) + text(rest) == "Echo: " + WORDS == text(live)
            assert rest[-1][2]["finish_reason"] == live[-1][2]["finish_reason"] == "stop"
        finally:
            await close_all([a, b])


async def test_cancel_and_complete_sent_to_another_instance_stop_the_reply(
    tmp_path: Path,
) -> None:
    with instances(tmp_path, 2, *SLOW) as servers:
        a, b = await clients_of(servers)
        try:
            session = await a.new_session()
            running: list = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.stream, session["id"], WORDS, running)
                await wait_for(lambda: len([e for e in running if e[1] == "content"]) >= 3)
                cancelled = await b.post(
                    "/api/conversation/cancel", {"chat_session_id": session["id"]}
                )
                assert cancelled.json() == {"chat_session_id": session["id"], "cancelled": True}
            assert running[-1][2]["finish_reason"] == "cancelled"
            assert len(text(running)) < len("Echo: " + WORDS)

            again: list = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.stream, session["id"], WORDS, again)
                await wait_for(lambda: _started(again))
                done = await b.post(
                    "/api/conversation/complete_session", {"chat_session_id": session["id"]}
                )
                assert done.status_code == 200 and done.json()["status"] == "completed"
            assert again[-1][2]["finish_reason"] == "cancelled"
            late: list = []
            assert await a.stream(session["id"], "late", late) == 409
            stored = await a.messages(session["conversation_id"])
            assert [m["status"] for m in stored][-1] == "cancelled"
        finally:
            await close_all([a, b])


def _started(events: list) -> bool:
    return any(kind == "start" for _, kind, _ in events)


async def test_an_orgs_models_are_the_same_on_every_instance(tmp_path: Path) -> None:
    env = {
        "CONVERSATION_SERVICE_ALLOW_PRIVATE_MODEL_URLS": "true",
        # Every instance seals and opens the organisations' model keys with the same key.
        "CONVERSATION_SERVICE_SECRET_KEY": Fernet.generate_key().decode(),
    }
    with instances(tmp_path, 2, env=env) as servers:
        a, b = await clients_of(servers)  # the first start's token is an admin's
        try:
            entry = {
                "name": "team-model", "provider": "openai",
                "base_url": "http://127.0.0.1:9/v1", "upstream_model": "m", "api_key": "k",
            }  # fmt: skip
            created = await a.post("/api/models", entry)
            assert created.status_code == 201, created.text
            model_id = created.json()["id"]

            async def listed_on_b() -> bool:
                models = (await b.get("/api/models")).json()["models"]
                return model_id in {m["id"] for m in models}

            await wait_for(listed_on_b, 10)
            session = await b.new_session(model_id)  # usable there: a session binds to it
            assert session["model_id"] == model_id
            removed = await b.http.delete(f"/api/models/{model_id}", params=b.q)
            assert removed.status_code == 204

            async def gone_from_a() -> bool:
                models = (await a.get("/api/models")).json()["models"]
                return model_id not in {m["id"] for m in models}

            await wait_for(gone_from_a, 10)
            refused: list = []
            assert await a.stream(session["id"], "hi", refused) == 409
            assert refused[0][2]["error"]["code"] == "model_unavailable"
        finally:
            await close_all([a, b])


async def test_rate_limits_and_stream_caps_are_shared(tmp_path: Path) -> None:
    extra = ("--rate-limit", "12/minute", "--max-streams-per-org", "2", *SLOW)
    with instances(tmp_path, 2, *extra) as servers:
        a, b = await clients_of(servers)
        try:
            session_a, session_b, third = [await a.new_session() for _ in range(3)]  # 6 hits
            streams: list[list] = [[], []]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.stream, session_a["id"], WORDS, streams[0])  # 7
                nursery.start_soon(b.stream, session_b["id"], WORDS, streams[1])  # 8
                await wait_for(lambda: all(_started(s) for s in streams))
                refused: list = []
                # Two streams are open, one on each: a third is refused on either instance.
                assert await a.stream(third["id"], "three", refused) == 429  # 9
                assert await b.stream(third["id"], "three", refused) == 429  # 10
                nursery.cancel_scope.cancel()
            statuses = [(await b.get("/api/models")).status_code for _ in range(2)]  # 11, 12
            assert statuses == [200, 200]
            over_a = await a.get("/api/models")  # the 13th request of this token: on A
            assert over_a.status_code == 429 and over_a.json()["error"]["code"] == "rate_limited"
            over_b = await b.get("/api/models")
            assert over_b.status_code == 429
        finally:
            await close_all([a, b])


async def test_a_killed_instances_replies_are_taken_over_and_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    env = {"CONVERSATION_SERVICE_LEASE_TIMEOUT": "2"}
    with instances(tmp_path, 3, *SLOW, env=env) as servers:
        a, b, c = await clients_of(servers)
        try:
            # Sessions that A runs (it took their leases first) and some that B runs.
            on_a = [await a.new_session() for _ in range(4)]
            on_b = [await b.new_session() for _ in range(2)]
            streams = [[] for _ in on_a + on_b]
            async with trio.open_nursery() as nursery:
                for (client, session), events in zip(
                    [(a, s) for s in on_a] + [(b, s) for s in on_b], streams, strict=True
                ):
                    nursery.start_soon(_stream_quietly, client, session["id"], WORDS, events)
                await wait_for(lambda: all(_started(s) for s in streams))
                await trio.sleep(0.5)
                servers[0].process.kill()  # SIGKILL: nothing of A's is handed over
                await wait_for(lambda: all(s[-1][1] in ("end", "cut") for s in streams))
            acknowledged = {s[0][2]["user_message_id"] for s in streams}

            async def taken_over() -> bool:
                for session in on_a:
                    stored = await c.messages(session["conversation_id"])
                    if any(m["status"] == "in_progress" for m in stored):
                        return False
                return True

            await wait_for(taken_over, 30)  # within the lease timeout, and a round of upkeep
            for session in on_a:
                stored = await c.messages(session["conversation_id"])
                assert stored[0]["id"] in acknowledged  # the user message that got `start`
                assert stored[1]["status"] == "incomplete"
                assert stored[1]["error"]["code"] == "interrupted"
                again: list = []  # and the session takes messages again, on any instance
                assert await c.stream(session["id"], "still there?", again) == 200
                assert text(again) == "Echo: still there?"
            for session, events in zip(on_b, streams[len(on_a) :], strict=True):
                assert events[-1][2]["finish_reason"] == "stop"  # B's replies never noticed
                stored = await b.messages(session["conversation_id"])
                assert [m["status"] for m in stored] == ["completed", "completed"]
        finally:
            await close_all([a, b, c])


async def test_a_stopped_instance_hands_its_sessions_over_at_once(tmp_path: Path) -> None:
    # The default lease timeout (15 s): a handover that waited for it would fail the bound.
    with instances(tmp_path, 2, *SLOW, "--shutdown-grace", "0.2") as servers:
        a, b = await clients_of(servers)
        try:
            session = await a.new_session()
            running: list = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stream_quietly, a, session["id"], WORDS, running)
                await wait_for(lambda: _started(running))
                servers[0].stop()  # SIGTERM, and wait for it to exit
            with trio.fail_after(5):
                again: list = []
                assert await b.stream(session["id"], "over to you", again) == 200
            assert text(again) == "Echo: over to you"
            stored = await b.messages(session["conversation_id"])
            assert [m["status"] for m in stored] == [
                "completed", "incomplete", "completed", "completed",
            ]  # fmt: skip
        finally:
            await close_all([a, b])


async def _stream_quietly(client: Instance, session_id: str, message: str, events: list) -> None:
    """A stream whose connection may be cut by its instance dying: then it ends with "cut"."""
    try:
        await client.stream(session_id, message, events)
    except (httpx.HTTPError, httpx_sse.SSEError):
        events.append((-1, "cut", {}))


async def test_cancel_sent_to_another_instance_closes_the_upstream_request(
    tmp_path: Path,
) -> None:
    closed_after: list[float] = []

    async def slow_upstream(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk("thinking"))
        cancelled_at.append(trio.current_time())
        await exchange.wait_closed_by_client()
        closed_after.append(trio.current_time())

    cancelled_at: list[float] = []
    async with trio.open_nursery() as upstreams:
        upstream = await start_fake_openai(upstreams, slow_upstream)
        registry = registry_file(tmp_path, upstream.base_url)
        with instances(tmp_path, 2, "--models", str(registry)) as servers:
            a, b = await clients_of(servers)
            try:
                session = await a.new_session(str(UPSTREAM_MODEL_ID))
                running: list = []
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(a.stream, session["id"], "think hard", running)
                    await wait_for(lambda: any(e[1] == "content" for e in running))
                    sent = trio.current_time()
                    cancel = await b.post(
                        "/api/conversation/cancel", {"chat_session_id": session["id"]}
                    )
                    assert cancel.json()["cancelled"] is True
                    await wait_for(lambda: closed_after, 10)
                assert running[-1][2]["finish_reason"] == "cancelled"
                # How long the upstream request outlived a cancel sent to the other instance
                # (reported, not asserted: a shared machine's timings are noise).
                print(f"upstream closed {closed_after[0] - sent:.3f} s after the cancel was sent")
            finally:
                await close_all([a, b])
        upstreams.cancel_scope.cancel()
