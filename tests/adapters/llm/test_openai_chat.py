"""OpenAIChatModel against a real (fake) OpenAI-compatible server on a local socket.

What it does like every provider's model is tested in test_provider_streams.py.
"""

from __future__ import annotations

import json

import pytest
import trio

from conversation_service.adapters.llm.http1 import UpstreamClient
from conversation_service.adapters.llm.openai_chat import OpenAIChatModel
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.domain.model import GenerationParams
from conversation_service.testing.upstream import (
    Exchange,
    FakeOpenAIServer,
    chunk,
    error_reply,
    start_fake_openai,
    streaming_reply,
)

from .generation import PROMPT, failure, generate

FAST = Timeouts(connect=1.0, first_token=0.3, idle=0.3, total=5.0)
NO_RETRIES = Retries(max_retries=0)  # retries have tests of their own (test_upstream.py)
KEY_ENV = "FAKE_PROVIDER_API_KEY"


def model_at(
    client: UpstreamClient,
    server: FakeOpenAIServer | str,
    *,
    api_key_env: str | None = None,
    timeouts: Timeouts = FAST,
) -> OpenAIChatModel:
    base_url = server if isinstance(server, str) else server.base_url
    return OpenAIChatModel(
        client,
        base_url=base_url,
        upstream_model="fake-model",
        api_key_env=api_key_env,
        timeouts=timeouts,
        retries=NO_RETRIES,
    )


# -- success ----------------------------------------------------------------------------


async def test_usage_is_estimated_when_the_server_reports_none(nursery, client):
    server = await start_fake_openai(nursery, streaming_reply(["Hello there"]))

    _, result = await generate(model_at(client, server))

    assert result.usage is not None and result.usage.estimated is True
    assert result.usage.completion_tokens == 3  # 11 characters, 4 per token, rounded up


async def test_replies_reuse_one_upstream_connection(nursery, client):
    # The body is read to its end after [DONE], so the connection goes back to the pool.
    server = await start_fake_openai(nursery, streaming_reply(["Hi", " there"]), keep_alive=True)
    model = model_at(client, server)
    for _ in range(3):
        emitted, _ = await generate(model)
        assert "".join(emitted) == "Hi there"
    assert (len(server.requests), server.connections) == (3, 1)


async def test_a_nul_in_the_text_becomes_a_replacement_character(nursery, client):
    # JSON's \u0000 is text to Python, but no text the service stores may hold it.
    server = await start_fake_openai(nursery, streaming_reply(["a\x00b", "\x00"]))

    emitted, _ = await generate(model_at(client, server))

    assert emitted == ["a\ufffdb", "\ufffd"]


async def test_finish_reason_is_passed_on(nursery, client):
    server = await start_fake_openai(nursery, streaming_reply(["cut"], finish_reason="length"))

    _, result = await generate(model_at(client, server))

    assert result.finish_reason == "length"


@pytest.mark.parametrize("content", ["Hello world", "héllo wörld ✓"])
async def test_an_event_split_across_two_writes_is_reassembled(nursery, client, content):
    async def handler(exchange: Exchange) -> None:
        await exchange.send_head()
        raw = f"data: {json.dumps(chunk(content), ensure_ascii=False)}\n\n".encode()
        middle = raw.index(b"wor") if "wor" in content else raw.index("ö".encode()) + 1
        await exchange.send(raw[:middle])  # for "wörld": in the middle of a UTF-8 character
        await trio.sleep(0.05)
        await exchange.send(raw[middle:])
        await exchange.send_event(chunk(finish_reason="stop"))
        await exchange.send_event("[DONE]")
        await exchange.end_body()

    server = await start_fake_openai(nursery, handler)

    emitted, _ = await generate(model_at(client, server))

    assert emitted == [content]


