"""Export and import over HTTP: JSON Lines streamed out, checked line by line coming in, and
a round trip (export, import into another organisation or server, export again) that gives
back the same file but for the ids it had to change."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conversation_service.domain.model import AccessRole
from tests.http.conftest import DATABASE_URL, ECHO, Api, Tenant, open_api, settings_for
from tests.http.test_branches_api import streamed

API = "/api/conversation"
ID_FIELDS = ("id", "conversation_id", "chat_session_id", "org_id", "parent_id", "head_id")


async def fill(api: Api, who: Tenant) -> None:
    """Conversations with all a file can hold: titles given, generated and none yet, an
    archived one, sessions with settings, replies, feedback with and without comments, and
    branches: a reply regenerated (its session then sent back to the first), a question
    edited."""
    first = await api.conversation("Plans ✓", who)
    second = (await api.post(f"{API}/create", {"is_archived": True}, who)).json()
    empty = (await api.post(f"{API}/create", {}, who)).json()
    assert empty["title"] is None
    plain = await api.session(first["id"], who=who)
    tuned = await api.post(
        f"{API}/create_session",
        {
            "conversation_id": first["id"],
            "model_id": ECHO,
            "system_prompt": "Answer briefly.",
            "params": {"temperature": 0.2, "top_p": 0.95, "max_tokens": 300},
            "context": "conversation",
        },
        who,
    )
    other = await api.session(second["id"], who=who)
    started = {}
    for session, text in [
        (plain, "one"),
        (tuned.json(), "two ✓"),
        (plain, "three"),
        (other, "four"),
    ]:
        events = await api.stream(session["id"], text, who)
        started[text] = events[0][2]
        reply = events[0][2]["message_id"]
        if text in ("one", "four"):
            rating = {"message_id": reply, "rating": "up", "comment": "good"}
            assert (await api.post(f"{API}/feedback", rating, who)).status_code == 200
        if text == "three":
            rating = {"message_id": reply, "rating": "down"}
            assert (await api.post(f"{API}/feedback", rating, who)).status_code == 200
    await streamed(api, "regenerate", {"chat_session_id": plain["id"]}, who)
    first_three = {"chat_session_id": plain["id"], "message_id": started["three"]["message_id"]}
    assert (await api.post(f"{API}/select_branch", first_three, who)).status_code == 200
    edit = {
        "chat_session_id": tuned.json()["id"],
        "message_id": started["two ✓"]["user_message_id"],
        "content": "two, edited",
    }
    await streamed(api, "edit", edit, who)


async def export(api: Api, who: Tenant, **params: str) -> tuple[bytes, list[dict[str, Any]]]:
    response = await api.get(f"{API}/export", who, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert "attachment" in response.headers["content-disposition"]
    return response.content, [json.loads(line) for line in response.content.splitlines()]


async def import_file(api: Api, who: Tenant, body: bytes, **headers: str) -> Any:
    return await api.client.post(
        f"{API}/import",
        content=body,
        params=who.q,
        headers={**who.auth, "Content-Type": "application/x-ndjson", **headers},
    )


def listed_ids(lines: list[dict[str, Any]]) -> set[str]:
    return {line["id"] for line in lines if line["type"] == "conversation"}


async def shown(api: Api, who: Tenant, conversation_id: str) -> list[tuple[Any, ...]]:
    """What `messages` shows of a conversation: its current branches, each message's place
    among its alternatives and its feedback."""
    page = await api.get(f"{API}/messages", who, conversation_id=conversation_id, limit="100")
    assert page.status_code == 200, page.text
    kept = ("rating", "comment", "created_at", "updated_at")  # not its ids: they change
    return [
        (
            m["id"],
            m["content"],
            m["sibling_count"],
            m["sibling_index"],
            m["feedback"] and {key: m["feedback"][key] for key in kept},
        )
        for m in page.json()["messages"]
    ]


def same_but_ids(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, str]:
    """Whether two exports hold the same lines but for ids (mapped one to one, the same way
    everywhere) and the header's time; the id mapping."""
    assert len(before) == len(after)
    mapping: dict[str, str] = {}
    for old, new in zip(before, after, strict=True):
        assert old.keys() == new.keys()
        for key in old:
            if key == "exported_at":
                continue
            if key in ID_FIELDS and old[key] is not None:
                assert mapping.setdefault(old[key], new[key]) == new[key], (key, old, new)
            else:
                assert old[key] == new[key], (key, old, new)
    assert len(set(mapping.values())) == len(mapping)  # one to one
    return mapping


