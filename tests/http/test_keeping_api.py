"""Conversations people keep, over HTTP: rename and archive, titles written after the first
reply, feedback on replies (shown with messages, counted in usage), and deletion for good,
racing a running reply, with the database read directly afterwards."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import trio
from httpx_sse import aconnect_sse

from conversation_service.domain.model import AccessRole
from tests.adapters.llm.openai_server import Exchange, chunk, start_fake_openai
from tests.adapters.sql_databases import is_postgres, query, rows_naming, table_names
from tests.http.conftest import DATABASE_URL, ECHO, Api, open_api, settings_for

API = "/api/conversation"
# SQLite's search index (adapters/sql/search_schema.py): each FTS5 table, and what it indexes.
FTS5_INDEXED = {
    "message_search": "SELECT COUNT(*) FROM messages WHERE status <> 'in_progress'",
    "conversation_search": "SELECT COUNT(*) FROM conversations",
}
FTS5_SEGMENTS = [f"{index}_data" for index in FTS5_INDEXED]
TITLER = "457d4f38-e3c0-43eb-b519-a867f9f5325a"


async def conversation_of(api: Api, conversation_id: str) -> dict[str, Any]:
    found = await api.get(f"{API}/get_with_sessions", conversation_id=conversation_id)
    assert found.status_code == 200, found.text
    return found.json()


async def titled(api: Api, conversation_id: str) -> str | None:
    """The conversation's title once it has one (None if none came within 20 s)."""
    with trio.move_on_after(20):
        while True:
            title = (await conversation_of(api, conversation_id))["title"]
            if title is not None:
                return str(title)
            await trio.sleep(0.05)
    return None


