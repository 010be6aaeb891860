"""The client's rules without a server: which answers raise what, when to retry and how long
to wait, how a stream resumes and drops what it has already handed out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from httpx_sse import ServerSentEvent

from conversation_service.client import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentEvent,
    EndEvent,
    IdempotencyKeyInFlightError,
    InternalServerError,
    ModelUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ReplyFailedError,
    ResponseFormatError,
    RetryPolicy,
    SessionBusyError,
    SessionCompletedError,
    StartEvent,
    UnavailableError,
    calls,
)
from conversation_service.client.errors import error_from_response
from conversation_service.client.reply_tracker import ReplyTracker
from conversation_service.client.retries import Attempts, retry_after


def answer(status: int, code: str | None = None, **extra: Any) -> httpx.Response:
    headers = extra.pop("headers", {})
    body = {"error": {"code": code, "message": "it went wrong", "request_id": "rid", **extra}}
    return httpx.Response(status, json=body if code else None, headers=headers)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_field", BadRequestError),
        (401, "unauthenticated", AuthenticationError),
        (403, "forbidden", PermissionDeniedError),
        (404, "not_found", NotFoundError),
        (409, "session_busy", SessionBusyError),
        (409, "session_completed", SessionCompletedError),
        (409, "model_unavailable", ModelUnavailableError),
        (409, "idempotency_key_in_flight", IdempotencyKeyInFlightError),
        (409, "invalid_transition", ConflictError),
        (429, "rate_limited", RateLimitedError),
        (500, "internal_error", InternalServerError),
        (503, "storage_unavailable", UnavailableError),
        (413, "payload_too_large", ApiError),
    ],
)
def test_error_answers_map_to_a_class_by_status_then_code(
    status: int, code: str, cls: type[ApiError]
) -> None:
    error = error_from_response(answer(status, code, field="title"), retry_after=2.0)
    assert type(error) is cls
    assert (error.status, error.code, error.message, error.request_id) == (
        status,
        code,
        "it went wrong",
        "rid",
    )
    assert (error.field, error.retry_after) == ("title", 2.0)


def test_an_error_answer_that_is_not_json_still_says_its_status() -> None:
    response = httpx.Response(502, text="<html>bad gateway</html>", headers={"X-Request-Id": "x"})
    error = error_from_response(response)
    assert (type(error), error.code, error.request_id) == (ApiError, "http_502", "x")


def test_retry_after_is_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)
    assert retry_after(httpx.Headers({"Retry-After": "3"})) == 3.0
    dated = httpx.Headers({"Retry-After": "Thu, 26 Nov 2026 06:00:05 GMT"})
    assert retry_after(dated, now=now) == 5.0
    assert retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after(httpx.Headers({"Retry-After": "-1"})) is None
    assert retry_after(httpx.Headers()) is None


def test_what_is_retried_and_how_long_it_waits() -> None:
    policy = RetryPolicy(max_retries=2, max_wait=10, base=1, cap=4)
    attempts = Attempts(policy)
    assert attempts.after_response(answer(429, "rate_limited", headers={"Retry-After": "2"})) == 2
    wait = attempts.after_response(answer(503, "shutting_down"))
    assert wait is not None and 1 <= wait <= 2  # the second backoff: half fixed, half random
    assert attempts.after_response(answer(503, "shutting_down")) is None  # out of retries
    attempts.progressed()
    assert attempts.after_error(httpx.ConnectError("refused")) is not None
    assert attempts.after_error(httpx.UnsupportedProtocol("ftp")) is None

    fresh = Attempts(policy)
    assert fresh.after_response(answer(429, "rate_limited", headers={"Retry-After": "60"})) is None
    assert fresh.after_response(answer(409, "idempotency_key_in_flight")) is not None
    for status, code in [(400, "invalid_field"), (404, "not_found"), (409, "session_busy")]:
        assert fresh.after_response(answer(status, code)) is None
    assert fresh.after_response(answer(500, "internal_error")) is None


def test_a_post_keeps_one_idempotency_key_and_a_get_has_none() -> None:
    post = calls.create_conversation("t", False)
    assert post.headers()["Idempotency-Key"] == post.headers()["Idempotency-Key"]
    assert post.idempotency_key != calls.create_conversation("t", False).idempotency_key
    assert "Idempotency-Key" not in calls.list_models().headers()


def sse(event: str, event_id: int, **data: Any) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=json.dumps(data), id=str(event_id))


SESSION, MESSAGE = uuid4(), uuid4()


def start() -> ServerSentEvent:
    return sse(
        "start",
        0,
        message_id=str(MESSAGE),
        user_message_id=str(uuid4()),
        chat_session_id=str(SESSION),
        model_id=None,
    )


def content(event_id: int, text: str) -> ServerSentEvent:
    return sse("content", event_id, message_id=str(MESSAGE), content=text)


def end(event_id: int, finish_reason: str = "stop") -> ServerSentEvent:
    return sse("end", event_id, message_id=str(MESSAGE), finish_reason=finish_reason, usage=None)


def test_a_tracker_resumes_with_the_post_before_start_and_a_get_after() -> None:
    opening = calls.stream_chat(SESSION, "hi", None)
    tracker = ReplyTracker(session_id=SESSION, opening=opening)
    assert tracker.next_request() == (opening, {"Accept": "text/event-stream"})
    assert isinstance(tracker.accept(start()), StartEvent)
    assert isinstance(tracker.accept(content(6, "Echo: ")), ContentEvent)
    call, headers = tracker.next_request()
    assert (call.method, call.path, call.params["message_id"]) == (
        "GET",
        "/api/conversation/stream",
        str(MESSAGE),
    )
    assert headers["Last-Event-ID"] == "6"


def test_a_tracker_hands_out_each_event_once_and_adds_up_the_reply() -> None:
    tracker = ReplyTracker(session_id=SESSION, opening=calls.stream_chat(SESSION, "hi", None))
    seen = [tracker.accept(e) for e in (start(), content(6, "Echo: "), start(), content(6, "x"))]
    assert [type(e) for e in seen] == [StartEvent, ContentEvent, type(None), type(None)]
    assert tracker.accept(content(8, "hi")) == ContentEvent(id=8, message_id=MESSAGE, text="hi")
    assert tracker.accept(sse("something_new", 9)) is None  # a newer server's event
    assert isinstance(tracker.accept(end(10)), EndEvent) and tracker.over
    assert tracker.accept(content(11, "late")) is None
    reply = tracker.reply()
    assert (reply.id, reply.content, reply.finish_reason) == (MESSAGE, "Echo: hi", "stop")
    assert reply.chat_session_id == SESSION


def test_a_tracker_raises_a_failed_reply_at_its_end() -> None:
    tracker = ReplyTracker(session_id=SESSION, opening=calls.stream_chat(SESSION, "hi", None))
    tracker.accept(start())
    tracker.accept(content(4, "part"))
    assert tracker.accept(sse("error", 5, code="upstream_timeout", message="slow")) is None
    with pytest.raises(ReplyFailedError) as failed:
        tracker.accept(end(6, "error"))
    assert failed.value.code == "upstream_timeout" and failed.value.reply.content == "part"
    with pytest.raises(ReplyFailedError):
        tracker.reply()


def test_a_tracker_refuses_events_it_cannot_read() -> None:
    tracker = ReplyTracker(session_id=SESSION, opening=calls.stream_chat(SESSION, "hi", None))
    with pytest.raises(ResponseFormatError):
        tracker.accept(ServerSentEvent(event="content", data="{}", id="abc"))
    with pytest.raises(ResponseFormatError):
        tracker.accept(ServerSentEvent(event="start", data="not json", id="0"))
    with pytest.raises(ResponseFormatError):
        tracker.accept(sse("start", 0, message_id="not a uuid"))


def test_answers_with_fields_the_client_does_not_know_still_read() -> None:
    body = {
        "id": str(UUID(int=5)),
        "title": "t",
        "is_archived": False,
        "created_at": "2026-11-26T06:02:59.123456Z",
        "updated_at": "2026-11-26T06:02:59.123456Z",
        "colour": "blue",
    }
    read = calls.create_conversation("t", False).read(httpx.Response(201, json=body))
    assert read.created_at == datetime(2026, 11, 26, 6, 2, 59, 123456, tzinfo=UTC)
    with pytest.raises(ResponseFormatError):
        calls.create_conversation("t", False).read(httpx.Response(201, json={"id": "x"}))
