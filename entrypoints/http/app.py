"""The Quart-Trio application: routes, error handlers, request ids, rate-limit headers and
the request metrics."""

from __future__ import annotations

import time

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart import Response, g, request
from quart_cors import cors
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection
from werkzeug.exceptions import HTTPException, RequestHeaderFieldsTooLarge

from conversation_service.domain.errors import DomainError
from conversation_service.entrypoints import structured_logs
from conversation_service.entrypoints.http import access_log
from conversation_service.entrypoints.http.answer_guard import STOPPING_MESSAGE, HttpLifecycle
from conversation_service.entrypoints.http.body_caps import BodyCap, capped_requests
from conversation_service.entrypoints.http.docs_routes import build_docs_routes
from conversation_service.entrypoints.http.errors import (
    ShuttingDown,
    on_domain_error,
    on_http_error,
    on_unexpected,
    request_id_for,
)
from conversation_service.entrypoints.http.inputs import request_body
from conversation_service.entrypoints.http.metrics_routes import build_metrics_routes
from conversation_service.entrypoints.http.playground_routes import build_playground_routes
from conversation_service.entrypoints.http.routes import HttpDeps, build_routes
from conversation_service.entrypoints.http.routes_transfer import IMPORT_PATH


class HttpConnection(TrioASGIHTTPConnection):
    """Quart-Trio's handling of one request, run in the task the server runs the app in.

    Quart-Trio starts two tasks per request, one reading the client's messages (it cancels
    the other when the client leaves) and one handling the request, and then only waits for
    them. Here the request is handled in the waiting task itself, under the same nursery:
    the same cancellation, one task start (and its steps) fewer per request.
    """

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        request = self._create_request_from_scope(send)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.handle_messages, nursery, request, receive)
            await self.handle_request(nursery, request, send)


def create_app(deps: HttpDeps, lifecycle: HttpLifecycle | None = None) -> QuartTrio:
    """The HTTP app over an already running service.

    `lifecycle` is the HTTP server's shutdown state (see answer_guard); without one the app
    never refuses a request as stopping.
    """
    lifecycle = lifecycle or HttpLifecycle()
    # No static folder: Quart would otherwise serve ./static from the working directory.
    app = QuartTrio("conversation_service", static_folder=None)
    app.asgi_http_class = HttpConnection
    app.config.update(
        MAX_CONTENT_LENGTH=deps.settings.max_body_bytes,
        BODY_TIMEOUT=deps.settings.body_timeout,
        PROPAGATE_EXCEPTIONS=False,
    )
    settings = deps.settings
    app.request_class = capped_requests(
        {IMPORT_PATH: BodyCap(settings.max_import_bytes, settings.import_body_timeout)}
    )
    app.register_blueprint(build_routes(deps))
    app.register_blueprint(build_docs_routes(deps))
    app.register_blueprint(build_playground_routes())
    app.register_blueprint(build_metrics_routes(deps))
    app.register_error_handler(DomainError, on_domain_error)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(Exception, on_unexpected)

    @app.before_request
    async def assign_request_id() -> None:
        access_log.start_request()
        g.request_id = request_id_for(request.headers.get("X-Request-Id"))
        structured_logs.bind_request(g.request_id)  # for every line logged while it is handled
        # Hypercorn's h11 layer caps a head still arriving (connection.py gives its 431 the
        # JSON body); one that arrives whole is capped here.
        size = sum(len(name) + len(value) + 4 for name, value in request.headers.items())
        if size > deps.settings.max_header_bytes:
            raise RequestHeaderFieldsTooLarge(
                f"request headers are {size} bytes; at most {deps.settings.max_header_bytes}"
            )
        # Read the whole body (capped by size and time) before any answer: Hypercorn closes
        # a connection answered before its body arrived, under a client still sending it.
        await request_body()
        if lifecycle.stopping:
            raise ShuttingDown(STOPPING_MESSAGE)

    if deps.settings.cors_origins:
        # Off unless the operator lists the origins that may call the API from a browser.
        cors(
            app,
            allow_origin=list(deps.settings.cors_origins),
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            allow_methods=["GET", "POST", "DELETE"],
            expose_headers=[
                "X-Request-Id", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                "X-RateLimit-Reset", "Idempotent-Replayed",
            ],
        )  # fmt: skip

    @app.after_request
    async def stamp(response: Response) -> Response:
        response.headers["X-Request-Id"] = str(getattr(g, "request_id", ""))
        rate = getattr(g, "rate", None)
        if rate is not None:
            response.headers["X-RateLimit-Limit"] = str(rate.limit)
            response.headers["X-RateLimit-Remaining"] = str(rate.remaining)
            response.headers["X-RateLimit-Reset"] = str(max(0, round(rate.reset_after)))
        access_log.finish_request(response)
        rule = request.url_rule  # the route's rule, never the path: no ids in the labels
        deps.metrics.request_answered(
            request.method,
            None if rule is None else rule.rule,
            response.status_code,
            time.perf_counter() - getattr(g, "started", time.perf_counter()),
        )
        return response

    return app
