"""Where and as whom the client calls: the base URL, the token and the organisation. Shared by
the sync and async clients, which differ only in how they wait."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import attrs
import httpx

from conversation_service.client.calls import Call
from conversation_service.client.errors import (
    ApiConnectionError,
    ApiTimeoutError,
    ResponseFormatError,
)

USER_AGENT = "conversation-service-client/0.1"
# Reads wait longer than the 15 s between a stream's keep-alive comments: a stream silent for
# this long is taken as dropped, and resumed.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _base_url(url: str) -> str:
    return str(url).rstrip("/")


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


@attrs.frozen(kw_only=True)
class Endpoint:
    """The service's base URL, and the token and organisation every call is made with."""

    base_url: str = attrs.field(converter=_base_url)
    token: str = attrs.field(repr=False)
    org_id: UUID = attrs.field(converter=_uuid)

    def build(
        self, http: httpx.Client | httpx.AsyncClient, call: Call[Any], extra: Mapping[str, str]
    ) -> httpx.Request:
        """The HTTP request for `call`, with `extra` headers (Last-Event-ID, Accept)."""
        headers = call.headers(
            Authorization=f"Bearer {self.token}", **{"User-Agent": USER_AGENT}, **extra
        )
        return http.build_request(
            call.method,
            self.base_url + call.path,
            params={"org_id": str(self.org_id), **call.params},
            headers=headers,
            json=call.body,
        )


def connection_error(error: httpx.TransportError) -> ApiConnectionError:
    """The client's error for a request that could not get an answer."""
    cls = ApiTimeoutError if isinstance(error, httpx.TimeoutException) else ApiConnectionError
    return cls(f"{type(error).__name__}: {error or 'no answer'}")


def check_event_stream(response: httpx.Response) -> None:
    """Refuse a 200 that is not a stream of events (a proxy's page, say)."""
    kind = response.headers.get("content-type", "").partition(";")[0].strip()
    if kind != "text/event-stream":
        raise ResponseFormatError(f"expected text/event-stream, got {kind!r}")
