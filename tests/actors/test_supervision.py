"""A fault inside one session stays there: its replies end honestly, its neighbours and the
supervisor go on, and its actor comes back from storage on the next command."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from uuid import uuid4

import attrs
import pytest
import trio

from conversation_service.adapters.actors.session_actor import ActorSettings
from conversation_service.domain.errors import (
    ModelUnavailable,
    RateLimited,
    SessionCompleted,
    Unavailable,
)
from conversation_service.domain.model import ChatSession, MessageStatus
from conversation_service.domain.replies import Multitask
from conversation_service.testing.scripted import Script
from tests.actors.conftest import Seen, World, drain, open_world, text_of
from tests.actors.store_wrappers import FaultyStore

INTERNAL = {"code": "internal_error", "message": "the reply failed unexpectedly"}


@pytest.fixture
async def faulty() -> AsyncIterator[World]:
    async with open_world(FaultyStore(), ActorSettings(idle_timeout=30.0)) as opened:
        yield opened


async def neighbours_streaming(world: World, count: int = 2) -> list[ChatSession]:
    """Sessions whose replies (50 chunks, 0.1 s apart) run while the fault happens."""
    world.catalog.model.by_text["long"] = Script(chunks=("x",) * 50, delay=0.1)
    return [await world.new_session() for _ in range(count)]


async def run_alongside(
    world: World, neighbours: list[ChatSession], faulty: ChatSession, text: str
) -> tuple[list[Seen], list[list[Seen]]]:
    """The faulty session's events, and each neighbour's, all sent at the same time."""
    results: dict[int, list[Seen]] = {}

    async def say(index: int, session: ChatSession, message: str) -> None:
        reply = await world.service.send_message(world.who, world.org, session.id, message)
        results[index] = await drain(reply)

    async with trio.open_nursery() as nursery:
        for index, session in enumerate(neighbours):
            nursery.start_soon(say, index, session, "long")
        nursery.start_soon(say, -1, faulty, text)
    return results[-1], [results[i] for i in range(len(neighbours))]


def failures_logged(caplog: pytest.LogCaptureFixture, session: ChatSession) -> list[str]:
    """The error lines that name the session and carry a traceback."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and str(session.id) in r.getMessage() and r.exc_info
    ]


def assert_finished_whole(neighbour_events: list[list[Seen]]) -> None:
    for events in neighbour_events:
        assert text_of(events) == "x" * 50
        assert events[-1].kind == "end" and events[-1].data["finish_reason"] == "stop"


async def test_a_model_that_raises_fails_its_reply_and_nothing_else(
    faulty: World, autojump_clock, caplog: pytest.LogCaptureFixture
) -> None:
    world = faulty
    faulty.catalog.model.by_text["boom"] = Script(crash_after=1)
    neighbours = await neighbours_streaming(world)
    session = await world.new_session()
    events, others = await run_alongside(world, neighbours, session, "boom")

    assert [e.kind for e in events] == ["start", "content", "error", "end"]
    assert events[2].data == INTERNAL and events[3].data["finish_reason"] == "error"
    assert_finished_whole(others)
    stored = await world.store.session_messages(world.org, session.id)
    assert [(m.status, m.finish_reason, m.error_code) for m in stored[1:]] == [
        (MessageStatus.FAILED, "error", "internal_error")
    ]
    assert len(failures_logged(caplog, session)) == 1
    # The same session goes on as if nothing happened.
    assert text_of(await drain(await world.service.send_message(
        world.who, world.org, session.id, "again"
    ))) == "Hello, world"  # fmt: skip


async def test_a_store_that_breaks_while_a_reply_ends_stops_only_that_session(
    faulty: World, autojump_clock, caplog: pytest.LogCaptureFixture
) -> None:
    world = faulty
    neighbours = await neighbours_streaming(world)
    session = await world.new_session()
    world.store.fail("end_reply", session.id)
    first_actor = world.supervisor.find(session.id)
    events, others = await run_alongside(world, neighbours, session, "hi")

    assert [e.kind for e in events][-2:] == ["error", "end"]
    assert events[-2].data == INTERNAL and events[-1].data["finish_reason"] == "error"
    assert "InjectedFault" not in str(events)  # no internals reach a client
    assert_finished_whole(others)
    assert world.supervisor.accepting
    stored = await world.store.session_messages(world.org, session.id)
    assert [(m.content, m.status, m.error_code) for m in stored] == [
        ("hi", MessageStatus.COMPLETED, None),
        ("Hello, world", MessageStatus.FAILED, "internal_error"),  # stored as it wound down
    ]
    assert len(failures_logged(caplog, session)) == 1

    # The next command rebuilds the actor from storage; the history is intact.
    again = await world.service.send_message(world.who, world.org, session.id, "again")
    assert world.supervisor.find(session.id) is not first_actor
    assert text_of(await drain(again)) == "Hello, world"
    assert [p.content for p in world.catalog.model.prompts[-1]] == ["hi", "Hello, world", "again"]


