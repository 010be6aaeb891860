"""The figures GET /metrics shows, in a Prometheus registry of the service's own.

One registry per running service (not prometheus_client's global one): every figure is this
instance's, and tests can run several services in one process. Labels hold bounded sets
only: a route's rule (never its path), a status, a model's registry name, an error code;
never an organisation, session, message or request id.
"""

from __future__ import annotations

import re

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from conversation_service.adapters.actors.supervisor import SessionSupervisor

# The text exposition format every Prometheus reads (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

PREFIX = "conversation_service_"
METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route matched (404, 405)

# Storage batches hold 1 to MAX_BATCH (256) requests.
_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_BATCH_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_FIRST_TOKEN_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


class Metrics:
    """Every metric of one running service, and the process figures prometheus-client gives."""

    def __init__(self) -> None:
        # No `<name>_created` series beside each counter and histogram: they doubled the
        # series a scrape holds, for a start time Prometheus infers from resets anyway.
        # (A switch of the whole process, which the service owns.)
        disable_created_metrics()
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.requests = Counter(
            PREFIX + "http_requests",
            "HTTP requests answered, by method, route (its rule) and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            PREFIX + "http_request_duration_seconds",
            "Seconds from a request's arrival to its answer's head (an event stream's head: "
            "not the whole stream), by method and route",
            ["method", "route"],
            registry=registry,
        )
        self.open_streams = Gauge(
            PREFIX + "open_streams",
            "Event streams open on this instance (stream_chat and re-attaches)",
            registry=registry,
        )
        self.live_actors = Gauge(
            PREFIX + "live_session_actors",
            "Chat sessions live in an actor on this instance",
            registry=registry,
        )
        self.queued_messages = Gauge(
            PREFIX + "queued_messages",
            "Messages waiting behind a running reply, over this instance's live sessions",
            registry=registry,
        )
        self.replies = Counter(
            PREFIX + "replies",
            "Replies ended, by model, stored status and finish reason",
            ["model", "status", "finish_reason"],
            registry=registry,
        )
        self.first_token_seconds = Histogram(
            PREFIX + "upstream_first_token_seconds",
            "Seconds from asking a model for a reply to its first text, by model",
            ["model"],
            buckets=_FIRST_TOKEN_SECONDS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            PREFIX + "upstream_errors",
            "Replies a model could not finish, by model and error code",
            ["model", "code"],
            registry=registry,
        )
        self.storage_batch_size = Histogram(
            PREFIX + "storage_batch_size",
            "Storage requests run together in one transaction",
            buckets=_BATCH_SIZES,
            registry=registry,
        )
        self.storage_batch_seconds = Histogram(
            PREFIX + "storage_batch_seconds",
            "Seconds a storage batch took to run (its retries one by one included)",
            buckets=_BATCH_SECONDS,
            registry=registry,
        )
        # Each request's pair of labelled children, found once: labels() takes a lock and
        # builds a key. Bounded as the labels are (methods x rules x statuses).
        self._answered: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def watch_sessions(self, supervisor: SessionSupervisor) -> None:
        """Read the live actors and queued messages from `supervisor` at each scrape."""
        self.live_actors.set_function(lambda: supervisor.live_actors)
        self.queued_messages.set_function(lambda: supervisor.queued_messages)

    def request_answered(self, method: str, rule: str | None, status: int, seconds: float) -> None:
        """An answer's head is ready. `rule`: the route's (Quart's syntax), None when no
        route matched."""
        key = (method, rule or UNMATCHED, status)
        children = self._answered.get(key)
        if children is None:
            label = method if method in METHODS else "other"  # a client may send any token
            route = route_label(rule)
            children = (
                self.requests.labels(label, route, str(status)),
                self.request_seconds.labels(label, route),
            )
            if method in METHODS:  # any other method is not worth a key of its own
                self._answered[key] = children
        counted, timed = children
        counted.inc()
        timed.observe(seconds)

    def exposition(self) -> bytes:
        """Every figure, in the text format (CONTENT_TYPE)."""
        return generate_latest(self.registry)


def route_label(rule: str | None) -> str:
    """The `route` label: the rule as the OpenAPI document writes its path
    (`/api/models/<model_id>` is `/api/models/{model_id}`), or UNMATCHED."""
    if rule is None:
        return UNMATCHED
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)
