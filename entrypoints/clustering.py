"""Wiring an instance into its cluster: alone on SQLite, or among others on PostgreSQL.

On PostgreSQL an instance says it is alive every `lease_timeout / 3` seconds, listens for
the others' notifications, serves the commands they send it, takes over the sessions of
instances that are gone, and reloads the organisations' models when one of them changed
them. On its way out it gives its leases back at once, so another instance takes over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from conversation_service.adapters.actors.cluster_runtime import ClusterRuntime
from conversation_service.adapters.cluster.solo import SoloCluster
from conversation_service.adapters.org_models import OrgModels
from conversation_service.adapters.rate_limits import (
    RateLimiter,
    RequestRateLimiter,
    SharedRateLimiter,
    SharedStreamSlots,
    StreamSlots,
)
from conversation_service.adapters.sql.cluster import CHANNEL, SqlCluster, SqlSharedCounters
from conversation_service.adapters.sql.listener import listen
from conversation_service.adapters.sql.sql_store import SqlStore
from conversation_service.ports.clock import Clock
from conversation_service.ports.cluster import Cluster
from conversation_service.ports.storage import StorageUnavailable

log = logging.getLogger(__name__)

MODELS_RELOAD_EVERY = 30.0  # seconds: a lost notification about models costs at most this


@attrs.frozen(kw_only=True)
class Membership:
    """How this instance takes part: its cluster, and the limits it shares with the rest."""

    cluster: Cluster
    counters: SqlSharedCounters | None  # None: alone

    @property
    def alone(self) -> bool:
        return self.counters is None

    def rate_limiter(self, rate: str) -> RateLimiter:
        if self.counters is None:
            return RequestRateLimiter(rate)
        return SharedRateLimiter(rate, self.counters)

    def stream_slots(self, per_org: int) -> StreamSlots:
        if self.counters is None:
            return StreamSlots(per_org)
        return SharedStreamSlots(per_org, self.counters)


@asynccontextmanager
async def open_membership(
    store: SqlStore, clock: Clock, *, clustered: bool, lease_timeout: float
) -> AsyncIterator[Membership]:
    """This instance alive in the cluster (or alone) for the block; it leaves on exit."""
    if not clustered:
        yield Membership(cluster=SoloCluster(), counters=None)
        return
    cluster = SqlCluster(store.actor, clock, lease_timeout=lease_timeout)
    await cluster.heartbeat()  # alive before it takes any lease
    try:
        yield Membership(cluster=cluster, counters=SqlSharedCounters(cluster))
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await cluster.leave()
            except StorageUnavailable as error:
                log.warning("could not leave the cluster (its leases expire): %s", error)


async def run_membership(
    membership: Membership,
    *,
    database_url: str,
    runtime: ClusterRuntime,
    org_models: OrgModels,
    stream_slots: StreamSlots,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The cluster's background work for this instance, until cancelled; started once its
    notifications are heard."""
    cluster = membership.cluster
    if not isinstance(cluster, SqlCluster):
        task_status.started()
        await trio.sleep_forever()
        return
    reload_models = trio.Event()
    cluster.on_models_changed = reload_models.set
    async with trio.open_nursery() as nursery:
        await nursery.start(listen, database_url, CHANNEL, cluster.heard)
        nursery.start_soon(runtime.serve_requests)
        if isinstance(stream_slots, SharedStreamSlots):
            nursery.start_soon(stream_slots.run)
        nursery.start_soon(_keep, cluster, membership, runtime)
        task_status.started()
        while True:
            with trio.move_on_after(MODELS_RELOAD_EVERY):
                await reload_models.wait()
            reload_models = trio.Event()
            cluster.on_models_changed = reload_models.set
            try:
                await org_models.reload()
            except StorageUnavailable as error:
                log.warning("could not reload the organisations' models: %s", error)


async def _keep(cluster: SqlCluster, membership: Membership, runtime: ClusterRuntime) -> None:
    """Say this instance is alive; take over the sessions of instances that are gone."""
    while True:
        await trio.sleep(cluster.lease_timeout / 3)
        try:
            await cluster.heartbeat()
            taken = await runtime.adopt_orphans()
            if taken:
                log.info("took over %d chat sessions of instances that are gone", taken)
            if membership.counters is not None:
                # Counted windows are at most a day long (a rate is per second to per day).
                await membership.counters.forget_windows(int(time.time()) - 2 * 86_400)
        except StorageUnavailable as error:
            log.warning("the cluster's upkeep failed (trying again): %s", error)
