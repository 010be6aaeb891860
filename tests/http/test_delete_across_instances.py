"""Deleting a conversation whose reply another instance is writing: the instance the delete
reaches has the lease holder retire the session (its upstream request closed, the message
waiting its turn dropped), every stream of it on any instance ends `cancelled`, and no row of
it stays, its lease and the commands the instances sent each other included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from tests.adapters.llm.openai_server import Exchange, chunk, start_fake_openai
from tests.adapters.sql_databases import query, rows_naming
from tests.http.conftest import DATABASE_URL
from tests.http.instances import Instance, clients_of, close_all, instances, wait_for
from tests.http.test_stream_api import OPENAI_MODEL, registry_with_upstream

pytestmark = pytest.mark.backends("postgres")

ANSWERED_SENDS = (
    "SELECT COUNT(*) FROM session_commands "
    "WHERE session_id = :id AND kind = 'send' AND answer IS NOT NULL"
)


async def follow(client: Instance, session_id: str, message_id: str, into: list) -> None:
    into.extend(await client.attach(session_id, message_id))


async def test_a_delete_sent_to_one_instance_stops_the_reply_another_writes(
    tmp_path: Path,
) -> None:
    closed = trio.Event()

    async def slow_upstream(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk("doomed thinking"))
        await exchange.wait_closed_by_client()
        closed.set()

    url = os.environ[DATABASE_URL]
    async with trio.open_nursery() as upstreams:
        upstream = await start_fake_openai(upstreams, slow_upstream)
        registry = registry_with_upstream(tmp_path, upstream.base_url)
        with instances(tmp_path, 2, "--models", str(registry)) as servers:
            a, b = await clients_of(servers)
            try:
                session = await a.new_session(OPENAI_MODEL)
                conversation_id = session["conversation_id"]
                running: list = []
                followed: list = []
                queued: list = []
                with trio.fail_after(30):  # every stream of it ends
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(a.stream, session["id"], "doomed question", running)
                        await wait_for(lambda: any(e[1] == "content" for e in running))
                        message_id = running[0][2]["message_id"]
                        # Followed from B, and a message sent through B waits its turn on A: a
                        # command carried between the instances, a row of session_commands.
                        nursery.start_soon(follow, b, session["id"], message_id, followed)
                        nursery.start_soon(b.stream, session["id"], "doomed follow-up", queued)
                        await wait_for(
                            lambda: query(url, ANSWERED_SENDS, {"id": session["id"]})[0][0]
                        )
                        deleted = await b.post(
                            "/api/conversation/delete", {"conversation_id": conversation_id}
                        )
                        assert deleted.status_code == 200, deleted.text
                        with trio.fail_after(10):
                            await closed.wait()  # A closed the model's request
                for events in (running, followed, queued):
                    assert events[-1][1] == "end", events
                    assert events[-1][2]["finish_reason"] == "cancelled", events
                assert not any(kind == "content" for _, kind, _ in queued)  # never began

                for client in (a, b):
                    found = await client.get(
                        "/api/conversation/get_with_sessions", conversation_id=conversation_id
                    )
                    assert found.status_code == 404
                    again = await client.post(
                        "/api/conversation/stream_chat",
                        {"chat_session_id": session["id"], "message": "again"},
                    )
                    assert again.status_code == 404, again.text
                named = [conversation_id, session["id"], message_id, "doomed"]
                assert rows_naming(url, named) == []
            finally:
                await close_all([a, b])
        upstreams.cancel_scope.cancel()
