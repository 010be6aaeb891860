"""Request bodies capped per route: every body at most `max_body_bytes`, but for the routes
named here (an import's JSON Lines file), which get a larger cap and more time to arrive.

The cap is the request's own from its first byte (Quart sizes a request when it makes it, and
refuses a Content-Length over the cap with 413 before reading anything).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from quart_trio.wrappers.request import TrioRequest


@attrs.frozen
class BodyCap:
    """How large a route's body may be, and how long it may take to arrive."""

    max_bytes: int
    timeout: float


def capped_requests(caps: Mapping[str, BodyCap]) -> type[TrioRequest]:
    """The app's request class: TrioRequest, with the caps of `caps` on their paths."""
    known = dict(caps)

    class CappedRequest(TrioRequest):
        def __init__(
            self,
            method: str,
            scheme: str,
            path: str,
            *args: Any,
            max_content_length: int | None = None,
            body_timeout: int | None = None,
            **kwargs: Any,
        ) -> None:
            cap = known.get(path)
            if cap is not None:
                max_content_length, body_timeout = cap.max_bytes, cap.timeout  # type: ignore[assignment]
            super().__init__(
                method,
                scheme,
                path,
                *args,
                max_content_length=max_content_length,
                body_timeout=body_timeout,
                **kwargs,
            )
            if cap is not None:
                self.max_content_length = cap.max_bytes

    return CappedRequest
