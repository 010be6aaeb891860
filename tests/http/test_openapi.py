"""The OpenAPI document: valid 3.1, one-to-one with the app's routes, true to real answers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from openapi_spec_validator import OpenAPIV31SpecValidator
from quart import Blueprint

from conversation_service.domain.model import AccessRole
from conversation_service.domain.rules import InputLimits
from conversation_service.entrypoints.http.app import create_app
from conversation_service.entrypoints.http.openapi import build_openapi
from conversation_service.entrypoints.http.routes import HttpSettings
from tests.http.conftest import ECHO, Api, open_api, settings_for

METHODS = {"get", "put", "post", "delete", "patch"}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every rule, without the HEAD and OPTIONS Quart adds itself."""
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


class Contract:
    """Checks real responses against the document, as a strict client would."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        # The document is the root, so "#/components/..." references resolve.
        root = {**self.document, **schema}
        return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        self.validator(schema).validate(instance)

    def response(self, method: str, path: str, status: int) -> dict[str, Any]:
        responses = self.document["paths"][path][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {path} does not document {status}"
        definition = responses[str(status)]
        if "$ref" in definition:
            definition = self.document["components"]["responses"][definition["$ref"].split("/")[-1]]
        return definition

    def check(self, response: httpx.Response, path: str) -> dict[str, Any]:
        """The response conforms: status, headers, media type and JSON body. Returns the body."""
        method = response.request.method
        definition = self.response(method, path, response.status_code)
        for name, header in definition.get("headers", {}).items():
            value = response.headers.get(name)
            if header.get("required"):
                assert value is not None, f"{method} {path} {response.status_code}: no {name}"
            if value is not None:
                typed = int(value) if header["schema"].get("type") == "integer" else value
                self.validate(typed, header["schema"])
        if "content" not in definition:
            assert response.content == b"", f"{method} {path}: a body where none is documented"
            return {}
        media_type = response.headers["content-type"].split(";")[0].strip()
        assert media_type in definition["content"], f"{method} {path}: {media_type}"
        if media_type != "application/json":
            return {}
        body = response.json()
        self.validate(body, definition["content"][media_type]["schema"])
        return body

    def check_events(self, response: httpx.Response, path: str) -> list[dict[str, Any]]:
        """Each event of a finished stream, as the document's SSE schema describes it."""
        definition = self.response(response.request.method, path, response.status_code)
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        for block in response.text.split("\n\n"):
            lines = [line for line in block.splitlines() if not line.startswith(":")]
            if not lines:
                continue
            event = dict(line.split(": ", 1) for line in lines)
            self.validate(event, definition["content"]["text/event-stream"]["schema"])
            wrapper = self.document["components"]["schemas"][f"{event['event'].capitalize()}Event"]
            data = json.loads(event["data"])
            self.validate(data, wrapper["properties"]["data"]["contentSchema"])
            events.append({**event, "data": data})
        return events


@pytest.fixture
async def contract(api: Api) -> Contract:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    return Contract(response.json())


async def test_document_is_valid_openapi_3_1(contract: Contract) -> None:
    OpenAPIV31SpecValidator(contract.document).validate()
    assert contract.document["openapi"].startswith("3.1.")


async def test_every_route_of_the_app_is_documented_and_nothing_else(api: Api) -> None:
    app = create_app(api.server.services.http)
    document = (await api.client.get("/openapi.json")).json()
    in_app, in_document = app_routes(app), documented_routes(document)
    assert in_app - in_document == set(), "routes the document does not describe"
    assert in_document - in_app == set(), "documented routes the app does not have"
    assert len(in_app) >= 14


async def test_an_undocumented_route_is_noticed(api: Api) -> None:
    app = create_app(api.server.services.http)
    extra = Blueprint("extra", __name__)

    @extra.delete("/api/conversation/<conversation_id>")
    async def delete(conversation_id: str) -> str:
        return ""

    app.register_blueprint(extra)
    document = (await api.client.get("/openapi.json")).json()
    undocumented = app_routes(app) - documented_routes(document)
    assert ("DELETE", "/api/conversation/{conversation_id}") in undocumented


