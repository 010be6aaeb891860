"""Request bodies: the server takes exactly what the document says it takes.

For every request body of the document, bodies are made around each limit it states (just
inside and just outside a minimum, a maximum, a length; every value of an enum and one
more; null; text that is blank or holds a NUL; an unknown key), and the server must accept
each one the document's schema accepts and answer 400 naming the field for each one it
refuses. The bodies start from a valid one that no rule beyond the schema refuses (those
rules are in the descriptions, and tested at the end).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conversation_service.domain.model import AccessRole
from tests.http.conftest import ECHO, Api, Tenant, open_api, settings_for

MODEL_URL = "http://127.0.0.1:9/v1"  # nothing listens there; nothing here calls it
PROBE_TEXTS = (" ", "\u3000", "x\x00y", "x y")  # blank, blank, a NUL, fine


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _branches(document: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema without its null, and whether it takes null."""
    schema = _resolve(document, schema)
    if "oneOf" in schema:
        rest = [s for s in schema["oneOf"] if s != {"type": "null"}]
        return _resolve(document, rest[0]), len(rest) < len(schema["oneOf"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return {**schema, "type": next(k for k in kind if k != "null")}, "null" in kind
    return schema, False


def probes(document: dict[str, Any], schema: dict[str, Any], path: str = "") -> Iterator[Any]:
    """(dotted field, value) pairs just around what the schema says of each field."""
    yield f"{path}colour", "red"  # no body takes it
    for name, raw in _resolve(document, schema)["properties"].items():
        field = f"{path}{name}"
        schema, takes_null = _branches(document, raw)
        yield field, None
        if schema.get("type") == "object":
            yield from probes(document, schema, f"{field}.")
            continue
        step = 1 if schema.get("type") == "integer" else 0.001
        for value in schema.get("enum", ()):
            yield field, value
        if "enum" in schema:
            yield field, "none-of-these"
        if "not" in schema:
            yield field, schema["not"]["const"]
        if "minimum" in schema:
            yield from ((field, schema["minimum"]), (field, schema["minimum"] - step))
        if "exclusiveMinimum" in schema:
            bound = schema["exclusiveMinimum"]
            yield from ((field, bound), (field, bound + step))
        if "maximum" in schema:
            yield from ((field, schema["maximum"]), (field, schema["maximum"] + step))
        if "maxLength" in schema:
            most = schema["maxLength"]
            yield from ((field, "x" * most), (field, "x" * (most + 1)))
        if schema.get("minLength", 0) > 0:
            yield field, "x" * (schema["minLength"] - 1)
        if "pattern" in schema:
            yield from ((field, text) for text in PROBE_TEXTS)
        if schema.get("format") == "uuid":
            yield field, "not-a-uuid"


def with_value(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *outer, last = field.split(".")
    inner = changed
    for name in outer:
        inner = inner.setdefault(name, {})
    inner[last] = value
    return changed


async def _bases(api: Api, admin: Tenant) -> dict[str, tuple[str, Tenant, Any]]:
    """Per request body: its path, who sends it, and a valid body (a function: a fresh one)."""
    conversation = (await api.conversation())["id"]

    async def session() -> str:
        return (await api.session(conversation))["id"]

    streaming, cancelling, completing = await session(), await session(), await session()
    replied = await api.stream(await session(), "a reply to rate")
    reply = replied[0][2]["message_id"]
    branching = await session()
    # Questions to edit, the last first: an edit takes the message it edits off the current
    # branch, but not the ones before it.
    questions = [
        (await api.stream(branching, f"question {n}"))[0][2]["user_message_id"] for n in range(24)
    ]
    return {
        "CreateConversation": ("create", api.a, lambda: {"title": "t"}),
        "CreateSession": (
            "create_session",
            api.a,
            lambda: {"conversation_id": conversation, "model_id": ECHO},
        ),
        "StreamChat": (
            "stream_chat",
            api.a,
            lambda: {"chat_session_id": streaming, "message": "m"},
        ),
        "CancelReply": ("cancel", api.a, lambda: {"chat_session_id": cancelling}),
        "CompleteSession": ("complete_session", api.a, lambda: {"chat_session_id": completing}),
        # The head reply is always there to regenerate, and any message to select.
        "RegenerateReply": ("regenerate", api.a, lambda: {"chat_session_id": branching}),
        "EditMessage": (
            "edit",
            api.a,
            lambda: {"chat_session_id": branching, "message_id": questions.pop(), "content": "c"},
        ),
        "SelectBranch": (
            "select_branch",
            api.a,
            lambda: {"chat_session_id": branching, "message_id": questions[0]},
        ),
        "RegisterModel": (
            "/api/models",
            admin,
            lambda: {
                "name": f"model-{uuid.uuid4()}",  # names are unique in an organisation
                "provider": "anthropic",  # the only provider that takes default_max_tokens
                "base_url": MODEL_URL,
                "upstream_model": "m",
                # Within every documented limit of context_window and default_max_tokens.
                "max_output_tokens": 1,
            },
        ),
        "UpdateConversation": ("update", api.a, lambda: {"conversation_id": conversation}),
        # Every probe of a deletion's one field is refused: the conversation stays.
        "DeleteConversation": ("delete", api.a, lambda: {"conversation_id": conversation}),
        "GiveFeedback": ("feedback", api.a, lambda: {"message_id": reply, "rating": "up"}),
        "ClearFeedback": ("clear_feedback", api.a, lambda: {"message_id": reply}),
    }


async def test_the_server_takes_exactly_the_bodies_the_document_describes(
    tmp_path: Path,
) -> None:
    settings = settings_for(
        tmp_path, max_title_chars=42, max_message_chars=77, allow_private_model_urls=True
    )
    async with open_api(settings) as api:
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        document = (await api.client.get("/openapi.json")).json()
        bases = await _bases(api, admin)
        documented = {
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            for item in document["paths"].values()
            for operation in item.values()
            # JSON bodies; an import's file is JSON Lines (test_transfer_api.py).
            if "application/json" in operation.get("requestBody", {}).get("content", {})
        }
        assert {ref.rsplit("/", 1)[-1] for ref in documented} == set(bases)
        seen = {True: 0, False: 0}
        for name, (path, who, base) in bases.items():
            schema = {"$ref": f"#/components/schemas/{name}"}
            check = Draft202012Validator(
                {**document, **schema}, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            assert check.is_valid(base()), name
            url = path if path.startswith("/") else f"/api/conversation/{path}"
            for field, value in probes(document, schema):
                body = with_value(base(), field, value)
                response = await api.post(url, body, who)
                documented_ok = check.is_valid(body)
                case = f"{name} {field}={str(value)[:20]!r}"
                assert response.is_success == documented_ok, (case, response.text[:300])
                if not documented_ok:
                    assert response.status_code == 400, (case, response.text[:300])
                    assert response.json()["error"]["field"] == field, (case, response.text)
                seen[documented_ok] += 1
        assert seen[True] > 30 and seen[False] > 30, seen


def _validator(document: dict[str, Any], name: str) -> Draft202012Validator:
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})


async def test_every_property_a_model_entry_lists_is_taken_and_no_other(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, allow_private_model_urls=True)) as api:
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        document = (await api.client.get("/openapi.json")).json()
        schema = document["components"]["schemas"]["RegisterModel"]
        given = {
            "name": "everything",
            "provider": "anthropic",
            "base_url": MODEL_URL,
            "upstream_model": "m",
            "api_key": "sk-all",
            "default_max_tokens": 100,
        }
        body = {
            name: given.get(name, prop.get("default"))
            for name, prop in schema["properties"].items()
        }
        assert None not in body.values(), "every property has a default or a value here"
        assert _validator(document, "RegisterModel").is_valid(body)
        created = await api.post("/api/models", body, admin)
        assert created.status_code == 201, created.text
        shown = created.json()
        assert (shown["context_window"], shown["max_output_tokens"]) == (
            body["context_window"],
            body["max_output_tokens"],
        )
        # What the server refuses is not in the document (api_key_env: a name of the
        # server's own environment; id: the server gives it).
        for field, value in [("api_key_env", "OPENAI_API_KEY"), ("id", str(uuid.uuid4()))]:
            assert field not in schema["properties"]
            refused = await api.post("/api/models", {**given, "name": field, field: value}, admin)
            assert refused.status_code == 400 and refused.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"provider": "openai", "base_url": None}, "base_url"),  # only anthropic has a default
        ({"provider": "openai", "default_max_tokens": 5}, "default_max_tokens"),
        ({"provider": "anthropic", "base_url": None}, None),
        ({"provider": "anthropic", "default_max_tokens": 5}, None),
    ],
)
async def test_a_model_entrys_rules_between_fields_are_the_documents(
    tmp_path: Path, change: dict[str, Any], field: str | None
) -> None:
    async with open_api(settings_for(tmp_path, allow_private_model_urls=True)) as api:
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        document = (await api.client.get("/openapi.json")).json()
        body = {"name": "n", "base_url": MODEL_URL, "upstream_model": "m", **change}
        body = {key: value for key, value in body.items() if value is not None}
        response = await api.post("/api/models", body, admin)
        assert _validator(document, "RegisterModel").is_valid(body) == (field is None)
        if field is None:
            assert response.status_code == 201, response.text
        else:
            assert response.status_code == 400 and response.json()["error"]["field"] == field


