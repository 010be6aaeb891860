"""The composition root: the one place that builds concrete adapters from settings."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import attrs
import trio

from conversation_service.adapters.access import AccessAdmin, TokenVerifier
from conversation_service.adapters.actors.cluster_runtime import ClusterRuntime
from conversation_service.adapters.actors.session_actor import ActorSettings
from conversation_service.adapters.actors.supervisor import SessionSupervisor, open_supervisor
from conversation_service.adapters.actors.titles import TitleSettings
from conversation_service.adapters.actors.turn import FlushPolicy
from conversation_service.adapters.llm import load_registry, open_catalog
from conversation_service.adapters.llm.http1 import Gathering
from conversation_service.adapters.org_models import OrgModels
from conversation_service.adapters.rate_limits import RequestRateLimiter
from conversation_service.adapters.secret_box import SecretBox, load_or_create_key
from conversation_service.adapters.sql import open_sql_store, sqlite_url_for_dir
from conversation_service.adapters.sql.dialects import POSTGRESQL, dialect_of
from conversation_service.adapters.sql.sql_store import SqlStore
from conversation_service.adapters.system import RandomIds, SystemClock
from conversation_service.domain.rules import InputLimits
from conversation_service.domain.titles import TITLE_MAX_CHARS
from conversation_service.entrypoints.clustering import open_membership, run_membership
from conversation_service.entrypoints.http.idempotency import Idempotency
from conversation_service.entrypoints.http.routes import HttpDeps, HttpSettings
from conversation_service.entrypoints.metrics import Metrics
from conversation_service.entrypoints.settings import Settings, SettingsError
from conversation_service.entrypoints.telemetry import ServiceTelemetry
from conversation_service.ports.telemetry import NO_TELEMETRY, Telemetry
from conversation_service.service_layer.conversation_service import ConversationService

KEY_RETENTION = timedelta(hours=25)  # Idempotency-Key answers: "at least 24 h"


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    return sqlite_url_for_dir(settings.data_dir)


def secret_key_path(settings: Settings) -> Path:
    return settings.secret_key_file or settings.data_dir / "secret.key"


@asynccontextmanager
async def open_store(
    settings: Settings, telemetry: Telemetry = NO_TELEMETRY
) -> AsyncIterator[SqlStore]:
    """The SQL store alone (for the CLI's org and token commands). Needs a trio-asyncio loop."""
    async with open_sql_store(database_url(settings), telemetry=telemetry) as store:
        yield store


@attrs.frozen(kw_only=True)
class Services:
    """The running service's parts, as the HTTP app and the CLI use them."""

    store: SqlStore
    service: ConversationService
    supervisor: SessionSupervisor
    admin: AccessAdmin
    http: HttpDeps


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Every part of the service, started; stopped in reverse order on exit.

    Must run inside `trio_asyncio.open_loop()` (the SQL store is asyncio underneath).
    """
    try:
        RequestRateLimiter(settings.rate_limit)  # refused here, before anything starts
    except ValueError as error:
        raise SettingsError(f"rate_limit {settings.rate_limit!r}: {error}") from None
    registry = load_registry(settings.models)
    echo_delay = None if settings.echo_delay_ms is None else settings.echo_delay_ms / 1000
    clock, ids = SystemClock(), RandomIds()
    url = database_url(settings)
    metrics = Metrics()  # this instance's own figures (GET /metrics)
    telemetry = ServiceTelemetry(metrics)
    # On PostgreSQL, several instances may share the database; SQLite has one.
    clustered = dialect_of(url) == POSTGRESQL
    async with (
        open_store(settings, telemetry) as store,
        open_membership(
            store, clock, clustered=clustered, lease_timeout=settings.lease_timeout
        ) as membership,
    ):
        if membership.alone:  # after a restart, nothing is being written any more
            await store.recover_interrupted(clock.now())
        # (In a cluster the others may be writing: orphans are taken over as they are found.)
        await store.forget_keys(before=clock.now() - KEY_RETENTION, unfinished=membership.alone)
        news = None if membership.alone else membership.cluster.reply_changed
        flush = settings.flush_interval or (0.5 if membership.alone else 0.1)
        async with (
            open_catalog(
                registry,
                echo_delay=echo_delay,
                allow_private=settings.allow_private_model_urls,
                gathering=Gathering(most=settings.gather_ms / 1000),
            ) as catalog,
            open_supervisor(
                store=store,
                catalog=catalog,
                clock=clock,
                settings=ActorSettings(
                    idle_timeout=settings.actor_idle_timeout,
                    max_queued=settings.max_queued_per_session,
                    max_replies_per_org=settings.max_replies_per_org,
                    flush=FlushPolicy(interval=flush),
                ),
                titles=TitleSettings(
                    model_id=registry.title_model_id,
                    max_chars=min(TITLE_MAX_CHARS, settings.max_title_chars),
                ),
                news=news,
                telemetry=telemetry,
            ) as supervisor,
        ):
            metrics.watch_sessions(supervisor)
            runtime = ClusterRuntime(local=supervisor, cluster=membership.cluster, store=store)
            service = ConversationService(
                store=store,
                catalog=catalog,
                runtime=runtime,
                clock=clock,
                ids=ids,
                limits=InputLimits(
                    max_title_chars=settings.max_title_chars,
                    max_message_chars=settings.max_message_chars,
                ),
            )
            org_models = OrgModels(
                store=store,
                catalog=catalog,
                box=SecretBox(settings.secret_key or load_or_create_key(secret_key_path(settings))),
                clock=clock,
                ids=ids,
                allow_private=settings.allow_private_model_urls,
                announce=None if membership.alone else membership.cluster.models_changed,
            )
            await org_models.load_all()
            verifier = TokenVerifier(store, clock, recheck_after=settings.token_recheck_seconds)
            stream_slots = membership.stream_slots(settings.max_streams_per_org)
            async with trio.open_nursery() as background:
                await background.start(
                    functools.partial(
                        run_membership,
                        membership,
                        database_url=url,
                        runtime=runtime,
                        org_models=org_models,
                        stream_slots=stream_slots,
                    )
                )
                yield Services(
                    store=store,
                    service=service,
                    supervisor=supervisor,
                    admin=AccessAdmin(store=store, clock=clock, ids=ids, on_revoke=verifier.forget),
                    http=HttpDeps(
                        service=service,
                        verifier=verifier,
                        rate_limiter=membership.rate_limiter(settings.rate_limit),
                        stream_slots=stream_slots,
                        idempotency=Idempotency(store, clock),
                        metrics=metrics,
                        org_models=org_models,
                        settings=HttpSettings(
                            max_body_bytes=settings.max_body_bytes,
                            body_timeout=settings.body_timeout,
                            max_import_bytes=settings.max_import_bytes,
                            import_body_timeout=settings.import_body_timeout,
                            cors_origins=settings.cors_origins,
                            metrics_token=settings.metrics_token,
                        ),
                    ),
                )
                background.cancel_scope.cancel()
