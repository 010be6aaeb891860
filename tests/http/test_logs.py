"""The served process's log lines: text by default, one JSON object a line with
`--log-format json`, naming the request, organisation and chat session they are about."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from httpx_sse import aconnect_sse

from conversation_service.entrypoints.settings import ENV_PREFIX, SettingsError, load_settings
from tests.adapters.llm.openai_server import (
    error_reply,
    in_turn,
    start_fake_openai,
    streaming_reply,
)
from tests.http.served import Served, cli, serve
from tests.http.test_stream_api import OPENAI_MODEL, registry_with_upstream

pytestmark = pytest.mark.backends("sqlite")


def client_of(served: Served) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=served.base_url,
        timeout=30,
        headers={"Authorization": f"Bearer {served.token}"},
        params={"org_id": str(served.org_id)},
    )


async def stream(http: httpx.AsyncClient, session_id: str, request_id: str) -> list[str]:
    """The event names of one stream_chat call sent with `request_id`."""
    with trio.fail_after(30):
        async with aconnect_sse(
            http,
            "POST",
            "/api/conversation/stream_chat",
            json={"chat_session_id": session_id, "message": "hello"},
            headers={"X-Request-Id": request_id},
        ) as source:
            return [sse.event async for sse in source.aiter_sse()]


def the_line(lines: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    found = [line for line in lines if fields.items() <= line.items()]
    assert len(found) == 1, (fields, lines)
    return found[0]


async def test_json_lines_carry_the_request_org_and_session_they_are_about(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "server.log"
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(
            nursery, in_turn(streaming_reply(["Fine."]), error_reply(400, "not this one"))
        )
        registry = registry_with_upstream(tmp_path, upstream.base_url)
        served = serve(
            tmp_path / "data", "--log-format", "json", "--models", str(registry), log_file=log_file
        )
        try:
            async with client_of(served) as http:
                created = await http.post(
                    "/api/conversation/create",
                    json={"title": "logged"},
                    headers={"X-Request-Id": "create-1"},
                )
                session = (
                    await http.post(
                        "/api/conversation/create_session",
                        json={"conversation_id": created.json()["id"], "model_id": OPENAI_MODEL},
                    )
                ).json()
                assert await stream(http, session["id"], "stream-1") == ["start", "content", "end"]
                assert await stream(http, session["id"], "stream-2") == ["start", "error", "end"]
                lost = await http.get("/no/such/page", headers={"X-Request-Id": "lost-1"})
                assert lost.status_code == 404
        finally:
            assert served.stop() == 0
        nursery.cancel_scope.cancel()

    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one object
    assert lines and all(isinstance(line, dict) for line in lines)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    org, session_id = str(served.org_id), session["id"]
    access = "conversation_service.access"

    create = the_line(lines, logger=access, request_id="create-1")
    assert create["org_id"] == org and "session_id" not in create
    assert (create["method"], create["path"], create["status"]) == (
        "POST", "/api/conversation/create", 201,
    )  # fmt: skip
    assert isinstance(create["duration_ms"], float)

    streamed = the_line(lines, logger=access, request_id="stream-2")
    assert (streamed["org_id"], streamed["session_id"]) == (org, session_id)
    assert (streamed["status"], streamed["events"]) == (200, 3)

    # Logged by the session's actor, on no request: the organisation and the session.
    failed = the_line(lines, logger="conversation_service.adapters.actors.turn")
    assert failed["level"] == "WARNING" and "not this one" in failed["message"]
    assert (failed["org_id"], failed["session_id"]) == (org, session_id)
    assert "request_id" not in failed

    unrouted = the_line(lines, logger=access, request_id="lost-1")
    assert unrouted["status"] == 404 and "org_id" not in unrouted
    ready = the_line(lines, logger="conversation_service", message=f"ready on {served.base_url}")
    assert not {"request_id", "org_id", "session_id"} & ready.keys()


async def test_text_lines_are_the_default_one_prefix_each(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    served = serve(tmp_path / "data", log_file=log_file)
    try:
        async with client_of(served) as http:
            assert (await http.get("/healthz", headers={"X-Request-Id": "text-1"})).is_success
    finally:
        assert served.stop() == 0
    lines = log_file.read_text().splitlines()
    access = [line for line in lines if "rid=text-1" in line]
    assert len(access) == 1, lines
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    pattern = rf'{stamp} INFO conversation_service\.access: "GET /healthz" 200 [0-9.]+ms rid=text-1'
    assert re.fullmatch(pattern, access[0]), access[0]
    assert not any(line.startswith("{") for line in lines)


def test_an_unknown_log_format_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings({}, {ENV_PREFIX + "LOG_FORMAT": "xml"})
    refused = cli("serve", "--log-format", "xml", data_dir=tmp_path, check=False)
    assert refused.returncode == 2 and "--log-format" in refused.stderr
