"""The service in the test's own process: the use cases over the in-memory store (or any
store given), session actors under a supervisor, and a scripted catalog; no HTTP.

    async with open_in_process_service() as running:
        session = await running.new_session()
        reply = await running.service.send_message(running.who, running.org, session.id, "hi")
        assert text_of(await drain(reply)) == "Hello, world"
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import attrs
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
from conversation_service.testing.scripted import ScriptedCatalog


@attrs.frozen
class Seen:
    """An event as a client sees it: its id, its SSE name and its JSON data."""

    id: int
    kind: str
    data: dict[str, Any]


def as_seen(events: Iterable[ReplyEvent]) -> list[Seen]:
    return [Seen(event.id, *event_data(event)) for event in events]


async def drain(stream: ReplyStream | LiveReply, after: int | None = None) -> list[Seen]:
    """Every event of a reply (or a stream) to its end; fails after 600 seconds (tests on an
    autojump clock wait long scripts out in no time; wrap it in your own `fail_after`)."""
    follower = stream.follow(after) if hasattr(stream, "follow") else stream
    events: list[Seen] = []
    with trio.fail_after(600):
        while batch := await follower.next_batch():
            events.extend(as_seen(batch))
    return events


def text_of(events: list[Seen]) -> str:
    """The reply's text: its content events joined."""
    return "".join(e.data["content"] for e in events if e.kind == "content")


@attrs.define
class InProcessService:
    """A running service and what it is made of; `who` is a member of a fresh organisation."""

    service: ConversationService
    store: Any  # InMemoryStore, or the store given
    catalog: Any  # ScriptedCatalog, or the catalog given
    supervisor: SessionSupervisor
    who: Principal

    @property
    def org(self) -> UUID:
        return self.who.org_id

    async def new_session(self, model_id: UUID | None = None) -> ChatSession:
        """A session in a new conversation, on `model_id` (the scripted model by default)."""
        conv = await self.service.create_conversation(self.who, self.org, title="t")
        return await self.service.create_session(
            self.who, self.org, conversation_id=conv.id, model_id=model_id or self.catalog.info.id
        )


@asynccontextmanager
async def open_in_process_service(
    store: Any = None,
    settings: ActorSettings | None = None,
    catalog: Any = None,
    titles: Callable[[Any], TitleSettings] | None = None,
) -> AsyncIterator[InProcessService]:
    """A service over `store` (a new in-memory one by default) and `catalog` (a new
    ScriptedCatalog by default), its actors stopped on the way out; `titles` says how
    conversations get titles, given the catalog (by default they get none)."""
    store = store if store is not None else InMemoryStore()
    catalog = catalog if catalog is not None else ScriptedCatalog()
    clock = SystemClock()
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
        yield InProcessService(
            service=service, store=store, catalog=catalog, supervisor=supervisor, who=who
        )
