"""The API reference's own curl examples, run against a served instance.

The commands are copied from the reference verbatim; only the placeholders ({{baseUrl}},
your-org-id, YOUR_TOKEN and the example ids) are substituted, as a reader would.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conversation_service.testing.served import Served, cli, serve
from tests.http.conftest import stored_text

CREATE = """curl -X POST {{baseUrl}}/api/conversation/create?org_id=your-org-id \\
  -H "Authorization: Bearer YOUR_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "title": "Project Discussion",
    "is_archived": false
  }'"""

CREATE_SESSION = """curl -X POST {{baseUrl}}/api/conversation/create_session?org_id=your-org-id \\
  -H "Authorization: Bearer YOUR_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "conversation_id": "5a7e8f91-2b3c-4d5e-6f7g-8h9i0j1k2l3m",
    "model_id": "457d4f38-e3c0-43eb-b519-a867f9f5325a"
  }'"""

STREAM = """curl -X POST {{baseUrl}}/api/conversation/stream_chat?org_id=your-org-id \\
  -H "Authorization: Bearer YOUR_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "chat_session_id": "9b8c7d6e-5f4e-3d2c-1b0a-9z8y7x6w5v4u",
    "message": "Can you explain how vector databases work?"
  }'"""

LIST = """curl -X GET {{baseUrl}}/api/conversation/list?org_id=your-org-id \\
  -H "Authorization: Bearer YOUR_TOKEN\""""

GET_WITH_SESSIONS = """curl -X GET {{baseUrl}}/api/conversation/get_with_sessions?org_id=your-org-id&conversation_id=your-conversation-id \\
  -H "Authorization: Bearer YOUR_TOKEN\""""

MESSAGES = """curl -X GET "{{baseUrl}}/api/conversation/messages?org_id=your-org-id&conversation_id=your-conversation-id&limit=10&offset=0" \\
  -H "Authorization: Bearer YOUR_TOKEN\""""

ECHO = "6563686f-0000-4000-8000-000000000000"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = serve(tmp_path / "data")
    try:
        yield server
    finally:
        assert server.stop() == 0


def run_curl(example: str, served: Served, **ids: str) -> str:
    text = (
        example.replace("{{baseUrl}}", served.base_url)
        .replace("your-org-id", str(served.org_id))
        .replace("YOUR_TOKEN", str(served.token))
    )
    for placeholder, value in ids.items():
        text = text.replace(placeholder, value)
    # The reference's unquoted URLs with `&` are for a shell; quote the whole URL as a reader
    # pasting into a shell would see it run.
    argv = shlex.split(text.replace("\\\n", " "))
    argv = [argv[0], "-sS", "--fail-with-body", *argv[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_reference_curl_session_works_end_to_end(served: Served) -> None:
    assert served.org_id and served.token, served.output
    conversation = json.loads(run_curl(CREATE, served))
    assert conversation["title"] == "Project Discussion" and conversation["is_archived"] is False

    session = json.loads(
        run_curl(
            CREATE_SESSION,
            served,
            **{
                "5a7e8f91-2b3c-4d5e-6f7g-8h9i0j1k2l3m": conversation["id"],
                "457d4f38-e3c0-43eb-b519-a867f9f5325a": ECHO,
            },
        )
    )
    assert session["status"] == "active" and session["model_id"] == ECHO

    stream = run_curl(STREAM, served, **{"9b8c7d6e-5f4e-3d2c-1b0a-9z8y7x6w5v4u": session["id"]})
    events = [line.split(": ", 1)[1] for line in stream.splitlines() if line.startswith("event: ")]
    assert events[0] == "start" and events[-1] == "end" and "content" in events

    listed = json.loads(run_curl(LIST, served))
    assert [c["id"] for c in listed["conversations"]] == [conversation["id"]]

    found = json.loads(
        run_curl(GET_WITH_SESSIONS, served, **{"your-conversation-id": conversation["id"]})
    )
    assert [s["id"] for s in found["sessions"]] == [session["id"]]

    messages = json.loads(
        run_curl(MESSAGES, served, **{"your-conversation-id": conversation["id"]})
    )
    assert [m["content"] for m in messages["messages"]] == [
        "Can you explain how vector databases work?",
        "Echo: Can you explain how vector databases work?",
    ]


def test_cli_creates_orgs_and_tokens_that_the_server_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server trusts a valid token for this long before it looks it up again.
    monkeypatch.setenv("CONVERSATION_SERVICE_TOKEN_RECHECK_SECONDS", "1")
    data = tmp_path / "data"
    org_id = cli("org", "create", "Acme", data_dir=data).stdout.strip()
    token = cli(
        "token", "create", "--org", org_id, "--role", "viewer", data_dir=data
    ).stdout.strip()
    assert token.startswith("cs_") and "\n" not in token
    bad = cli(
        "token",
        "create",
        "--org",
        "00000000-0000-4000-8000-000000000000",
        data_dir=data,
        check=False,
    )
    assert bad.returncode == 2 and "not found" in bad.stderr
    server = serve(data)
    try:
        assert server.token is None  # not a first start: the database already had an org
        listed = subprocess.run(
            [
                "curl",
                "-sS",
                "-H",
                f"Authorization: Bearer {token}",
                f"{server.base_url}/api/conversation/list?org_id={org_id}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(listed.stdout)["conversations"] == []
        refused = subprocess.run(
            [
                "curl",
                "-sS",
                "-X",
                "POST",
                "-H",
                f"Authorization: Bearer {token}",
                "-d",
                '{"title": "x"}',
                f"{server.base_url}/api/conversation/create?org_id={org_id}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(refused.stdout)["error"]["code"] == "forbidden"  # a viewer token
        listing = cli("token", "list", "--org", org_id, data_dir=data).stdout.splitlines()
        assert listing[0].split("\t") == ["id", "role", "created_at", "expires_at", "revoked_at"]
        token_id, role, *_ = listing[1].split("\t")
        assert role == "viewer" and token not in "\n".join(listing)
        cli("token", "revoke", token_id, data_dir=data)  # while the server runs
        deadline = time.monotonic() + 15  # far beyond the 1 s recheck, for a busy machine
        codes = []
        while not codes or (codes[-1] == "200" and time.monotonic() < deadline):
            time.sleep(0.2)
            after = subprocess.run(
                [
                    "curl",
                    "-sS",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-H",
                    f"Authorization: Bearer {token}",
                    f"{server.base_url}/api/conversation/list?org_id={org_id}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            codes.append(after.stdout)
        assert codes[-1] == "401" and set(codes) <= {"200", "401"}
    finally:
        assert server.stop() == 0
    # The token was stored as a hash only.
    assert token.encode() not in stored_text(data)
