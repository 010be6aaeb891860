"""Session options (system prompt, params, context) and usage reports over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.http.conftest import ECHO, Api


async def test_session_options_are_stored_and_shown(api: Api) -> None:
    conv = await api.conversation()
    response = await api.post(
        "/api/conversation/create_session",
        {
            "conversation_id": conv["id"],
            "model_id": ECHO,
            "system_prompt": "Be brief.",
            "params": {"temperature": 0.5, "max_tokens": 100, "top_p": 1},
            "context": "conversation",
        },
    )
    assert response.status_code == 201, response.text
    session = response.json()
    assert session["system_prompt"] == "Be brief." and session["context"] == "conversation"
    assert session["params"] == {"temperature": 0.5, "max_tokens": 100, "top_p": 1.0}
    found = (
        await api.get("/api/conversation/get_with_sessions", conversation_id=conv["id"])
    ).json()
    assert found["sessions"][0]["params"] == session["params"]
    plain = await api.session(conv["id"])
    assert plain["system_prompt"] is None and plain["context"] == "session"
    assert plain["params"] == {"temperature": None, "max_tokens": None, "top_p": None}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"params": {"temperature": 3}}, "params.temperature"),
        ({"params": {"temperature": "hot"}}, "params.temperature"),
        ({"params": {"top_p": 0}}, "params.top_p"),
        ({"params": {"max_tokens": 0}}, "params.max_tokens"),
        ({"params": {"max_tokens": 1.5}}, "params.max_tokens"),
        ({"params": {"seed": 1}}, "params.seed"),
        ({"context": "everything"}, "context"),
        ({"system_prompt": ""}, "system_prompt"),
        ({"system_prompt": "x" * 20_001}, "system_prompt"),
    ],
)
async def test_bad_session_options_are_400_naming_the_field(
    api: Api, extra: dict, field: str
) -> None:
    conv = await api.conversation()
    response = await api.post(
        "/api/conversation/create_session",
        {"conversation_id": conv["id"], "model_id": ECHO, **extra},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


async def test_messages_carry_usage_latency_and_errors(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    events = await api.stream(session["id"], "count my tokens")
    assert events[0][2]["context_messages"] == 1 and events[0][2]["trimmed_messages"] == 0
    reply = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()[
        "messages"
    ][1]
    assert reply["usage"] == events[-1][2]["usage"] and reply["usage"]["estimated"] is True
    assert reply["latency"]["total_ms"] >= reply["latency"]["first_token_ms"] >= 0
    assert reply["error"] is None and reply["finish_reason"] == "stop"


async def test_usage_reports_tokens_and_replies_per_model(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    ends = [(await api.stream(session["id"], text))[-1][2] for text in ("one", "two words")]
    theirs = await api.session((await api.conversation(who=api.b))["id"], who=api.b)
    await api.stream(theirs["id"], "other org", who=api.b)
    report = (await api.get("/api/usage")).json()
    assert [m["model_id"] for m in report["models"]] == [ECHO]
    echo = report["models"][0]
    assert echo["name"] == "echo" and echo["replies"] == 2 and echo["estimated_replies"] == 2
    assert echo["prompt_tokens"] == sum(e["usage"]["prompt_tokens"] for e in ends)
    assert echo["completion_tokens"] == sum(e["usage"]["completion_tokens"] for e in ends)
    assert report["total"]["replies"] == 2
    assert report["total"]["total_tokens"] == echo["prompt_tokens"] + echo["completion_tokens"]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    period = {"from": tomorrow.isoformat(), "to": (tomorrow + timedelta(days=1)).isoformat()}
    later = (await api.get("/api/usage", **period)).json()
    assert later["models"] == [] and later["total"]["replies"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z+"}, "to"),
    ],
)
async def test_bad_usage_periods_are_400(api: Api, params: dict, field: str) -> None:
    response = await api.get("/api/usage", **params)
    assert response.status_code == 400 and response.json()["error"]["field"] == field


async def test_an_empty_or_extreme_period_is_an_empty_report(api: Api) -> None:
    session = await api.session((await api.conversation())["id"])
    await api.stream(session["id"], "hello")
    for period in (
        {"from": "2026-02-01", "to": "2026-01-01"},  # from after to: nothing in between
        {"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-05"},
        {"to": "0343-01-20"},
    ):
        response = await api.get("/api/usage", **period)
        assert response.status_code == 200, period
        assert response.json()["total"]["replies"] == 0
    report = (
        await api.get("/api/usage", **{"from": "0001-01-01", "to": "9999-12-31T23:59:59-10:00"})
    ).json()
    assert report["total"]["replies"] == 1 and report["to"].startswith("9999-12-31T23:59:59")
