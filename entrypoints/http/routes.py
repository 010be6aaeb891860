"""The API's routes: thin handlers that parse input, call the service and render output."""

from __future__ import annotations

from quart import Blueprint

from conversation_service.entrypoints.http import (
    routes_branches,
    routes_conversations,
    routes_keeping,
    routes_models,
    routes_search,
    routes_sessions,
    routes_transfer,
)
from conversation_service.entrypoints.http.edge import Edge, HttpDeps, HttpSettings

__all__ = ["HttpDeps", "HttpSettings", "build_routes"]


def build_routes(deps: HttpDeps) -> Blueprint:
    api = Blueprint("api", __name__)
    edge = Edge(deps)
    routes_conversations.register(api, edge)
    routes_sessions.register(api, edge)
    routes_branches.register(api, edge)
    routes_models.register(api, edge)
    routes_keeping.register(api, edge)
    routes_transfer.register(api, edge)
    routes_search.register(api, edge)
    return api