async def test_a_fault_before_a_reply_begins_ends_it_and_those_waiting(
    faulty: World, autojump_clock, caplog: pytest.LogCaptureFixture
) -> None:
    world = faulty
    session = await world.new_session()
    world.store.fail("begin_reply", session.id, skip=1)  # the second turn's begin breaks
    first = await world.service.send_message(world.who, world.org, session.id, "one")
    waiting = [
        await world.service.send_message(world.who, world.org, session.id, text)
        for text in ("two", "three")
    ]
    assert text_of(await drain(first)) == "Hello, world"
    for reply in waiting:
        events = await drain(reply)
        assert [(e.kind, e.data) for e in events] == [
            ("error", INTERNAL),
            ("end", {"message_id": str(reply.message_id), "finish_reason": "error", "usage": None}),
        ]
    assert len(failures_logged(caplog, session)) == 1
    stored = await world.store.session_messages(world.org, session.id)
    assert [m.content for m in stored] == ["one", "Hello, world"]
    fourth = await world.service.send_message(world.who, world.org, session.id, "four")
    assert text_of(await drain(fourth)) == "Hello, world"


async def test_a_session_that_cannot_be_loaded_refuses_with_503_then_recovers(
    faulty: World, autojump_clock
) -> None:
    world = faulty
    session = await world.new_session()
    world.store.fail("get_session", session.id, skip=1)  # the use case's read passes
    with pytest.raises(Unavailable, match="failed; try again"):
        await world.service.send_message(world.who, world.org, session.id, "one")
    reply = await world.service.send_message(world.who, world.org, session.id, "two")
    assert text_of(await drain(reply)) == "Hello, world"


async def test_a_removed_model_ends_the_replies_queued_for_it_and_is_refused_after(
    world: World, autojump_clock
) -> None:
    info, model = world.catalog.add("org-model")
    model.default = Script(chunks=("a", "b", "c"), delay=1)
    session = await world.new_session(info.id)
    other = await world.new_session()
    running = await world.service.send_message(world.who, world.org, session.id, "one")
    queued = await world.service.send_message(
        world.who, world.org, session.id, "two", multitask=Multitask.ENQUEUE
    )
    await trio.sleep(0.5)
    world.catalog.remove(info.id)

    assert text_of(await drain(running)) == "abc"  # resolved when accepted: it finishes
    events = await drain(queued)
    assert [(e.kind, e.data.get("code")) for e in events] == [
        ("error", "model_unavailable"),
        ("end", None),
    ]
    with pytest.raises(ModelUnavailable):
        await world.service.send_message(world.who, world.org, session.id, "three")
    reply = await world.service.send_message(world.who, world.org, other.id, "fine")
    assert text_of(await drain(reply)) == "Hello, world"
    stored = await world.store.session_messages(world.org, session.id)
    assert [m.content for m in stored] == ["one", "abc"]


async def test_an_organisation_holds_a_bounded_number_of_replies(autojump_clock) -> None:
    settings = ActorSettings(idle_timeout=30.0, max_replies_per_org=3)
    async with open_world(settings=settings) as world:
        world.catalog.model.default = Script(hang=True)
        sessions = [await world.new_session() for _ in range(4)]
        closed = await world.new_session()
        await world.service.complete_session(world.who, world.org, closed.id)
        for _ in range(5):  # refused messages hold nothing
            with pytest.raises(SessionCompleted):
                await world.service.send_message(world.who, world.org, closed.id, "no")
        held = [
            await world.service.send_message(world.who, world.org, s.id, "hi") for s in sessions[:3]
        ]
        with pytest.raises(RateLimited, match="3 replies running or waiting") as refused:
            await world.service.send_message(world.who, world.org, sessions[3].id, "one more")
        assert refused.value.retry_after > 0
        # Another organisation is not affected.
        other = attrs.evolve(world.who, org_id=uuid4())
        conversation = await world.service.create_conversation(other, other.org_id, title="t")
        theirs = await world.service.create_session(
            other, other.org_id, conversation_id=conversation.id, model_id=world.catalog.info.id
        )
        await world.service.send_message(other, other.org_id, theirs.id, "fine")
        # A reply that ends makes room.
        await world.service.cancel(world.who, world.org, sessions[0].id)
        await drain(held[0])
        await world.service.send_message(world.who, world.org, sessions[3].id, "now")
