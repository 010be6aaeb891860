"""GET /metrics: this instance's figures, in Prometheus' text format.

Not an API route: no org_id, no API token, not counted against any rate limit. Open unless
the operator sets a metrics token (CONVERSATION_SERVICE_METRICS_TOKEN); then it asks for
`Authorization: Bearer <that token>`, and an API token is refused like any other.
"""

from __future__ import annotations

import hmac

from quart import Blueprint, Response, request

from conversation_service.domain.errors import Unauthenticated
from conversation_service.entrypoints.http.edge import HttpDeps
from conversation_service.entrypoints.metrics import CONTENT_TYPE


def build_metrics_routes(deps: HttpDeps) -> Blueprint:
    routes = Blueprint("metrics", __name__)
    token = deps.settings.metrics_token

    @routes.get("/metrics")
    async def metrics() -> Response:
        if token is not None and not _bears(request.headers.get("Authorization"), token):
            raise Unauthenticated(
                "/metrics needs `Authorization: Bearer <the metrics token>` "
                "(CONVERSATION_SERVICE_METRICS_TOKEN; not an API token)"
            )
        return Response(deps.metrics.exposition(), content_type=CONTENT_TYPE)

    return routes


def _bears(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    # In constant time, so that the answer's timing does not tell how much of it was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
