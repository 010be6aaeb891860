"""GET /openapi.json, and GET /docs: Swagger UI rendering it, every file served from here.

The Swagger UI files come from the `openapi-ui-bundles` package, so the page works offline
and is upgraded with that package instead of being copied into this repository.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import openapi_ui_bundles
from quart import Blueprint, Response, jsonify, send_file
from werkzeug.exceptions import NotFound

from conversation_service.entrypoints.http.openapi import DOCS_ASSETS, build_openapi
from conversation_service.entrypoints.http.routes import HttpDeps

SWAGGER_UI = Path(openapi_ui_bundles.swagger_ui.static_path)


def build_docs_routes(deps: HttpDeps) -> Blueprint:
    """The document describes `deps`' limits, so it is built once per app."""
    docs = Blueprint("docs", __name__)
    document = build_openapi(deps.settings, deps.service.limits)
    page = (
        resources.files("conversation_service.entrypoints.http")
        .joinpath("docs.html")
        .read_text(encoding="utf-8")
    )

    @docs.get("/openapi.json")
    async def openapi_json() -> Response:
        return jsonify(document)

    @docs.get("/docs")
    async def docs_page() -> Response:
        return Response(page, mimetype="text/html")

    @docs.get("/docs/assets/<name>")
    async def docs_asset(name: str) -> Response:
        media_type = DOCS_ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no docs asset {name!r}")
        return await send_file(SWAGGER_UI / name, mimetype=media_type)

    return docs
