"""The kit's served process: `conversation-service serve` on a free port with the org and admin
token of its first start, reached through the client, stopped cleanly on the way out."""

from __future__ import annotations

from pathlib import Path

import httpx

from conversation_service.client import ECHO_MODEL_ID
from conversation_service.testing.served import served


def test_a_served_process_takes_its_first_starts_token_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    with served(tmp_path / "data", "--echo-delay-ms", "1") as running:
        assert running.org_id and running.token
        with running.client() as client:
            session = client.create_session(client.create_conversation("served").id, ECHO_MODEL_ID)
            with client.stream_chat(session.id, "hi") as stream:
                assert stream.final_message().content == "Echo: hi"
        listed = httpx.get(
            f"{running.base_url}/api/conversation/list",
            params={"org_id": running.org_id},
            headers=running.headers,
        )
        assert [c["title"] for c in listed.json()["conversations"]] == ["served"]
    assert running.process.returncode == 0
