"""Retiring sessions across instances (ClusterRuntime): two instances' runtimes over one
store, their leases and commands carried by an in-memory stand-in for the database's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
import trio

from conversation_service.adapters.actors.cluster_runtime import ClusterRuntime
from conversation_service.adapters.actors.supervisor import SessionSupervisor, open_supervisor
from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.adapters.system import RandomIds, SystemClock
from conversation_service.domain.branches import NewQuestion
from conversation_service.domain.errors import DomainError, NotFound
from conversation_service.domain.model import AccessRole, ChatSession, Principal
from conversation_service.domain.replies import Multitask
from conversation_service.ports.cluster import SessionAnswer, SessionRequest
from conversation_service.service_layer.conversation_service import ConversationService
from tests.actors.conftest import drain
from tests.actors.scripted import Script, ScriptedCatalog


@attrs.define
class Leases:
    """What the instances share: who holds which session, and each instance's runtime."""

    holders: dict[UUID, str] = attrs.Factory(dict)
    runtimes: dict[str, ClusterRuntime] = attrs.Factory(dict)
    asked: list[tuple[str, str]] = attrs.Factory(list)  # (instance, kind) of each command


@attrs.define
class SharedCluster:
    """The Cluster port of one instance, over Leases."""

    leases: Leases
    instance_id: str
    alone: bool = False

    async def claim(self, session_id: UUID, org_id: UUID) -> str:
        return self.leases.holders.setdefault(session_id, self.instance_id)

    async def holder(self, session_id: UUID) -> str | None:
        return self.leases.holders.get(session_id)

    async def forget(self, session_ids: Any) -> None:
        for session_id in session_ids:
            self.leases.holders.pop(session_id, None)

    async def ask(self, owner: str, request: SessionRequest) -> SessionAnswer:
        self.leases.asked.append((owner, request.kind))
        try:
            return await self.leases.runtimes[owner]._answer(request)
        except DomainError as error:
            return SessionAnswer(error={"code": error.code, "message": error.message})


@attrs.frozen
class Instances:
    a: ClusterRuntime
    b: ClusterRuntime
    leases: Leases
    store: InMemoryStore
    catalog: ScriptedCatalog
    service: ConversationService  # on instance B
    who: Principal


@asynccontextmanager
async def two_instances() -> AsyncIterator[Instances]:
    store, catalog, clock, leases = InMemoryStore(), ScriptedCatalog(), SystemClock(), Leases()

    def runtime(supervisor: SessionSupervisor, name: str) -> ClusterRuntime:
        cluster: Any = SharedCluster(leases, name)
        leases.runtimes[name] = ClusterRuntime(local=supervisor, cluster=cluster, store=store)
        return leases.runtimes[name]

    async with (
        open_supervisor(store=store, catalog=catalog, clock=clock) as on_a,
        open_supervisor(store=store, catalog=catalog, clock=clock) as on_b,
    ):
        a, b = runtime(on_a, "a"), runtime(on_b, "b")
        service = ConversationService(
            store=store, catalog=catalog, runtime=b, clock=clock, ids=RandomIds()
        )
        who = Principal(token_id=uuid4(), org_id=uuid4(), role=AccessRole.MEMBER)
        yield Instances(a, b, leases, store, catalog, service, who)


async def running_on_a(instances: Instances) -> tuple[ChatSession, Any]:
    """A session whose reply instance A is writing (two chunks, then nothing for a while)."""
    who = instances.who
    conversation = await instances.service.create_conversation(who, who.org_id, title="t")
    session = await instances.service.create_session(
        who, who.org_id, conversation_id=conversation.id, model_id=instances.catalog.info.id
    )
    instances.catalog.model.default = Script(chunks=["a "] * 2, delay=1.0, hang=True)
    reply = await instances.a.send(
        session,
        NewQuestion(text="hi"),
        multitask=Multitask.ENQUEUE,
        message_id=uuid4(),
        user_message_id=uuid4(),
    )
    await trio.sleep(2.5)
    assert instances.leases.holders[session.id] == "a"
    return session, reply


async def test_retire_sent_to_another_instance_stops_the_reply_its_lease_holder_writes(
    autojump_clock: Any,
) -> None:
    async with two_instances() as instances:
        session, reply = await running_on_a(instances)
        with trio.fail_after(10):
            await instances.b.retire(session)
        assert instances.leases.asked == [("a", "retire")]
        assert instances.catalog.model.cancelled == 1
        assert (await drain(reply))[-1].data["finish_reason"] == "cancelled"
        # Both refuse it now: B itself, and A, to which B carries what it is sent.
        for runtime in (instances.a, instances.b):
            with pytest.raises(NotFound):
                await runtime.send(
                    session, NewQuestion(text="more"), multitask=Multitask.ENQUEUE,
                    message_id=uuid4(), user_message_id=uuid4(),
                )  # fmt: skip


async def test_forget_retires_a_deleted_session_where_its_lease_says_and_drops_the_lease(
    autojump_clock: Any,
) -> None:
    async with two_instances() as instances:
        # As for a session made while its conversation's other sessions were retired: its
        # rows are deleted while A still writes its reply.
        session, reply = await running_on_a(instances)
        org_id = instances.who.org_id
        assert await instances.store.delete_conversation(org_id, session.conversation_id)
        with trio.fail_after(10):
            await instances.b.forget(org_id, [session.id])
        assert instances.leases.asked == [("a", "retire")]
        assert instances.catalog.model.cancelled == 1  # stopped by the retire command
        assert instances.a.local.live_actors == 0
        # Its row is gone, so the cancelled reply could not be stored: its stream says so.
        assert (await drain(reply))[-1].kind == "end"
        assert instances.leases.holders == {}
        # A session retired before its rows went is not asked about again.
        instances.leases.asked.clear()
        second, _ = await running_on_a(instances)
        await instances.b.retire(second)
        await instances.b.forget(org_id, [second.id])
        assert instances.leases.asked == [("a", "retire")]
        assert instances.leases.holders == {}
