"""Re-attaching to replies over HTTP with Last-Event-ID, and listeners that never read."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import h11
import trio
from httpx_sse import aconnect_sse

from tests.http.conftest import Api, open_api, settings_for


async def reattach(
    api: Api, session_id: str, message_id: str, last_event_id: str | None = None, **params: str
) -> list[tuple[str, str, dict]]:
    headers = dict(api.a.auth)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    events = []
    with trio.fail_after(30):
        async with aconnect_sse(
            api.client,
            "GET",
            "/api/conversation/stream",
            headers=headers,
            params={**api.a.q, "chat_session_id": session_id, "message_id": message_id, **params},
        ) as source:
            assert source.response.status_code == 200, await source.response.aread()
            async for sse in source.aiter_sse():
                events.append((sse.id, sse.event, sse.json()))
    return events


def content(events: list[tuple[str, str, dict]]) -> str:
    return "".join(d["content"] for _, k, d in events if k == "content")


async def test_reconnect_with_last_event_id_resumes_a_running_reply(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=40)) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        message = " ".join(f"word{i}" for i in range(15))
        seen = []
        async with api.open_stream(session["id"], message) as source:
            async for sse in source.aiter_sse():
                seen.append((sse.id, sse.event, sse.json()))
                if len(seen) == 3:
                    break  # the page refreshes
        message_id = seen[0][2]["message_id"]
        rest = await reattach(api, session["id"], message_id, last_event_id=seen[-1][0])
        assert content(seen) + content(rest) == "Echo: " + message
        assert [int(i) for i, _, _ in rest] == sorted({int(i) for i, _, _ in rest})
        assert int(rest[0][0]) > int(seen[-1][0]) and rest[-1][1] == "end"
        # Once finished, the same reply replays whole (from memory or storage).
        whole = await reattach(api, session["id"], message_id)
        assert whole[0][1] == "start" and content(whole) == "Echo: " + message


async def test_reattach_errors_are_json(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    events = await api.stream(session["id"], "hi")
    message_id = events[0][2]["message_id"]
    for params, headers, status, field in [
        ({"message_id": "00000000-0000-4000-8000-000000000001"}, {}, 404, None),
        ({"message_id": events[0][2]["user_message_id"]}, {}, 404, None),
        ({}, {}, 400, "message_id"),
        ({"message_id": message_id}, {"Last-Event-ID": "abc"}, 400, "Last-Event-ID"),
        ({"message_id": message_id, "after": "-5"}, {}, 400, "after"),
    ]:
        response = await api.client.get(
            "/api/conversation/stream",
            headers={**api.a.auth, **headers},
            params={**api.a.q, "chat_session_id": session["id"], **params},
        )
        assert response.status_code == status, params
        assert response.json()["error"].get("field") == field


async def test_resuming_at_or_past_the_end_of_a_finished_reply(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    events = await api.stream(session["id"], "hi")
    end_id = int(events[-1][0])
    query = {**api.a.q, "chat_session_id": session["id"], "message_id": events[0][2]["message_id"]}

    async def resume(headers: dict[str, str], **params: str):
        return await api.client.get(
            "/api/conversation/stream", headers={**api.a.auth, **headers}, params=query | params
        )

    # At the end: nothing follows; 204 (an EventSource stops reconnecting on it).
    for answer in (
        await resume({"Last-Event-ID": str(end_id)}),
        await resume({}, after=str(end_id)),
    ):
        assert answer.status_code == 204 and answer.content == b""
    # Before it: exactly the rest, `end` included.
    rest = await resume({"Last-Event-ID": str(end_id - 1)})
    assert rest.status_code == 200 and rest.text.count("event: end") == 1
    # Past it: no event of this reply ever had that id.
    for headers, params, field in [
        ({"Last-Event-ID": str(end_id + 1)}, {}, "Last-Event-ID"),
        ({}, {"after": str(end_id + 100)}, "after"),
    ]:
        answer = await resume(headers, **params)
        assert answer.status_code == 400
        assert answer.json()["error"]["field"] == field
        assert f"last event ({end_id}" in answer.json()["error"]["message"]


async def test_last_event_id_and_after_take_the_same_syntax(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    events = await api.stream(session["id"], "hi")
    query = {**api.a.q, "chat_session_id": session["id"], "message_id": events[0][2]["message_id"]}
    for bad in ("1_0", "+3", "-1", "3 4", "0x1", "1e3", "9" * 30):
        for headers, params, field in [
            ({"Last-Event-ID": bad}, {}, "Last-Event-ID"),
            ({}, {"after": bad}, "after"),
        ]:
            answer = await api.client.get(
                "/api/conversation/stream",
                headers={**api.a.auth, **headers},
                params=query | params,
            )
            assert answer.status_code == 400, (bad, field)
            assert answer.json()["error"]["field"] == field


async def test_path_ids_take_the_same_form_as_query_ids(api: Api) -> None:
    echo = "6563686f-0000-4000-8000-000000000000"
    for other_form in (
        "{" + echo + "}",
        "urn:uuid:" + echo,
        echo.replace("-", ""),
        echo.upper()[:-1] + "Z",
    ):
        answer = await api.client.delete(
            f"/api/models/{other_form}", headers=api.a.auth, params=api.a.q
        )
        assert answer.status_code in (400, 404), other_form  # 404: a route not matched at all
        if answer.status_code == 400:
            assert answer.json()["error"]["field"] == "model_id"
        listed = await api.get("/api/conversation/get_with_sessions", conversation_id=other_form)
        assert listed.status_code == 400 and listed.json()["error"]["field"] == "conversation_id"


async def stream_on_a_small_buffer(api: Api, session_id: str, message: str) -> trio.SocketStream:
    """A stream_chat request sent on a bare socket that takes 4 KiB at a time."""
    body = json.dumps({"chat_session_id": session_id, "message": message}).encode()
    url = urlsplit(api.server.base_url)
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect((url.hostname, url.port))
    stream = trio.SocketStream(sock)
    request = (
        f"POST /api/conversation/stream_chat?org_id={api.a.org_id} HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nAuthorization: Bearer {api.a.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    await stream.send_all(request + body)
    return stream


async def test_a_slow_reader_gets_a_stream_larger_than_the_socket_buffers_whole(
    tmp_path: Path,
) -> None:
    # Writes that fit the socket's buffer go out at once; one that fits only in part has its
    # rest written under the send deadline. A reader slower than the reply, but reading,
    # must get every byte of every event in order.
    async with open_api(settings_for(tmp_path, echo_delay_ms=0, send_timeout=10.0)) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        big = "y " * 49_000  # ~5 MB of events
        slow = await stream_on_a_small_buffer(api, session["id"], big)
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method="POST", target="/", headers=[("Host", "x")]))
        received = bytearray()
        with trio.fail_after(60):
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    await trio.sleep(0.0005)  # slower than the server writes
                    parser.receive_data(await slow.receive_some(4096))
                elif isinstance(event, h11.Response):
                    assert event.status_code == 200
                elif isinstance(event, h11.Data):
                    received += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
        await slow.aclose()
        events = []
        for block in received.decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in fields:
                events.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
        assert content(events) == "Echo: " + big
        assert [kind for _, kind, _ in events if kind != "content"] == ["start", "end"]


async def test_a_listener_that_never_reads_does_not_hold_up_another(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=0, send_timeout=1.0)) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        big = "x " * 49_000  # ~5 MB of events: more than the server's socket buffer holds
        stalled = await stream_on_a_small_buffer(api, session["id"], big)
        head = b""
        while b"event: start" not in head:  # read up to the start event, then never again
            head += await stalled.receive_some(4096)
        assert b" 200 " in head.split(b"\r\n", 1)[0]
        start = head.split(b"event: start\ndata: ", 1)[1].split(b"\n", 1)[0]
        message_id = json.loads(start)["message_id"]
        with trio.fail_after(30):
            events = await reattach(api, session["id"], message_id)
        assert content(events) == "Echo: " + big
        assert events[-1][1] == "end" and events[-1][2]["finish_reason"] == "stop"
        # The server gives up on the stalled reader: draining its socket now ends in EOF,
        # before the whole (multi-megabyte) stream was delivered.
        tail = b""
        with trio.fail_after(30):
            while chunk := await stalled.receive_some(1 << 16):
                tail = (tail + chunk)[-4096:]
        assert b"event: end" not in tail
        await stalled.aclose()
