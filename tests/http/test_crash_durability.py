"""SIGKILL of the real server process under concurrent streams and writes, round after round.

Each round starts `conversation-service serve` on the same data directory, runs several
streams and writers against it, keeps every answer the server acknowledged (a 201 body; a
stream's `start`, its text and whether `end` came), and SIGKILLs the process mid-load. After
each restart the SQLite file passes `PRAGMA integrity_check`, and the API still has everything
acknowledged: conversations and sessions with their fields, every user message that got a
`start` with its text, and its reply: completed if the client saw `end`, else incomplete or
completed, its text a prefix of the echo. No message is left in_progress.

SQLite only: it is the file that must survive the process dying with it. A PostgreSQL server
outlives the killed process (test_process_lifecycle.py kills it mid-stream on both).
"""

from __future__ import annotations

import random
import signal
import sqlite3
from pathlib import Path

import attrs
import httpx
import pytest
import trio
from httpx_sse import SSEError, aconnect_sse

from conversation_service.testing.served import Served, serve

pytestmark = pytest.mark.backends("sqlite")

ECHO = "6563686f-0000-4000-8000-000000000000"
ROUNDS = 20
STREAMERS = 4
WRITERS = 2
SEED = 20261126
FLAGS = ("--echo-delay-ms", "5", "--rate-limit", "1000000/minute")
CUT = (httpx.HTTPError, httpx.StreamError, SSEError)  # what a client sees of a killed server


@attrs.define
class Reply:
    """A message the server acknowledged with `start`, and what the client saw of its reply."""

    session_id: str
    text: str
    user_message_id: str
    message_id: str
    seen: str = ""
    finish_reason: str | None = None  # None: the stream was cut before `end`


@attrs.define
class Acked:
    conversations: dict[str, dict] = attrs.Factory(dict)  # id -> the 201 body
    sessions: dict[str, dict] = attrs.Factory(dict)  # id -> the 201 body
    replies: list[Reply] = attrs.Factory(list)
    unchecked_sessions: set[str] = attrs.Factory(set)  # conversations to look into next time


@attrs.define
class Client:
    http: httpx.AsyncClient
    org_id: str

    @property
    def q(self) -> dict[str, str]:
        return {"org_id": self.org_id}

    async def create(self, path: str, body: dict) -> dict:
        got = await self.http.post(path, params=self.q, json=body)
        assert got.status_code == 201, got.text
        return got.json()

    async def get(self, path: str, **params: str) -> dict:
        with trio.fail_after(30):
            got = await self.http.get(path, params={**self.q, **params})
        assert got.status_code == 200, got.text
        return got.json()

    async def all_pages(self, path: str, key: str, limit: int, **params: str) -> list[dict]:
        items: list[dict] = []
        for page in range(10_000):
            body = await self.get(path, limit=str(limit), offset=str(page * limit), **params)
            items += body[key]
            if not body["has_more"]:
                return items
        raise AssertionError(f"{path}: paging never ended")


