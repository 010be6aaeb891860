"""Conversations, sessions, listing and paging over real HTTP."""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from tests.http.conftest import ECHO, Api

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def test_create_conversation_returns_the_reference_fields(api: Api) -> None:
    response = await api.post("/api/conversation/create", {"title": "Project Discussion"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "title", "is_archived", "created_at", "updated_at"}
    UUID(body["id"])
    assert body["title"] == "Project Discussion" and body["is_archived"] is False
    assert ISO_UTC.match(body["created_at"]) and body["created_at"] == body["updated_at"]


async def test_create_archived_conversation(api: Api) -> None:
    response = await api.post("/api/conversation/create", {"title": "Old", "is_archived": True})
    assert response.status_code == 201 and response.json()["is_archived"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": " \t"}, "title"),  # absent or null is fine: titled after the first reply
        ({"title": 5}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "ok", "is_archived": "false"}, "is_archived"),
        ({"title": "ok", "colour": "red"}, "colour"),
        ([1, 2], "body"),
    ],
)
async def test_bad_conversation_bodies_name_the_field(api: Api, body: object, field: str) -> None:
    response = await api.post("/api/conversation/create", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field and field in error["message"]
    listed = (await api.get("/api/conversation/list")).json()["conversations"]
    assert listed == []  # nothing was created


async def test_malformed_json_is_a_400_naming_the_body(api: Api) -> None:
    response = await api.client.post(
        "/api/conversation/create",
        content=b"{title:",
        params=api.a.q,
        headers={**api.a.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


async def test_session_binds_a_model_to_a_conversation(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    assert set(session) == {
        "id", "conversation_id", "model_id", "status", "created_at", "updated_at",
        "system_prompt", "params", "context", "head_id",
    }  # fmt: skip
    assert (session["conversation_id"], session["model_id"], session["status"]) == (
        conv["id"],
        ECHO,
        "active",
    )
    found = (
        await api.get("/api/conversation/get_with_sessions", conversation_id=conv["id"])
    ).json()
    assert found["id"] == conv["id"] and found["title"] == conv["title"]
    assert [s["id"] for s in found["sessions"]] == [session["id"]]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"conversation_id": "00000000-0000-4000-8000-000000000001", "model_id": ECHO}, 404, None),
        (
            {"conversation_id": "{conv}", "model_id": "00000000-0000-4000-8000-000000000001"},
            404,
            None,
        ),
        ({"conversation_id": "not-a-uuid", "model_id": ECHO}, 400, "conversation_id"),
        ({"conversation_id": "{conv}"}, 400, "model_id"),
    ],
)
async def test_session_needs_an_existing_conversation_and_model(
    api: Api, body: dict, status: int, field: str | None
) -> None:
    conv = await api.conversation()
    body = {k: v.replace("{conv}", conv["id"]) for k, v in body.items()}
    response = await api.post("/api/conversation/create_session", body)
    assert response.status_code == status
    assert response.json()["error"].get("field") == field


async def test_several_sessions_in_one_conversation_are_listed_oldest_first(api: Api) -> None:
    conv = await api.conversation()
    ids = [(await api.session(conv["id"]))["id"] for _ in range(3)]
    found = (
        await api.get("/api/conversation/get_with_sessions", conversation_id=conv["id"])
    ).json()
    assert [s["id"] for s in found["sessions"]] == ids


async def test_list_is_newest_activity_first_with_paging(api: Api) -> None:
    convs = [await api.conversation(f"c{i}") for i in range(5)]
    listed = (await api.get("/api/conversation/list")).json()
    assert [c["title"] for c in listed["conversations"]] == ["c4", "c3", "c2", "c1", "c0"]
    assert listed["has_more"] is False and listed["limit"] == 100 and listed["offset"] == 0
    # Activity in c1 moves it to the top.
    await api.stream((await api.session(convs[1]["id"]))["id"], "hi")
    page = (await api.get("/api/conversation/list", limit="2")).json()
    assert [c["title"] for c in page["conversations"]] == ["c1", "c4"] and page["has_more"] is True
    last = (await api.get("/api/conversation/list", limit="2", offset="4")).json()
    assert [c["title"] for c in last["conversations"]] == ["c0"] and last["has_more"] is False


async def test_list_filters_on_archived(api: Api) -> None:
    await api.conversation("live")
    await api.post("/api/conversation/create", {"title": "old", "is_archived": True})
    archived = (await api.get("/api/conversation/list", is_archived="true")).json()
    live = (await api.get("/api/conversation/list", is_archived="false")).json()
    assert [c["title"] for c in archived["conversations"]] == ["old"]
    assert [c["title"] for c in live["conversations"]] == ["live"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/conversation/list", {"limit": "1001"}, "limit"),
        ("/api/conversation/list", {"limit": "0"}, "limit"),
        ("/api/conversation/list", {"offset": "-1"}, "offset"),
        ("/api/conversation/list", {"limit": "ten"}, "limit"),
        ("/api/conversation/list", {"is_archived": "maybe"}, "is_archived"),
        ("/api/conversation/messages", {"limit": "101"}, "limit"),
        ("/api/conversation/messages", {"limit": "-1"}, "limit"),
        ("/api/conversation/messages", {"offset": "x"}, "offset"),
        ("/api/conversation/messages", {"conversation_id": "nope"}, "conversation_id"),
        ("/api/conversation/get_with_sessions", {}, "conversation_id"),
    ],
)
async def test_bad_query_parameters_are_400_naming_them(
    api: Api, path: str, params: dict, field: str
) -> None:
    conv = await api.conversation()
    if path.endswith("messages"):
        params = {"conversation_id": conv["id"], **params}
    response = await api.get(path, **params)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


async def test_messages_page_oldest_first_with_has_more(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    for i in range(11):
        await api.stream(session["id"], f"message {i}")
    first = (await api.get("/api/conversation/messages", conversation_id=conv["id"])).json()
    assert first["limit"] == 20 and first["offset"] == 0 and first["has_more"] is True
    assert len(first["messages"]) == 20
    rest = (
        await api.get("/api/conversation/messages", conversation_id=conv["id"], offset="20")
    ).json()
    assert len(rest["messages"]) == 2 and rest["has_more"] is False
    everything = first["messages"] + rest["messages"]
    assert [m["role"] for m in everything] == ["user", "assistant"] * 11
    assert [m["content"] for m in everything[::2]] == [f"message {i}" for i in range(11)]
    assert [m["content"] for m in everything[1::2]] == [f"Echo: message {i}" for i in range(11)]
    reply = everything[1]
    assert reply["status"] == "completed" and reply["model_id"] == ECHO
    assert reply["chat_session_id"] == session["id"] and reply["conversation_id"] == conv["id"]
    assert everything[0]["model_id"] is None


async def test_unknown_conversation_is_404(api: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000009"
    for path in ("/api/conversation/get_with_sessions", "/api/conversation/messages"):
        response = await api.get(path, conversation_id=missing)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_models_lists_echo_under_its_fixed_id(api: Api) -> None:
    models = (await api.get("/api/models")).json()["models"]
    echo = next(m for m in models if m["id"] == ECHO)
    assert (echo["name"], echo["provider"], echo["scope"]) == ("echo", "echo", "global")
    assert echo["context_window"] > 0 and echo["max_output_tokens"] > 0
