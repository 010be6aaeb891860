"""Idempotency-Key on POST routes, and the connection-level limits."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import trio
from httpx_sse import aconnect_sse

from tests.http.conftest import Api, open_api, settings_for


def keyed(api: Api, key: str) -> dict[str, str]:
    return {**api.a.auth, "Idempotency-Key": key}


async def test_same_key_and_body_replays_the_first_answer(api: Api) -> None:
    body = {"title": "once"}
    first = await api.client.post(
        "/api/conversation/create", json=body, params=api.a.q, headers=keyed(api, "k-1")
    )
    again = await api.client.post(
        "/api/conversation/create", json=body, params=api.a.q, headers=keyed(api, "k-1")
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    listed = (await api.get("/api/conversation/list")).json()["conversations"]
    assert [c["id"] for c in listed] == [first.json()["id"]]  # created once


async def test_same_key_with_another_body_is_400_and_keys_are_per_token(api: Api) -> None:
    await api.client.post(
        "/api/conversation/create", json={"title": "a"}, params=api.a.q, headers=keyed(api, "k-2")
    )
    other = await api.client.post(
        "/api/conversation/create", json={"title": "b"}, params=api.a.q, headers=keyed(api, "k-2")
    )
    assert other.status_code == 400 and other.json()["error"]["field"] == "Idempotency-Key"
    # The same key under another organisation's token is another key.
    theirs = await api.client.post(
        "/api/conversation/create",
        json={"title": "b"},
        params=api.b.q,
        headers={**api.b.auth, "Idempotency-Key": "k-2"},
    )
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers


async def test_a_failed_request_does_not_keep_its_key(api: Api) -> None:
    bad = await api.client.post(
        "/api/conversation/create", json={"title": ""}, params=api.a.q, headers=keyed(api, "k-3")
    )
    assert bad.status_code == 400
    good = await api.client.post(
        "/api/conversation/create", json={"title": ""}, params=api.a.q, headers=keyed(api, "k-3")
    )
    assert good.status_code == 400 and "idempotent-replayed" not in good.headers


async def test_bad_keys_are_refused(api: Api) -> None:
    for key in ("x" * 256, "tab\there"):
        response = await api.client.post(
            "/api/conversation/create", json={"title": "t"}, params=api.a.q, headers=keyed(api, key)
        )
        assert response.status_code == 400, key
        assert response.json()["error"]["field"] == "Idempotency-Key"


async def test_stream_chat_retry_reattaches_without_a_second_message(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=30)) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        body = {"chat_session_id": session["id"], "message": "one two three four five"}
        seen = []
        async with aconnect_sse(
            api.client,
            "POST",
            "/api/conversation/stream_chat",
            params=api.a.q,
            headers=keyed(api, "s-1"),
            json=body,
        ) as source:
            async for sse in source.aiter_sse():
                seen.append((sse.id, sse.event, sse.json()))
                if len(seen) == 2:
                    break  # the network drops; the client retries with the same key
        rest = []
        headers = {**keyed(api, "s-1"), "Last-Event-ID": seen[-1][0]}
        with trio.fail_after(10):
            async with aconnect_sse(
                api.client,
                "POST",
                "/api/conversation/stream_chat",
                params=api.a.q,
                headers=headers,
                json=body,
            ) as source:
                assert source.response.headers["idempotent-replayed"] == "true"
                async for sse in source.aiter_sse():
                    rest.append((sse.id, sse.event, sse.json()))
        text = "".join(d["content"] for _, k, d in seen + rest if k == "content")
        assert text == "Echo: one two three four five"
        assert rest[-1][1] == "end" and all(int(i) > int(seen[-1][0]) for i, _, _ in rest)
        messages = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()[
            "messages"
        ]
        assert [m["role"] for m in messages] == ["user", "assistant"]


async def read_head(stream: trio.SocketStream) -> bytes:
    received = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some(65536)
    return received


async def test_request_heads_too_large_are_refused(api: Api) -> None:
    url = urlsplit(api.server.base_url)
    stream = await trio.open_tcp_stream(url.hostname, url.port)
    head = (
        f"GET /api/conversation/list?org_id={api.a.org_id} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {api.a.token}\r\nX-Big: {'a' * 32_000}\r\n\r\n"
    )
    await stream.send_all(head.encode())
    received = await read_head(stream)
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.split(b" ")[1] == b"431"
    assert b"connection: close" in rest.lower()  # not to be reused
    await stream.aclose()


async def test_a_body_sent_too_slowly_is_refused(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, body_timeout=0.5)) as api:
        url = urlsplit(api.server.base_url)
        stream = await trio.open_tcp_stream(url.hostname, url.port)
        head = (
            f"POST /api/conversation/create?org_id={api.a.org_id} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {api.a.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100\r\n\r\n"
        )
        await stream.send_all(head.encode() + b'{"title": ')  # and then nothing
        received = await read_head(stream)
        assert received.split(b" ", 2)[1] == b"408"
        assert b"connection: close" in received.lower()
        await stream.aclose()
        assert (await api.get("/api/conversation/list")).json()["conversations"] == []


async def test_idle_timers_never_cut_a_stream(tmp_path: Path) -> None:
    # The client sends nothing while it listens: a stream longer than the idle timeout.
    async with open_api(settings_for(tmp_path, keep_alive_timeout=0.3, echo_delay_ms=100)) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        events = await api.stream(session["id"], "a b c d e f g h i j")
        assert events[-1][1] == "end" and events[-1][2]["finish_reason"] == "stop"


async def test_cors_is_off_unless_origins_are_listed(tmp_path: Path) -> None:
    origin = {"Origin": "https://app.example.com"}
    async with open_api(settings_for(tmp_path / "off")) as api:
        response = await api.client.get(
            "/api/conversation/list", params=api.a.q, headers={**api.a.auth, **origin}
        )
        assert "access-control-allow-origin" not in response.headers
    async with open_api(
        settings_for(tmp_path / "on", cors_origins=("https://app.example.com",))
    ) as api:
        allowed = await api.client.get(
            "/api/conversation/list", params=api.a.q, headers={**api.a.auth, **origin}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        preflight = await api.client.options(
            "/api/conversation/create",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]
        stranger = await api.client.get(
            "/api/conversation/list",
            params=api.a.q,
            headers={**api.a.auth, "Origin": "https://evil.test"},
        )
        assert "access-control-allow-origin" not in stranger.headers
