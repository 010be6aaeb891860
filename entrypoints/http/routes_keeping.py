"""Conversations people keep: rename or archive, delete for good, rate a reply."""

from __future__ import annotations

import trio
from quart import Blueprint, Response

from conversation_service.entrypoints.http import views
from conversation_service.entrypoints.http.edge import Edge
from conversation_service.entrypoints.http.idempotency import Answer
from conversation_service.entrypoints.http.inputs import read_json_body
from conversation_service.entrypoints.http.request_bodies import (
    ClearFeedback,
    DeleteConversation,
    GiveFeedback,
    UpdateConversation,
)
from conversation_service.ports.storage import StorageUnavailable

# A deletion, once begun, runs to its end even if its client goes: it retires the sessions
# first, and the rows must then go too. Bounded, so a dead store cannot hold it forever.
DELETE_DEADLINE = 60.0


def register(api: Blueprint, edge: Edge) -> None:
    service, settings = edge.service, edge.settings

    @api.post("/api/conversation/update")
    async def update_conversation() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(UpdateConversation, settings.max_body_bytes)
            conversation = await service.update_conversation(
                who, org_id, body.conversation_id, title=body.title, is_archived=body.is_archived
            )
            return Answer.json(views.conversation(conversation))

        return await edge.once(who, org_id, handle)

    @api.post("/api/conversation/delete")
    async def delete_conversation() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(DeleteConversation, settings.max_body_bytes)
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + DELETE_DEADLINE
                await service.delete_conversation(who, org_id, body.conversation_id)
            if scope.cancelled_caught:
                raise StorageUnavailable("the deletion did not finish in time; send it again")
            return Answer.json(views.conversation_deleted(body.conversation_id))

        return await edge.once(who, org_id, handle)

    @api.post("/api/conversation/feedback")
    async def give_feedback() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(GiveFeedback, settings.max_body_bytes)
            given = await service.set_feedback(
                who, org_id, body.message_id, rating=body.rating, comment=body.comment
            )
            return Answer.json(views.feedback_view(given))

        return await edge.once(who, org_id, handle)

    @api.post("/api/conversation/clear_feedback")
    async def clear_feedback() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_body(ClearFeedback, settings.max_body_bytes)
            cleared = await service.clear_feedback(who, org_id, body.message_id)
            return Answer.json(views.feedback_cleared(body.message_id, cleared))

        return await edge.once(who, org_id, handle)
