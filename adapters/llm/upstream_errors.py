"""Provider failures as ModelFailure: HTTP statuses, error bodies, and which ones to retry.

OpenAI-compatible servers answer `{"error": {"message": ...}}` (or `{"error": "..."}`),
Anthropic `{"type": "error", "error": {"type": ..., "message": ...}}`; one reader serves both.
An upstream message is passed on shortened, on one line, and with the API key blotted out.
"""

from __future__ import annotations

import json
from typing import Any

from conversation_service.adapters.llm.http1 import Response
from conversation_service.adapters.llm.retries import retry_after
from conversation_service.ports.language_model import ModelFailure

_MAX_DETAIL = 300  # characters of an upstream error message passed on to our callers
_MAX_ERROR_BODY = 16_384  # bytes of an error response read to find that message
_OVERLOADED = 529  # Anthropic's "overloaded", not a registered HTTP status


class TransientFailure(ModelFailure):
    """A failure that another attempt may not meet, if no text has been emitted yet.

    `retry_after` is the wait in seconds the upstream asked for, when it asked.
    """

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


def failure_for_error(
    error_type: str | None, message: str, *, retry_after: float | None = None
) -> ModelFailure:
    """The failure for an upstream error type (Anthropic's names, also in its HTTP bodies)."""
    if error_type == "overloaded_error":
        return TransientFailure("upstream_unavailable", message, retry_after=retry_after)
    if error_type == "rate_limit_error":
        return TransientFailure("upstream_rate_limited", message, retry_after=retry_after)
    if error_type in ("api_error", "internal_server_error"):
        return TransientFailure("upstream_error", message, retry_after=retry_after)
    return ModelFailure("upstream_error", message)


async def status_failure(response: Response, secret: str | None) -> ModelFailure:
    """The failure a non-2xx response stands for; 429, 5xx and 529 are transient."""
    status = response.status_code
    if response.is_redirect:  # the shared client never follows one: the target is unchecked
        return ModelFailure(
            "upstream_error",
            f"the model provider answered with a redirect (HTTP {status}), which is not followed",
        )
    body = await _error_body(response)
    detail = error_message(body, secret)
    suffix = f": {detail}" if detail else ""
    wait = retry_after(response.headers)
    if status == 429:
        return TransientFailure(
            "upstream_rate_limited",
            f"the model provider is rate limiting (HTTP 429){suffix}",
            retry_after=wait,
        )
    if status == _OVERLOADED or error_type(body) == "overloaded_error":
        return TransientFailure(
            "upstream_unavailable",
            f"the model provider is overloaded (HTTP {status}){suffix}",
            retry_after=wait,
        )
    if status >= 500:
        return TransientFailure(
            "upstream_error", f"the model provider failed (HTTP {status}){suffix}", retry_after=wait
        )
    return ModelFailure(
        "upstream_error", f"the model provider refused the request (HTTP {status}){suffix}"
    )


def error_message(body: Any, secret: str | None) -> str | None:
    """The message of an error body, cleaned up to be shown to our callers; None if none."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if not isinstance(error, str) or not error.strip():
        return None
    message = redact(" ".join(error.split()), secret)
    if len(message) > _MAX_DETAIL:
        message = message[: _MAX_DETAIL - 1] + "…"
    return message


def error_type(body: Any) -> str | None:
    """The error's `type` in an error body, when it names one."""
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced."""
    return text.replace(secret, "[redacted]") if secret else text


async def _error_body(response: Response) -> Any:
    body = b""
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) > _MAX_ERROR_BODY:
            return None
    try:
        return json.loads(body)
    except ValueError:
        return None
