"""The Quart-Trio application: routes, error handlers, request ids and rate-limit headers."""

from __future__ import annotations

import re
import uuid

from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from domain.errors import DomainError
from entrypoints.http.errors import on_domain_error, on_http_error, on_unexpected
from entrypoints.http.routes import HttpDeps, build_routes

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(deps: HttpDeps) -> QuartTrio:
    """The HTTP app over an already running service."""
    app = QuartTrio("conversation_service")
    app.config.update(
        MAX_CONTENT_LENGTH=deps.settings.max_body_bytes,
        PROPAGATE_EXCEPTIONS=False,
    )
    app.register_blueprint(build_routes(deps))
    app.register_error_handler(DomainError, on_domain_error)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(Exception, on_unexpected)

    @app.before_request
    async def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    async def stamp(response: Response) -> Response:
        response.headers["X-Request-Id"] = str(getattr(g, "request_id", ""))
        rate = getattr(g, "rate", None)
        if rate is not None:
            response.headers["X-RateLimit-Limit"] = str(rate.limit)
            response.headers["X-RateLimit-Remaining"] = str(rate.remaining)
            response.headers["X-RateLimit-Reset"] = str(max(0, round(rate.reset_after)))
        return response

    return app