async def test_the_rules_only_descriptions_state_hold(tmp_path: Path) -> None:
    """max_tokens up to the model's max_output_tokens; a message that fits the context."""
    async with open_api(settings_for(tmp_path, allow_private_model_urls=True)) as api:
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        document = (await api.client.get("/openapi.json")).json()
        schemas = document["components"]["schemas"]
        assert (
            "max_output_tokens"
            in schemas["GenerationParams"]["properties"]["max_tokens"]["description"]
        )
        assert "context window" in schemas["StreamChat"]["description"]
        conversation = (await api.conversation())["id"]
        echo = next(m for m in (await api.get("/api/models")).json()["models"] if m["id"] == ECHO)
        for max_tokens, status in [
            (echo["max_output_tokens"], 201),
            (echo["max_output_tokens"] + 1, 400),
        ]:
            body = {
                "conversation_id": conversation,
                "model_id": ECHO,
                "params": {"max_tokens": max_tokens},
            }
            response = await api.post("/api/conversation/create_session", body)
            assert response.status_code == status, response.text
        assert response.json()["error"]["field"] == "params.max_tokens"

        entry = {
            "name": "small",
            "provider": "openai",
            "base_url": MODEL_URL,
            "upstream_model": "m",
            "context_window": 100,
            "max_output_tokens": 50,
            "max_retries": 0,
        }
        small = (await api.post("/api/models", entry, admin)).json()["id"]
        session = (await api.session(conversation, small))["id"]
        # About one token per four characters: 60 tokens do not fit the 50 left for it.
        body = {"chat_session_id": session, "message": "word " * 48}
        refused = await api.post("/api/conversation/stream_chat", body)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "message"
        # A short one is taken (its reply then fails: nothing listens at MODEL_URL).
        taken = await api.post("/api/conversation/stream_chat", {**body, "message": "hi"})
        assert taken.status_code == 200 and "event: end" in taken.text
