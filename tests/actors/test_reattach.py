"""Re-attaching to a reply: live from memory, finished from storage, each event once."""

from __future__ import annotations

import pytest
import trio

from conversation_service.domain.errors import MessageNotFound
from conversation_service.testing.scripted import Script
from tests.actors.conftest import Seen, World, as_seen, drain, text_of


async def test_reattach_mid_reply_gets_the_rest_once_then_live_then_end(
    world: World, autojump_clock
) -> None:
    world.catalog.model.scripts = [Script(chunks=("one ", "two ", "three ", "four"))]
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    first = reply.follow()
    seen: list[Seen] = []
    while len([e for e in seen if e.kind == "content"]) < 2:
        seen.extend(as_seen(await first.next_batch()))
    last_id = seen[-1].id  # the client drops here
    again = await world.service.attach(
        world.who, world.org, session.id, reply.message_id, after=last_id
    )
    rest = await drain(again)
    assert all(e.id > last_id for e in rest)
    assert text_of(seen) + text_of(rest) == "one two three four"
    assert rest[-1].kind == "end"


async def test_finished_reply_replays_from_storage_after_the_actor_retired(
    world: World, autojump_clock
) -> None:
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    live = await drain(reply.follow())
    await trio.sleep(60)  # the actor retires; the reply is now only in storage
    assert world.supervisor.find(session.id) is None
    for cut in range(len(live) - 1):
        after = live[cut].id if cut else None
        replayed = await drain(
            await world.service.attach(
                world.who, world.org, session.id, reply.message_id, after=after
            )
        )
        expected = live[cut + 1 :] if cut else live
        assert text_of(replayed) == text_of(expected)
        assert [e.kind for e in replayed][-1] == "end"
        assert replayed[-1].data == live[-1].data
        assert all(e.id > (after if after is not None else -1) for e in replayed)
    full = await drain(
        await world.service.attach(world.who, world.org, session.id, reply.message_id)
    )
    # start carries the same ids, the user message's included (context counts are live-only)
    ids = ("message_id", "user_message_id", "chat_session_id", "model_id")
    assert {k: full[0].data[k] for k in ids} == {k: live[0].data[k] for k in ids}


async def test_failed_reply_replays_its_error(world: World, autojump_clock) -> None:
    world.catalog.model.scripts = [Script(fail_after=1)]
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    live = await drain(reply.follow())
    await trio.sleep(60)
    replayed = await drain(
        await world.service.attach(world.who, world.org, session.id, reply.message_id)
    )
    assert [(e.id, e.kind, e.data) for e in replayed[1:]] == [
        (e.id, e.kind, e.data) for e in live[1:]
    ]
    assert replayed[0].data["message_id"] == live[0].data["message_id"]


async def test_reattach_to_an_unknown_or_user_message_is_not_found(
    world: World, autojump_clock
) -> None:
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    await drain(reply.follow())
    await trio.sleep(60)
    with pytest.raises(MessageNotFound):
        await world.service.attach(world.who, world.org, session.id, reply.user_message_id)
    other = await world.new_session()
    with pytest.raises(MessageNotFound):
        await world.service.attach(world.who, world.org, other.id, reply.message_id)
