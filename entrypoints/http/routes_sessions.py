"""Chat sessions and their replies: create, stream, re-attach, cancel, complete."""

from __future__ import annotations

from quart import Blueprint, Response

from conversation_service.domain.model import GenerationParams
from conversation_service.entrypoints.http import views
from conversation_service.entrypoints.http.edge import Edge
from conversation_service.entrypoints.http.idempotency import Answer
from conversation_service.entrypoints.http.inputs import query_uuid, read_json_body
from conversation_service.entrypoints.http.request_bodies import (
    CompleteSession,
    CreateSession,
    SessionParams,
    SessionRef,
    StreamChat,
)
from conversation_service.entrypoints.structured_logs import bind


def register(api: Blueprint, edge: Edge) -> None:
    service, settings = edge.service, edge.settings

    @api.post("/api/conversation/create_session")
    async def create_session() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(CreateSession, settings.max_body_bytes)
            params = body.params or SessionParams()
            session = await service.create_session(
                who,
                org_id,
                conversation_id=body.conversation_id,
                model_id=body.model_id,
                system_prompt=body.system_prompt,
                params=GenerationParams(
                    temperature=params.temperature,
                    max_tokens=params.max_tokens,
                    top_p=params.top_p,
                ),
                context=body.context,
            )
            bind(session_id=session.id)
            view = views.session(session)
            return Answer.json(view, 201)

        return await edge.once(who, org_id, handle)

    @api.post("/api/conversation/stream_chat")
    async def stream_chat() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(StreamChat, settings.max_body_bytes)
            bind(session_id=body.chat_session_id)
            return await edge.stream_reply(
                org_id,
                lambda: service.send_message(
                    who, org_id, body.chat_session_id, body.message, multitask=body.multitask
                ),
            )

        return await edge.once(who, org_id, handle)

    @api.get("/api/conversation/stream")
    async def reattach() -> Response:
        who, org_id = await edge.caller("chat_session_id", "message_id", "after")
        session_id = query_uuid("chat_session_id")
        message_id = query_uuid("message_id")
        assert session_id is not None and message_id is not None
        return await edge.attach(who, org_id, session_id, message_id, edge.last_event_id())

    @api.post("/api/conversation/cancel")
    async def cancel() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(SessionRef, settings.max_body_bytes)
            bind(session_id=body.chat_session_id)
            stopped = await service.cancel(who, org_id, body.chat_session_id, body.message_id)
            view = views.cancelled(body.chat_session_id, stopped)
            return Answer.json(view)

        return await edge.once(who, org_id, handle)

    @api.post("/api/conversation/complete_session")
    async def complete_session() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(CompleteSession, settings.max_body_bytes)
            bind(session_id=body.chat_session_id)
            view = views.session(await service.complete_session(who, org_id, body.chat_session_id))
            return Answer.json(view)

        return await edge.once(who, org_id, handle)
