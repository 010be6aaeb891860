"""Organisations' own models in the catalog: seen, used and removed by their organisation only."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from conversation_service.adapters.llm.catalog import ECHO_MODEL_ID, open_catalog
from conversation_service.adapters.llm.openai_chat import OpenAIChatModel
from conversation_service.adapters.llm.registry_entry import RegisteredModel
from conversation_service.adapters.llm.registry_file import Registry, load_registry
from conversation_service.adapters.llm.retries import Retries
from conversation_service.domain.errors import Conflict, InvalidField, ModelNotFound
from conversation_service.ports.language_model import ModelFailure
from conversation_service.testing.upstream import start_fake_openai, streaming_reply
from conversation_service.testing.upstream.anthropic import messages_reply

from .generation import generate

ORG_A, ORG_B = uuid4(), uuid4()
GPT_ID = UUID("457d4f38-e3c0-43eb-b519-a867f9f5325a")


def org_model(base_url: str, *, provider: str = "openai", name: str = "our model", **fields):
    return RegisteredModel(
        id=fields.pop("id", uuid4()),
        name=name,
        provider=provider,
        base_url=base_url,
        upstream_model="their-model",
        retries=Retries(max_retries=0),
        **fields,
    )


# One global model besides echo; its server is never called.
WITH_GPT = Registry(
    source="test",
    echo_delay=0,
    models=(org_model("http://127.0.0.1:9/v1", id=GPT_ID, name="gpt-4o-mini"),),
)


async def text_of(model) -> str:
    emitted, _ = await generate(model)
    return "".join(emitted)


async def test_an_org_model_is_seen_by_its_organisation_alone():
    async with open_catalog(WITH_GPT) as catalog:
        info = catalog.add_org_model(ORG_A, org_model("https://llm.example.com/v1"), "sk-a")

        assert info.scope == "org"
        assert [m.id for m in catalog.models_for(ORG_A)] == [ECHO_MODEL_ID, GPT_ID, info.id]
        assert [m.id for m in catalog.models_for(ORG_B)] == [ECHO_MODEL_ID, GPT_ID]
        assert catalog.get(ORG_A, info.id) == info
        assert catalog.get(ORG_B, GPT_ID).scope == "global"
        with pytest.raises(ModelNotFound):
            catalog.get(ORG_B, info.id)
        assert isinstance(catalog.language_model(info.id), OpenAIChatModel)


async def test_a_removed_org_model_is_gone():
    async with open_catalog(WITH_GPT) as catalog:
        info = catalog.add_org_model(ORG_A, org_model("https://llm.example.com/v1"), None)
        with pytest.raises(ModelNotFound):
            catalog.remove_org_model(ORG_B, info.id)  # not B's to remove
        assert catalog.get(ORG_A, info.id) == info

        catalog.remove_org_model(ORG_A, info.id)

        assert [m.id for m in catalog.models_for(ORG_A)] == [ECHO_MODEL_ID, GPT_ID]
        with pytest.raises(ModelNotFound):
            catalog.get(ORG_A, info.id)
        with pytest.raises(ModelNotFound):
            catalog.language_model(info.id)
        with pytest.raises(ModelNotFound):
            catalog.remove_org_model(ORG_A, info.id)
        with pytest.raises(ModelNotFound):
            catalog.remove_org_model(ORG_A, GPT_ID)  # a global model is no org's to remove


@pytest.mark.parametrize(
    ("provider", "path", "reply", "header", "value"),
    [
        ("openai", "/v1", streaming_reply(["Hi"]), "authorization", "Bearer sk-org-a"),
        ("anthropic", "", messages_reply(["Hi"]), "x-api-key", "sk-org-a"),
    ],
)
async def test_an_org_model_sends_the_key_it_was_given(
    nursery, provider, path, reply, header, value
):
    server = await start_fake_openai(nursery, reply)

    async with open_catalog(load_registry(None), allow_private=True) as catalog:
        model = org_model(server.root_url + path, provider=provider)
        info = catalog.add_org_model(ORG_A, model, "sk-org-a")
        assert await text_of(catalog.language_model(info.id)) == "Hi"

    assert server.requests[0].headers[header] == value


async def test_an_org_model_at_a_private_address_is_refused_when_added():
    async with open_catalog(load_registry(None)) as catalog:
        with pytest.raises(InvalidField) as info:
            catalog.add_org_model(ORG_A, org_model("http://169.254.169.254/v1"), None)

    assert info.value.field == "base_url"
    assert "link-local" in info.value.reason


async def test_an_org_model_whose_name_resolves_to_loopback_is_refused_when_used(nursery):
    server = await start_fake_openai(nursery, streaming_reply(["never"]))

    async with open_catalog(load_registry(None)) as catalog:
        model = org_model(f"http://localhost:{server.port}/v1")
        info = catalog.add_org_model(ORG_A, model, None)  # names are resolved at each request
        with pytest.raises(ModelFailure) as failure:
            await text_of(catalog.language_model(info.id))

    assert failure.value.code == "model_misconfigured"
    assert "loopback" in failure.value.message
    assert server.requests == []


async def test_an_org_model_may_not_read_a_key_from_the_service_environment():
    async with open_catalog(load_registry(None)) as catalog:
        model = org_model("https://llm.example.com/v1", api_key_env="OPENAI_API_KEY")
        with pytest.raises(InvalidField) as info:
            catalog.add_org_model(ORG_A, model, None)

    assert info.value.field == "api_key_env"


async def test_an_org_model_id_or_name_already_in_use_is_a_conflict():
    async with open_catalog(WITH_GPT) as catalog:
        taken = catalog.add_org_model(ORG_B, org_model("https://b.example.com/v1"), None)
        for clash in (
            org_model("https://a.example.com/v1", id=ECHO_MODEL_ID),
            org_model("https://a.example.com/v1", id=GPT_ID),
            org_model("https://a.example.com/v1", id=taken.id),  # another org's
            org_model("https://a.example.com/v1", name="gpt-4o-mini"),
        ):
            with pytest.raises(Conflict):
                catalog.add_org_model(ORG_A, clash, None)

        assert [m.id for m in catalog.models_for(ORG_A)] == [ECHO_MODEL_ID, GPT_ID]
