"""Bearer tokens, organisations, roles, rate limits and the error contract over real HTTP."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from conversation_service.domain.model import AccessRole
from tests.http.conftest import Api, open_api, settings_for

ROUTES = [
    ("POST", "/api/conversation/create"),
    ("POST", "/api/conversation/create_session"),
    ("POST", "/api/conversation/stream_chat"),
    ("POST", "/api/conversation/cancel"),
    ("POST", "/api/conversation/complete_session"),
    ("GET", "/api/conversation/list"),
    ("GET", "/api/conversation/get_with_sessions"),
    ("GET", "/api/conversation/messages"),
    ("GET", "/api/models"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-token", "Bearer cs_" + "x" * 43],
)
async def test_every_route_wants_a_valid_bearer_token(
    api: Api, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await api.client.request(
        method,
        path,
        params=api.a.q,
        headers=headers,
        json={"title": "x"} if method == "POST" else None,
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_token_used_for_another_org_is_forbidden(api: Api, method: str, path: str) -> None:
    conv = await api.conversation(who=api.b)
    response = await api.client.request(
        method,
        path,
        headers=api.a.auth,
        params={"org_id": str(api.b.org_id), "conversation_id": conv["id"]},
        json={"title": "x"} if method == "POST" else None,
    )
    assert response.status_code == 403
    assert conv["id"] not in response.text and "x" != response.json().get("title")


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_org_id_is_required_on_every_route(api: Api, method: str, path: str) -> None:
    response = await api.client.request(
        method, path, headers=api.a.auth, json={} if method == "POST" else None
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "org_id"


async def test_objects_of_another_org_are_not_found_and_never_shown(api: Api) -> None:
    theirs = await api.conversation("secret plans", who=api.b)
    their_session = await api.session(theirs["id"], who=api.b)
    await api.stream(their_session["id"], "classified", who=api.b)
    attempts = [
        await api.get("/api/conversation/get_with_sessions", conversation_id=theirs["id"]),
        await api.get("/api/conversation/messages", conversation_id=theirs["id"]),
        await api.post(
            "/api/conversation/create_session",
            {"conversation_id": theirs["id"], "model_id": their_session["model_id"]},
        ),
        await api.post(
            "/api/conversation/stream_chat",
            {"chat_session_id": their_session["id"], "message": "hi"},
        ),
        await api.post("/api/conversation/cancel", {"chat_session_id": their_session["id"]}),
        await api.post(
            "/api/conversation/complete_session", {"chat_session_id": their_session["id"]}
        ),
    ]
    for response in attempts:
        assert response.status_code == 404
        assert "secret" not in response.text and "classified" not in response.text
    mine = (await api.get("/api/conversation/list")).json()
    assert mine["conversations"] == []
    # And B's data is untouched.
    theirs_now = (
        await api.get(
            "/api/conversation/get_with_sessions", who=api.b, conversation_id=theirs["id"]
        )
    ).json()
    assert theirs_now["sessions"][0]["status"] == "active"


async def test_viewer_reads_but_cannot_write(api: Api) -> None:
    conv = await api.conversation()
    viewer = await api.tenant(AccessRole.VIEWER, org_id=api.a.org_id)
    assert (await api.get("/api/conversation/list", who=viewer)).status_code == 200
    assert (
        await api.get("/api/conversation/messages", who=viewer, conversation_id=conv["id"])
    ).status_code == 200
    denied = await api.post("/api/conversation/create", {"title": "nope"}, who=viewer)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    denied = await api.post(
        "/api/conversation/create_session",
        {"conversation_id": conv["id"], "model_id": "6563686f-0000-4000-8000-000000000000"},
        who=viewer,
    )
    assert denied.status_code == 403


async def test_request_rate_per_token_is_limited_with_retry_after(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, rate_limit="5/minute")) as api:
        answers = [await api.get("/api/conversation/list") for _ in range(6)]
        assert [r.status_code for r in answers] == [200] * 5 + [429]
        assert [r.headers["x-ratelimit-remaining"] for r in answers[:5]] == [
            "4",
            "3",
            "2",
            "1",
            "0",
        ]
        assert all(r.headers["x-ratelimit-limit"] == "5" for r in answers)
        limited = answers[-1]
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"]["code"] == "rate_limited"
        # Another token has its own budget.
        assert (await api.get("/api/conversation/list", who=api.b)).status_code == 200


async def test_concurrent_streams_per_org_are_capped(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, max_streams_per_org=1, echo_delay_ms=100)) as api:
        conv = await api.conversation()
        first, second = await api.session(conv["id"]), await api.session(conv["id"])
        async with api.open_stream(first["id"], "a b c d e f") as source:
            refused = await api.post(
                "/api/conversation/stream_chat", {"chat_session_id": second["id"], "message": "hi"}
            )
            assert refused.status_code == 429 and "retry-after" in refused.headers
            other_org = await api.post(
                "/api/conversation/stream_chat",
                {"chat_session_id": second["id"], "message": "hi"},
                who=api.b,
            )
            assert other_org.status_code == 404  # not throttled by A's streams
            assert [sse.event async for sse in source.aiter_sse()][-1] == "end"
        with trio.fail_after(5):
            events = await api.stream(second["id"], "now there is room")
        assert events[-1][1] == "end"


async def test_unexpected_failures_are_500_without_internals_and_logged_with_request_id(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(api.server.services.store, "list_conversations", broken)
    with caplog.at_level(logging.ERROR):
        response = await api.get("/api/conversation/list")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "SELECT" not in response.text and "Traceback" not in response.text
    assert error["request_id"] == response.headers["x-request-id"]
    assert any(error["request_id"] in record.getMessage() for record in caplog.records)


async def test_tokens_revoked_or_expired_in_this_process_are_refused_at_once(api: Api) -> None:
    admin = api.server.services.admin
    issued = await admin.create_token(api.a.org_id, AccessRole.MEMBER)
    brief = await admin.create_token(api.a.org_id, expires_in=timedelta(seconds=1))
    for token in (issued.token, brief.token):
        headers = {"Authorization": f"Bearer {token}"}
        ok = await api.client.get("/api/conversation/list", params=api.a.q, headers=headers)
        assert ok.status_code == 200
    await admin.revoke_token(issued.principal.token_id)
    await trio.sleep(1.05)
    for token in (issued.token, brief.token):
        headers = {"Authorization": f"Bearer {token}"}
        refused = await api.client.get("/api/conversation/list", params=api.a.q, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
    listed = {t.id: t for t in await admin.list_tokens(api.a.org_id)}
    assert listed[issued.principal.token_id].revoked_at is not None
    assert listed[brief.principal.token_id].expires_at is not None


async def test_a_token_revoked_elsewhere_is_refused_within_the_recheck_time(
    tmp_path: Path,
) -> None:
    async with open_api(settings_for(tmp_path, token_recheck_seconds=1.0)) as api:
        issued = await api.server.services.admin.create_token(api.a.org_id, AccessRole.MEMBER)
        headers = {"Authorization": f"Bearer {issued.token}"}

        async def status() -> int:
            answer = await api.client.get("/api/conversation/list", params=api.a.q, headers=headers)
            return answer.status_code

        assert await status() == 200
        # Another process (the CLI) revokes it: this server's verifier hears nothing of it.
        store = api.server.services.store
        await store.revoke_token(issued.principal.token_id, datetime.now(UTC))
        answers = []
        with trio.fail_after(10):
            while not answers or answers[-1] == 200:  # polling the server is the point here
                answers.append(await status())
                await trio.sleep(0.1)
        assert answers[-1] == 401 and set(answers) <= {200, 401}
