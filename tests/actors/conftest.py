from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import attrs
import pytest

from conversation_service.adapters.actors.session_actor import ActorSettings
from conversation_service.adapters.actors.supervisor import SessionSupervisor, open_supervisor
from conversation_service.adapters.conversation_service import ConversationService
from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.adapters.system import RandomIds, SystemClock
from conversation_service.domain.model import AccessRole, ChatSession, Principal
from tests.actors.scripted import ScriptedCatalog


@attrs.define
class World:
    service: ConversationService
    store: InMemoryStore
    catalog: ScriptedCatalog
    supervisor: SessionSupervisor
    who: Principal

    @property
    def org(self):
        return self.who.org_id

    async def new_session(self) -> ChatSession:
        conv = await self.service.create_conversation(self.who, self.org, title="t")
        return await self.service.create_session(
            self.who, self.org, conversation_id=conv.id, model_id=self.catalog.info.id
        )


@pytest.fixture
def actor_settings() -> ActorSettings:
    return ActorSettings(idle_timeout=30.0, max_queued=2)


@pytest.fixture
async def world(actor_settings: ActorSettings) -> AsyncIterator[World]:
    store, catalog, clock = InMemoryStore(), ScriptedCatalog(), SystemClock()
    async with open_supervisor(
        store=store, catalog=catalog, clock=clock, settings=actor_settings
    ) as supervisor:
        service = ConversationService(
            store=store, catalog=catalog, supervisor=supervisor, clock=clock, ids=RandomIds()
        )
        who = Principal(token_id=uuid4(), org_id=uuid4(), role=AccessRole.MEMBER)
        yield World(service=service, store=store, catalog=catalog, supervisor=supervisor, who=who)
