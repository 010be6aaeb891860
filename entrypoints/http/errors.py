"""Errors as HTTP answers: one table from error class to status, one JSON shape for all.

`{"error": {"code": ..., "message": ..., "request_id": ...}}`. No traceback, stack or SQL
ever reaches a client; the unexpected ones are logged with the request id instead.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid

from quart import Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from conversation_service.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidField,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from conversation_service.ports.storage import StorageUnavailable

log = logging.getLogger("conversation_service.http")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # a client's X-Request-Id we keep


class ShuttingDown(Unavailable):
    """The HTTP server is stopping: the request was not handled."""

    code = "shutting_down"


STATUS: list[tuple[type[DomainError], int]] = [
    (InvalidField, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (StorageUnavailable, 503),
    (Unavailable, 503),
]

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
    501: "not_implemented",
}


def request_id_for(incoming: str | None) -> str:
    """The client's X-Request-Id when it is a sane one, else a new id."""
    if incoming and REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def error_json(code: str, message: str, request_id: str) -> bytes:
    """The error body for answers made outside Quart (the server's own refusals)."""
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def code_for_status(status: int) -> str:
    return _HTTP_CODES.get(status, "http_error")


def request_id() -> str:
    return str(getattr(g, "request_id", "-"))


def error_response(status: int, code: str, message: str, **extra: object) -> Response:
    body: dict[str, object] = {"code": code, "message": message, "request_id": request_id()}
    body.update(extra)
    response = jsonify({"error": body})
    response.status_code = status
    return response


def status_of(error: DomainError) -> int:
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 500


async def _settled(response: Response, *, wait: bool = True) -> Response:
    """The answer, once the rest of the request body (at most MAX_CONTENT_LENGTH) has arrived.

    Hypercorn closes the connection when an answer goes out before the request body has
    arrived (a 401 or 405 decided on the headers alone, the body in a later packet): the
    client, still sending its body, would meet a closed socket and could lose the answer.
    A body too big or too slow to wait for gets `Connection: close` instead, so clients do
    not reuse it.
    """
    if wait:
        try:
            await request.get_data(cache=False)
            return response
        except HTTPException:
            pass
    response.headers["Connection"] = "close"
    return response


async def on_domain_error(error: DomainError) -> Response:
    status = status_of(error)
    extra: dict[str, object] = {}
    if isinstance(error, InvalidField):
        extra["field"] = error.field
    message = error.message
    if isinstance(error, StorageUnavailable):
        # Its text names driver errors and SQL: for the log, not for the client.
        message = "storage is unavailable; try again later (quote the request_id)"
    response = error_response(status, error.code, message, **extra)
    if isinstance(error, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="conversation-service"'
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if status >= 500 and not isinstance(error, ShuttingDown):  # that one is expected
        log.warning("request %s: %s", request_id(), error)
    return await _settled(response)


async def on_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = code_for_status(status)
    message = error.description or error.name
    response = error_response(status, code, message)
    # Keep what the exception says about itself, e.g. 405's Allow (required by RFC 9110).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    # 408, 413 and 431 refuse the request itself: the connection is not reused after them,
    # and waiting for a body again would not end well.
    return await _settled(response, wait=status not in (408, 413, 431))


async def on_unexpected(error: Exception) -> Response:
    log.error("request %s failed", request_id(), exc_info=error)
    response = error_response(
        500, "internal_error", "the server failed to handle this request; quote the request_id"
    )
    return await _settled(response)
