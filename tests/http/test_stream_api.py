"""stream_chat over real HTTP, parsed with httpx-sse as a client would."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import trio

from conversation_service.testing.upstream import (
    UPSTREAM_MODEL_ID,
    chunk,
    error_reply,
    registry_file,
    start_fake_openai,
    streaming_reply,
)
from tests.http.conftest import ECHO, Api, open_api, settings_for

# The kit's registry of one OpenAI-compatible model, served by the test's upstream.
OPENAI_MODEL = str(UPSTREAM_MODEL_ID)
registry_with_upstream = registry_file


async def test_stream_sends_start_content_end_with_ids_and_stores_both_messages(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    async with api.open_stream(session["id"], "how do vector databases work") as source:
        headers = source.response.headers
        events = [(sse.id, sse.event, sse.json()) async for sse in source.aiter_sse()]
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache" and headers["x-accel-buffering"] == "no"
    kinds = [kind for _, kind, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) == {"content"}
    ids = [int(event_id) for event_id, _, _ in events]
    assert ids == sorted(set(ids))
    start, end = events[0][2], events[-1][2]
    assert start["chat_session_id"] == session["id"] and start["model_id"] == ECHO
    text = "".join(data["content"] for _, kind, data in events if kind == "content")
    assert text == "Echo: how do vector databases work"
    assert all(data["message_id"] == start["message_id"] for _, _, data in events[1:])
    assert end["finish_reason"] == "stop" and end["usage"]["estimated"] is True
    messages = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()
    assert [(m["id"], m["role"], m["content"], m["status"]) for m in messages["messages"]] == [
        (start["user_message_id"], "user", "how do vector databases work", "completed"),
        (start["message_id"], "assistant", text, "completed"),
    ]


async def test_stream_errors_before_any_event_are_json(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    cases = [
        ({"chat_session_id": "00000000-0000-4000-8000-000000000001", "message": "hi"}, 404, None),
        ({"chat_session_id": session["id"], "message": "   "}, 400, "message"),
        ({"chat_session_id": session["id"]}, 400, "message"),
        (
            {"chat_session_id": session["id"], "message": "hi", "multitask": "shout"},
            400,
            "multitask",
        ),
        ({"chat_session_id": session["id"], "message": "x" * 100_001}, 400, "message"),
    ]
    for body, status, field in cases:
        response = await api.post("/api/conversation/stream_chat", body)
        assert response.status_code == status, body
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"].get("field") == field
    messages = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()
    assert messages["messages"] == []


async def test_completed_session_refuses_messages_with_409(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    done = await api.post("/api/conversation/complete_session", {"chat_session_id": session["id"]})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    refused = await api.post(
        "/api/conversation/stream_chat", {"chat_session_id": session["id"], "message": "hi"}
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "session_completed"
    found = (
        await api.get("/api/conversation/get_with_sessions", conversation_id=conv["id"])
    ).json()
    assert found["sessions"][0]["status"] == "completed"


async def test_reply_is_finished_and_stored_when_the_client_disconnects(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=50)) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        words = " ".join(f"w{i}" for i in range(20))
        async with api.open_stream(session["id"], words) as source:
            async for sse in source.aiter_sse():
                if sse.event == "content":
                    break  # leave after the first chunk: the connection closes
        with trio.fail_after(10):
            while True:
                page = (
                    await api.get("/api/conversation/messages", conversation_id=conv["id"])
                ).json()
                reply = page["messages"][1]
                if reply["status"] != "in_progress":
                    break
                await trio.sleep(0.05)
        assert (reply["status"], reply["content"]) == ("completed", "Echo: " + words)


async def test_cancel_over_http_stores_the_partial_reply(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=100)) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        events = []
        async with api.open_stream(session["id"], "a b c d e f g h i j k l") as source:
            async for sse in source.aiter_sse():
                events.append((sse.event, sse.json()))
                if sse.event == "content":
                    cancelled = await api.post(
                        "/api/conversation/cancel", {"chat_session_id": session["id"]}
                    )
                    assert cancelled.status_code == 200
        assert events[-1][0] == "end" and events[-1][1]["finish_reason"] == "cancelled"
        page = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()
        reply = page["messages"][1]
        assert reply["status"] == "cancelled"
        assert reply["content"] == "".join(d["content"] for k, d in events if k == "content")
        assert len(reply["content"]) < len("Echo: a b c d e f g h i j k l")


async def test_a_stream_outlives_quarts_response_timeout(tmp_path: Path) -> None:
    async with open_api(
        settings_for(tmp_path, echo_delay_ms=100), app_config={"RESPONSE_TIMEOUT": 0.3}
    ) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        events = await api.stream(session["id"], "one two three four five six seven")
        assert events[-1][1] == "end" and events[-1][2]["finish_reason"] == "stop"


async def test_one_conversation_holds_sessions_on_different_models(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(
            nursery, streaming_reply(["Vector ", "databases ", "index embeddings."], usage=(12, 5))
        )
        registry = registry_with_upstream(tmp_path, upstream.base_url)
        async with open_api(settings_for(tmp_path, models=registry)) as api:
            models = (await api.get("/api/models")).json()["models"]
            assert {m["id"] for m in models} == {ECHO, OPENAI_MODEL}
            conv = await api.conversation()
            echo_session = await api.session(conv["id"], ECHO)
            gpt_session = await api.session(conv["id"], OPENAI_MODEL)
            await api.stream(echo_session["id"], "first")
            events = await api.stream(gpt_session["id"], "how do vector databases work?")
            assert "".join(d["content"] for _, k, d in events if k == "content") == (
                "Vector databases index embeddings."
            )
            assert events[-1][2]["usage"] == {
                "prompt_tokens": 12,
                "completion_tokens": 5,
                "total_tokens": 17,
                "estimated": False,
            }
            # The upstream saw only its own session's messages.
            sent = upstream.requests[0].json()
            assert sent["model"] == "gpt-test" and sent["stream"] is True
            assert sent["messages"] == [
                {"role": "user", "content": "how do vector databases work?"}
            ]
            found = (
                await api.get("/api/conversation/get_with_sessions", conversation_id=conv["id"])
            ).json()
            assert [s["model_id"] for s in found["sessions"]] == [ECHO, OPENAI_MODEL]
            page = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()
            assert [(m["role"], m["model_id"]) for m in page["messages"]] == [
                ("user", None),
                ("assistant", ECHO),
                ("user", None),
                ("assistant", OPENAI_MODEL),
            ]
        nursery.cancel_scope.cancel()


async def test_upstream_failure_after_start_is_an_error_event_and_a_failed_message(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, error_reply(500, "the GPU caught fire"))
        registry = registry_with_upstream(tmp_path, upstream.base_url)
        async with open_api(settings_for(tmp_path, models=registry)) as api:
            conv = await api.conversation()
            session = await api.session(conv["id"], OPENAI_MODEL)
            events = await api.stream(session["id"], "hello")
            assert [k for _, k, _ in events] == ["start", "error", "end"]
            assert events[1][2]["code"] == "upstream_error"
            assert events[2][2]["finish_reason"] == "error"
            page = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()
            assert page["messages"][1]["status"] == "failed"
            # The session still takes messages (and the upstream is still broken).
            again = await api.stream(session["id"], "hello again")
            assert again[-1][1] == "end"
        nursery.cancel_scope.cancel()


async def test_unknown_route_and_method_are_json_errors(api: Api) -> None:
    missing = await api.client.get("/api/nothing/here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await api.client.get("/api/conversation/create", headers=api.a.auth, params=api.a.q)
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert isinstance(httpx.Headers(wrong.headers).get("x-request-id"), str)


async def test_body_over_the_cap_is_413_and_nothing_is_created(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, max_body_bytes=1024)) as api:
        response = await api.post("/api/conversation/create", {"title": "x" * 2000})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        listed = (await api.get("/api/conversation/list")).json()
        assert listed["conversations"] == []


async def test_reject_answers_409_while_a_reply_runs(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=100)) as api:
        conv = await api.conversation()
        session = await api.session(conv["id"])
        async with api.open_stream(session["id"], "one two three four") as source:
            busy = await api.post(
                "/api/conversation/stream_chat",
                {"chat_session_id": session["id"], "message": "me too", "multitask": "reject"},
            )
            assert busy.status_code == 409
            assert busy.json()["error"]["code"] == "session_busy"
            assert [sse.event async for sse in source.aiter_sse()][-1] == "end"
        page = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()
        assert [m["content"] for m in page["messages"]] == [
            "one two three four",
            "Echo: one two three four",
        ]


async def test_cancel_closes_the_upstream_request(tmp_path: Path) -> None:
    async def slow_stream(exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk("partial "))
        await exchange.wait_closed_by_client()
        closed.set()

    closed = trio.Event()
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, slow_stream)
        registry = registry_with_upstream(tmp_path, upstream.base_url)
        async with open_api(settings_for(tmp_path, models=registry)) as api:
            conv = await api.conversation()
            session = await api.session(conv["id"], OPENAI_MODEL)
            async with api.open_stream(session["id"], "go") as source:
                events = []
                async for sse in source.aiter_sse():
                    events.append((sse.event, sse.json()))
                    if sse.event == "content":
                        await api.post(
                            "/api/conversation/cancel", {"chat_session_id": session["id"]}
                        )
            with trio.fail_after(1):
                await closed.wait()  # the upstream saw its connection close
            assert events[-1][1]["finish_reason"] == "cancelled"
            page = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()
            assert (page["messages"][1]["status"], page["messages"][1]["content"]) == (
                "cancelled",
                "partial ",
            )
        nursery.cancel_scope.cancel()


async def test_each_request_is_logged_once_with_its_request_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="conversation_service.access"):
        created = await api.post("/api/conversation/create", {"title": "logged"})
        listed = await api.get("/api/conversation/list")
        session = await api.session(created.json()["id"])
        events = await api.stream(session["id"], "one two")
        await trio.sleep(0.1)  # the stream's line is written as its body ends
    lines = [r.getMessage() for r in caplog.records if r.name == "conversation_service.access"]
    for response in (created, listed):
        mine = [line for line in lines if response.headers["x-request-id"] in line]
        assert len(mine) == 1 and f" {response.status_code} " in mine[0]
    streamed = [line for line in lines if "/api/conversation/stream_chat" in line]
    assert len(streamed) == 1 and f"events={len(events)}" in streamed[0]


async def test_shutdown_closes_the_upstream_request(tmp_path: Path) -> None:
    async def endless(exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk("thinking "))
        await exchange.wait_closed_by_client()
        closed.set()

    closed = trio.Event()
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, endless)
        registry = registry_with_upstream(tmp_path, upstream.base_url)
        events = []
        async with open_api(settings_for(tmp_path, models=registry, shutdown_grace=0.2)) as api:
            conv = await api.conversation()
            session = await api.session(conv["id"], OPENAI_MODEL)
            async with api.open_stream(session["id"], "go") as source:
                async for sse in source.aiter_sse():
                    events.append((sse.event, sse.json()))
                    if sse.event == "content":
                        break
            # Leaving the block shuts the server down while the reply is still running.
        with trio.fail_after(5):
            await closed.wait()
        nursery.cancel_scope.cancel()
    assert events[0][0] == "start"