async def test_document_is_the_one_built_from_the_running_settings(api: Api) -> None:
    deps = api.server.services.http
    served = (await api.client.get("/openapi.json")).json()
    assert served == json.loads(json.dumps(build_openapi(deps.settings, deps.service.limits)))


async def test_limits_in_the_document_follow_the_settings(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, max_title_chars=42, max_message_chars=77, max_body_bytes=5000)
    async with open_api(settings) as api:
        document = (await api.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert schemas["CreateConversation"]["properties"]["title"]["maxLength"] == 42
    assert schemas["StreamChat"]["properties"]["message"]["maxLength"] == 77
    assert "5000 bytes" in document["components"]["responses"]["PayloadTooLarge"]["description"]

    routes = HttpSettings(list_default_limit=5, list_max_limit=7, messages_max_limit=9)
    params = build_openapi(routes, InputLimits())["components"]["parameters"]
    assert params["ListLimit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 7,
        "default": 5,
    }
    assert params["MessagesLimit"]["schema"]["maximum"] == 9


async def test_contract_rejects_what_the_document_forbids(contract: Contract) -> None:
    conversation = {"$ref": "#/components/schemas/Conversation"}
    good = {
        "id": ECHO,
        "title": "t",
        "is_archived": False,
        "created_at": "2026-11-26T06:10:00.123456Z",
        "updated_at": "2026-11-26T06:10:00.123456Z",
    }
    contract.validate(good, conversation)
    for bad in ({**good, "id": "nope"}, {**good, "created_at": "yesterday"}, {**good, "x": 1}):
        with pytest.raises(ValidationError):
            contract.validate(bad, conversation)


async def test_successful_answers_conform(api: Api, contract: Contract) -> None:
    api_path = "/api/conversation"
    created = await api.post(f"{api_path}/create", {"title": "Contract", "is_archived": False})
    conversation = contract.check(created, f"{api_path}/create")
    listed = await api.get(f"{api_path}/list", limit="5", offset="0", is_archived="false")
    assert contract.check(listed, f"{api_path}/list")["conversations"][0] == conversation
    response = await api.post(
        f"{api_path}/create_session", {"conversation_id": conversation["id"], "model_id": ECHO}
    )
    session = contract.check(response, f"{api_path}/create_session")

    body = {"chat_session_id": session["id"], "message": "tell me about schemas"}
    streamed = await api.post(f"{api_path}/stream_chat", body)
    events = contract.check_events(streamed, f"{api_path}/stream_chat")
    assert [e["event"] for e in (events[0], events[-1])] == ["start", "end"]
    message_id = events[0]["data"]["message_id"]
    again = await api.get(
        f"{api_path}/stream", chat_session_id=session["id"], message_id=message_id, after="0"
    )
    assert contract.check_events(again, f"{api_path}/stream")[-1] == events[-1]

    reads = [
        (f"{api_path}/get_with_sessions", {"conversation_id": conversation["id"]}),
        (f"{api_path}/messages", {"conversation_id": conversation["id"], "limit": "2"}),
        ("/api/models", {}),
    ]
    for path, params in reads:
        contract.check(await api.get(path, **params), path)
    contract.check(await api.get("/api/usage", to="2099-01-01"), "/api/usage")
    ref = {"chat_session_id": session["id"]}
    contract.check(await api.post(f"{api_path}/cancel", ref), f"{api_path}/cancel")
    completed = await api.post(f"{api_path}/complete_session", ref)
    assert contract.check(completed, f"{api_path}/complete_session")["status"] == "completed"
    contract.check(await api.client.get("/healthz"), "/healthz")


async def test_idempotent_replays_conform(api: Api, contract: Contract) -> None:
    path = "/api/conversation/create"
    key = {"Idempotency-Key": "contract-1"}
    answers = [
        await api.client.post(
            path, json={"title": "Once"}, headers={**api.a.auth, **key}, params=api.a.q
        )
        for _ in range(2)
    ]
    assert [contract.check(answer, path) for answer in answers][0]["title"] == "Once"
    assert answers[1].headers["idempotent-replayed"] == "true"


async def test_model_registration_answers_conform(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, allow_private_model_urls=True)) as api:
        contract = Contract((await api.client.get("/openapi.json")).json())
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        entry = {
            "name": "local",
            "provider": "openai-compatible",
            "base_url": "http://127.0.0.1:9/v1",
            "upstream_model": "m",
            "api_key": "sk-secret",
        }
        registered = contract.check(await api.post("/api/models", entry, admin), "/api/models")
        assert "api_key" not in registered
        listed = contract.check(await api.get("/api/models", admin), "/api/models")
        assert registered in listed["models"]
        path = f"/api/models/{registered['id']}"
        forbidden = await api.client.delete(path, headers=api.a.auth, params=api.a.q)
        removed = await api.client.delete(path, headers=admin.auth, params=admin.q)
        gone = await api.client.delete(path, headers=admin.auth, params=admin.q)
        assert [r.status_code for r in (forbidden, removed, gone)] == [403, 204, 404]
        for answer in (forbidden, removed, gone):
            contract.check(answer, "/api/models/{model_id}")