async def test_an_organisation_round_trips_through_export_and_import(api: Api) -> None:
    await fill(api, api.a)
    a_admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
    b_admin = await api.tenant(AccessRole.ADMIN, org_id=api.b.org_id)
    raw, lines = await export(api, api.a)

    header, end = lines[0], lines[-1]
    assert header["type"] == "header" and header["version"] == 1
    assert header["org_id"] == str(api.a.org_id) and header["conversation_id"] is None
    kinds = [line["type"] for line in lines[1:-1]]
    assert end == {"type": "end", "conversations": 3, "sessions": 3, "messages": 11}
    assert kinds.count("conversation") == 3 and kinds.count("message") == 11
    messages = [line for line in lines if line["type"] == "message"]
    assert [m["feedback"]["rating"] for m in messages if m["feedback"]] == ["up", "down", "up"]
    assert all(m["usage"] and m["latency"] for m in messages if m["role"] == "assistant")

    imported = await import_file(api, b_admin, raw)
    assert imported.status_code == 201, imported.text
    report = imported.json()
    assert (report["conversations"], report["sessions"], report["messages"]) == (3, 3, 11)
    assert report["feedback"] == 3 and report["new_ids"] == 3 + 3 + 11  # same server: all taken
    _, again = await export(api, api.b)
    mapping = same_but_ids(lines, again)
    assert mapping[str(api.a.org_id)] == str(api.b.org_id)
    assert [(c["exported_id"], c["id"]) for c in report["conversation_ids"]] == [
        (line["id"], mapping[line["id"]]) for line in lines if line["type"] == "conversation"
    ]
    # B sees them as A does: listed in the same order, messages with their feedback, usage.
    listed_a = (await api.get(f"{API}/list", api.a)).json()["conversations"]
    listed_b = (await api.get(f"{API}/list", api.b)).json()["conversations"]
    assert [mapping[c["id"]] for c in listed_a] == [c["id"] for c in listed_b]
    for exported_id, imported_id in ((c, mapping[c]) for c in mapping if c in listed_ids(lines)):
        shown_a = await shown(api, api.a, exported_id)
        shown_b = await shown(api, api.b, imported_id)
        assert [(mapping[m[0]], *m[1:]) for m in shown_a] == shown_b
    plans = next(line["id"] for line in lines if line.get("title") == "Plans ✓")
    # The current branches as they were, in the order added: the first of the two replies
    # to "three" (the session was sent back to it), the edited question and its reply.
    assert [m[1:4] for m in await shown(api, api.b, mapping[plans])] == [
        ("one", 1, 1),
        ("Echo: one", 1, 1),
        ("three", 1, 1),
        ("Echo: three", 2, 1),
        ("two, edited", 2, 2),
        ("Echo: two, edited", 1, 1),
    ]
    usage_a = (await api.get("/api/usage", a_admin)).json()
    usage_b = (await api.get("/api/usage", b_admin)).json()
    assert usage_a["models"] == usage_b["models"] and usage_a["total"] == usage_b["total"]
    # Imported messages are searched as any others.
    found = (await api.get(f"{API}/search", api.b, q="three")).json()["results"]
    assert [r["conversation"]["id"] for r in found] == [mapping[plans]]
    # A's data is untouched, and the imported sessions take messages.
    assert (await export(api, api.a))[1][1:] == lines[1:]
    session = next(line for line in again if line["type"] == "session")
    events = await api.stream(session["id"], "still works", api.b)
    assert events[-1][2]["finish_reason"] == "stop"


