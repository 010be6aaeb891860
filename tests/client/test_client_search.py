"""client.search: the async and the sync client page through search results, typed."""

from __future__ import annotations

import pytest
import trio

from conversation_service.client import (
    ECHO_MODEL_ID,
    AsyncClient,
    BadRequestError,
    Client,
    SearchResult,
)
from tests.client.conftest import sync_client
from tests.http.conftest import Api


async def test_search_pages_through_typed_results(api: Api, client: AsyncClient) -> None:
    titled = await client.create_conversation("Roadmap for search")
    chat = await client.create_conversation("Weekly", is_archived=True)
    session = await client.create_session(chat.id, ECHO_MODEL_ID)
    async with client.stream_chat(session.id, "the search roadmap, at last") as stream:
        await stream.final_message()
    fillers = [await client.create_conversation(f"Filler roadmap {n}") for n in range(3)]

    found = [result async for result in client.search("roadmap", page_size=2)]
    assert all(isinstance(r, SearchResult) for r in found)
    # Title matches first (the newest first among equals), then the message match.
    expected = [*reversed(fillers), titled, chat]
    assert [r.conversation.id for r in found] == [c.id for c in expected]
    assert [r.title_matches for r in found] == [True] * 4 + [False]
    weekly = found[-1]
    assert weekly.message_count == 2 and len(weekly.message_ids) == 2
    assert weekly.snippet.message_id in weekly.message_ids
    assert "roadmap" in weekly.snippet.text
    assert [p.text for p in weekly.snippet.parts if p.highlight] == ["roadmap"]
    archived = [r async for r in client.search('"search roadmap"', is_archived=True)]
    assert [r.conversation.id for r in archived] == [chat.id]
    with pytest.raises(BadRequestError) as refused:
        [r async for r in client.search("?!")]
    assert refused.value.field == "q"

    def blocking(client: Client) -> list[SearchResult]:
        return list(client.search("ROADMAP*", page_size=1))

    with sync_client(api.server.base_url, api.a) as blocking_client:
        with trio.fail_after(30):
            again = await trio.to_thread.run_sync(blocking, blocking_client)
    assert [r.conversation.id for r in again] == [r.conversation.id for r in found]
