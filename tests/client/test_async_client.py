"""The async client on trio against the real server: typed results, paging, typed errors."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
import trio

from conversation_service.client import (
    ECHO_MODEL_ID,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    ChatSession,
    ContentEvent,
    ContextScope,
    Conversation,
    EndEvent,
    GenerationParams,
    MessageStatus,
    NotFoundError,
    PermissionDeniedError,
    Role,
    SessionBusyError,
    SessionCompletedError,
    SessionStatus,
    StartEvent,
    StreamError,
)
from tests.client.conftest import async_client, served_api
from tests.http.conftest import Api, Tenant


async def test_calls_answer_typed_values(api: Api, client: AsyncClient) -> None:
    (echo,) = await client.list_models()
    assert (echo.id, echo.name, echo.scope) == (UUID(ECHO_MODEL_ID), "echo", "global")
    assert await client.health() == "ok"
    conversation = await client.create_conversation("Project Discussion")
    assert isinstance(conversation, Conversation) and not conversation.is_archived
    session = await client.create_session(
        conversation.id,
        ECHO_MODEL_ID,
        system_prompt="Answer briefly.",
        params=GenerationParams(temperature=0.2),
        context=ContextScope.CONVERSATION,
    )
    assert isinstance(session, ChatSession) and session.status is SessionStatus.ACTIVE
    assert (session.system_prompt, session.params.temperature) == ("Answer briefly.", 0.2)
    assert session.context is ContextScope.CONVERSATION
    found = await client.get_conversation(conversation.id)
    assert found.title == "Project Discussion" and found.sessions == (session,)
    assert await client.cancel(session.id) is False  # nothing running
    async with client.stream_chat(session.id, "hello") as stream:
        reply = await stream.final_message()
    report = await client.usage()
    assert report.total.replies == 1 and report.models[0].name == "echo"
    assert reply.usage is not None and report.total.total_tokens == reply.usage.total_tokens
    completed = await client.complete_session(session.id)
    assert completed.status is SessionStatus.COMPLETED


async def test_list_and_messages_walk_every_page(api: Api, client: AsyncClient) -> None:
    titles = [f"conversation {i}" for i in range(5)]
    for title in titles:
        await client.create_conversation(title)
    listed = [c.title async for c in client.list_conversations(page_size=2)]
    assert listed == titles[::-1]  # newest activity first
    assert [c.title async for c in client.list_conversations(page_size=2, offset=3)] == [
        "conversation 1",
        "conversation 0",
    ]
    conversation = await client.create_conversation("chat")
    session = await client.create_session(conversation.id, ECHO_MODEL_ID)
    for text in ("one", "two", "three"):
        async with client.stream_chat(session.id, text) as stream:
            await stream.final_message()
    messages = [m async for m in client.list_messages(conversation.id, page_size=4)]
    assert [(m.role, m.content) for m in messages] == [
        (Role.USER, "one"),
        (Role.ASSISTANT, "Echo: one"),
        (Role.USER, "two"),
        (Role.ASSISTANT, "Echo: two"),
        (Role.USER, "three"),
        (Role.ASSISTANT, "Echo: three"),
    ]
    assert all(m.status is MessageStatus.COMPLETED for m in messages)
    assert messages[1].usage is not None and messages[1].model_id == UUID(ECHO_MODEL_ID)


async def test_error_answers_raise_typed_errors_with_status_code_and_request_id(
    api: Api, client: AsyncClient
) -> None:
    missing = UUID("00000000-0000-4000-8000-000000000001")
    with pytest.raises(NotFoundError) as not_found:
        await client.get_conversation(missing)
    error = not_found.value
    assert (error.status, error.code) == (404, "not_found")
    assert str(missing) in error.message and error.request_id
    with pytest.raises(BadRequestError) as bad:
        await client.create_conversation("")
    assert (bad.value.status, bad.value.field) == (400, "title")
    async with async_client(api.server.base_url, Tenant(api.a.org_id, "cs_nope")) as stranger:
        with pytest.raises(AuthenticationError) as unauthenticated:
            await stranger.list_models()
    assert unauthenticated.value.status == 401
    async with async_client(api.server.base_url, Tenant(api.b.org_id, api.a.token)) as elsewhere:
        with pytest.raises(PermissionDeniedError) as forbidden:
            await elsewhere.list_models()
    assert forbidden.value.code == "forbidden"

    conversation = await client.create_conversation("conflicts")
    session = await client.create_session(conversation.id, ECHO_MODEL_ID)
    async with client.stream_chat(session.id, " ".join(["word"] * 40)) as running:
        with pytest.raises(SessionBusyError) as busy:
            async with client.stream_chat(session.id, "me too", multitask="reject"):
                pass
        assert (busy.value.status, busy.value.code) == (409, "session_busy")
        await running.final_message()
    await client.complete_session(session.id)
    with pytest.raises(SessionCompletedError):
        async with client.stream_chat(session.id, "anyone?"):
            pass


async def test_a_stream_gives_start_content_end_and_the_reply(
    api: Api, client: AsyncClient
) -> None:
    conversation = await client.create_conversation("stream")
    session = await client.create_session(conversation.id, ECHO_MODEL_ID)
    async with client.stream_chat(session.id, "how do vector databases work") as stream:
        events = [event async for event in stream]
        reply = await stream.final_message()
    assert isinstance(events[0], StartEvent) and isinstance(events[-1], EndEvent)
    assert all(isinstance(e, ContentEvent) for e in events[1:-1])
    text = "".join(e.text for e in events if isinstance(e, ContentEvent))
    assert text == reply.content == "Echo: how do vector databases work"
    assert [e.id for e in events] == sorted({e.id for e in events})
    assert reply.id == events[0].message_id and reply.finish_reason == "stop"
    assert reply.usage is not None and reply.usage.estimated
    (stored,) = [m async for m in client.list_messages(conversation.id) if m.id == reply.id]
    assert (stored.content, stored.usage) == (reply.content, reply.usage)

    async with client.stream_chat(session.id, "text only") as stream:
        chunks = [chunk async for chunk in stream.text_stream]
        assert "".join(chunks) == "Echo: text only" and len(chunks) > 1
        assert (await stream.final_message()).content == "Echo: text only"


async def test_cancel_ends_the_stream_with_cancelled(tmp_path: Path) -> None:
    async with served_api(tmp_path, echo_delay_ms=50) as api:
        async with async_client(api.server.base_url, api.a) as client:
            conversation = await client.create_conversation("cancel")
            session = await client.create_session(conversation.id, ECHO_MODEL_ID)
            with trio.fail_after(20):
                async with client.stream_chat(session.id, " ".join(["w"] * 50)) as stream:
                    async for event in stream:
                        if isinstance(event, ContentEvent):
                            assert await client.cancel(session.id, message_id=stream.message_id)
                    reply = await stream.final_message()
            assert isinstance(event, EndEvent) and reply.finish_reason == "cancelled"
            stored = [m async for m in client.list_messages(conversation.id)][-1]
            assert (stored.status, stored.content) == (MessageStatus.CANCELLED, reply.content)


async def test_attaching_after_a_replys_end_is_an_empty_stream(
    api: Api, client: AsyncClient
) -> None:
    conversation = await client.create_conversation("attach")
    session = await client.create_session(conversation.id, ECHO_MODEL_ID)
    async with client.stream_chat(session.id, "once") as stream:
        events = [event async for event in stream]
    async with client.attach(session.id, events[0].message_id, after=events[1].id) as again:
        rest = [event async for event in again]
    assert rest == events[2:]  # the rest of the stored reply, from storage
    async with client.attach(session.id, events[0].message_id, after=events[-1].id) as over:
        assert [event async for event in over] == []  # the server's 204
        with pytest.raises(StreamError):
            await over.final_message()
