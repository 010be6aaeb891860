"""The service in process over a scripted catalog: the kit's `in_process`, under the names
these tests have always used."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conversation_service.adapters.actors.session_actor import ActorSettings
from conversation_service.testing.in_process import (
    InProcessService,
    Seen,
    as_seen,
    drain,
    open_in_process_service,
    text_of,
)

World = InProcessService
open_world = open_in_process_service

__all__ = ["Seen", "World", "as_seen", "drain", "open_world", "text_of"]


@pytest.fixture
def actor_settings() -> ActorSettings:
    return ActorSettings(idle_timeout=30.0, max_queued=2)


@pytest.fixture
async def world(actor_settings: ActorSettings) -> AsyncIterator[World]:
    async with open_world(settings=actor_settings) as opened:
        yield opened
