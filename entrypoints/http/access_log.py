"""One log line per request, with its request id: written when the answer is complete.

Hypercorn's own access log writes a request twice when the client closes the connection as
the answer ends (once without a status), so the app logs instead: plain answers when they
are made, event streams when they end (with how long they streamed).
"""

from __future__ import annotations

import logging
import time

from quart import Response, g, request

log = logging.getLogger("conversation_service.access")


def start_request() -> None:
    g.started = time.perf_counter()


def line(
    method: str,
    path: str,
    status: int,
    started: float,
    request_id: str,
    note: str = "",
    *,
    events: int | None = None,
) -> None:
    """The request's line; `events`: how many an event stream sent. The same facts go in the
    record's fields, for the JSON format (structured_logs.FIELDS)."""
    elapsed_ms = (time.perf_counter() - started) * 1000
    if events is not None:
        note += f" events={events}"
    fields = {
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(elapsed_ms, 1),
        "events": events,
    }
    log.info(
        '"%s %s" %s %.1fms rid=%s%s', method, path, status, elapsed_ms, request_id, note,
        extra=fields,
    )  # fmt: skip


# Answers whose body logs the request itself when it ends (it streams for a while).
STREAMED = {"text/event-stream", "application/x-ndjson"}


def finish_request(response: Response) -> None:
    """Log a plain answer now; a stream (events, an export) is logged by its body when it ends."""
    if response.mimetype in STREAMED and response.status_code == 200:
        return
    started = getattr(g, "started", time.perf_counter())
    line(request.method, request.path, response.status_code, started, str(g.get("request_id", "-")))


def stream_logger() -> tuple[str, str, float, str]:
    """What an event stream needs to log itself when it ends."""
    return (
        request.method,
        request.path,
        getattr(g, "started", time.perf_counter()),
        str(g.get("request_id", "-")),
    )
