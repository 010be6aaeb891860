"""What every route shares: settings, dependencies, the caller check and event streams."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import attrs
import trio
from quart import Response, g, request

from conversation_service.adapters.access import TokenVerifier
from conversation_service.adapters.org_models import OrgModels
from conversation_service.adapters.rate_limits import RateLimiter, StreamSlots
from conversation_service.domain.access import Action, authorize
from conversation_service.domain.errors import InvalidField
from conversation_service.domain.model import Principal
from conversation_service.domain.replies import ResumedPastEnd
from conversation_service.entrypoints import structured_logs
from conversation_service.entrypoints.http import access_log, sse
from conversation_service.entrypoints.http.idempotency import Answer, Idempotency
from conversation_service.entrypoints.http.inputs import (
    check_query_names,
    parse_event_id,
    query_uuid,
)
from conversation_service.entrypoints.metrics import Metrics
from conversation_service.ports.session_runtime import LiveReply, ReplyStream
from conversation_service.service_layer.conversation_service import ConversationService


@attrs.frozen(kw_only=True)
class HttpSettings:
    """Limits and timings of the HTTP edge."""

    max_body_bytes: int = 256 * 1024
    keepalive_interval: float = 15.0
    list_default_limit: int = 100
    list_max_limit: int = 1000
    messages_default_limit: int = 20
    messages_max_limit: int = 100
    body_timeout: float = 30.0  # a request body still arriving after this is refused (408)
    max_header_bytes: int = 16 * 1024
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; none: CORS off
    max_import_bytes: int = 64 * 1024 * 1024  # an import's JSON Lines file
    import_body_timeout: float = 300.0  # seconds for an import's file to arrive
    search_default_limit: int = 20
    search_max_limit: int = 100
    # GET /metrics asks for `Authorization: Bearer <this>`; None: it is open.
    metrics_token: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class HttpDeps:
    """Everything the routes need, built by the composition root."""

    service: ConversationService
    verifier: TokenVerifier
    rate_limiter: RateLimiter
    stream_slots: StreamSlots
    idempotency: Idempotency
    metrics: Metrics
    org_models: OrgModels | None = None  # None: this server does not manage org models
    settings: HttpSettings = HttpSettings()


class Edge:
    """The helpers route handlers call."""

    def __init__(self, deps: HttpDeps) -> None:
        self.deps = deps
        self.service = deps.service
        self.settings = deps.settings

    async def caller(self, *accepted: str) -> tuple[Principal, UUID]:
        """Authenticate, count the request against the token's rate, read org_id; then
        refuse any query parameter but org_id and the `accepted` ones, or one given twice."""
        deps = self.deps
        principal = await deps.verifier.verify_header(request.headers.get("Authorization"))
        g.rate = await deps.rate_limiter.hit(str(principal.token_id))
        if not g.rate.allowed:
            raise deps.rate_limiter.refusal(g.rate)
        org_id = query_uuid("org_id")
        assert org_id is not None
        # Membership first, so a token of another org learns nothing from body validation.
        authorize(principal, org_id, Action.READ)
        structured_logs.bind(org_id=org_id)
        check_query_names({"org_id", *accepted})
        return principal, org_id

    async def once(
        self, who: Principal, org_id: UUID, handle: Callable[[], Awaitable[Answer]]
    ) -> Response:
        """Run a POST handler under the request's Idempotency-Key, if it has one."""

        async def replay(stream: dict[str, Any]) -> Response:
            return await self.attach(
                who,
                org_id,
                UUID(stream["chat_session_id"]),
                UUID(stream["message_id"]),
                self.last_event_id(),
            )

        return await self.deps.idempotency.run(who, org_id, handle, replay)

    async def attach(
        self, who: Principal, org_id: UUID, session_id: UUID, message_id: UUID, after: int | None
    ) -> Response:
        structured_logs.bind(session_id=session_id)
        slots = self.deps.stream_slots
        await slots.acquire(org_id)
        try:
            follower = await self.service.attach(who, org_id, session_id, message_id, after=after)
        except ResumedPastEnd as error:
            slots.release(org_id)
            raise InvalidField(self._resume_field(), error.message) from None
        except BaseException:
            slots.release(org_id)
            raise
        if follower is None:
            # The reply is over and the client has its last event. 204, not an empty stream:
            # an EventSource stops reconnecting on it.
            slots.release(org_id)
            return Response(b"", status=204)
        return self.event_stream(follower, lambda: slots.release(org_id))

    async def stream_reply(self, org_id: UUID, start: Callable[[], Awaitable[LiveReply]]) -> Answer:
        """A new reply's stream (stream_chat, regenerate, edit): an open-stream slot taken
        first, `start` handing the turn to its session; kept under the Idempotency-Key as the
        reply, which a retry re-attaches to."""
        slots = self.deps.stream_slots
        await slots.acquire(org_id)
        try:
            reply = await start()
        except BaseException:
            slots.release(org_id)
            raise
        response = self.event_stream(reply.follow(None), lambda: slots.release(org_id))
        stream = {
            "chat_session_id": str(reply.chat_session_id),
            "message_id": str(reply.message_id),
        }
        return Answer(response=response, stream=stream)

    def last_event_id(self) -> int | None:
        """The id after which to resume: the Last-Event-ID header, else ?after= (the same
        syntax: an event id, decimal digits)."""
        header = request.headers.get("Last-Event-ID", "").strip()
        if header:
            return parse_event_id("Last-Event-ID", header)
        raw = request.args.get("after", "")
        return parse_event_id("after", raw) if raw else None

    @staticmethod
    def _resume_field() -> str:
        return "Last-Event-ID" if request.headers.get("Last-Event-ID", "").strip() else "after"

    def event_stream(self, follower: ReplyStream, release: Callable[[], None]) -> Response:
        """An SSE response following a reply; `release` runs when the stream closes."""
        keepalive = self.settings.keepalive_interval
        method, path, started, request_id = access_log.stream_logger()
        sent = 0
        open_streams = self.deps.metrics.open_streams
        open_streams.inc()
        give_back = release

        def closed() -> None:
            open_streams.dec()
            give_back()

        release = _once(closed)

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            try:
                while True:
                    batch = follower.ready_batch()
                    if batch is None:
                        # The wait is bounded so idle proxies see a comment now and then;
                        # the yield itself stays outside the cancel scope.
                        with trio.move_on_after(keepalive):
                            batch = await follower.next_batch()
                    if batch is None:
                        yield sse.KEEPALIVE
                        continue
                    if not batch:
                        return
                    sent += len(batch)
                    yield b"".join(sse.frame(event) for event in batch)
            finally:
                release()
                access_log.line(method, path, 200, started, request_id, events=sent)

        response = Response(body(), status=200, headers=sse.HEADERS)
        response.timeout = None  # a reply may stream for longer than Quart's 60 s default
        # A client gone before the body starts leaves the generator unstarted, so its
        # `finally` never runs: the slot is also given back when the response is collected.
        weakref.finalize(response, release)
        return response


def _once(action: Callable[[], None]) -> Callable[[], None]:
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return run
