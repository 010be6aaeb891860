"""The async client under asyncio, against a real `conversation-service serve` process: the same
code that runs on trio (httpx and the client's waits go through anyio)."""

from __future__ import annotations

import asyncio

from conversation_service.client import (
    ECHO_MODEL_ID,
    AsyncClient,
    NotFoundError,
    RetryPolicy,
    StreamEvent,
)
from conversation_service.testing.served import Served
from tests.client.cutting_proxy import open_cutting_proxy
from tests.client.test_resume_and_retry import assert_each_event_once


def test_the_async_client_runs_on_asyncio_and_resumes_a_cut_stream(served: Served) -> None:
    assert served.token and served.org_id
    token, org_id = served.token, served.org_id
    retry = RetryPolicy(base=0.05, cap=0.2)

    async def main() -> tuple[list[StreamEvent], list[str], str]:
        async with AsyncClient(served.base_url, token=token, org_id=org_id, retry=retry) as client:
            conversation = await client.create_conversation("on asyncio")
            session = await client.create_session(conversation.id, ECHO_MODEL_ID)
            try:
                await client.get_conversation("00000000-0000-4000-8000-000000000001")
            except NotFoundError as error:
                missing = error.code
            async with open_cutting_proxy(served.base_url) as proxy:
                proxy.cut_next(b"event: content", times=2)
                async with AsyncClient(proxy.base_url, token=token, org_id=org_id) as flaky:
                    async with flaky.stream_chat(session.id, "one two three") as stream:
                        events = [event async for event in stream]
                assert proxy.cuts == 1
            stored = [m.content async for m in client.list_messages(conversation.id)]
            return events, stored, missing

    events, stored, missing = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert_each_event_once(events, "one two three")
    assert stored == ["one two three", "Echo: one two three"]
    assert missing == "not_found"
