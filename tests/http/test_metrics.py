"""GET /metrics over the real server: scraped with Prometheus' own parser after real traffic."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from conversation_service.domain.model import AccessRole
from conversation_service.entrypoints.settings import ENV_PREFIX, SettingsError, load_settings
from tests.adapters.llm.openai_server import (
    error_reply,
    in_turn,
    start_fake_openai,
    streaming_reply,
)
from tests.http.conftest import Api, open_api, settings_for
from tests.http.instances import clients_of, close_all, instances, wait_for
from tests.http.test_org_models_api import entry as org_model
from tests.http.test_stream_api import OPENAI_MODEL, registry_with_upstream

P = "conversation_service_"
METRICS_TOKEN = "scrape-me-0123456789"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, token: str | None = None) -> Samples:
    """Every sample of one scrape, keyed by name and labels."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when the scrape has none (a labelled child not yet made)."""
    return samples.get((P + name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_a_reply_is_counted_by_model_and_status_with_its_first_token_and_requests(
    api: Api,
) -> None:
    session = await api.session((await api.conversation())["id"])
    before = await scrape(api.client)
    events = await api.stream(session["id"], "how do vector databases work")
    assert events[-1][1] == "end"
    after = await scrape(api.client)

    reply = {"model": "echo", "status": "completed", "finish_reason": "stop"}
    assert moved(before, after, "replies_total", **reply) == 1
    assert moved(before, after, "upstream_first_token_seconds_count", model="echo") == 1
    assert value(after, "upstream_first_token_seconds_sum", model="echo") > 0
    stream_chat = {"method": "POST", "route": "/api/conversation/stream_chat"}
    assert moved(before, after, "http_requests_total", **stream_chat, status="200") == 1
    assert moved(before, after, "http_request_duration_seconds_count", **stream_chat) == 1
    # The message and the reply were stored, in at least one batch.
    assert moved(before, after, "storage_batch_size_count") >= 1
    assert moved(before, after, "storage_batch_size_sum") >= 2
    assert moved(before, after, "storage_batch_seconds_count") >= 1
    # The scrape itself is a request like any other; the actor stays live while idle.
    assert moved(before, after, "http_requests_total", method="GET", route="/metrics", status="200")
    assert value(after, "live_session_actors") == 1
    assert value(after, "queued_messages") == 0
    assert value(after, "open_streams") == 0
    assert ("process_cpu_seconds_total", frozenset()) in after  # prometheus-client's own


@pytest.mark.backends("sqlite")
async def test_a_404_is_counted_under_its_route_template_never_its_path(api: Api) -> None:
    admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
    missing = uuid.uuid4()
    before = await scrape(api.client)
    gone = await api.client.delete(f"/api/models/{missing}", headers=admin.auth, params=admin.q)
    assert gone.status_code == 404
    nowhere = await api.client.get(f"/no/such/{missing}")
    assert nowhere.status_code == 404
    after = await scrape(api.client)

    models = {"method": "DELETE", "route": "/api/models/{model_id}", "status": "404"}
    assert moved(before, after, "http_requests_total", **models) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert moved(before, after, "http_requests_total", **unmatched) == 1
    # No label anywhere holds an id: not the path's, the organisation's or the request's.
    labels = {label for _, pairs in after for _, label in pairs}
    for secret in (str(missing), str(api.a.org_id), gone.headers["x-request-id"]):
        assert not any(secret in label for label in labels), secret


@pytest.mark.backends("sqlite")
async def test_open_streams_rise_during_a_stream_and_fall_when_it_ends_or_is_dropped(
    tmp_path: Path,
) -> None:
    # One stream at a time: each must also give its slot back as it closes.
    settings = settings_for(tmp_path, echo_delay_ms=50, max_streams_per_org=1)
    async with open_api(settings) as api:
        session = await api.session((await api.conversation())["id"])
        words = " ".join(f"w{i}" for i in range(60))  # 3 s of reply: still running when read
        assert value(await scrape(api.client), "open_streams") == 0
        with trio.fail_after(30):
            async with api.open_stream(session["id"], words) as source:
                events = source.aiter_sse()
                assert (await anext(events)).event == "start"
                during = await scrape(api.client)
                async for _ in events:
                    pass
        assert value(during, "open_streams") == 1
        assert value(during, "live_session_actors") == 1
        # The stream's body ended (the client saw its last byte) before the gauge was read.
        assert value(await scrape(api.client), "open_streams") == 0

        # A client that hangs up mid-stream gives its stream back too.
        async with trio.open_nursery() as nursery:

            async def listen_then_hang_up(task_status: trio.TaskStatus[None]) -> None:
                async with httpx.AsyncClient(base_url=api.client.base_url) as dropped:
                    async with dropped.stream(
                        "POST",
                        "/api/conversation/stream_chat",
                        params=api.a.q,
                        headers=api.a.auth,
                        json={"chat_session_id": session["id"], "message": words},
                    ) as response:
                        assert response.status_code == 200
                        await anext(response.aiter_raw())
                        task_status.started()

            await nursery.start(listen_then_hang_up)
        assert await wait_for(
            lambda: _gauge_is(api.client, "open_streams", 0)
        )  # the server notices the hang-up on its next write
        assert (await api.stream(session["id"], "last", multitask="interrupt"))[-1][1] == "end"


async def _gauge_is(client: httpx.AsyncClient, name: str, expected: float) -> bool:
    return value(await scrape(client), name) == expected


@pytest.mark.backends("sqlite")
async def test_queued_messages_are_counted_while_they_wait(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=50)) as api:
        session = await api.session((await api.conversation())["id"])
        words = " ".join(f"w{i}" for i in range(40))
        results: list[list] = []

        async def stream(message: str) -> None:
            results.append(await api.stream(session["id"], message, multitask="enqueue"))

        async with trio.open_nursery() as nursery:
            async with api.open_stream(session["id"], words) as source:
                events = source.aiter_sse()
                assert (await anext(events)).event == "start"
                nursery.start_soon(stream, "after")
                assert await wait_for(lambda: _gauge_is(api.client, "queued_messages", 1))
                async for _ in events:
                    pass
        assert results[0][-1][1] == "end"
        assert value(await scrape(api.client), "queued_messages") == 0


@pytest.mark.backends("sqlite")
async def test_upstream_errors_and_first_tokens_are_counted_by_model(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(
            nursery,
            in_turn(
                streaming_reply(["Vector ", "databases."]),
                error_reply(400, "this request is not one the model takes"),
            ),
        )
        registry = registry_with_upstream(tmp_path, upstream.base_url)
        async with open_api(settings_for(tmp_path, models=registry)) as api:
            session = await api.session((await api.conversation())["id"], OPENAI_MODEL)
            before = await scrape(api.client)
            assert (await api.stream(session["id"], "first"))[-1][2]["finish_reason"] == "stop"
            failed = await api.stream(session["id"], "second")
            assert [kind for _, kind, _ in failed] == ["start", "error", "end"]
            code = failed[1][2]["code"]
            after = await scrape(api.client)
        nursery.cancel_scope.cancel()

    gpt = {"model": "gpt-test"}
    assert moved(before, after, "upstream_first_token_seconds_count", **gpt) == 1
    assert moved(before, after, "upstream_errors_total", **gpt, code=code) == 1
    assert moved(before, after, "replies_total", **gpt, status="completed", finish_reason="stop")
    assert moved(before, after, "replies_total", **gpt, status="failed", finish_reason="error")
    assert moved(before, after, "upstream_errors_total", model="echo", code=code) == 0


@pytest.mark.backends("sqlite")
async def test_a_model_an_organisation_registered_is_counted_by_provider_not_name(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, streaming_reply(["from the team"]))
        async with open_api(settings_for(tmp_path, allow_private_model_urls=True)) as api:
            admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
            created = await api.post("/api/models", org_model(upstream.base_url), who=admin)
            assert created.status_code == 201, created.text
            session = await api.session((await api.conversation())["id"], created.json()["id"])
            assert (await api.stream(session["id"], "hi"))[-1][1] == "end"
            after = await scrape(api.client)
        nursery.cancel_scope.cancel()
    org_openai = {"model": "org:openai"}
    assert value(after, "upstream_first_token_seconds_count", **org_openai) == 1
    assert value(after, "replies_total", **org_openai, status="completed", finish_reason="stop")
    assert not any("team-gpt" in label for _, pairs in after for _, label in pairs)


@pytest.mark.backends("sqlite")
async def test_a_metrics_token_guards_metrics_and_only_it_opens_them(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, metrics_token=METRICS_TOKEN)) as api:
        bare = await api.client.get("/metrics")
        with_api_token = await api.client.get("/metrics", headers=api.a.auth)
        wrong = await api.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        for refused in (bare, with_api_token, wrong):
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "unauthenticated"
            assert "conversation_service_" not in refused.text
        samples = await scrape(api.client, METRICS_TOKEN)
        assert value(samples, "http_requests_total", method="GET", route="/metrics", status="401")
        document = (await api.client.get("/openapi.json")).json()
        assert document["paths"]["/metrics"]["get"]["security"] == [{"metricsToken": []}]


@pytest.mark.backends("sqlite")
async def test_metrics_are_open_without_a_token(api: Api) -> None:
    assert value(await scrape(api.client), "open_streams") == 0
    document = (await api.client.get("/openapi.json")).json()
    assert document["paths"]["/metrics"]["get"]["security"] == []


@pytest.mark.backends("postgres")
async def test_each_instance_of_a_cluster_exports_its_own_figures(tmp_path: Path) -> None:
    with instances(tmp_path, 2) as servers:
        a, b = await clients_of(servers)
        try:
            session = await a.new_session()
            events: list = []
            assert await a.stream(session["id"], "on a", events) == 200
            before_a, before_b = await scrape(a.http), await scrape(b.http)
            # B carries the message to A, which holds the session's lease and runs the reply.
            assert await b.stream(session["id"], "through b", events) == 200
            after_a, after_b = await scrape(a.http), await scrape(b.http)
        finally:
            await close_all([a, b])
    reply = {"model": "echo", "status": "completed", "finish_reason": "stop"}
    assert moved(before_a, after_a, "replies_total", **reply) == 1
    assert moved(before_b, after_b, "replies_total", **reply) == 0
    stream_chat = {"method": "POST", "route": "/api/conversation/stream_chat", "status": "200"}
    assert moved(before_a, after_a, "http_requests_total", **stream_chat) == 0
    assert moved(before_b, after_b, "http_requests_total", **stream_chat) == 1
    assert value(after_a, "live_session_actors") == 1
    assert value(after_b, "live_session_actors") == 0


@pytest.mark.backends("sqlite")
def test_a_metrics_token_that_looks_like_a_mistake_is_refused_at_start() -> None:
    for mistake in ("1", "short", "has a space in it ok"):
        environ = {ENV_PREFIX + "METRICS_TOKEN": mistake}
        with pytest.raises(SettingsError, match="metrics_token"):
            load_settings({}, environ)
    assert load_settings({"metrics_token": METRICS_TOKEN}, {}).metrics_token == METRICS_TOKEN
    assert METRICS_TOKEN not in repr(load_settings({"metrics_token": METRICS_TOKEN}, {}))
