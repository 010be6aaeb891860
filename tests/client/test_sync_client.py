"""The blocking client against the real server, called from a worker thread while the server
runs in the test's trio loop: the same calls, stream resumes and retries as the async one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import trio

from conversation_service.client import (
    ECHO_MODEL_ID,
    Client,
    EndEvent,
    NotFoundError,
    SessionCompletedError,
    StreamEvent,
)
from tests.client.conftest import Statuses, served_api, sync_client
from tests.client.cutting_proxy import open_cutting_proxy
from tests.client.test_resume_and_retry import WORDS, assert_each_event_once, stored
from tests.http.conftest import Api


async def in_thread(job, *args):  # type: ignore[no-untyped-def]
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(job, *args)


async def test_calls_streams_and_pages(api: Api) -> None:
    def session_of_work(client: Client) -> None:
        conversation = client.create_conversation("sync")
        session = client.create_session(conversation.id, ECHO_MODEL_ID)
        with client.stream_chat(session.id, "hello there") as stream:
            assert "".join(stream.text_stream) == "Echo: hello there"
            reply = stream.final_message()
        assert reply.finish_reason == "stop" and reply.usage is not None
        with client.stream_chat(session.id, "again") as stream:
            events = list(stream)
        assert isinstance(events[-1], EndEvent)
        assert [m.content for m in client.list_messages(conversation.id, page_size=3)] == [
            "hello there",
            "Echo: hello there",
            "again",
            "Echo: again",
        ]
        assert [c.id for c in client.list_conversations(page_size=1)] == [conversation.id]
        assert client.get_conversation(conversation.id).sessions[0].id == session.id
        with pytest.raises(NotFoundError) as missing:
            client.get_conversation(UUID(int=1))
        assert missing.value.request_id
        client.complete_session(session.id)
        with pytest.raises(SessionCompletedError), client.stream_chat(session.id, "late"):
            pass

    with sync_client(api.server.base_url, api.a) as client:
        await in_thread(session_of_work, client)


async def test_a_stream_cut_mid_reply_resumes_with_every_event_once(tmp_path: Path) -> None:
    async with served_api(tmp_path, echo_delay_ms=20) as api:
        conversation = await api.conversation()
        session = await api.session(conversation["id"])

        def follow(client: Client) -> tuple[list[StreamEvent], str]:
            with client.stream_chat(session["id"], WORDS) as stream:
                events = list(stream)
                return events, stream.final_message().content

        async with open_cutting_proxy(api.server.base_url) as proxy:
            proxy.cut_next(b"event: content", times=2)
            with sync_client(proxy.base_url, api.a) as client:
                events, text = await in_thread(follow, client)
            assert proxy.cuts == 1
        assert_each_event_once(events, WORDS)
        assert text == "Echo: " + WORDS
        assert [s for _, s, _ in await stored(api, conversation["id"])] == ["completed"] * 2


async def test_a_stream_chat_whose_answer_was_lost_stores_one_message(api: Api) -> None:
    conversation = await api.conversation()
    session = await api.session(conversation["id"])

    def send(client: Client) -> list[StreamEvent]:
        with client.stream_chat(session["id"], "just the once") as stream:
            return list(stream)

    async with open_cutting_proxy(api.server.base_url) as proxy:
        proxy.cut_next(b"")
        with sync_client(proxy.base_url, api.a) as client:
            events = await in_thread(send, client)
        assert proxy.cuts == 1
    assert_each_event_once(events, "just the once")
    assert await stored(api, conversation["id"]) == [
        ("user", "completed", "just the once"),
        ("assistant", "completed", "Echo: just the once"),
    ]


async def test_a_429_is_retried_after_its_retry_after(tmp_path: Path) -> None:
    async with served_api(tmp_path, rate_limit="2/second") as api:
        statuses = Statuses()

        def busy(client: Client) -> float:
            client.list_models()
            client.list_models()
            started = time.monotonic()
            client.list_models()
            return time.monotonic() - started

        with (
            httpx.Client(event_hooks=statuses.sync_hooks()) as http,
            sync_client(api.server.base_url, api.a, http_client=http) as client,
        ):
            waited = await in_thread(busy, client)
        assert statuses.seen == [200, 200, 429, 200] and waited >= 0.9


class InterruptOnce(httpx.BaseTransport):
    """A transport whose first streamed answer raises KeyboardInterrupt in the middle of a
    read, as Ctrl-C does when it lands while the client waits for the next chunk."""

    def __init__(self, after_chunks: int) -> None:
        self._inner = httpx.HTTPTransport()
        self._after = after_chunks
        self.fired = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if not self.fired and request.url.path.endswith("/stream_chat"):
            response.stream = Interrupting(response.stream, self)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        self._inner.close()


class Interrupting(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, owner: InterruptOnce) -> None:
        self._inner = inner
        self._owner = owner

    def __iter__(self) -> Iterator[bytes]:
        for count, data in enumerate(self._inner):
            if count == self._owner._after:
                self._owner.fired = True
                raise KeyboardInterrupt
            yield data

    def close(self) -> None:
        self._inner.close()


async def test_a_stream_interrupted_mid_read_goes_on_where_the_caller_was(
    tmp_path: Path,
) -> None:
    # What the terminal chat relies on: after Ctrl-C it cancels the reply and iterates the
    # same stream on to `end`.
    async with served_api(tmp_path, echo_delay_ms=20) as api:
        conversation = await api.conversation()
        session = await api.session(conversation["id"])
        transport = InterruptOnce(after_chunks=4)

        def interrupted(client: Client) -> tuple[list[StreamEvent], int]:
            events: list[StreamEvent] = []
            interruptions = 0
            with client.stream_chat(session["id"], WORDS) as stream:
                while True:
                    try:
                        events.extend(stream)
                        break
                    except KeyboardInterrupt:
                        interruptions += 1
            return events, interruptions

        with (
            httpx.Client(transport=transport) as http,
            sync_client(api.server.base_url, api.a, http_client=http) as client,
        ):
            events, interruptions = await in_thread(interrupted, client)
        assert transport.fired and interruptions == 1
        assert_each_event_once(events, WORDS)
