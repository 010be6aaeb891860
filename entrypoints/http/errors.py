"""Errors as HTTP answers: one table from error class to status, one JSON shape for all.

`{"error": {"code": ..., "message": ..., "request_id": ...}}`. No traceback, stack or SQL
ever reaches a client; the unexpected ones are logged with the request id instead.
"""

from __future__ import annotations

import logging
import math

from quart import Response, g, jsonify
from werkzeug.exceptions import HTTPException

from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidField,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from ports.storage import StorageUnavailable

log = logging.getLogger("conversation_service.http")

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
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
}


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


async def on_domain_error(error: DomainError) -> Response:
    status = status_of(error)
    extra: dict[str, object] = {}
    if isinstance(error, InvalidField):
        extra["field"] = error.field
    response = error_response(status, error.code, error.message, **extra)
    if isinstance(error, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="conversation-service"'
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if status >= 500:
        log.warning("request %s: %s", request_id(), error)
    return response


async def on_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    message = error.description or error.name
    return error_response(status, code, message)


async def on_unexpected(error: Exception) -> Response:
    log.error("request %s failed", request_id(), exc_info=error)
    return error_response(
        500, "internal_error", "the server failed to handle this request; quote the request_id"
    )
