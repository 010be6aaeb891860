"""Following a reply another instance writes, through its row: what the follower does when
the row is not there (yet, or any more)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import trio

from conversation_service.adapters.actors.remote_reply import RemoteReply
from conversation_service.domain.model import ChatSession, Message, MessageRole, MessageStatus
from tests.actors.conftest import World, as_seen


class News:
    """The notifications of reply changes, sent by the test."""

    def __init__(self) -> None:
        self.changed = trio.Event()

    async def wait(self, message_id: UUID) -> None:
        await self.changed.wait()

    def say(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


def reply_of(world: World, session: ChatSession, message_id: UUID, news: News) -> RemoteReply:
    return RemoteReply(
        message_id=message_id,
        user_message_id=None,
        chat_session_id=session.id,
        org_id=world.org,
        model_id=session.model_id,
        store=world.store,
        wait_change=news.wait,
    )


async def test_a_followed_reply_whose_conversation_is_deleted_ends_cancelled(
    world: World, autojump_clock: Any
) -> None:
    session = await world.new_session()
    at = datetime.now(UTC)
    reply = Message(
        id=uuid4(), org_id=world.org, conversation_id=session.conversation_id,
        chat_session_id=session.id, role=MessageRole.ASSISTANT, content="partial",
        status=MessageStatus.IN_PROGRESS, model_id=session.model_id, created_at=at,
        updated_at=at,
    )  # fmt: skip
    await world.store.add_message(reply)
    news = News()
    follower = reply_of(world, session, reply.id, news).follow()
    first = as_seen(await follower.next_batch())
    assert [e.kind for e in first] == ["start", "content"] and first[-1].id == len("partial")

    ended: list = []

    async def read() -> None:
        ended.extend(as_seen(await follower.next_batch()))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.sleep(0.5)
            assert not ended  # still being written
            assert await world.store.delete_conversation(world.org, session.conversation_id)
            news.say()
    assert [(e.kind, e.id) for e in ended] == [("end", len("partial") + 2)]
    assert ended[0].data["finish_reason"] == "cancelled"
    assert await follower.next_batch() == []


async def test_a_reply_waiting_its_turn_elsewhere_is_waited_for_while_its_session_exists(
    world: World, autojump_clock: Any
) -> None:
    session = await world.new_session()
    follower = reply_of(world, session, uuid4(), News()).follow()
    with trio.move_on_after(30) as waited:
        await follower.next_batch()
    assert waited.cancelled_caught  # no row yet, and the session is there: it waits
