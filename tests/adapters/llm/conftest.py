"""What the provider tests share: an HTTP client per test, and each provider in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conversation_service.adapters.llm.http1 import UpstreamClient

from .providers import PROVIDERS, Provider


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient() as client:
        yield client


@pytest.fixture(params=PROVIDERS, ids=lambda provider: provider.name)
def provider(request: pytest.FixtureRequest) -> Provider:
    """Each provider API in turn, for a test of what their models do alike."""
    return request.param
