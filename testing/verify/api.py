"""How the verifier speaks to a deployment: one tenant's calls over a synchronous httpx client,
reply streams read event by event, and what it reports when an answer is not what the model
says (`Disagreement`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import httpx
from httpx_sse import EventSource, connect_sse

RATE_LIMIT_PATIENCE = 120.0  # seconds of 429s (the token's request rate) waited out per call


class Disagreement(AssertionError):
    """An answer of the deployment that the model says it must not give.

    `kind` says what was wrong: ordering, reattach, cancel, multitask, stream, stored,
    listing, isolation, refusal, or answer (a status or a body not as documented).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"[{kind}] {message}")
        self.kind = kind
        self.message = message


def expect(condition: bool, kind: str, message: str) -> None:
    if not condition:
        raise Disagreement(kind, message)


@attrs.frozen
class Tenant:
    """An organisation and a token of it (member or admin)."""

    org_id: str
    token: str = attrs.field(repr=False)  # never in a report


@attrs.frozen
class Event:
    """One event of a reply stream: its id, its name and its JSON data."""

    id: int
    kind: str
    data: dict[str, Any]


def text_of(events: list[Event]) -> str:
    return "".join(e.data["content"] for e in events if e.kind == "content")


class Stream:
    """An open reply stream, read one event at a time."""

    def __init__(self, source: EventSource, what: str) -> None:
        self.response = source.response
        self.what = what
        self._events = source.iter_sse()
        self.seen: list[Event] = []
        self.ended = False

    def next(self) -> Event | None:
        """The next event, or None once the stream has ended."""
        if self.ended:
            return None
        for sse in self._events:
            try:
                event = Event(int(sse.id), sse.event, json.loads(sse.data))
            except (TypeError, ValueError) as error:
                raise Disagreement("stream", f"{self.what}: unreadable event {sse!r}") from error
            self.seen.append(event)
            self.ended = event.kind == "end"
            return event
        self.ended = True
        return None

    def rest(self) -> list[Event]:
        """Every event to the end; the stream must close right after `end`."""
        events = []
        while (event := self.next()) is not None:
            events.append(event)
        expect(
            bool(self.seen) and self.seen[-1].kind == "end",
            "stream",
            f"{self.what}: the stream closed without an `end` event",
        )
        return events


class Api:
    """One tenant's requests; a 429 for the token's rate is waited out (Retry-After)."""

    def __init__(self, http: httpx.Client, tenant: Tenant) -> None:
        self.http = http
        self.tenant = tenant
        self.requests = 0

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.tenant.token}"}

    def call(
        self,
        method: str,
        path: str,
        *,
        as_org: str | None = None,
        token: str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        query = {"org_id": as_org or self.tenant.org_id, **(params or {})}
        waited = 0.0
        while True:
            self.requests += 1
            response = self.http.request(
                method, path, params=query, headers={**self.headers(token), **(headers or {})},
                **kw,
            )  # fmt: skip
            wait = _rate_limit_wait(response)
            if wait is None or waited + wait > RATE_LIMIT_PATIENCE:
                return response
            time.sleep(wait)
            waited += wait

    def json(self, response: httpx.Response, status: int, what: str) -> Any:
        """The body of an answer that must have `status`."""
        expect(
            response.status_code == status,
            "answer",
            f"{what}: answered {response.status_code} {response.text[:300]!r}, "
            f"the model expects {status}",
        )
        return response.json()

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Iterator[Stream]:
        """A reply stream (stream_chat or stream); its connection closes when the block ends,
        read to the end or not. Any answer but 200 is in `stream.response` unread."""
        query = {"org_id": self.tenant.org_id, **(params or {})}
        waited = 0.0
        while True:
            self.requests += 1
            with connect_sse(
                self.http, method, path, params=query,
                headers={**self.headers(), **(headers or {})}, **kw,
            ) as source:  # fmt: skip
                response = source.response
                if response.status_code != 200:
                    response.read()
                    wait = _rate_limit_wait(response)
                    if wait is not None and waited + wait <= RATE_LIMIT_PATIENCE:
                        waited += wait
                        time.sleep(wait)
                        continue
                yield Stream(source, what)
                return


def _rate_limit_wait(response: httpx.Response) -> float | None:
    """Seconds a 429 `rate_limited` asks to wait; None for any other answer."""
    if response.status_code != 429:
        return None
    try:
        response.read()
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    if code != "rate_limited":
        return None
    try:
        return max(0.05, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
