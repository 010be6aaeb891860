"""GET /playground: a page for trying the API in a browser; GET / leads to it.

The page and its scripts are package data (`playground/` beside this module), read once and
served from memory: it works offline, loads nothing from elsewhere, and talks to this server
only, which its Content-Security-Policy makes the browser enforce. It holds no secret: the
token is pasted into it and kept in the browser's storage.
"""

from __future__ import annotations

from importlib import resources

from quart import Blueprint, Response
from werkzeug.exceptions import NotFound

# The files /playground/assets/<name> serves, and their types; nothing else is served.
PLAYGROUND_ASSETS = {
    "playground.css": "text/css",
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "conversations.js": "text/javascript",
    "dom.js": "text/javascript",
    "replies.js": "text/javascript",
    "session_column.js": "text/javascript",
    "sse.js": "text/javascript",
}

# Only this server: no inline script or style, no other origin to fetch from, frame the page
# or post a form to. The favicon is the docs page's (/docs/assets), also served here.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on each load, so an upgraded server's page never runs old scripts.
    "Cache-Control": "no-cache",
}


def build_playground_routes() -> Blueprint:
    playground = Blueprint("playground", __name__)
    folder = resources.files("conversation_service.entrypoints.http").joinpath("playground")
    page = folder.joinpath("index.html").read_bytes()
    assets = {name: folder.joinpath(name).read_bytes() for name in PLAYGROUND_ASSETS}

    @playground.get("/")
    async def root() -> Response:
        # Relative, so that it also leads there behind a proxy's path prefix.
        return Response(b"", status=302, headers={"Location": "playground", **_HEADERS})

    @playground.get("/playground")
    async def playground_page() -> Response:
        return Response(page, mimetype="text/html", headers=_HEADERS)

    @playground.get("/playground/assets/<name>")
    async def playground_asset(name: str) -> Response:
        media_type = PLAYGROUND_ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no playground asset {name!r}")
        return Response(assets[name], mimetype=media_type, headers=_HEADERS)

    return playground
