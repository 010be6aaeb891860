"""client.regenerate, edit_message and select_branch: streams like stream_chat's, typed messages
with their place among the alternatives, each session's head; async and sync alike."""

from __future__ import annotations

import pytest
import trio

from conversation_service.client import (
    ECHO_MODEL_ID,
    AsyncClient,
    BadRequestError,
    Client,
    ConflictError,
    Message,
)
from tests.client.conftest import sync_client
from tests.http.conftest import Api


async def test_branches_stream_and_list_typed(api: Api, client: AsyncClient) -> None:
    conversation = await client.create_conversation("Branches")
    session = await client.create_session(conversation.id, ECHO_MODEL_ID)
    async with client.stream_chat(session.id, "one") as stream:
        first = await stream.final_message()
    async with client.regenerate(session.id) as stream:
        events = [event async for event in stream]
        again = await stream.final_message()
    assert events[0].user_message_id is not None and again.id != first.id
    assert again.content == first.content == "Echo: one"

    listed = [m async for m in client.list_messages(conversation.id)]
    assert all(isinstance(m, Message) for m in listed)
    assert [(m.content, m.sibling_count, m.sibling_index) for m in listed] == [
        ("one", 1, 1), ("Echo: one", 2, 2),
    ]  # fmt: skip
    question = listed[0]
    assert listed[1].parent_id == question.id and question.parent_id is None
    older = [m async for m in client.list_messages(conversation.id, leaf_id=first.id)]
    assert older[1].id == first.id and older[1].sibling_index == 1

    async with client.edit_message(session.id, question.id, "uno") as stream:
        assert (await stream.final_message()).content == "Echo: uno"
    found = await client.get_conversation(conversation.id)
    head = found.sessions[0].head_id
    assert head is not None and head != again.id

    chosen = await client.select_branch(session.id, first.id)
    assert chosen.head_id == first.id
    with pytest.raises(ConflictError) as stale:
        async with client.regenerate(session.id, again.id) as stream:
            await stream.final_message()
    assert stale.value.code == "not_on_current_branch"
    with pytest.raises(BadRequestError) as refused:
        async with client.edit_message(session.id, first.id, "a reply") as stream:
            await stream.final_message()
    assert refused.value.field == "message_id"

    def blocking(client: Client) -> tuple[str, list[Message]]:
        with client.regenerate(session.id) as stream:
            text = stream.final_message().content
        client.select_branch(session.id, question.id)
        return text, list(client.list_messages(conversation.id, page_size=1))

    with sync_client(api.server.base_url, api.a) as blocking_client:
        with trio.fail_after(30):
            text, branch = await trio.to_thread.run_sync(blocking, blocking_client)
    assert text == "Echo: one"
    assert [(m.content, m.sibling_count, m.sibling_index) for m in branch] == [
        ("one", 2, 1), ("Echo: one", 3, 3),
    ]  # fmt: skip
