from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
import trio

from conversation_service.adapters.actors.session_actor import ActorSettings
from conversation_service.adapters.actors.supervisor import SessionSupervisor, open_supervisor
from conversation_service.adapters.actors.titles import TitleSettings
from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.adapters.system import RandomIds, SystemClock
from conversation_service.domain.model import AccessRole, ChatSession, Principal
from conversation_service.domain.replies import ReplyEvent
from conversation_service.entrypoints.http.sse import event_data
from conversation_service.ports.session_runtime import LiveReply, ReplyStream
from conversation_service.service_layer.conversation_service import ConversationService
from tests.actors.scripted import ScriptedCatalog


@attrs.frozen
class Seen:
    """An event as a client sees it: its id, its SSE name and its JSON data."""

    id: int
    kind: str
    data: dict[str, Any]


def as_seen(events: Iterable[ReplyEvent]) -> list[Seen]:
    return [Seen(event.id, *event_data(event)) for event in events]


async def drain(stream: ReplyStream | LiveReply, after: int | None = None) -> list[Seen]:
    """Every event of a reply (or a stream) to its end."""
    follower = stream.follow(after) if hasattr(stream, "follow") else stream
    events: list[Seen] = []
    with trio.fail_after(600):
        while batch := await follower.next_batch():
            events.extend(as_seen(batch))
    return events


def text_of(events: list[Seen]) -> str:
    return "".join(e.data["content"] for e in events if e.kind == "content")


@attrs.define
class World:
    service: ConversationService
    store: Any  # InMemoryStore, or one of tests/actors/store_wrappers.py
    catalog: ScriptedCatalog
    supervisor: SessionSupervisor
    who: Principal

    @property
    def org(self):
        return self.who.org_id

    async def new_session(self, model_id: UUID | None = None) -> ChatSession:
        conv = await self.service.create_conversation(self.who, self.org, title="t")
        return await self.service.create_session(
            self.who, self.org, conversation_id=conv.id, model_id=model_id or self.catalog.info.id
        )


@pytest.fixture
def actor_settings() -> ActorSettings:
    return ActorSettings(idle_timeout=30.0, max_queued=2)


@asynccontextmanager
async def open_world(
    store: Any = None,
    settings: ActorSettings | None = None,
    titles: Callable[[ScriptedCatalog], TitleSettings] | None = None,
) -> AsyncIterator[World]:
    """A service over `store` (the in-memory one by default) and a scripted catalog;
    `titles` says how conversations get titles, given the catalog."""
    store = store if store is not None else InMemoryStore()
    catalog, clock = ScriptedCatalog(), SystemClock()
    async with open_supervisor(
        store=store,
        catalog=catalog,
        clock=clock,
        settings=settings,
        titles=titles(catalog) if titles else None,
    ) as supervisor:
        service = ConversationService(
            store=store, catalog=catalog, runtime=supervisor, clock=clock, ids=RandomIds()
        )
        who = Principal(token_id=uuid4(), org_id=uuid4(), role=AccessRole.MEMBER)
        yield World(service=service, store=store, catalog=catalog, supervisor=supervisor, who=who)


@pytest.fixture
async def world(actor_settings: ActorSettings) -> AsyncIterator[World]:
    async with open_world(settings=actor_settings) as opened:
        yield opened
