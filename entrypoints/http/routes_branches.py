"""Branches of a chat session: regenerate a reply, edit a user message, choose the branch."""

from __future__ import annotations

from quart import Blueprint, Response

from conversation_service.entrypoints.http import views
from conversation_service.entrypoints.http.edge import Edge
from conversation_service.entrypoints.http.idempotency import Answer
from conversation_service.entrypoints.http.inputs import read_json_body
from conversation_service.entrypoints.http.request_bodies import (
    EditMessage,
    RegenerateReply,
    SelectBranch,
)
from conversation_service.entrypoints.structured_logs import bind


def register(api: Blueprint, edge: Edge) -> None:
    service, settings = edge.service, edge.settings

    @api.post("/api/conversation/regenerate")
    async def regenerate() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(RegenerateReply, settings.max_body_bytes)
            bind(session_id=body.chat_session_id)
            return await edge.stream_reply(
                org_id,
                lambda: service.regenerate(
                    who, org_id, body.chat_session_id, body.message_id, multitask=body.multitask
                ),
            )

        return await edge.once(who, org_id, handle)

    @api.post("/api/conversation/edit")
    async def edit() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(EditMessage, settings.max_body_bytes)
            bind(session_id=body.chat_session_id)
            return await edge.stream_reply(
                org_id,
                lambda: service.edit_message(
                    who,
                    org_id,
                    body.chat_session_id,
                    body.message_id,
                    body.content,
                    multitask=body.multitask,
                ),
            )

        return await edge.once(who, org_id, handle)

    @api.post("/api/conversation/select_branch")
    async def select_branch() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(SelectBranch, settings.max_body_bytes)
            bind(session_id=body.chat_session_id)
            chosen = await service.select_branch(who, org_id, body.chat_session_id, body.message_id)
            return Answer.json(views.session(chosen))

        return await edge.once(who, org_id, handle)
