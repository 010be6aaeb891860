"""Models an organisation can use, what they cost it, and the health check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quart import Blueprint, Response, jsonify

from conversation_service.adapters.org_models import OrgModels
from conversation_service.domain.errors import Unavailable
from conversation_service.entrypoints.http import views
from conversation_service.entrypoints.http.edge import Edge
from conversation_service.entrypoints.http.idempotency import Answer
from conversation_service.entrypoints.http.inputs import (
    EARLIEST,
    parse_uuid,
    query_datetime,
    read_json_object,
    structure,
)
from conversation_service.entrypoints.http.request_bodies import RegisterModel


def register(api: Blueprint, edge: Edge) -> None:
    service = edge.service

    @api.get("/api/models")
    async def list_models() -> Response:
        who, org_id = await edge.caller()
        return jsonify(views.models(service.list_models(who, org_id)))

    @api.post("/api/models")
    async def register_model() -> Response:
        who, org_id = await edge.caller()

        async def handle() -> Answer:
            body = await read_json_object(edge.settings.max_body_bytes)
            # Its documented keys and types, checked here; the adapter checks the entry as a
            # whole and keeps the body as sent (an absent field keeps following its default).
            structure(body, RegisterModel)
            info = await _org_models().register(who, org_id, body)
            view = views.model(info)
            return Answer.json(view, 201)

        return await edge.once(who, org_id, handle)

    @api.delete("/api/models/<model_id>")
    async def remove_model(model_id: str) -> Response:
        who, org_id = await edge.caller()
        await _org_models().remove(who, org_id, parse_uuid("model_id", model_id))
        return Response(b"", status=204)

    def _org_models() -> OrgModels:
        if edge.deps.org_models is None:
            raise Unavailable("this server does not manage organisation models")
        return edge.deps.org_models

    @api.get("/api/usage")
    async def usage() -> Response:
        who, org_id = await edge.caller("from", "to")
        end = query_datetime("to") or datetime.now(UTC)
        start = query_datetime("from") or _days_before(end, 30)
        # An empty period (from at or after to) has nothing in it: an empty report.
        rows = await service.usage(who, org_id, start=start, end=end) if start < end else []
        rated = await service.feedback_by_model(who, org_id, start=start, end=end) if rows else []
        ratings = {r.model_id: views.FeedbackCounts(up=r.up, down=r.down) for r in rated}
        names = {m.id: m.name for m in service.list_models(who, org_id)}
        models = [
            views.model_usage(row, names.get(row.model_id), ratings.get(row.model_id))
            for row in rows
        ]
        total: dict[str, object] = {
            key: sum(m[key] for m in models)
            for key in ("replies", "prompt_tokens", "completion_tokens", "total_tokens")
        }
        total["feedback"] = {
            rating: sum(m["feedback"][rating] for m in models) for rating in ("up", "down")
        }
        return jsonify(
            {
                "from": views.timestamp(start),
                "to": views.timestamp(end),
                "models": models,
                "total": total,
            }
        )

    @api.get("/healthz")
    async def healthz() -> Response:
        return jsonify({"status": "ok"})


def _days_before(at: datetime, days: int) -> datetime:
    try:
        return at - timedelta(days=days)
    except OverflowError:
        return EARLIEST