@attrs.define
class Round:
    """One server life: load until told to stop, then the server is killed."""

    number: int
    client: Client
    acked: Acked
    pool: list[str]  # one session per streamer, used across rounds
    stopping: bool = False
    first_create: trio.Event = attrs.Factory(trio.Event)
    first_starts: list[trio.Event] = attrs.Factory(lambda: [trio.Event() for _ in range(STREAMERS)])

    async def writer(self, index: int) -> None:
        rng = random.Random(f"{SEED}/{self.number}/w{index}")
        for n in range(10_000):
            title = f"r{self.number} w{index} n{n} " + rng.choice(["plan", "notes", "Ünïcødé ✓"])
            try:
                with trio.fail_after(30):
                    conv = await self.client.create(
                        "/api/conversation/create",
                        {"title": title, "is_archived": rng.random() < 0.3},
                    )
                    self.acked.conversations[conv["id"]] = conv
                    self.acked.unchecked_sessions.add(conv["id"])
                    self.first_create.set()
                    session = await self.client.create(
                        "/api/conversation/create_session",
                        {"conversation_id": conv["id"], "model_id": ECHO},
                    )
                    self.acked.sessions[session["id"]] = session
            except CUT:
                assert self.stopping, "a write failed while the server was up"
                return
            if self.stopping:
                return
            await trio.sleep(rng.uniform(0.005, 0.03))
        raise AssertionError("the writer was never stopped")

    async def streamer(self, index: int) -> None:
        rng = random.Random(f"{SEED}/{self.number}/s{index}")
        session_id = self.pool[index]
        for n in range(10_000):
            # Streamer 0 sends long messages: replies long enough to be flushed while streaming.
            count = rng.randint(150, 300) if index == 0 else rng.randint(3, 25)
            words = " ".join(f"r{self.number}s{index}m{n}w{i}" for i in range(count))
            try:
                with trio.fail_after(30):
                    await self.stream(session_id, words, index)
            except CUT:
                assert self.stopping, "a stream failed while the server was up"
                return
            if self.stopping:
                return
        raise AssertionError("the streamer was never stopped")

    async def stream(self, session_id: str, text: str, index: int) -> None:
        reply: Reply | None = None
        async with aconnect_sse(
            self.client.http,
            "POST",
            "/api/conversation/stream_chat",
            params=self.client.q,
            json={"chat_session_id": session_id, "message": text},
        ) as source:
            assert source.response.status_code == 200, await source.response.aread()
            async for sse in source.aiter_sse():
                data = sse.json()
                if sse.event == "start":
                    reply = Reply(session_id, text, data["user_message_id"], data["message_id"])
                    self.acked.replies.append(reply)
                    self.first_starts[index].set()
                elif sse.event == "content":
                    assert reply is not None
                    reply.seen += data["content"]
                elif sse.event == "end":
                    assert reply is not None
                    reply.finish_reason = data["finish_reason"]
                else:
                    raise AssertionError(f"unexpected event {sse.event}: {data}")
        if reply is None or reply.finish_reason != "stop":
            assert self.stopping, f"a stream ended early while the server was up: {reply}"

    async def run_then_kill(self, served: Served, rng: random.Random) -> None:
        async with trio.open_nursery() as nursery:
            for index in range(WRITERS):
                nursery.start_soon(self.writer, index)
            for index in range(STREAMERS):
                nursery.start_soon(self.streamer, index)
            with trio.fail_after(30):  # load is flowing: something to lose
                await self.first_create.wait()
                for started in self.first_starts:
                    await started.wait()
            await trio.sleep(rng.uniform(0.3, 0.8))
            self.stopping = True
            served.process.send_signal(signal.SIGKILL)
            with trio.fail_after(30):
                await trio.to_thread.run_sync(served.process.wait)


def integrity(data_dir: Path) -> str:
    connection = sqlite3.connect(data_dir / "conversations.db", timeout=10)
    try:
        return ", ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


async def check_nothing_acknowledged_is_lost(
    client: Client, acked: Acked, pool_conversations: list[str], everything: bool
) -> int:
    """Assert it; returns how many cut-off replies kept some text (flushed before the kill)."""
    stored = {
        c["id"]: c for c in await client.all_pages("/api/conversation/list", "conversations", 1000)
    }
    for conv_id, conv in acked.conversations.items():
        assert conv_id in stored, f"acknowledged conversation {conv_id} is lost"
        assert (stored[conv_id]["title"], stored[conv_id]["is_archived"]) == (
            conv["title"],
            conv["is_archived"],
        )
        assert stored[conv_id]["created_at"] == conv["created_at"]

    to_look = set(acked.conversations) if everything else set(acked.unchecked_sessions)
    sessions: dict[str, dict] = {}
    for conv_id in to_look | set(pool_conversations):
        found = await client.get("/api/conversation/get_with_sessions", conversation_id=conv_id)
        sessions.update({s["id"]: s for s in found["sessions"]})
    acked.unchecked_sessions.clear()
    for session_id, session in acked.sessions.items():
        if session["conversation_id"] not in to_look:
            continue
        assert session_id in sessions, f"acknowledged session {session_id} is lost"
        got = sessions[session_id]
        assert (got["conversation_id"], got["model_id"], got["created_at"]) == (
            session["conversation_id"],
            ECHO,
            session["created_at"],
        )
    assert {s["status"] for s in sessions.values()} <= {"active"}, "a session is still busy"

    messages: dict[str, dict] = {}
    order: dict[str, int] = {}
    for conv_id in pool_conversations:
        for seq, message in enumerate(
            await client.all_pages(
                "/api/conversation/messages", "messages", 100, conversation_id=conv_id
            )
        ):
            messages[message["id"]] = message
            order[message["id"]] = seq
    statuses = {m["status"] for m in messages.values()}
    assert statuses <= {"completed", "incomplete"}, f"after a restart: {statuses}"
    flushed = 0
    for reply in acked.replies:
        user = messages.get(reply.user_message_id)
        assert user is not None, f"acknowledged message {reply.user_message_id} is lost"
        assert (user["role"], user["content"], user["status"]) == ("user", reply.text, "completed")
        assert user["chat_session_id"] == reply.session_id
        stored_reply = messages.get(reply.message_id)
        assert stored_reply is not None, f"the reply {reply.message_id} is lost"
        assert stored_reply["role"] == "assistant"
        assert stored_reply["chat_session_id"] == reply.session_id
        assert order[reply.message_id] > order[reply.user_message_id]
        whole = "Echo: " + reply.text
        if reply.finish_reason == "stop":
            assert (stored_reply["status"], stored_reply["content"]) == ("completed", whole)
        else:
            assert stored_reply["status"] in ("incomplete", "completed"), stored_reply
            assert whole.startswith(stored_reply["content"]), stored_reply
            if stored_reply["status"] == "completed":
                assert stored_reply["content"] == whole
            flushed += bool(stored_reply["content"])
    return flushed


