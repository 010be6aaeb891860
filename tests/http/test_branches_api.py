"""Regenerate, edit and select_branch over the real server: nothing is overwritten, `messages`
shows the current branch (or the one asked for) with the alternatives at each place, and the
model is shown the current branch only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from httpx_sse import aconnect_sse

from conversation_service.domain.model import AccessRole
from tests.adapters.llm.openai_server import Exchange, chunk, start_fake_openai
from tests.http.conftest import Api, Tenant, open_api, settings_for
from tests.http.test_stream_api import OPENAI_MODEL, registry_with_upstream

MESSAGES = "/api/conversation/messages"


async def streamed(
    api: Api, route: str, body: dict[str, Any], who: Tenant | None = None, **headers: str
) -> list[tuple[str, str, dict]]:
    """(id, event, data) of every event a streaming POST (regenerate, edit) sends."""
    who = who or api.a
    events = []
    with trio.fail_after(30):
        async with aconnect_sse(
            api.client, "POST", f"/api/conversation/{route}", params=who.q,
            headers={**who.auth, **headers}, json=body,
        ) as source:  # fmt: skip
            assert source.response.status_code == 200, await source.response.aread()
            async for sse in source.aiter_sse():
                events.append((sse.id, sse.event, sse.json()))
    return events


def text(events: list[tuple[str, str, dict]]) -> str:
    return "".join(d["content"] for _, kind, d in events if kind == "content")


async def listed(api: Api, conversation_id: str, **query: str) -> list[tuple[str, int, int]]:
    page = await api.get(MESSAGES, conversation_id=conversation_id, **query)
    assert page.status_code == 200, page.text
    return [(m["content"], m["sibling_count"], m["sibling_index"]) for m in page.json()["messages"]]


async def test_regenerate_streams_another_reply_and_keeps_the_first(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    first = await api.stream(session["id"], "one")
    question, old_reply = first[0][2]["user_message_id"], first[0][2]["message_id"]
    body = {"chat_session_id": session["id"]}
    again = await streamed(api, "regenerate", body, **{"Idempotency-Key": "regen-1"})
    assert [kind for _, kind, _ in again][:1] == ["start"] and again[-1][1] == "end"
    start = again[0][2]
    assert start["user_message_id"] == question and start["message_id"] != old_reply
    assert text(again) == "Echo: one" and again[-1][2]["finish_reason"] == "stop"

    assert await listed(api, conv["id"]) == [("one", 1, 1), ("Echo: one", 2, 2)]
    assert await listed(api, conv["id"], leaf_id=old_reply) == [("one", 1, 1), ("Echo: one", 2, 1)]
    page = (await api.get(MESSAGES, conversation_id=conv["id"])).json()["messages"]
    assert page[1]["parent_id"] == question == page[0]["id"] and page[0]["parent_id"] is None
    found = await api.get("/api/conversation/get_with_sessions", conversation_id=conv["id"])
    assert found.json()["sessions"][0]["head_id"] == start["message_id"]

    # A retry under the same key follows the same reply; no third one.
    replayed = await streamed(api, "regenerate", body, **{"Idempotency-Key": "regen-1"})
    assert replayed[0][2]["message_id"] == start["message_id"]
    assert len(await listed(api, conv["id"], leaf_id=old_reply)) == 2
    stored = await api.get(MESSAGES, conversation_id=conv["id"], leaf_id=question)
    assert len(stored.json()["messages"]) == 2


async def test_edit_keeps_the_first_question_and_what_followed_it(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    await api.stream(session["id"], "one")
    two = (await api.stream(session["id"], "two"))[0][2]
    await api.stream(session["id"], "three")
    body = {"chat_session_id": session["id"], "message_id": two["user_message_id"]}
    edited = await streamed(api, "edit", {**body, "content": "deux"})
    assert text(edited) == "Echo: deux"
    assert edited[0][2]["user_message_id"] != two["user_message_id"]
    assert await listed(api, conv["id"]) == [
        ("one", 1, 1), ("Echo: one", 1, 1), ("deux", 2, 2), ("Echo: deux", 1, 1),
    ]  # fmt: skip
    assert await listed(api, conv["id"], leaf_id=two["user_message_id"]) == [
        ("one", 1, 1), ("Echo: one", 1, 1), ("two", 2, 1), ("Echo: two", 1, 1),
        ("three", 1, 1), ("Echo: three", 1, 1),
    ]  # fmt: skip
    # Paging goes over the branch.
    page = await api.get(MESSAGES, conversation_id=conv["id"], limit="2", offset="2")
    assert [m["content"] for m in page.json()["messages"]] == ["deux", "Echo: deux"]
    assert page.json()["has_more"] is False


async def test_select_branch_switches_the_listing_and_what_follows(api: Api) -> None:
    conv = await api.conversation()
    session = await api.session(conv["id"])
    one = (await api.stream(session["id"], "one"))[0][2]
    await api.stream(session["id"], "two")
    await streamed(
        api, "regenerate", {"chat_session_id": session["id"], "message_id": one["message_id"]}
    )
    assert [c for c, _, _ in await listed(api, conv["id"])] == ["one", "Echo: one"]
    chosen = await api.post(
        "/api/conversation/select_branch",
        {"chat_session_id": session["id"], "message_id": one["message_id"]},
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["id"] == session["id"] and chosen.json()["status"] == "active"
    assert [c for c, _, _ in await listed(api, conv["id"])] == [
        "one", "Echo: one", "two", "Echo: two",
    ]  # fmt: skip
    assert (
        chosen.json()["head_id"]
        == (await api.get(MESSAGES, conversation_id=conv["id"])).json()["messages"][-1]["id"]
    )
    await api.stream(session["id"], "three")
    assert [c for c, _, _ in await listed(api, conv["id"])][-2:] == ["three", "Echo: three"]


async def test_the_model_is_shown_the_current_branch(tmp_path: Path) -> None:
    replies = iter(f"r{n}" for n in range(1, 100))

    async def numbered(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk(next(replies)))
        await exchange.send_event(chunk(finish_reason="stop"))
        await exchange.send_event("[DONE]")
        await exchange.end_body()

    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, numbered)
        registry = registry_with_upstream(tmp_path, upstream.base_url)
        async with open_api(settings_for(tmp_path, models=registry)) as api:
            conv = await api.conversation()
            session = (await api.session(conv["id"], OPENAI_MODEL))["id"]

            def sent(n: int) -> list[str]:
                return [m["content"] for m in upstream.requests[n].json()["messages"]]

            one = (await api.stream(session, "q1"))[0][2]  # r1
            two = (await api.stream(session, "q2"))[0][2]  # r2
            await streamed(api, "regenerate", {"chat_session_id": session})  # r3
            assert sent(2) == ["q1", "r1", "q2"]  # not r2
            await streamed(api, "edit", {"chat_session_id": session,
                           "message_id": one["user_message_id"], "content": "q1b"})  # fmt: skip
            assert sent(3) == ["q1b"]  # a new first question: nothing before it
            await api.stream(session, "q3")  # r5
            assert sent(4) == ["q1b", "r4", "q3"]
            chosen = await api.post(
                "/api/conversation/select_branch",
                {"chat_session_id": session, "message_id": two["user_message_id"]},
            )
            assert chosen.status_code == 200, chosen.text
            await api.stream(session, "q4")
            assert sent(5) == ["q1", "r1", "q2", "r3", "q4"]  # the newest reply to q2
        nursery.cancel_scope.cancel()


async def test_a_regenerate_that_interrupts_keeps_the_stopped_reply(tmp_path: Path) -> None:
    async with open_api(settings_for(tmp_path, echo_delay_ms=20)) as api:
        conv = await api.conversation()
        session = (await api.session(conv["id"]))["id"]
        words = " ".join(f"w{i}" for i in range(200))
        running: list = []
        writing = trio.Event()

        async def follow() -> None:
            async with api.open_stream(session, words) as source:
                async for sse in source.aiter_sse():
                    running.append((sse.id, sse.event, sse.json()))
                    if sse.event == "content":
                        writing.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            with trio.fail_after(10):
                await writing.wait()
            refused = await api.post(
                "/api/conversation/regenerate",
                {"chat_session_id": session, "multitask": "reject"},
            )
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"]["code"] == "session_busy"
            again = await streamed(
                api, "regenerate", {"chat_session_id": session, "multitask": "interrupt"}
            )
        assert running[-1][2]["finish_reason"] == "cancelled"
        assert text(again) == "Echo: " + words
        rows = await listed(api, conv["id"])
        assert rows[1] == ("Echo: " + words, 2, 2)
        stopped = await listed(api, conv["id"], leaf_id=running[0][2]["message_id"])
        assert stopped[1][1:] == (2, 1) and len(stopped[1][0]) < len("Echo: " + words)


async def test_what_cannot_branch_is_a_clear_json_error(api: Api) -> None:
    conv = await api.conversation()
    session = (await api.session(conv["id"]))["id"]

    async def post(route: str, **body: Any) -> tuple[int, str, str | None]:
        answer = await api.post(f"/api/conversation/{route}", {"chat_session_id": session, **body})
        error = answer.json()["error"]
        return answer.status_code, error["code"], error.get("field")

    assert await post("regenerate") == (409, "nothing_to_regenerate", None)
    first = (await api.stream(session, "one"))[0][2]
    question, reply = first["user_message_id"], first["message_id"]
    assert await post("regenerate", message_id=question) == (400, "invalid_field", "message_id")
    assert await post("edit", message_id=reply, content="x") == (400, "invalid_field", "message_id")
    assert await post("edit", message_id=question, content=" ") == (
        400, "invalid_field", "content",
    )  # fmt: skip
    assert await post("edit", message_id=question) == (400, "invalid_field", "content")
    assert await post("regenerate", message_id="nope") == (400, "invalid_field", "message_id")
    unknown = "00000000-0000-4000-8000-000000000001"
    assert await post("regenerate", message_id=unknown) == (404, "not_found", None)
    assert await post("edit", message_id=unknown, content="x") == (404, "not_found", None)
    assert await post("select_branch", message_id=unknown) == (404, "not_found", None)
    assert await post("select_branch") == (400, "invalid_field", "message_id")
    await streamed(api, "regenerate", {"chat_session_id": session})
    assert await post("regenerate", message_id=reply) == (409, "not_on_current_branch", None)
    # Another conversation's message is not this session's.
    other = await api.session((await api.conversation())["id"])
    elsewhere = (await api.stream(other["id"], "elsewhere"))[0][2]["message_id"]
    assert await post("select_branch", message_id=elsewhere) == (404, "not_found", None)
    for leaf, status in ((elsewhere, 404), (unknown, 404), ("nope", 400)):
        answer = await api.get(MESSAGES, conversation_id=conv["id"], leaf_id=leaf)
        assert answer.status_code == status, answer.text
    viewer = await api.tenant(AccessRole.VIEWER, org_id=api.a.org_id)
    for route in ("regenerate", "select_branch"):
        body = {"chat_session_id": session, "message_id": reply}
        assert (await api.post(f"/api/conversation/{route}", body, viewer)).status_code == 403
    assert (await api.get(MESSAGES, viewer, conversation_id=conv["id"])).status_code == 200
    done = await api.post("/api/conversation/complete_session", {"chat_session_id": session})
    assert done.status_code == 200
    assert await post("regenerate") == (409, "session_completed", None)
    assert await post("edit", message_id=question, content="x") == (409, "session_completed", None)
