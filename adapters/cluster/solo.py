"""One instance alone with its database: every lease is its own, nothing is ever remote."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import trio

from conversation_service.ports.cluster import SessionAnswer, SessionRequest


class SoloCluster:
    """The Cluster of a single instance (SQLite, the in-memory store)."""

    instance_id = "solo"
    alone = True

    async def claim(self, session_id: UUID, org_id: UUID) -> str:
        return self.instance_id

    async def release(self, session_id: UUID) -> None:
        pass

    async def holder(self, session_id: UUID) -> str | None:
        return None  # no lease is ever written

    async def forget(self, session_ids: Sequence[UUID]) -> None:
        pass

    async def ask(self, owner: str, request: SessionRequest) -> SessionAnswer:
        raise RuntimeError("an instance alone has no other to ask")

    async def answer(self, request: SessionRequest, answer: SessionAnswer) -> None:
        raise RuntimeError("an instance alone is never asked")

    async def answer_of(self, request_id: UUID) -> SessionAnswer | None:
        return None

    async def next_request(self) -> SessionRequest:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def reply_changed(self, message_id: UUID) -> None:
        pass  # nobody elsewhere follows a reply

    async def wait_reply_change(self, message_id: UUID) -> None:
        await trio.sleep_forever()

    async def orphans(self) -> Sequence[tuple[UUID, UUID]]:
        return ()  # recovered at start instead (recover_interrupted)

    async def models_changed(self) -> None:
        pass
