"""Models an organisation registers for itself: admin only, SSRF-checked, keys kept sealed."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from conversation_service.domain.model import AccessRole
from conversation_service.testing.upstream import start_fake_openai, streaming_reply
from tests.http.conftest import Api, open_api, settings_for, stored_text


def entry(base_url: str, **extra: object) -> dict:
    return {
        "name": "team-gpt",
        "provider": "openai",
        "base_url": base_url,
        "upstream_model": "gpt-team",
        "api_key": "sk-team-secret-123",
        "context_window": 4096,
        "max_output_tokens": 512,
        **extra,
    }


async def test_admin_registers_a_model_only_its_org_sees_and_uses(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, streaming_reply(["from ", "the team"]))
        settings = settings_for(tmp_path, allow_private_model_urls=True)
        async with open_api(settings) as api:
            admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
            denied = await api.post("/api/models", entry(upstream.base_url))  # a member token
            assert denied.status_code == 403
            created = await api.post("/api/models", entry(upstream.base_url), who=admin)
            assert created.status_code == 201, created.text
            model = created.json()
            assert model["scope"] == "org" and model["context_window"] == 4096
            assert "api_key" not in model and "sk-team" not in created.text
            mine = (await api.get("/api/models")).json()["models"]
            theirs = (await api.get("/api/models", who=api.b)).json()["models"]
            assert model["id"] in {m["id"] for m in mine}
            assert model["id"] not in {m["id"] for m in theirs}
            # Org B cannot bind a session to it.
            conv_b = await api.conversation(who=api.b)
            refused = await api.post(
                "/api/conversation/create_session",
                {"conversation_id": conv_b["id"], "model_id": model["id"]},
                who=api.b,
            )
            assert refused.status_code == 404
            # Org A streams through it, with its key.
            session = await api.session((await api.conversation())["id"], model["id"])
            events = await api.stream(session["id"], "hi")
            assert "".join(d["content"] for _, k, d in events if k == "content") == "from the team"
            assert upstream.requests[0].headers["authorization"] == "Bearer sk-team-secret-123"
        # The key is sealed on disk.
        assert b"sk-team-secret-123" not in stored_text(tmp_path / "data")
        nursery.cancel_scope.cancel()


async def test_registered_models_survive_a_restart(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, allow_private_model_urls=True)
    async with open_api(settings) as api:
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        created = await api.post("/api/models", entry("http://127.0.0.1:9/v1"), who=admin)
        assert created.status_code == 201
        org_id, model_id = api.a.org_id, created.json()["id"]
    async with open_api(settings) as api:
        catalog = api.server.services.service.catalog
        assert model_id in {str(m.id) for m in catalog.models_for(org_id)}


async def test_admin_removes_a_model(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, allow_private_model_urls=True)) as api:
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        model = (await api.post("/api/models", entry("http://127.0.0.1:9/v1"), who=admin)).json()
        path = f"/api/models/{model['id']}"
        assert (
            await api.client.delete(path, params=api.a.q, headers=api.a.auth)
        ).status_code == 403
        gone = await api.client.delete(path, params=api.a.q, headers=admin.auth)
        assert gone.status_code == 204
        again = await api.client.delete(path, params=api.a.q, headers=admin.auth)
        assert again.status_code == 404
        echo = "/api/models/6563686f-0000-4000-8000-000000000000"  # global: not the org's to drop
        assert (
            await api.client.delete(echo, params=api.a.q, headers=admin.auth)
        ).status_code == 404
        listed = {m["id"] for m in (await api.get("/api/models")).json()["models"]}
        assert model["id"] not in listed


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("http://169.254.169.254/latest", "link-local"),
        ("http://127.0.0.1:8080/v1", "loopback"),
        ("http://localhost:8080/v1", "loopback"),
        ("http://10.1.2.3/v1", "private"),
        ("http://[::1]/v1", "loopback"),
        ("ftp://example.com/v1", "http"),
    ],
)
async def test_private_and_metadata_addresses_are_refused(
    api: Api, base_url: str, why: str
) -> None:
    admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
    response = await api.post("/api/models", entry(base_url), who=admin)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "base_url" and why in error["message"].lower()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"provider": "skynet"}, "provider"),
        ({"base_url": None}, "base_url"),
        ({"name": ""}, "name"),
        ({"id": "6563686f-0000-4000-8000-000000000001"}, "id"),
        ({"colour": "red"}, "colour"),
        ({"api_key": 42}, "api_key"),
        ({"context_window": -1}, "context_window"),
        ({"api_key_env": "OPENAI_API_KEY"}, "api_key_env"),
    ],
)
async def test_bad_model_entries_are_400_naming_the_field(
    tmp_path: Path, change: dict, field: str
) -> None:
    async with open_api(settings_for(tmp_path, allow_private_model_urls=True)) as api:
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        body = {
            k: v for k, v in {**entry("http://127.0.0.1:9/v1"), **change}.items() if v is not None
        }
        response = await api.post("/api/models", body, who=admin)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == field