async def test_update_renames_archives_and_refuses_what_it_should(api: Api) -> None:
    first = await api.conversation("First")
    second = await api.conversation("Second")
    viewer = await api.tenant(AccessRole.VIEWER, org_id=api.a.org_id)

    renamed = await api.post(f"{API}/update", {"conversation_id": first["id"], "title": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert (body["title"], body["is_archived"]) == ("Renamed", False)
    assert body["updated_at"] > first["updated_at"] and body["created_at"] == first["created_at"]
    # A change moves it up the list, as new activity does.
    listed = (await api.get(f"{API}/list")).json()["conversations"]
    assert [c["id"] for c in listed] == [first["id"], second["id"]]

    archived = await api.post(
        f"{API}/update", {"conversation_id": second["id"], "is_archived": True}
    )
    assert archived.json()["is_archived"] is True and archived.json()["title"] == "Second"
    only = (await api.get(f"{API}/list", is_archived="true")).json()["conversations"]
    assert [c["id"] for c in only] == [second["id"]]
    back = await api.post(
        f"{API}/update", {"conversation_id": second["id"], "is_archived": False, "title": None}
    )
    assert back.json()["is_archived"] is False and back.json()["title"] == "Second"
    unchanged = await api.post(f"{API}/update", {"conversation_id": second["id"]})
    assert unchanged.json() == back.json()

    for body, status, field in [
        ({"conversation_id": first["id"], "title": " "}, 400, "title"),
        ({"conversation_id": first["id"], "is_archived": "yes"}, 400, "is_archived"),
        ({"conversation_id": first["id"], "colour": "red"}, 400, "colour"),
        ({"title": "x"}, 400, "conversation_id"),
    ]:
        refused = await api.post(f"{API}/update", body)
        assert (refused.status_code, refused.json()["error"]["field"]) == (status, field)
    theirs = await api.conversation("B's", api.b)
    assert (
        await api.post(f"{API}/update", {"conversation_id": theirs["id"], "title": "x"})
    ).status_code == 404
    assert (
        await api.post(f"{API}/update", {"conversation_id": first["id"], "title": "x"}, viewer)
    ).status_code == 403


async def test_an_untitled_conversation_is_titled_by_its_first_words_after_its_first_reply(
    api: Api,
) -> None:
    created = await api.post(f"{API}/create", {})
    assert created.status_code == 201, created.text
    conversation = created.json()
    assert conversation["title"] is None
    listed = (await api.get(f"{API}/list")).json()["conversations"]
    assert listed[0]["title"] is None
    session = await api.session(conversation["id"])
    await api.stream(session["id"], "How do I plan a product launch for next spring, step by step?")

    assert await titled(api, conversation["id"]) == "How do I plan a product launch for…"
    # A generated title is searched as a given one is: the index follows it when written.
    searched = (await api.get(f"{API}/search", q="launch")).json()["results"]
    assert [(r["conversation"]["id"], r["title_matches"]) for r in searched] == [
        (conversation["id"], True)
    ]
    assert (await conversation_of(api, conversation["id"]))["updated_at"] == (
        (await api.get(f"{API}/list")).json()["conversations"][0]["updated_at"]
    )


def registry_with_titler(folder: Path, base_url: str) -> Path:
    registry = folder / "models.toml"
    registry.write_text(
        f'[[models]]\nid = "{TITLER}"\nname = "titler"\nprovider = "openai"\n'
        f'base_url = "{base_url}"\nupstream_model = "titler"\nmax_retries = 0\n'
        f'[titles]\nmodel_id = "{TITLER}"\n'
    )
    return registry


async def test_the_registrys_title_model_titles_and_never_replaces_a_users_title(
    tmp_path: Path,
) -> None:
    asked_slowly, release, answered = trio.Event(), trio.Event(), trio.Event()

    async def titler(exchange: Exchange) -> None:
        if "Slow" in exchange.request.body.decode():
            asked_slowly.set()
            await release.wait()  # the user renames the conversation meanwhile
        await exchange.send_head()
        for piece in ('"Launch', " planning", '"'):
            await exchange.send_event(chunk(piece))
        await exchange.send_event(chunk(finish_reason="stop"))
        await exchange.send_event("[DONE]")
        await exchange.end_body()
        if release.is_set():
            answered.set()

    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, titler)
        registry = registry_with_titler(tmp_path, upstream.base_url)
        async with open_api(settings_for(tmp_path, models=registry)) as api:
            quick = (await api.post(f"{API}/create", {})).json()
            await api.stream((await api.session(quick["id"]))["id"], "Quick: plan the launch")
            assert await titled(api, quick["id"]) == "Launch planning"
            asked = upstream.requests[0].json()
            assert asked["model"] == "titler" and asked["messages"][0]["role"] == "system"
            assert "User: Quick: plan the launch" in asked["messages"][1]["content"]
            assert "Assistant: Echo: Quick: plan the launch" in asked["messages"][1]["content"]

            slow = (await api.post(f"{API}/create", {})).json()
            await api.stream((await api.session(slow["id"]))["id"], "Slow: plan the launch")
            with trio.fail_after(10):
                await asked_slowly.wait()
            mine = await api.post(f"{API}/update", {"conversation_id": slow["id"], "title": "Mine"})
            assert mine.json()["title"] == "Mine"
            release.set()
            with trio.fail_after(10):
                await answered.wait()
            await trio.sleep(0.5)  # the title model's answer came back, and was not written
            assert (await conversation_of(api, slow["id"]))["title"] == "Mine"
        nursery.cancel_scope.cancel()


async def test_feedback_is_shown_with_messages_counted_in_usage_replaced_and_cleared(
    api: Api,
) -> None:
    conversation = await api.conversation()
    session = await api.session(conversation["id"])
    first = (await api.stream(session["id"], "one"))[0][2]
    second = (await api.stream(session["id"], "two"))[0][2]

    given = await api.post(
        f"{API}/feedback",
        {"message_id": first["message_id"], "rating": "down", "comment": "Too terse."},
    )
    assert given.status_code == 200, given.text
    assert given.json()["rating"] == "down" and given.json()["comment"] == "Too terse."
    again = await api.post(f"{API}/feedback", {"message_id": first["message_id"], "rating": "up"})
    assert again.json()["rating"] == "up" and again.json()["comment"] is None
    assert again.json()["created_at"] == given.json()["created_at"]
    assert again.json()["updated_at"] > given.json()["updated_at"]
    await api.post(f"{API}/feedback", {"message_id": second["message_id"], "rating": "down"})

    page = (await api.get(f"{API}/messages", conversation_id=conversation["id"])).json()
    shown = {m["id"]: m["feedback"] for m in page["messages"]}
    assert shown[first["user_message_id"]] is None
    assert shown[first["message_id"]] == again.json()
    assert shown[second["message_id"]]["rating"] == "down"
    usage = (await api.get("/api/usage")).json()
    echo = next(m for m in usage["models"] if m["model_id"] == ECHO)
    assert echo["feedback"] == {"up": 1, "down": 1} and usage["total"]["feedback"] == {
        "up": 1,
        "down": 1,
    }

    cleared = await api.post(f"{API}/clear_feedback", {"message_id": second["message_id"]})
    assert cleared.json() == {"message_id": second["message_id"], "cleared": True}
    cleared = await api.post(f"{API}/clear_feedback", {"message_id": second["message_id"]})
    assert cleared.json()["cleared"] is False
    usage = (await api.get("/api/usage")).json()
    assert usage["total"]["feedback"] == {"up": 1, "down": 0}

    for body, status, field in [
        ({"message_id": first["user_message_id"], "rating": "up"}, 400, "message_id"),
        ({"message_id": first["message_id"], "rating": "meh"}, 400, "rating"),
        (
            {"message_id": first["message_id"], "rating": "up", "comment": "x" * 2001},
            400,
            "comment",
        ),
        # The body is checked before the reply is looked up: a blank comment is 400, not 404.
        ({"message_id": str(uuid.uuid4()), "rating": "up", "comment": ""}, 400, "comment"),
        ({"message_id": str(uuid.uuid4()), "rating": "up", "comment": "  "}, 400, "comment"),
    ]:
        refused = await api.post(f"{API}/feedback", body)
        assert (refused.status_code, refused.json()["error"]["field"]) == (status, field)
    # Another organisation's token finds no such message in its own organisation.
    for path, body in [
        ("feedback", {"message_id": first["message_id"], "rating": "up"}),
        ("clear_feedback", {"message_id": first["message_id"]}),
    ]:
        assert (await api.post(f"{API}/{path}", body, api.b)).status_code == 404


def database_url(tmp_path: Path) -> str:
    return os.environ.get(DATABASE_URL) or f"sqlite:///{tmp_path}/data/conversations.db"


async def test_a_delete_racing_a_running_reply_stops_it_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=20)) as api:
        conversation = await api.conversation("Doomed conversation")
        kept = await api.conversation("Kept")
        done, running = await api.session(conversation["id"]), await api.session(conversation["id"])
        kept_session = await api.session(kept["id"])
        finished = await api.stream(done["id"], "finished words")
        await api.post(
            f"{API}/feedback", {"message_id": finished[0][2]["message_id"], "rating": "up"}
        )
        keyed = await api.client.post(
            f"{API}/cancel",
            params=api.a.q,
            headers={**api.a.auth, "Idempotency-Key": "cancel-doomed"},
            json={"chat_session_id": done["id"]},
        )
        assert keyed.status_code == 200
        kept_events = await api.stream(kept_session["id"], "kept words")
        words = " ".join(f"w{i}" for i in range(2000))  # 40 s of echo
        events: list[tuple[str, dict[str, Any]]] = []
        started = trio.Event()

        async def follow() -> None:
            async with aconnect_sse(
                api.client,
                "POST",
                f"{API}/stream_chat",
                params=api.a.q,
                headers=api.a.auth,
                json={"chat_session_id": running["id"], "message": f"doomed {words}"},
            ) as source:
                async for sse in source.aiter_sse():
                    events.append((sse.event, sse.json()))
                    if sse.event == "content":
                        started.set()

        url = database_url(tmp_path)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow)
                await started.wait()
                await trio.sleep(0.3)  # mid-reply
                if is_postgres(url):  # leased to this instance while it replies
                    leases = "SELECT instance_id FROM session_leases WHERE session_id = :id"
                    assert query(url, leases, {"id": running["id"]}), "no lease to delete"
                deleted = await api.post(f"{API}/delete", {"conversation_id": conversation["id"]})
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"conversation_id": conversation["id"], "deleted": True}
        assert events[-1][0] == "end" and events[-1][1]["finish_reason"] == "cancelled"
        reply_id = events[0][1]["message_id"]

        ids = {
            "conversation_id": conversation["id"],
            "chat_session_id": running["id"],
            "message_id": reply_id,
        }
        gets = [
            ("get_with_sessions", {"conversation_id": ids["conversation_id"]}),
            ("messages", {"conversation_id": ids["conversation_id"]}),
            ("export", {"conversation_id": ids["conversation_id"]}),
            ("stream", {"chat_session_id": running["id"], "message_id": reply_id}),
        ]
        for path, params in gets:
            answer = await api.get(f"{API}/{path}", **params)
            assert answer.status_code == 404, (path, answer.text)
        posts = [
            ("update", {"conversation_id": ids["conversation_id"], "title": "x"}),
            ("delete", {"conversation_id": ids["conversation_id"]}),
            ("create_session", {"conversation_id": ids["conversation_id"], "model_id": ECHO}),
            ("stream_chat", {"chat_session_id": running["id"], "message": "again"}),
            ("stream_chat", {"chat_session_id": done["id"], "message": "again"}),
            ("cancel", {"chat_session_id": running["id"]}),
            ("complete_session", {"chat_session_id": done["id"]}),
            ("feedback", {"message_id": reply_id, "rating": "up"}),
            ("clear_feedback", {"message_id": finished[0][2]["message_id"]}),
        ]
        for path, body in posts:
            answer = await api.post(f"{API}/{path}", body)
            assert answer.status_code == 404, (path, answer.text)
        # The kept answer naming a deleted session went with it: the retry runs afresh (404).
        retried = await api.client.post(
            f"{API}/cancel",
            params=api.a.q,
            headers={**api.a.auth, "Idempotency-Key": "cancel-doomed"},
            json={"chat_session_id": done["id"]},
        )
        assert retried.status_code == 404 and "idempotent-replayed" not in retried.headers

        named = [
            conversation["id"],
            done["id"],
            running["id"],
            reply_id,
            finished[0][2]["message_id"],
            finished[0][2]["user_message_id"],
        ]
        # Every table, whatever it is for (messages, feedback, kept answers, leases, the
        # commands between instances, the search index, ...): no row names any of it or
        # holds its words. But SQLite's FTS5 segments: a deleted row's words stay in those
        # blobs, marked deleted, until FTS5 next merges them (README, Deleting); what the
        # index answers is read instead.
        assert {"message_feedback", "idempotency_keys", "session_leases"} <= table_names(url)
        segments = set() if is_postgres(url) else set(FTS5_SEGMENTS)
        left = rows_naming(url, [*named, "Doomed", "doomed", "finished"], unread=segments)
        assert left == [], [(table, str(row)[:200]) for table, row in left]
        if segments:
            for index, rows in FTS5_INDEXED.items():
                found = f"SELECT rowid FROM {index} WHERE {index} MATCH 'doomed OR finished'"
                assert query(url, found) == []
                indexed = query(url, f"SELECT COUNT(*) FROM {index}_docsize")
                assert indexed == query(url, rows), index  # the kept ones, no more
        for word in ("doomed", "finished", "kept"):
            searched = await api.get(f"{API}/search", q=word)
            assert searched.status_code == 200, searched.text
            found = [result["conversation"]["id"] for result in searched.json()["results"]]
            assert found == ([kept["id"]] if word == "kept" else []), (word, found)
        assert query(
            url, "SELECT COUNT(*) FROM messages WHERE conversation_id = :id", {"id": kept["id"]}
        ) == [(2,)]
        assert (await conversation_of(api, kept["id"]))["sessions"][0]["id"] == kept_session["id"]
        assert len(kept_events) > 2
        # The other organisation saw nothing of it, and the server goes on.
        await api.stream(kept_session["id"], "still here")


async def test_deleting_is_a_write_and_another_orgs_conversation_is_not_found(api: Api) -> None:
    theirs = await api.conversation("B's", api.b)
    viewer = await api.tenant(AccessRole.VIEWER, org_id=api.a.org_id)
    mine = await api.conversation("mine")
    assert (await api.post(f"{API}/delete", {"conversation_id": theirs["id"]})).status_code == 404
    assert (
        await api.post(f"{API}/delete", {"conversation_id": mine["id"]}, viewer)
    ).status_code == 403
    assert (await conversation_of(api, mine["id"]))["title"] == "mine"
    found = await api.get(f"{API}/get_with_sessions", api.b, conversation_id=theirs["id"])
    assert found.status_code == 200
    assert isinstance(api.client, httpx.AsyncClient)