async def test_one_conversation_moves_to_another_server_with_its_ids(
    api: Api, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    await fill(api, api.a)
    listed = (await api.get(f"{API}/list", is_archived="false")).json()["conversations"]
    chosen = next(c for c in listed if c["title"] == "Plans ✓")
    viewer = await api.tenant(AccessRole.VIEWER, org_id=api.a.org_id)
    raw, lines = await export(api, viewer, conversation_id=chosen["id"])  # viewers export
    assert lines[0]["conversation_id"] == chosen["id"]
    assert lines[-1] == {"type": "end", "conversations": 1, "sessions": 2, "messages": 9}

    other_database = None
    if os.environ.get(DATABASE_URL):
        other_database = request.getfixturevalue("postgres").create_database()
    settings = settings_for(tmp_path / "elsewhere", database_url=other_database)
    async with open_api(settings) as elsewhere:
        admin = await elsewhere.tenant(AccessRole.ADMIN, org_id=elsewhere.a.org_id)
        imported = await import_file(elsewhere, admin, raw)
        assert imported.status_code == 201, imported.text
        assert imported.json()["new_ids"] == 0
        _, again = await export(elsewhere, admin, conversation_id=chosen["id"])
        mapping = same_but_ids(lines, again)
        assert {old for old, new in mapping.items() if old != new} == {str(api.a.org_id)}
        # Importing the same file again: every id is taken now, so all are new.
        twice = await import_file(elsewhere, admin, raw)
        assert twice.json()["new_ids"] == 1 + 2 + 9
        assert twice.json()["conversation_ids"][0]["id"] != chosen["id"]


def lines_of(*objects: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


async def test_an_import_names_the_line_and_field_at_fault_and_stores_nothing(api: Api) -> None:
    await fill(api, api.a)
    raw, lines = await export(api, api.a)
    admin = await api.tenant(AccessRole.ADMIN, org_id=api.b.org_id)
    message_at = next(n for n, line in enumerate(lines) if line["type"] == "message")

    def changed(number: int, **fields: Any) -> bytes:
        edited = [dict(line) for line in lines]
        edited[number].update(fields)
        return lines_of(*edited)

    first_message = lines[message_at]
    session_at = next(n for n, line in enumerate(lines) if line["type"] == "session")
    second_message = lines[message_at + 1]
    cases = [
        # A parent that is not an earlier message of the session; a head that is none of its.
        (changed(message_at, parent_id=second_message["id"]), f"lines[{message_at + 1}].parent_id"),
        (changed(session_at, head_id=lines[1]["id"]), f"lines[{session_at + 1}].head_id"),
        (
            lines_of(
                *lines[:message_at],
                {k: v for k, v in first_message.items() if k != "parent_id"},
                *lines[message_at + 1 :],
            ),
            f"lines[{message_at + 1}].parent_id",
        ),  # every field is there, if only as null
        (b"", "body"),
        (b"not json\n", "lines[1]"),
        (lines_of({"type": "conversation"}), "lines[1].type"),
        (changed(0, version=2), "lines[1].version"),
        (changed(0, format="other"), "lines[1].format"),
        (changed(1, title=" "), "lines[2].title"),
        (
            changed(
                message_at, usage={"prompt_tokens": -1, "completion_tokens": 1, "estimated": True}
            ),
            f"lines[{message_at + 1}].usage.prompt_tokens",
        ),
        (changed(message_at, created_at="yesterday"), f"lines[{message_at + 1}].created_at"),
        (
            changed(message_at, chat_session_id=lines[1]["id"]),
            f"lines[{message_at + 1}].chat_session_id",
        ),
        (changed(message_at, colour="red"), f"lines[{message_at + 1}].colour"),
        (changed(message_at, role="system"), f"lines[{message_at + 1}].role"),
        (changed(message_at, content="a\u0000b"), f"lines[{message_at + 1}].content"),
        (changed(len(lines) - 1, messages=7), f"lines[{len(lines)}].messages"),
        (lines_of(*lines[:-1]), f"lines[{len(lines)}]"),  # cut short: no end line
        (raw + lines_of(lines[-1]), f"lines[{len(lines) + 1}]"),  # a line after the end
        (
            lines_of(*lines[:message_at], first_message, first_message, *lines[message_at + 1 :]),
            f"lines[{message_at + 2}].id",
        ),  # the same message twice
        (raw.replace(b"\n", b"\n\n", 1), "lines[2]"),  # an empty line
    ]
    for body, field in cases:
        refused = await import_file(api, admin, body)
        assert refused.status_code == 400, (field, refused.text)
        assert refused.json()["error"]["field"] == field, (field, refused.json())
    assert (await api.get(f"{API}/list", api.b)).json()["conversations"] == []

    member = await import_file(api, api.b, raw)  # members may not import
    assert member.status_code == 403
    keyed = await import_file(api, admin, raw, **{"Idempotency-Key": "import-once"})
    replayed = await import_file(api, admin, raw, **{"Idempotency-Key": "import-once"})
    assert keyed.status_code == replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true" and replayed.json() == keyed.json()
    assert len((await api.get(f"{API}/list", api.b)).json()["conversations"]) == 3


async def test_an_import_over_the_cap_is_413_and_an_unknown_conversation_is_not_exported(
    tmp_path: Path,
) -> None:
    async with open_api(settings_for(tmp_path, max_import_bytes=2000)) as api:
        admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
        await fill(api, api.a)
        raw, _ = await export(api, api.a)
        assert len(raw) > 2000
        refused = await import_file(api, admin, raw)
        assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large"
        theirs = await api.conversation("B's", api.b)
        for conversation_id in (theirs["id"], "5a7e8f91-2b3c-4d5e-8f70-8a9b0c1d2e3f"):
            missing = await api.get(f"{API}/export", conversation_id=conversation_id)
            assert missing.status_code == 404
        bad = await api.get(f"{API}/export", conversation_id="nope")
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "conversation_id"
