"""Several instances on one PostgreSQL: the Cluster port over the database.

- Liveness: every instance writes `instances.seen_at` every `lease_timeout / 3` seconds; one
  not seen for `lease_timeout` seconds is gone.
- Leases: a session is run by the instance holding its row in `session_leases`, taken with
  one INSERT .. ON CONFLICT that succeeds only when the row is free, already this instance's,
  or held by an instance that is gone. The unique index `one_reply_per_session` keeps one
  reply in progress per session even if two instances ever disagreed.
- Commands: a row in `session_commands` (a message can be 100,000 characters, more than a
  notification carries), then NOTIFY; the answer is written to the same row, then NOTIFY.
- News: NOTIFY on one channel, payloads `cmd <recipient> <id>`, `ans <sender> <id>`,
  `reply <message id>` (its stored text or state changed) and `models`. LISTEN runs on a
  connection of its own (adapters/sql/listener.py); a missed notification costs a poll
  interval, never an event: replies are always read back from their rows.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import trio

from conversation_service.adapters.sql import cluster_queries as q
from conversation_service.adapters.sql.rows import format_timestamp
from conversation_service.adapters.sql.statements import Statements, Work
from conversation_service.adapters.sql.storage_actor import StorageActor
from conversation_service.domain.errors import Unavailable
from conversation_service.ports.clock import Clock
from conversation_service.ports.cluster import SessionAnswer, SessionRequest
from conversation_service.ports.storage import StorageUnavailable

log = logging.getLogger(__name__)

CHANNEL = "conversation_service"
ANSWER_TIMEOUT = 10.0  # an instance that does not answer a command in this time is failing
COMMANDS_KEPT = timedelta(minutes=10)


class SqlCluster:
    """The instances sharing one PostgreSQL database, as seen from one of them."""

    def __init__(
        self,
        actor: StorageActor,
        clock: Clock,
        *,
        lease_timeout: float = 15.0,
        instance_id: str | None = None,
    ) -> None:
        self._actor = actor
        self._clock = clock
        self.lease_timeout = lease_timeout
        self.instance_id = instance_id or uuid.uuid4().hex
        self.alone = False
        self._requests_in, self._requests = trio.open_memory_channel[SessionRequest](1000)
        self._answers: dict[UUID, trio.Event] = {}
        self._replies: dict[UUID, trio.Event] = {}
        self.on_models_changed: Callable[[], None] = lambda: None

    # -- liveness -------------------------------------------------------------------------
    async def heartbeat(self) -> None:
        """This instance is alive (and its expired neighbours' rows are tidied)."""
        now = self._clock.now()
        values = {"id": self.instance_id, "at": format_timestamp(now)}
        old = {"before": format_timestamp(now - COMMANDS_KEPT)}
        await self._call(_run((q.HEARTBEAT, values), (q.FORGET_OLD_COMMANDS, old)))

    async def leave(self) -> None:
        """This instance stops: its leases and stream slots are free at once."""
        await self._call(_run(*[(sql, {"id": self.instance_id}) for sql in q.LEAVE]))

    def _fresh(self) -> str:
        return format_timestamp(self._clock.now() - timedelta(seconds=self.lease_timeout))

    # -- leases ---------------------------------------------------------------------------
    async def claim(self, session_id: UUID, org_id: UUID) -> str:
        values = {
            "session_id": str(session_id),
            "org_id": str(org_id),
            "me": self.instance_id,
            "at": format_timestamp(self._clock.now()),
            "fresh": self._fresh(),
        }

        async def claim(db: Statements) -> str:
            taken = await db.fetch_val(q.CLAIM, values)
            if taken is not None:
                return str(taken)
            return str(await db.fetch_val(q.LEASE_HOLDER, values))

        owner: str = await self._call(claim)
        return owner

    async def release(self, session_id: UUID) -> None:
        values = {"session_id": str(session_id), "me": self.instance_id}
        await self._call(_run((q.RELEASE, values)))

    async def holder(self, session_id: UUID) -> str | None:
        values = {"session_id": str(session_id), "fresh": self._fresh()}
        found = await self._call(_value(q.LIVE_HOLDER, values))
        return None if found is None else str(found)

    async def forget(self, session_ids: Sequence[UUID]) -> None:
        statements = [
            (sql, {"session_id": str(session_id)})
            for session_id in session_ids
            for sql in q.FORGET_SESSION
        ]
        if statements:
            await self._call(_run(*statements))

    async def orphans(self) -> Sequence[tuple[UUID, UUID]]:
        rows = await self._call(_rows(q.ORPHANS, {"fresh": self._fresh()}))
        return [(UUID(row["org_id"]), UUID(row["session_id"])) for row in rows]

    # -- commands -------------------------------------------------------------------------
    async def ask(self, owner: str, request: SessionRequest) -> SessionAnswer:
        arrived = self._answers[request.id] = trio.Event()
        row = {
            "id": str(request.id),
            "session_id": str(request.session_id),
            "org_id": str(request.org_id),
            "recipient": owner,
            "sender": self.instance_id,
            "kind": request.kind,
            "body": json.dumps(request.body),
            "created_at": format_timestamp(self._clock.now()),
        }
        notice = {"channel": CHANNEL, "payload": f"cmd {owner} {request.id}"}
        try:
            await self._call(_run((q.INSERT_COMMAND, row), (q.NOTIFY, notice)))
            with trio.move_on_after(ANSWER_TIMEOUT):
                while True:
                    # Polled too, slowly: a notification lost with a connection is not fatal.
                    with trio.move_on_after(1.0):
                        await arrived.wait()
                    answer = await self._call(_value(q.COMMAND_ANSWER, {"id": str(request.id)}))
                    if answer is not None:
                        return _answer(json.loads(answer))
        finally:
            del self._answers[request.id]
        raise Unavailable("the instance running this chat session did not answer; try again")

    async def answer(self, request: SessionRequest, answer: SessionAnswer) -> None:
        said = {"value": answer.value, "error": answer.error, "moved": answer.moved}
        values = {"id": str(request.id), "answer": json.dumps(said)}
        notice = {"channel": CHANNEL, "payload": f"ans {request.sender} {request.id}"}
        await self._call(_run((q.ANSWER_COMMAND, values), (q.NOTIFY, notice)))

    async def answer_of(self, request_id: UUID) -> SessionAnswer | None:
        said = await self._call(_value(q.COMMAND_ANSWER, {"id": str(request_id)}))
        return None if said is None else _answer(json.loads(said))

    async def next_request(self) -> SessionRequest:
        return await self._requests.receive()

    # -- news -----------------------------------------------------------------------------
    async def reply_changed(self, message_id: UUID) -> None:
        notice = {"channel": CHANNEL, "payload": f"reply {message_id}"}
        await self._call(_run((q.NOTIFY, notice)))

    async def wait_reply_change(self, message_id: UUID) -> None:
        changed = self._replies.setdefault(message_id, trio.Event())
        try:
            await changed.wait()
        finally:
            if self._replies.get(message_id) is changed and not changed.is_set():
                del self._replies[message_id]  # a waiter gave up: the next one asks anew

    async def models_changed(self) -> None:
        await self._call(_run((q.NOTIFY, {"channel": CHANNEL, "payload": "models"})))

    async def heard(self, payload: str) -> None:
        """A notification from the listener: wake whoever waits for it."""
        kind, _, rest = payload.partition(" ")
        if kind == "reply":
            event = self._replies.pop(UUID(rest), None)
            if event is not None:
                event.set()
        elif kind == "models":
            self.on_models_changed()
        elif kind in ("cmd", "ans"):
            to, _, command_id = rest.partition(" ")
            if to != self.instance_id:
                return
            if kind == "ans":
                waiting = self._answers.get(UUID(command_id))
                if waiting is not None:
                    waiting.set()
                return
            row = await self._call(_rows(q.GET_COMMAND, {"id": command_id}))
            if row:
                self._requests_in.send_nowait(_request(row[0]))

    async def _call(self, work: Work) -> Any:
        try:
            return await self._actor.call(work)
        except StorageUnavailable:
            raise
        except Exception as error:  # a library error the actor did not translate
            raise StorageUnavailable(f"the cluster's tables failed: {error}") from error


# -- counters the instances share ------------------------------------------------------------
class SqlSharedCounters:
    """Counters for the limits every instance enforces together (rates, open streams)."""

    def __init__(self, cluster: SqlCluster) -> None:
        self._cluster = cluster

    async def hit(self, key: str, window_start: int, window: int) -> tuple[int, int]:
        """Count a hit in the `window`-second window that starts at `window_start` (epoch
        seconds): the hits of this window (this one included) and of the one before it."""
        values = {"key": key, "window_start": window_start}
        earlier = {"key": key, "window_start": window_start - window}

        async def hit(db: Statements) -> tuple[int, int]:
            current = await db.fetch_val(q.HIT, values)
            before = await db.fetch_val(q.HITS, earlier)
            return int(current), int(before or 0)

        hits: tuple[int, int] = await self._cluster._call(hit)
        return hits

    async def forget_windows(self, before: int) -> None:
        """Drop the counts of windows that started before `before` (epoch seconds)."""
        await self._cluster._call(_run((q.FORGET_WINDOWS, {"before": before})))

    async def take_slot(self, org_id: UUID, most: int) -> bool:
        """One more open stream for the organisation on this instance, if all instances hold
        fewer than `most`. Taken under a lock on the organisation, so two instances never
        both take the last one."""
        values = {
            "org_id": str(org_id),
            "me": self._cluster.instance_id,
            "fresh": self._cluster._fresh(),
        }

        async def take(db: Statements) -> bool:
            await db.execute(q.LOCK_ORG_SLOTS, values)
            held = await db.fetch_val(q.SLOTS_HELD, values)
            if int(held or 0) >= most:
                return False
            await db.execute(q.TAKE_SLOT, values)
            return True

        taken: bool = await self._cluster._call(take)
        return taken

    async def give_slot(self, org_id: UUID) -> None:
        values = {"org_id": str(org_id), "me": self._cluster.instance_id}
        await self._cluster._call(_run((q.GIVE_SLOT, values)))


def _answer(said: dict[str, Any]) -> SessionAnswer:
    return SessionAnswer(
        value=said.get("value"), error=said.get("error"), moved=bool(said.get("moved"))
    )


def _request(row: dict[str, Any]) -> SessionRequest:
    return SessionRequest(
        id=UUID(row["id"]),
        session_id=UUID(row["session_id"]),
        org_id=UUID(row["org_id"]),
        kind=row["kind"],
        body=json.loads(row["body"]),
        sender=row["sender"],
    )


def _run(*statements: tuple[str, dict[str, Any]]) -> Work:
    async def work(db: Statements) -> None:
        for sql, values in statements:
            await db.execute(sql, values)

    return work


def _rows(sql: str, values: dict[str, Any]) -> Work:
    async def work(db: Statements) -> list[dict[str, Any]]:
        return await db.fetch_all(sql, values)

    return work


def _value(sql: str, values: dict[str, Any]) -> Work:
    async def work(db: Statements) -> Any:
        return await db.fetch_val(sql, values)

    return work
