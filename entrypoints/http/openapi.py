"""The API's OpenAPI 3.1 document, built from the running settings so its limits stay true.

Every route of `routes.py`, `docs_routes.py`, `metrics_routes.py` and `playground_routes.py` is
here; tests/http/test_openapi.py fails when the app and this document disagree, and schemathesis
checks the server against it.
"""

from __future__ import annotations

from typing import Any

from conversation_service.domain.rules import InputLimits
from conversation_service.entrypoints.http import openapi_responses as r
from conversation_service.entrypoints.http.openapi_events import events
from conversation_service.entrypoints.http.openapi_keeping import (
    export_conversation_parameter,
    export_lines,
    keeping_paths,
)
from conversation_service.entrypoints.http.openapi_paths import api_paths, operation
from conversation_service.entrypoints.http.openapi_requests import request_bodies
from conversation_service.entrypoints.http.openapi_schemas import response_bodies
from conversation_service.entrypoints.http.playground_routes import PLAYGROUND_ASSETS
from conversation_service.entrypoints.http.routes import HttpSettings

# The Swagger UI files /docs loads (from the openapi-ui-bundles package), and their types.
DOCS_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

DESCRIPTION = """\
Multi-tenant conversations with language models, streamed over Server-Sent Events.

Every `/api` route takes a Bearer token (`Authorization: Bearer cs_...`) and an `org_id`
query parameter naming the token's own organisation; another organisation's objects are 404.

Errors are always JSON: `{{"error": {{"code", "message", "request_id", "field"?}}}}`. Every
answer carries `X-Request-Id`; every authenticated one `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset`. Request bodies are JSON, at most
{max_body_bytes} bytes. Besides the statuses listed per operation, any request can get 405
(a method the path does not have, with `Allow`), 408 (a body that arrives too slowly) and
431 (request headers that are too large).
"""

TAGS = {
    "conversations": "Conversations and their messages.",
    "sessions": "Chat sessions: a conversation's binding to one model.",
    "streaming": "Replies as Server-Sent Events.",
    "models": "Language models and what they cost.",
    "service": "The service itself.",
    "docs": "This documentation.",
    "playground": "A page for trying the API in a browser.",
}


def _ok(description: str, content: dict[str, Any], *extra: str) -> dict[str, Any]:
    headers = r.response_headers(rate=None, extra=extra)
    return {"200": {"description": description, "headers": headers, "content": content}}


def _asset(
    operation_id: str, summary: str, tag: str, files: dict[str, str], *headers: str
) -> dict[str, Any]:
    """GET .../assets/{name}: one of `files` (name: media type), else 404."""
    content: dict[str, Any] = {
        media_type: {"schema": {}} for media_type in sorted(set(files.values()))
    }
    asset = operation(
        operation_id,
        summary,
        tag,
        {**_ok("The file.", content, *headers), **r.errors(404, 500)},
        public=True,
    )
    asset["parameters"] = [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": sorted(files)},
        }
    ]
    return asset


def _docs_paths() -> dict[str, Any]:
    document = {"application/json": {"schema": {"type": "object"}}}
    page = {"text/html": {"schema": {"type": "string"}}}
    return {
        "/openapi.json": {
            "get": operation(
                "getOpenApi",
                "This document",
                "docs",
                {**_ok("OpenAPI 3.1.", document), **r.errors(500)},
                public=True,
            )
        },
        "/docs": {
            "get": operation(
                "getDocs",
                "This document as a page (Swagger UI, served from here: works offline)",
                "docs",
                {**_ok("HTML.", page), **r.errors(500)},
                public=True,
            )
        },
        "/docs/assets/{name}": {
            "get": _asset("getDocsAsset", "A file of the docs page", "docs", DOCS_ASSETS)
        },
    }


def _playground_paths() -> dict[str, Any]:
    page = {"text/html": {"schema": {"type": "string"}}}
    found = {
        "description": "The playground is at `playground`, relative to this URL.",
        "headers": r.response_headers(rate=None, extra=("Location", "Content-Security-Policy")),
    }
    return {
        "/": {
            "get": operation(
                "getRoot",
                "Leads to the playground",
                "playground",
                {"302": found, **r.errors(500)},
                public=True,
            )
        },
        "/playground": {
            "get": operation(
                "getPlayground",
                "A page for trying the API with a token (served from here: works offline)",
                "playground",
                {**_ok("HTML.", page, "Content-Security-Policy"), **r.errors(500)},
                public=True,
            )
        },
        "/playground/assets/{name}": {
            "get": _asset(
                "getPlaygroundAsset",
                "A file of the playground",
                "playground",
                PLAYGROUND_ASSETS,
                "Content-Security-Policy",
            )
        },
    }


def _metrics_paths(settings: HttpSettings) -> dict[str, Any]:
    guarded = settings.metrics_token is not None
    text = {"text/plain": {"schema": {"type": "string"}}}
    found = operation(
        "getMetrics",
        "This instance's metrics, for Prometheus",
        "service",
        {
            "200": {
                "description": "Prometheus' text exposition format (version 0.0.4).",
                "headers": r.response_headers(rate=None),
                "content": text,
            },
            **r.errors(*((401,) if guarded else ()), 500, 503),
        },
        public=True,
        description="This instance's own figures (in a cluster, scrape every instance). "
        + (
            "Takes the operator's metrics token, not an API token."
            if guarded
            else "Open: no token (the operator may set a metrics token)."
        ),
    )
    if guarded:
        found["security"] = [{"metricsToken": []}]
    return {"/metrics": {"get": found}}


def _security_schemes(settings: HttpSettings) -> dict[str, Any]:
    schemes: dict[str, Any] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `conversation-service token create` (or "
            "printed on the first start): `cs_` and 43 url-safe characters.",
        }
    }
    if settings.metrics_token is not None:
        schemes["metricsToken"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The operator's metrics token (CONVERSATION_SERVICE_METRICS_TOKEN), "
            "for GET /metrics only.",
        }
    return schemes


def build_openapi(settings: HttpSettings, limits: InputLimits) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a server with these settings and limits."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Conversation Service",
            "version": "0.1.0",
            "description": DESCRIPTION.format(max_body_bytes=settings.max_body_bytes),
        },
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": {
            **api_paths(settings),
            **keeping_paths(settings),
            **_metrics_paths(settings),
            **_docs_paths(),
            **_playground_paths(),
        },
        "components": {
            "securitySchemes": _security_schemes(settings),
            "parameters": {
                **r.parameters(settings),
                "ExportConversationId": export_conversation_parameter(),
            },
            "responses": r.error_responses(settings),
            "schemas": {
                **request_bodies(limits),
                **response_bodies(),
                **events(),
                **export_lines(),
            },
        },
    }
