"""What the provider tests share: an HTTP client per test, and each provider in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from .providers import PROVIDERS, Provider


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # As the catalog's: redirects are never followed.
    async with httpx.AsyncClient(follow_redirects=False) as client:
        yield client


@pytest.fixture(params=PROVIDERS, ids=lambda provider: provider.name)
def provider(request: pytest.FixtureRequest) -> Provider:
    """Each provider API in turn, for a test of what their models do alike."""
    return request.param