async def start(data_dir: Path) -> Served:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(serve, data_dir, *FLAGS)


@attrs.define
class Crashes:
    """The server's lives on one data directory, and what they acknowledged."""

    data_dir: Path
    served: Served
    org_id: str
    headers: dict[str, str]
    rng: random.Random = attrs.Factory(lambda: random.Random(SEED))
    acked: Acked = attrs.Factory(Acked)
    pool: list[str] = attrs.Factory(list)
    pool_conversations: list[str] = attrs.Factory(list)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.served.base_url, headers=self.headers, timeout=30)

    async def make_pool(self, client: Client) -> None:
        for index in range(STREAMERS):
            conv = await client.create("/api/conversation/create", {"title": f"pool {index}"})
            session = await client.create(
                "/api/conversation/create_session",
                {"conversation_id": conv["id"], "model_id": ECHO},
            )
            self.acked.conversations[conv["id"]] = conv
            self.acked.sessions[session["id"]] = session
            self.pool.append(session["id"])
            self.pool_conversations.append(conv["id"])

    async def check(self, client: Client, everything: bool = False) -> int:
        assert integrity(self.data_dir) == "ok"
        return await check_nothing_acknowledged_is_lost(
            client, self.acked, self.pool_conversations, everything
        )

    async def round(self, number: int) -> None:
        """Check what the last life acknowledged, load, SIGKILL, start the next life."""
        async with self.client() as http:
            client = Client(http=http, org_id=self.org_id)
            if number == 0:
                await self.make_pool(client)
            else:
                await self.check(client)
            await Round(number, client, self.acked, self.pool).run_then_kill(self.served, self.rng)
        assert self.served.process.returncode == -signal.SIGKILL
        self.served = await start(self.data_dir)

    async def last_check(self) -> int:
        async with self.client() as http:
            return await self.check(Client(http=http, org_id=self.org_id), everything=True)


async def test_repeated_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    served = await start(data_dir)
    assert served.org_id and served.token, served.output  # printed on the first start only
    crashes = Crashes(
        data_dir=data_dir,
        served=served,
        org_id=served.org_id,
        headers={"Authorization": f"Bearer {served.token}"},
    )
    try:
        with trio.fail_after(240):
            for number in range(ROUNDS):
                await crashes.round(number)
            flushed = await crashes.last_check()
    finally:
        exit_code = await trio.to_thread.run_sync(crashes.served.stop)
    assert exit_code == 0
    replies = crashes.acked.replies
    interrupted = [r for r in replies if r.finish_reason is None]
    assert len(interrupted) >= ROUNDS  # rounds cut replies off mid-stream
    assert len(replies) > len(interrupted)  # and others ran to their end
    assert flushed > 0  # some cut-off replies had text stored while they streamed
