"""The API's routes: thin handlers that parse input, call the service and render output."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from uuid import UUID

import attrs
import trio
from quart import Blueprint, Response, g, jsonify, request

from adapters.access import TokenVerifier
from adapters.actors.commands import Multitask
from adapters.actors.reply_log import ReplyFollower
from adapters.conversation_service import ConversationService
from adapters.rate_limits import RequestRateLimiter, StreamSlots
from domain.access import Action, authorize
from domain.errors import InvalidField
from domain.model import Principal
from entrypoints.http import sse, views
from entrypoints.http.inputs import (
    CreateConversation,
    CreateSession,
    SessionRef,
    StreamChat,
    query_bool,
    query_int,
    query_uuid,
    read_json_body,
)


@attrs.frozen(kw_only=True)
class HttpSettings:
    """Limits and timings of the HTTP edge."""

    max_body_bytes: int = 256 * 1024
    keepalive_interval: float = 15.0
    list_default_limit: int = 100
    list_max_limit: int = 1000
    messages_default_limit: int = 20
    messages_max_limit: int = 100


@attrs.frozen(kw_only=True)
class HttpDeps:
    """Everything the routes need, built by the composition root."""

    service: ConversationService
    verifier: TokenVerifier
    rate_limiter: RequestRateLimiter
    stream_slots: StreamSlots
    settings: HttpSettings = HttpSettings()


def build_routes(deps: HttpDeps) -> Blueprint:  # noqa: C901 - one closure per route
    api = Blueprint("api", __name__)
    service = deps.service
    settings = deps.settings

    async def caller() -> tuple[Principal, UUID]:
        """Authenticate, count the request against the token's rate, read org_id."""
        principal = await deps.verifier.verify_header(request.headers.get("Authorization"))
        g.rate = deps.rate_limiter.hit(str(principal.token_id))
        if not g.rate.allowed:
            deps.rate_limiter.check(str(principal.token_id))  # raises RateLimited
        org_id = query_uuid("org_id")
        assert org_id is not None
        # Membership first, so a token of another org learns nothing from body validation.
        authorize(principal, org_id, Action.READ)
        return principal, org_id

    @api.post("/api/conversation/create")
    async def create_conversation() -> tuple[Response, int]:
        who, org_id = await caller()
        body = await read_json_body(CreateConversation, settings.max_body_bytes)
        conversation = await service.create_conversation(
            who, org_id, title=body.title, is_archived=body.is_archived
        )
        return jsonify(views.conversation(conversation)), 201

    @api.post("/api/conversation/create_session")
    async def create_session() -> tuple[Response, int]:
        who, org_id = await caller()
        body = await read_json_body(CreateSession, settings.max_body_bytes)
        session = await service.create_session(
            who, org_id, conversation_id=body.conversation_id, model_id=body.model_id
        )
        return jsonify(views.session(session)), 201

    @api.get("/api/conversation/list")
    async def list_conversations() -> Response:
        who, org_id = await caller()
        limit = query_int(
            "limit", default=settings.list_default_limit, minimum=1, maximum=settings.list_max_limit
        )
        offset = query_int("offset", default=0, minimum=0, maximum=2**31)
        page = await service.list_conversations(
            who, org_id, is_archived=query_bool("is_archived"), limit=limit, offset=offset
        )
        return jsonify(views.page("conversations", page, views.conversation))

    @api.get("/api/conversation/get_with_sessions")
    async def get_with_sessions() -> Response:
        who, org_id = await caller()
        conversation_id = query_uuid("conversation_id")
        assert conversation_id is not None
        found = await service.get_with_sessions(who, org_id, conversation_id)
        body = views.conversation(found.conversation)
        body["sessions"] = [views.session(s) for s in found.sessions]
        return jsonify(body)

    @api.get("/api/conversation/messages")
    async def list_messages() -> Response:
        who, org_id = await caller()
        conversation_id = query_uuid("conversation_id")
        assert conversation_id is not None
        limit = query_int(
            "limit",
            default=settings.messages_default_limit,
            minimum=1,
            maximum=settings.messages_max_limit,
        )
        offset = query_int("offset", default=0, minimum=0, maximum=2**31)
        page = await service.list_messages(who, org_id, conversation_id, limit=limit, offset=offset)
        return jsonify(views.page("messages", page, views.message))

    @api.post("/api/conversation/stream_chat")
    async def stream_chat() -> Response:
        who, org_id = await caller()
        body = await read_json_body(StreamChat, settings.max_body_bytes)
        try:
            multitask = Multitask(body.multitask)
        except ValueError:
            choices = ", ".join(m.value for m in Multitask)
            raise InvalidField("multitask", f"must be one of {choices}") from None
        deps.stream_slots.acquire(org_id)
        try:
            reply = await service.send_message(
                who, org_id, body.chat_session_id, body.message, multitask=multitask
            )
        except BaseException:
            deps.stream_slots.release(org_id)
            raise
        return _event_stream(reply.follow(None), lambda: deps.stream_slots.release(org_id))

    @api.get("/api/conversation/stream")
    async def reattach() -> Response:
        who, org_id = await caller()
        session_id = query_uuid("chat_session_id")
        message_id = query_uuid("message_id")
        assert session_id is not None and message_id is not None
        after = _last_event_id()
        deps.stream_slots.acquire(org_id)
        try:
            follower = await service.attach(who, org_id, session_id, message_id, after=after)
        except BaseException:
            deps.stream_slots.release(org_id)
            raise
        return _event_stream(follower, lambda: deps.stream_slots.release(org_id))

    @api.post("/api/conversation/cancel")
    async def cancel() -> Response:
        who, org_id = await caller()
        body = await read_json_body(SessionRef, settings.max_body_bytes)
        await service.cancel(who, org_id, body.chat_session_id, body.message_id)
        return jsonify({"chat_session_id": str(body.chat_session_id), "cancelled": True})

    @api.post("/api/conversation/complete_session")
    async def complete_session() -> Response:
        who, org_id = await caller()
        body = await read_json_body(SessionRef, settings.max_body_bytes)
        if body.message_id is not None:
            raise InvalidField("message_id", "unknown field")
        session = await service.complete_session(who, org_id, body.chat_session_id)
        return jsonify(views.session(session))

    @api.get("/api/models")
    async def list_models() -> Response:
        who, org_id = await caller()
        return jsonify({"models": [views.model(m) for m in service.list_models(who, org_id)]})

    @api.get("/healthz")
    async def healthz() -> Response:
        return jsonify({"status": "ok"})

    def _last_event_id() -> int | None:
        """The id after which to resume: the Last-Event-ID header, else ?after=."""
        header = request.headers.get("Last-Event-ID")
        if header is not None and header.strip():
            try:
                return int(header.strip())
            except ValueError:
                raise InvalidField("Last-Event-ID", "must be an event id (an integer)") from None
        if request.args.get("after") in (None, ""):
            return None
        return query_int("after", default=-1, minimum=-1, maximum=2**62)

    def _event_stream(follower: ReplyFollower, release: Callable[[], None]) -> Response:
        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    batch = None
                    # The wait is bounded so idle proxies see a comment now and then; the
                    # yield itself stays outside the cancel scope.
                    with trio.move_on_after(settings.keepalive_interval):
                        batch = await follower.next_batch()
                    if batch is None:
                        yield sse.KEEPALIVE
                        continue
                    if not batch:
                        return
                    yield b"".join(sse.frame(event) for event in batch)
            finally:
                release()

        response = Response(body(), status=200, headers=sse.HEADERS)
        response.timeout = None  # a reply may stream for longer than Quart's 60 s default
        return response

    return api
