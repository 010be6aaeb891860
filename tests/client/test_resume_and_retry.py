"""The async client on trio through a network that fails: streams cut mid-reply resume with
every event exactly once, a POST whose answer was lost is retried without doing its work
twice, and a 429 is retried after its Retry-After."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from conversation_service.client import (
    ContentEvent,
    EndEvent,
    MessageStatus,
    RateLimitedError,
    ReplyFailedError,
    RetryPolicy,
    Role,
    StartEvent,
    StreamEvent,
)
from conversation_service.testing.upstream import (
    UPSTREAM_MODEL_ID,
    Exchange,
    chunk,
    registry_file,
    start_fake_openai,
)
from tests.client.conftest import Statuses, async_client, served_api
from tests.client.cutting_proxy import open_cutting_proxy
from tests.http.conftest import Api

WORDS = " ".join(f"word{i}" for i in range(30))


def assert_each_event_once(events: list[StreamEvent], message: str) -> None:
    ids = [event.id for event in events]
    assert ids == sorted(set(ids)), ids  # strictly growing: nothing twice, nothing reordered
    assert isinstance(events[0], StartEvent) and events[0].id == 0
    assert isinstance(events[-1], EndEvent) and events[-1].finish_reason == "stop"
    text = "".join(e.text for e in events if isinstance(e, ContentEvent))
    assert text == "Echo: " + message
    for event in events:  # each content event's id is the text's length once it is added
        if isinstance(event, ContentEvent):
            assert text[: event.id].endswith(event.text)


async def stored(api: Api, conversation_id: str) -> list[tuple[str, str, str]]:
    async with async_client(api.server.base_url, api.a) as client:
        return [
            (m.role.value, m.status.value, m.content)
            async for m in client.list_messages(conversation_id)
        ]


async def test_a_stream_cut_twice_mid_reply_gives_every_event_once(tmp_path: Path) -> None:
    # 40 ms a word: the reply is still being written when the second cut comes (a finished
    # reply is replayed from storage as one content event, which a cut could not land in).
    async with served_api(tmp_path, echo_delay_ms=40) as api:
        conversation = await api.conversation()
        session = await api.session(conversation["id"])
        async with open_cutting_proxy(api.server.base_url) as proxy:
            # The POST's answer is cut inside its 4th content event, the resumed GET's inside
            # its 3rd: the half-received events must not count, nor come twice.
            proxy.cut_next(b"event: content", times=4)
            proxy.cut_next(b"event: content", times=3)
            events = []
            sent = Statuses()
            http = httpx.AsyncClient(event_hooks=sent.hooks())
            with trio.fail_after(30):
                async with http, async_client(proxy.base_url, api.a, http_client=http) as client:
                    async with client.stream_chat(session["id"], WORDS) as stream:
                        async for event in stream:
                            events.append(event)
                        reply = await stream.final_message()
            assert proxy.cuts == 2
        assert_each_event_once(events, WORDS)
        # Resumed with GET after the last event handed out: the 3rd content, then the 5th.
        first, again, last = sent.requests
        assert first[:2] == ("POST", "/api/conversation/stream_chat")
        assert again == ("GET", "/api/conversation/stream", None, str(events[3].id))
        assert last == ("GET", "/api/conversation/stream", None, str(events[5].id))
        assert reply.content == "Echo: " + WORDS
        assert await stored(api, conversation["id"]) == [
            ("user", "completed", WORDS),
            ("assistant", "completed", "Echo: " + WORDS),
        ]


@pytest.mark.parametrize(
    "cut",
    [b"", b"\r\n\r\n", b"event: start"],
    ids=["answer-lost", "after-the-head", "inside-start"],
)
async def test_a_stream_chat_cut_before_its_start_is_sent_again_and_stores_one_message(
    api: Api, cut: bytes
) -> None:
    conversation = await api.conversation()
    session = await api.session(conversation["id"])
    sent = Statuses()
    async with open_cutting_proxy(api.server.base_url) as proxy:
        proxy.cut_next(cut)
        http = httpx.AsyncClient(event_hooks=sent.hooks())
        with trio.fail_after(30):
            async with http, async_client(proxy.base_url, api.a, http_client=http) as client:
                async with client.stream_chat(session["id"], "only once") as stream:
                    events = [event async for event in stream]
        assert proxy.cuts == 1 and proxy.connections == 2
    assert_each_event_once(events, "only once")
    # The same POST again, with the same key: the server re-attaches to the same reply.
    (method, path, key, after), again = sent.requests
    assert (method, path, after) == ("POST", "/api/conversation/stream_chat", None)
    assert again == (method, path, key, None) and key
    assert await stored(api, conversation["id"]) == [
        ("user", "completed", "only once"),
        ("assistant", "completed", "Echo: only once"),
    ]


async def test_a_post_whose_answer_was_lost_is_retried_with_its_key(api: Api) -> None:
    async with open_cutting_proxy(api.server.base_url) as proxy:
        proxy.cut_next(b"")  # the server creates the conversation; its answer never arrives
        async with async_client(proxy.base_url, api.a) as client:
            created = await client.create_conversation("just one")
        assert proxy.cuts == 1
    async with async_client(api.server.base_url, api.a) as direct:
        listed = [c async for c in direct.list_conversations()]
    assert listed == [created]  # the retry got the first answer replayed, nothing new


async def test_a_429_is_retried_after_its_retry_after(tmp_path: Path) -> None:
    async with served_api(tmp_path, rate_limit="3/second") as api:
        statuses = Statuses()
        http = httpx.AsyncClient(event_hooks=statuses.hooks())
        async with http, async_client(api.server.base_url, api.a, http_client=http) as client:
            for _ in range(3):
                await client.list_models()
            started = trio.current_time()
            conversation = await client.create_conversation("after the wait")
            waited = trio.current_time() - started
        assert statuses.seen == [200, 200, 200, 429, 201]
        retried, retry = statuses.requests[-2:]
        assert retried == retry and retry[2]  # the same POST, with the same Idempotency-Key
        assert waited >= 0.9  # Retry-After: 1 (whole seconds)
        async with async_client(api.server.base_url, api.a) as direct:
            assert [c.id async for c in direct.list_conversations()] == [conversation.id]

        once = RetryPolicy(max_retries=0)
        async with async_client(api.server.base_url, api.b, retry=once) as impatient:
            for _ in range(3):
                await impatient.list_models()
            with pytest.raises(RateLimitedError) as limited:
                await impatient.list_models()
        assert limited.value.status == 429 and limited.value.retry_after == 1


async def test_a_failed_reply_raises_reply_failed_after_its_text(tmp_path: Path) -> None:
    async def breaks_off(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk(role="assistant", content="partial "))
        # and the upstream goes away without finishing

    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, breaks_off)
        registry = registry_file(tmp_path, upstream.base_url)
        async with served_api(tmp_path, models=registry) as api:
            async with async_client(api.server.base_url, api.a) as client:
                conversation = await client.create_conversation("fails")
                session = await client.create_session(conversation.id, str(UPSTREAM_MODEL_ID))
                seen = []
                async with client.stream_chat(session.id, "hello") as stream:
                    with pytest.raises(ReplyFailedError) as failed:
                        async for event in stream:
                            seen.append(event)
                    with pytest.raises(ReplyFailedError):
                        await stream.final_message()
                messages = [m async for m in client.list_messages(conversation.id)]
        nursery.cancel_scope.cancel()
    assert [type(e) for e in seen] == [StartEvent, ContentEvent]
    error = failed.value
    assert error.code == "upstream_bad_response" and error.reply.content == "partial "
    assert error.reply.finish_reason == "error" and error.reply.error is not None
    assert [(m.role, m.status) for m in messages] == [
        (Role.USER, MessageStatus.COMPLETED),
        (Role.ASSISTANT, MessageStatus.FAILED),
    ]
    assert messages[1].error == error.reply.error
