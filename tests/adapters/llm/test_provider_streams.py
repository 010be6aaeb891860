"""What every provider's model does alike with its stream: text, usage, keys, broken streams.

Each test runs once per provider API against a real (fake) server on a local socket.
"""

from __future__ import annotations

import pytest

from conversation_service.domain.model import GenerationParams
from conversation_service.testing.upstream import Exchange, start_fake_openai

from .generation import failure, generate

KEY_ENV = "FAKE_PROVIDER_API_KEY"


async def test_each_piece_of_text_is_one_emit(nursery, client, provider):
    pieces = ["Hel", "lo", ", wor", "ld!"]
    server = await start_fake_openai(nursery, provider.reply(pieces))

    emitted, result = await generate(provider.model(client, server.root_url))

    assert emitted == pieces
    assert result.finish_reason == "stop"


async def test_usage_is_the_providers(nursery, client, provider):
    server = await start_fake_openai(nursery, provider.reply(["Hi"], usage=(12, 7)))

    _, result = await generate(provider.model(client, server.root_url))

    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 7)
    assert result.usage.estimated is False


async def test_the_session_params_that_are_set_go_in_the_body(nursery, client, provider):
    server = await start_fake_openai(nursery, provider.reply(["ok"]))
    params = GenerationParams(temperature=0.2, max_tokens=50, top_p=0.9)

    await generate(provider.model(client, server.root_url), params=params)

    body = server.requests[0].json()
    assert (body["temperature"], body["max_tokens"], body["top_p"]) == (0.2, 50, 0.9)


async def test_the_key_is_read_from_its_variable_at_each_generation(
    nursery, client, provider, monkeypatch
):
    server = await start_fake_openai(nursery, provider.reply(["ok"]))
    model = provider.model(client, server.root_url, api_key_env=KEY_ENV)

    for key in ("sk-test-1", "sk-test-2"):
        monkeypatch.setenv(KEY_ENV, key)
        await generate(model)

    sent = [request.headers[provider.key_header] for request in server.requests]
    assert sent == [provider.key_form.format("sk-test-1"), provider.key_form.format("sk-test-2")]


async def test_a_model_without_key_sends_none(nursery, client, provider):
    server = await start_fake_openai(nursery, provider.reply(["ok"]))

    await generate(provider.model(client, server.root_url))

    assert provider.key_header not in server.requests[0].headers


async def test_a_missing_key_variable_is_model_misconfigured(
    nursery, client, provider, monkeypatch
):
    monkeypatch.delenv(KEY_ENV, raising=False)
    server = await start_fake_openai(nursery, provider.reply(["never"]))

    error = await failure(provider.model(client, server.root_url, api_key_env=KEY_ENV))

    assert error.code == "model_misconfigured"
    assert f"environment variable {KEY_ENV} is not set" in error.message
    assert server.exchanges == []


async def test_401_is_upstream_error_with_the_upstream_message(
    nursery, client, provider, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    message = "Incorrect API key provided: sk-wrong. You can find your API key at ..."
    server = await start_fake_openai(nursery, provider.error(401, message))

    error = await failure(provider.model(client, server.root_url, api_key_env=KEY_ENV))

    assert error.code == "upstream_error"
    assert "HTTP 401" in error.message
    assert "Incorrect API key provided" in error.message
    assert "sk-wrong" not in error.message
    assert len(server.requests) == 1  # a refusal is not retried


async def test_a_key_given_directly_is_sent_and_kept_out_of_failures(nursery, client, provider):
    server = await start_fake_openai(nursery, provider.error(401, "bad key sk-org-direct-9"))

    error = await failure(provider.model(client, server.root_url, api_key="sk-org-direct-9"))

    assert server.requests[0].headers[provider.key_header] == provider.key_form.format(
        "sk-org-direct-9"
    )
    assert "bad key" in error.message and "sk-org-direct-9" not in error.message


async def test_a_key_and_a_key_variable_together_are_refused(client, provider):
    with pytest.raises(ValueError, match="api_key or api_key_env"):
        provider.model(client, "http://127.0.0.1:9", api_key="sk-x", api_key_env=KEY_ENV)


@pytest.mark.parametrize("ending", ["clean_end_of_body", "dropped_connection", "unframed_close"])
async def test_a_stream_closed_before_its_end_is_a_bad_response(nursery, client, provider, ending):
    async def truncated(exchange: Exchange) -> None:
        await provider.start_text(exchange, ending != "unframed_close")
        if ending == "clean_end_of_body":
            await exchange.end_body()

    server = await start_fake_openai(nursery, truncated)

    error = await failure(provider.model(client, server.root_url))

    assert error.code == "upstream_bad_response"
    assert len(server.requests) == 1  # text was emitted: never again


async def test_an_event_that_is_not_json_is_a_bad_response(nursery, client, provider):
    async def garbled(exchange: Exchange) -> None:
        await provider.start_text(exchange, True)
        await exchange.send_event('{"choices": [{"delta": {"content": "lo"')
        await exchange.wait_closed_by_client()

    server = await start_fake_openai(nursery, garbled)

    error = await failure(provider.model(client, server.root_url))

    assert error.code == "upstream_bad_response"
    assert "not JSON" in error.message


async def test_a_json_reply_instead_of_a_stream_is_a_bad_response(nursery, client, provider):
    async def not_streaming(exchange: Exchange) -> None:
        await exchange.send_json(200, {"content": [{"type": "text", "text": "hi"}]})

    server = await start_fake_openai(nursery, not_streaming)

    error = await failure(provider.model(client, server.root_url))

    assert error.code == "upstream_bad_response"


async def test_a_complete_stream_without_text_is_upstream_bad_response(nursery, client, provider):
    server = await start_fake_openai(nursery, provider.reply([], usage=(5, 0)))

    error = await failure(provider.model(client, server.root_url))

    assert error.code == "upstream_bad_response" and "without any text" in error.message
