"""Branches on two instances sharing one PostgreSQL: regenerate, edit and select_branch sent to
the instance that does not run the session are carried to the one that does."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.http.instances import clients_of, close_all, instances, text, wait_for

pytestmark = pytest.mark.backends("postgres")

SLOW = ("--echo-delay-ms", "60")
WORDS = " ".join(f"w{i}" for i in range(30))  # ~1.8 s of reply


async def test_branches_sent_to_another_instance_are_made_where_the_session_runs(
    tmp_path: Path,
) -> None:
    with instances(tmp_path, 2, *SLOW) as servers:
        a, b = await clients_of(servers)
        try:
            session = await a.new_session()
            sid, conv = session["id"], session["conversation_id"]
            first: list = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.stream, sid, WORDS, first)  # the session runs on A
                await wait_for(lambda: any(kind == "content" for _, kind, _ in first))
                refused: list = []
                body = {"chat_session_id": sid, "multitask": "reject"}
                assert await b.streamed("regenerate", body, refused) == 409
                assert refused[0][2]["error"]["code"] == "session_busy"
                chosen = await b.post(
                    "/api/conversation/select_branch",
                    {"chat_session_id": sid, "message_id": first[0][2]["message_id"]},
                )
                assert chosen.status_code == 409, chosen.text
                queued: list = []  # waits on A for the running reply, then regenerates it
                nursery.start_soon(b.streamed, "regenerate", {"chat_session_id": sid}, queued)
            question, old = first[0][2]["user_message_id"], first[0][2]["message_id"]
            assert queued[0][1] == "start" and queued[0][2]["user_message_id"] == question
            assert text(queued) == text(first) == "Echo: " + WORDS
            assert [m["content"] for m in await b.messages(conv)] == [WORDS, "Echo: " + WORDS]

            edited: list = []
            edit = {"chat_session_id": sid, "message_id": question, "content": "short"}
            assert await b.streamed("edit", edit, edited) == 200
            assert text(edited) == "Echo: short"
            assert [m["content"] for m in await a.messages(conv)] == ["short", "Echo: short"]

            stale: list = []
            regenerate_old = {"chat_session_id": sid, "message_id": old}
            assert await b.streamed("regenerate", regenerate_old, stale) == 409
            assert stale[0][2]["error"]["code"] == "not_on_current_branch"

            chosen = await b.post(
                "/api/conversation/select_branch", {"chat_session_id": sid, "message_id": old}
            )
            assert chosen.status_code == 200, chosen.text
            assert chosen.json()["head_id"] == old
            listed = await a.messages(conv)
            assert [m["id"] for m in listed] == [question, old]
            assert [(m["sibling_count"], m["sibling_index"]) for m in listed] == [(2, 1), (2, 1)]
            after: list = []
            assert await b.stream(sid, "next", after) == 200
            assert [m["content"] for m in await b.messages(conv)][-2:] == ["next", "Echo: next"]
        finally:
            await close_all([a, b])
