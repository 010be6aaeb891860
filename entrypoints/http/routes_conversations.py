"""Conversations: create, list, get with sessions, page through messages (a branch)."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from conversation_service.entrypoints.http import views
from conversation_service.entrypoints.http.edge import Edge
from conversation_service.entrypoints.http.idempotency import Answer
from conversation_service.entrypoints.http.inputs import (
    query_bool,
    query_int,
    query_uuid,
    read_json_body,
)
from conversation_service.entrypoints.http.request_bodies import CreateConversation


def register(api: Blueprint, edge: Edge) -> None:
    service, settings = edge.service, edge.settings

    @api.post("/api/conversation/create")
    async def create_conversation() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(CreateConversation, settings.max_body_bytes)
            conversation = await service.create_conversation(
                who, org_id, title=body.title, is_archived=body.is_archived
            )
            view = views.conversation(conversation)
            return Answer.json(view, 201)

        return await edge.once(who, org_id, handle)

    @api.get("/api/conversation/list")
    async def list_conversations() -> Response:
        who, org_id = await edge.caller("limit", "offset", "is_archived")
        limit = query_int(
            "limit", default=settings.list_default_limit, minimum=1, maximum=settings.list_max_limit
        )
        offset = query_int("offset", default=0, minimum=0, maximum=2**31)
        page = await service.list_conversations(
            who, org_id, is_archived=query_bool("is_archived"), limit=limit, offset=offset
        )
        return jsonify(views.conversation_page(page))

    @api.get("/api/conversation/get_with_sessions")
    async def get_with_sessions() -> Response:
        who, org_id = await edge.caller("conversation_id")
        conversation_id = query_uuid("conversation_id")
        assert conversation_id is not None
        found = await service.get_with_sessions(who, org_id, conversation_id)
        return jsonify(views.with_sessions(found))

    @api.get("/api/conversation/messages")
    async def list_messages() -> Response:
        who, org_id = await edge.caller("conversation_id", "leaf_id", "limit", "offset")
        conversation_id = query_uuid("conversation_id")
        assert conversation_id is not None
        limit = query_int(
            "limit",
            default=settings.messages_default_limit,
            minimum=1,
            maximum=settings.messages_max_limit,
        )
        offset = query_int("offset", default=0, minimum=0, maximum=2**31)
        page = await service.list_messages(
            who,
            org_id,
            conversation_id,
            leaf_id=query_uuid("leaf_id", required=False),
            limit=limit,
            offset=offset,
        )
        feedback = await service.feedback_for(who, org_id, [m.message.id for m in page.items])
        return jsonify(views.message_page(page, feedback))