async def test_keep_alive_events_and_comments_are_ignored(nursery, client):
    async def with_keep_alives(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send(": keep-alive comment\n\n")
        await exchange.send("event: ping\ndata:\n\n")
        await exchange.send_event(chunk("Hi"))
        await exchange.send_event(chunk(finish_reason="stop"))
        await exchange.send_event("[DONE]")
        await exchange.end_body()

    server = await start_fake_openai(nursery, with_keep_alives)

    emitted, _ = await generate(model_at(client, server))

    assert emitted == ["Hi"]


async def test_request_carries_model_messages_stream_options_and_key(nursery, client, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    server = await start_fake_openai(nursery, streaming_reply(["ok"]))

    await generate(model_at(client, server, api_key_env=KEY_ENV))

    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test-123"
    assert request.json() == {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_a_slow_caller_is_not_upstream_silence(nursery, client):
    server = await start_fake_openai(nursery, streaming_reply(["a", "b"]))
    model = model_at(client, server, timeouts=Timeouts(first_token=0.3, idle=0.1))
    emitted: list[str] = []

    async def slow_emit(text: str) -> None:
        emitted.append(text)
        await trio.sleep(0.2)  # longer than idle: the wait is ours, not the server's

    with trio.fail_after(5):
        await model.generate(PROMPT, slow_emit)

    assert emitted == ["a", "b"]


# -- failures ---------------------------------------------------------------------------


async def test_a_long_upstream_message_is_truncated(nursery, client):
    server = await start_fake_openai(nursery, error_reply(400, "x" * 5000))

    error = await failure(model_at(client, server))

    assert error.code == "upstream_error"
    assert len(error.message) < 400


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_upstream_error(nursery, client, status):
    server = await start_fake_openai(nursery, error_reply(status))

    error = await failure(model_at(client, server))

    assert error.code == "upstream_error"
    assert f"HTTP {status}" in error.message


async def test_a_server_that_sends_nothing_times_out_after_first_token_timeout(nursery, client):
    async def silent(exchange: Exchange) -> None:
        await exchange.wait_closed_by_client()

    server = await start_fake_openai(nursery, silent)
    start = trio.current_time()

    error = await failure(model_at(client, server))

    assert error.code == "upstream_timeout"
    assert "did not start within 0.3s" in error.message
    assert 0.3 <= trio.current_time() - start < 1.3
    with trio.fail_after(1):
        await server.exchanges[0].client_closed.wait()


async def test_silence_between_chunks_times_out_after_idle_timeout(nursery, client):
    async def stalls(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk("Hel"))
        await exchange.wait_closed_by_client()

    server = await start_fake_openai(nursery, stalls)

    error = await failure(model_at(client, server))

    assert error.code == "upstream_timeout"
    assert "sent nothing for 0.3s" in error.message


async def test_a_reply_longer_than_total_timeout_times_out(nursery, client):
    async def endless(exchange: Exchange) -> None:
        await exchange.send_head()
        while True:
            await exchange.send_event(chunk("more "))
            await trio.sleep(0.05)

    server = await start_fake_openai(nursery, endless)
    timeouts = Timeouts(first_token=0.3, idle=0.3, total=0.4)

    error = await failure(model_at(client, server, timeouts=timeouts))

    assert error.code == "upstream_timeout"
    assert "longer than 0.4s" in error.message


async def test_an_error_event_mid_stream_is_upstream_error(nursery, client):
    async def fails_midway(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk("Hel"))
        await exchange.send_event({"error": {"message": "CUDA out of memory"}})
        await exchange.wait_closed_by_client()

    server = await start_fake_openai(nursery, fails_midway)

    error = await failure(model_at(client, server))

    assert error.code == "upstream_error"
    assert "CUDA out of memory" in error.message


# -- cancellation -----------------------------------------------------------------------


async def test_cancelling_generate_closes_the_upstream_connection(nursery, client):
    async def streams_then_waits(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk("Hel"))
        await exchange.wait_closed_by_client()

    server = await start_fake_openai(nursery, streams_then_waits)
    model = model_at(client, server, timeouts=Timeouts(first_token=10, idle=10, total=10))
    first_text = trio.Event()

    async def emit(text: str) -> None:
        first_text.set()

    generation = trio.CancelScope()

    async def generate_until_cancelled() -> None:
        with generation:
            await model.generate(PROMPT, emit)

    with trio.fail_after(5):
        async with trio.open_nursery() as caller:
            caller.start_soon(generate_until_cancelled)
            await first_text.wait()
            generation.cancel()
            with trio.fail_after(1):
                await server.exchanges[0].client_closed.wait()

    assert generation.cancelled_caught


# -- session params ---------------------------------------------------------------------


async def test_params_left_unset_are_left_out_of_the_body(nursery, client):
    server = await start_fake_openai(nursery, streaming_reply(["ok"]))

    await generate(model_at(client, server), params=GenerationParams(temperature=0.0))

    body = server.requests[0].json()
    assert body["temperature"] == 0.0
    assert "max_tokens" not in body and "top_p" not in body
