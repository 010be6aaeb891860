"""Every error the client raises: one class per answer a program handles differently.

An error answer (`{"error": {"code", "message", "request_id", "field"?}}`) becomes an
ApiError subclass chosen by status, then by code for the 409s a program tells apart. Each
carries the status, code, message and request id (quote it to the operator: it names the
server's log line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conversation_service.client.events import Reply


class ConversationServiceError(Exception):
    """Base of every error this client raises."""


class ApiConnectionError(ConversationServiceError):
    """The server could not be reached, or kept dropping the connection, after the retries."""


class ApiTimeoutError(ApiConnectionError):
    """The server did not answer in time, after the retries."""


class ResponseFormatError(ConversationServiceError):
    """An answer or a stream event is not what the API documents."""


class StreamError(ConversationServiceError):
    """A reply's stream was over before this stream saw its `end` (resumed past it)."""


class ReplyFailedError(ConversationServiceError):
    """The reply's stream sent `error`: the model or the service could not finish it.

    `reply` is what was written before (stored `failed`, or `incomplete` when the service
    stopped), with `finish_reason` `error`.
    """

    def __init__(self, code: str, message: str, reply: Reply) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


class ApiError(ConversationServiceError):
    """The server answered with an error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message} (request id {request_id})")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.field = field  # the input at fault, for a 400
        self.retry_after = retry_after  # seconds the server asked to wait (429, 503)


class BadRequestError(ApiError):
    """400: a missing, malformed or unknown input; `field` names it."""


class AuthenticationError(ApiError):
    """401: the token is missing, malformed, unknown, revoked or expired."""


class PermissionDeniedError(ApiError):
    """403: the token is of another organisation, or its role may not do this."""


class NotFoundError(ApiError):
    """404: no such object in this organisation (or no such route)."""


class ConflictError(ApiError):
    """409: the request clashes with the object's current state."""


class SessionBusyError(ConflictError):
    """409 session_busy: the session is replying and the message asked not to wait."""


class SessionCompletedError(ConflictError):
    """409 session_completed: the session is closed for good; start another."""


class ModelUnavailableError(ConflictError):
    """409 model_unavailable: the session's model was removed; start a session on another."""


class IdempotencyKeyInFlightError(ConflictError):
    """409 idempotency_key_in_flight: the first request with this key is still running."""


class RateLimitedError(ApiError):
    """429: over the token's request rate, the organisation's streams or a session's queue."""


class UnavailableError(ApiError):
    """503: storage unavailable, the service shutting down, or too many connections."""


class InternalServerError(ApiError):
    """500: the server failed; quote the request id."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
    500: InternalServerError,
    503: UnavailableError,
}
_CONFLICTS: dict[str, type[ConflictError]] = {
    "session_busy": SessionBusyError,
    "session_completed": SessionCompletedError,
    "model_unavailable": ModelUnavailableError,
    "idempotency_key_in_flight": IdempotencyKeyInFlightError,
}


def error_code(response: httpx.Response) -> str | None:
    """The `code` of an error answer's JSON body; None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def error_from_response(response: httpx.Response, retry_after: float | None = None) -> ApiError:
    """The ApiError an error answer stands for; the body must have been read."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    status = response.status_code
    code = str(error.get("code") or f"http_{status}")
    message = str(error.get("message") or response.reason_phrase or "error")
    request_id = error.get("request_id") or response.headers.get("x-request-id")
    field = error.get("field")
    cls = _BY_STATUS.get(status, ApiError)
    if status == 409:
        cls = _CONFLICTS.get(code, ConflictError)
    return cls(
        status,
        code,
        message,
        None if request_id is None else str(request_id),
        field=None if field is None else str(field),
        retry_after=retry_after,
    )
