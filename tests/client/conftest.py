"""Clients of the real server: the app on a real socket (tests/http/conftest.py) with its real
tenants, reached through the client as a program would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from conversation_service.client import AsyncClient, Client, RetryPolicy
from conversation_service.testing.served import Served, serve
from tests.http.conftest import Api, Tenant, open_api, settings_for

# Retries quick enough for tests; the waits a server asks for (Retry-After) are still kept.
FAST = RetryPolicy(max_retries=4, base=0.02, cap=0.2)


def async_client(base_url: str, who: Tenant, **options: Any) -> AsyncClient:
    options.setdefault("retry", FAST)
    return AsyncClient(base_url, token=who.token, org_id=who.org_id, **options)


def sync_client(base_url: str, who: Tenant, **options: Any) -> Client:
    options.setdefault("retry", FAST)
    return Client(base_url, token=who.token, org_id=who.org_id, **options)


@asynccontextmanager
async def served_api(tmp_path: Path, **settings: Any) -> AsyncIterator[Api]:
    async with open_api(settings_for(tmp_path, **settings)) as api:
        yield api


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real `conversation-service serve` process (echo words 200 ms apart, time enough to
    interrupt a reply), with the admin token of its first start."""
    data = tmp_path_factory.mktemp("served") / "data"
    running = serve(data, "--echo-delay-ms", "200")
    assert running.token and running.org_id
    try:
        yield running
    finally:
        assert running.stop() == 0


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with served_api(tmp_path, echo_delay_ms=5) as opened:
        yield opened


@pytest.fixture
async def client(api: Api) -> AsyncIterator[AsyncClient]:
    async with async_client(api.server.base_url, api.a) as opened:
        yield opened


class Statuses:
    """What an httpx client sent and received, in order (its event hooks): each request's
    method, path and resume headers, each answer's status."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.requests: list[tuple[str, str, str | None, str | None]] = []

    def hooks(self) -> dict[str, list[Any]]:
        return {"request": [self._request], "response": [self._response]}

    def sync_hooks(self) -> dict[str, list[Any]]:
        return {"request": [self.request], "response": [self.response]}

    def request(self, request: httpx.Request) -> None:
        headers = request.headers
        self.requests.append(
            (
                request.method,
                request.url.path,
                headers.get("idempotency-key"),
                headers.get("last-event-id"),
            )
        )

    def response(self, response: httpx.Response) -> None:
        self.seen.append(response.status_code)

    async def _request(self, request: httpx.Request) -> None:
        self.request(request)

    async def _response(self, response: httpx.Response) -> None:
        self.response(response)
