"""Searching an organisation's conversations by their titles and messages."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify, request

from conversation_service.entrypoints.http import views
from conversation_service.entrypoints.http.edge import Edge
from conversation_service.entrypoints.http.inputs import query_bool, query_int


def register(api: Blueprint, edge: Edge) -> None:
    service, settings = edge.service, edge.settings

    @api.get("/api/conversation/search")
    async def search_conversations() -> Response:
        who, org_id = await edge.caller("q", "limit", "offset", "is_archived")
        limit = query_int(
            "limit",
            default=settings.search_default_limit,
            minimum=1,
            maximum=settings.search_max_limit,
        )
        offset = query_int("offset", default=0, minimum=0, maximum=2**31)
        found = await service.search(
            who,
            org_id,
            request.args.get("q"),  # parsed, and refused naming `q`, by the domain's rules
            is_archived=query_bool("is_archived"),
            limit=limit,
            offset=offset,
        )
        return jsonify(views.search_page(found))
