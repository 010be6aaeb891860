"""AnthropicMessagesModel against a real (fake) Messages API server on a local socket.

What it does like every provider's model is tested in test_provider_streams.py.
"""

from __future__ import annotations

import pytest
import trio

from conversation_service.adapters.llm.anthropic_messages import AnthropicMessagesModel
from conversation_service.adapters.llm.http1 import UpstreamClient
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.domain.context import PromptMessage
from conversation_service.testing.upstream import (
    Exchange,
    FakeOpenAIServer,
    in_turn,
    start_fake_openai,
)
from conversation_service.testing.upstream.anthropic import (
    BLOCK_STOP,
    MESSAGE_STOP,
    PING,
    error_body,
    message_delta,
    message_start,
    messages_error,
    messages_reply,
    send,
    start_message,
    text_delta,
)

from .generation import failure, generate

FAST = Timeouts(connect=1.0, first_token=0.5, idle=0.3, total=5.0)
QUICK_RETRIES = Retries(base=0.01, cap=0.02)
KEY_ENV = "FAKE_ANTHROPIC_API_KEY"


def model_at(
    client: UpstreamClient,
    server: FakeOpenAIServer,
    *,
    api_key_env: str | None = None,
    default_max_tokens: int = 1024,
) -> AnthropicMessagesModel:
    return AnthropicMessagesModel(
        client,
        base_url=server.root_url,
        upstream_model="claude-test",
        api_key_env=api_key_env,
        default_max_tokens=default_max_tokens,
        timeouts=FAST,
        retries=QUICK_RETRIES,
    )


# -- the reply --------------------------------------------------------------------------


async def test_prompt_cache_tokens_count_as_prompt_tokens(nursery, client):
    async def cached(exchange: Exchange) -> None:
        start = message_start(input_tokens=3)
        start["message"]["usage"].update(
            cache_creation_input_tokens=100, cache_read_input_tokens=1000
        )
        await exchange.send_head()
        await send(exchange, start)
        await send(exchange, text_delta("Hi"))
        await send(exchange, message_delta(output_tokens=2))
        await send(exchange, MESSAGE_STOP)
        await exchange.end_body()

    server = await start_fake_openai(nursery, cached)

    _, result = await generate(model_at(client, server))

    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1103, 2)


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length")],
)
async def test_stop_reasons_become_finish_reasons(nursery, client, stop_reason, finish_reason):
    server = await start_fake_openai(nursery, messages_reply(["cut"], stop_reason=stop_reason))

    _, result = await generate(model_at(client, server))

    assert result.finish_reason == finish_reason


async def test_pings_are_ignored_but_keep_a_slow_stream_alive(nursery, client):
    async def thinking(exchange: Exchange) -> None:
        await start_message(exchange)
        for _ in range(4):  # 0.6 s in all, twice the idle timeout, but never 0.3 s silent
            await send(exchange, PING)
            await trio.sleep(0.15)
        await send(exchange, text_delta("Done"))
        await send(exchange, BLOCK_STOP)
        await send(exchange, message_delta())
        await send(exchange, MESSAGE_STOP)
        await exchange.end_body()

    server = await start_fake_openai(nursery, thinking)

    emitted, _ = await generate(model_at(client, server))

    assert emitted == ["Done"]


async def test_a_stream_that_ends_cleanly_before_message_stop_says_so(nursery, client):
    async def truncated(exchange: Exchange) -> None:
        await start_message(exchange)
        await send(exchange, text_delta("Hel"))
        await send(exchange, message_delta())
        await exchange.end_body()

    server = await start_fake_openai(nursery, truncated)

    error = await failure(model_at(client, server))

    assert error.code == "upstream_bad_response"
    assert "ended before message_stop" in error.message


# -- the request ------------------------------------------------------------------------


async def test_the_request_carries_version_system_prompt_and_messages(nursery, client):
    server = await start_fake_openai(nursery, messages_reply(["ok"]))

    await generate(model_at(client, server))  # the key header: test_provider_streams.py

    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "model": "claude-test",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": True,
    }


async def test_turns_of_one_role_are_merged_and_a_leading_assistant_turn_dropped(nursery, client):
    server = await start_fake_openai(nursery, messages_reply(["ok"]))
    prompt = [
        PromptMessage(role="assistant", content="Welcome!"),
        PromptMessage(role="system", content="Be brief."),
        PromptMessage(role="user", content="one"),
        PromptMessage(role="user", content="two"),
        PromptMessage(role="system", content="Answer in French."),
        PromptMessage(role="assistant", content="un"),
        PromptMessage(role="assistant", content=" "),
        PromptMessage(role="assistant", content="deux"),
        PromptMessage(role="user", content="three"),
    ]

    await generate(model_at(client, server), prompt)

    body = server.requests[0].json()
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [
        {"role": "user", "content": "one\n\ntwo"},
        {"role": "assistant", "content": "un\n\ndeux"},
        {"role": "user", "content": "three"},
    ]


async def test_a_prompt_without_system_messages_sends_no_system(nursery, client):
    server = await start_fake_openai(nursery, messages_reply(["ok"]))

    await generate(model_at(client, server), [PromptMessage(role="user", content="hi")])

    assert "system" not in server.requests[0].json()


async def test_default_max_tokens_is_sent_when_the_session_sets_none(nursery, client):
    server = await start_fake_openai(nursery, messages_reply(["ok"]))

    await generate(model_at(client, server, default_max_tokens=300))

    body = server.requests[0].json()
    assert body["max_tokens"] == 300
    assert "temperature" not in body and "top_p" not in body


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        ("overloaded_error", "upstream_unavailable"),
        ("rate_limit_error", "upstream_rate_limited"),
        ("api_error", "upstream_error"),
        ("invalid_request_error", "upstream_error"),
    ],
)
async def test_an_error_event_mid_stream_fails_with_its_code(nursery, client, error_type, code):
    async def fails_midway(exchange: Exchange) -> None:
        await start_message(exchange)
        await send(exchange, text_delta("Hel"))
        await send(exchange, error_body(error_type, "Something went wrong upstream"))
        await exchange.wait_closed_by_client()

    server = await start_fake_openai(nursery, fails_midway)

    error = await failure(model_at(client, server))

    assert error.code == code
    assert "Something went wrong upstream" in error.message
    assert len(server.requests) == 1  # text was emitted: never again


async def test_an_overloaded_event_before_any_text_is_retried(nursery, client):
    async def overloaded(exchange: Exchange) -> None:
        await start_message(exchange)
        await send(exchange, error_body("overloaded_error", "Overloaded"))
        await exchange.end_body()

    server = await start_fake_openai(nursery, in_turn(overloaded, messages_reply(["Hi"])))

    emitted, _ = await generate(model_at(client, server))

    assert emitted == ["Hi"]
    assert len(server.requests) == 2


async def test_529_overloaded_is_upstream_unavailable_once_retries_run_out(nursery, client):
    server = await start_fake_openai(nursery, messages_error(529, "overloaded_error", "Overloaded"))

    error = await failure(model_at(client, server))

    assert error.code == "upstream_unavailable"
    assert "Overloaded" in error.message and "gave up after 3 attempts" in error.message
    assert len(server.requests) == 3
