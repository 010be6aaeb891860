"""The catalog: echo always there, the registry's models behind it, all owned by one client."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
import trio

from conversation_service.adapters.llm.anthropic_messages import AnthropicMessagesModel
from conversation_service.adapters.llm.catalog import ECHO_INFO, ECHO_MODEL_ID, open_catalog
from conversation_service.adapters.llm.echo import EchoModel
from conversation_service.adapters.llm.openai_chat import OpenAIChatModel
from conversation_service.adapters.llm.registry_file import load_registry, parse_registry
from conversation_service.domain.context import PromptMessage
from conversation_service.domain.errors import ModelNotFound
from conversation_service.ports.language_model import ModelFailure, ModelInfo
from conversation_service.testing.upstream import start_fake_openai, streaming_reply

GPT_ID = UUID("457d4f38-e3c0-43eb-b519-a867f9f5325a")
KEY_ENV = "CATALOG_TEST_API_KEY"
PROMPT = (PromptMessage(role="user", content="Hi"),)


def registry_at(base_url: str, *, api_key_env: str | None = KEY_ENV):
    key_line = f'api_key_env = "{api_key_env}"' if api_key_env else ""
    return parse_registry(
        f"""
        [echo]
        delay_ms = 0

        [[models]]
        id = "{GPT_ID}"
        name = "gpt-4o-mini"
        provider = "openai"
        base_url = "{base_url}"
        upstream_model = "gpt-4o-mini"
        {key_line}
        """,
        source="test.toml",
    )


async def generate(model) -> str:
    emitted: list[str] = []

    async def emit(text: str) -> None:
        emitted.append(text)

    with trio.fail_after(5):
        await model.generate(PROMPT, emit)
    return "".join(emitted)


async def test_every_org_sees_echo_and_the_registry_models():
    async with open_catalog(registry_at("http://127.0.0.1:9/v1")) as catalog:
        for org_id in (uuid4(), uuid4()):
            assert list(catalog.models_for(org_id)) == [
                ECHO_INFO,
                ModelInfo(id=GPT_ID, name="gpt-4o-mini", provider="openai"),
            ]
            assert catalog.get(org_id, GPT_ID).name == "gpt-4o-mini"


async def test_the_bundled_registry_offers_echo_alone():
    async with open_catalog(load_registry(None)) as catalog:
        assert [m.name for m in catalog.models_for(uuid4())] == ["echo"]


async def test_an_unknown_model_is_not_found():
    async with open_catalog(load_registry(None)) as catalog:
        with pytest.raises(ModelNotFound):
            catalog.get(uuid4(), GPT_ID)
        with pytest.raises(ModelNotFound):
            catalog.language_model(GPT_ID)


async def test_echo_uses_the_registry_delay_unless_overridden():
    registry = load_registry(None)

    async with open_catalog(registry) as catalog:
        echo = catalog.language_model(ECHO_MODEL_ID)
        assert isinstance(echo, EchoModel) and echo.delay == pytest.approx(0.03)
    async with open_catalog(registry, echo_delay=0) as catalog:
        echo = catalog.language_model(ECHO_MODEL_ID)
        assert isinstance(echo, EchoModel) and echo.delay == 0
        assert await generate(echo) == "Echo: Hi"


async def test_a_registry_model_streams_from_its_server(nursery, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-catalog")
    server = await start_fake_openai(nursery, streaming_reply(["Hello", " there"]))

    async with open_catalog(registry_at(server.base_url)) as catalog:
        model = catalog.language_model(GPT_ID)
        assert isinstance(model, OpenAIChatModel)
        assert await generate(model) == "Hello there"

    assert server.requests[0].headers["authorization"] == "Bearer sk-catalog"


async def test_a_model_whose_key_variable_is_unset_is_listed_but_misconfigured(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)

    async with open_catalog(registry_at("http://127.0.0.1:9/v1")) as catalog:
        assert GPT_ID in [m.id for m in catalog.models_for(uuid4())]
        with pytest.raises(ModelFailure) as info:
            await generate(catalog.language_model(GPT_ID))

    assert info.value.code == "model_misconfigured"
    assert KEY_ENV in info.value.message


async def test_models_cannot_be_used_once_the_catalog_is_closed(nursery):
    server = await start_fake_openai(nursery, streaming_reply(["late"]))

    async with open_catalog(registry_at(server.base_url, api_key_env=None)) as catalog:
        model = catalog.language_model(GPT_ID)

    with pytest.raises(RuntimeError, match="closed"):
        await generate(model)


# -- limits ------------------------------------------------------------------------------


async def test_model_infos_carry_context_window_and_max_output_tokens():
    registry = parse_registry(
        f"""
        [[models]]
        id = "{GPT_ID}"
        name = "claude"
        provider = "anthropic"
        upstream_model = "claude-test"
        context_window = 200000
        max_output_tokens = 64000
        """,
        source="test.toml",
    )

    async with open_catalog(registry) as catalog:
        echo, claude = catalog.models_for(uuid4())
        assert isinstance(catalog.language_model(GPT_ID), AnthropicMessagesModel)

    assert (echo.context_window, echo.max_output_tokens) == (1_000_000, 100_000)
    assert (claude.context_window, claude.max_output_tokens, claude.scope) == (
        200000,
        64000,
        "global",
    )