async def test_error_answers_conform(api: Api, contract: Contract) -> None:
    base = "/api/conversation"
    session = await api.session((await api.conversation())["id"])
    await api.post(f"{base}/complete_session", {"chat_session_id": session["id"]})
    cases: list[tuple[int, str, Any]] = [
        (400, f"{base}/list", api.get(f"{base}/list", limit="0")),
        (400, f"{base}/create", api.post(f"{base}/create", {"title": "t", "colour": "red"})),
        (401, "/api/models", api.client.get("/api/models", params=api.a.q)),
        (403, f"{base}/list", api.get(f"{base}/list", org_id=str(api.b.org_id))),
        (404, f"{base}/messages", api.get(f"{base}/messages", conversation_id=ECHO)),
        (
            409,
            f"{base}/stream_chat",
            api.post(f"{base}/stream_chat", {"chat_session_id": session["id"], "message": "hi"}),
        ),
        (413, f"{base}/create", api.post(f"{base}/create", {"title": "x" * 300_000})),
    ]
    for status, path, request in cases:
        response = await request
        assert response.status_code == status, response.text
        error = contract.check(response, path)["error"]
        assert error["request_id"] == response.headers["x-request-id"]
        assert ("field" in error) == (status == 400)


async def test_metrics_answers_conform_open_or_guarded(api: Api, tmp_path: Path) -> None:
    document = (await api.client.get("/openapi.json")).json()
    Contract(document).check(await api.client.get("/metrics"), "/metrics")
    token = "metrics-token-for-tests"
    async with open_api(settings_for(tmp_path / "guarded", metrics_token=token)) as guarded:
        contract = Contract((await guarded.client.get("/openapi.json")).json())
        refused = await guarded.client.get("/metrics")
        assert refused.status_code == 401
        contract.check(refused, "/metrics")
        scraped = await guarded.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert scraped.status_code == 200
        contract.check(scraped, "/metrics")


async def test_rate_limited_answers_conform(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, rate_limit="1/minute")) as api:
        contract = Contract((await api.client.get("/openapi.json")).json())
        assert (await api.get("/api/models")).status_code == 200
        response = await api.get("/api/models")
        assert response.status_code == 429
        contract.check(response, "/api/models")
        assert int(response.headers["retry-after"]) >= 1


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


async def test_docs_page_loads_only_assets_served_here(api: Api, contract: Contract) -> None:
    page = await api.client.get("/docs")
    contract.check(page, "/docs")
    parser = _References()
    parser.feed(page.text)
    assert len(parser.urls) >= 3
    assert "openapi.json" in page.text and "validatorUrl: null" in page.text
    assert not re.search(r"https?://|//[a-z]", page.text), "the page must not reach out"
    docs_url = str(page.url)
    for reference in parser.urls:
        assert not urlsplit(reference).netloc and not urlsplit(reference).scheme, reference
        asset = await api.client.get(urljoin(docs_url, reference))
        assert asset.status_code == 200, reference
        contract.check(asset, "/docs/assets/{name}")
        assert len(asset.content) > 100
    missing = await api.client.get("/docs/assets/index.html")
    assert missing.status_code == 404
    contract.check(missing, "/docs/assets/{name}")
