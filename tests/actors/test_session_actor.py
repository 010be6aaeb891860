"""Session actors: replies stored whole, in turn, cancellable, surviving their listeners."""

from __future__ import annotations

import pytest
import trio

from conversation_service.domain.errors import (
    RateLimited,
    SessionBusy,
    SessionCompleted,
    Unavailable,
)
from conversation_service.domain.model import MessageRole, MessageStatus
from conversation_service.domain.replies import Multitask
from conversation_service.domain.session_machine import SessionState
from conversation_service.ports.session_runtime import LiveReply
from conversation_service.testing.scripted import Script
from tests.actors.conftest import Seen, World, as_seen, drain, text_of


async def read_all(reply: LiveReply, after: int | None = None) -> list[Seen]:
    return await drain(reply, after)


async def test_reply_streams_in_order_and_is_stored_complete(world: World, autojump_clock) -> None:
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "hi")
    events = await read_all(reply)
    assert [e.kind for e in events] == ["start", "content", "content", "content", "end"]
    assert [e.id for e in events] == [0, 5, 7, 12, 14]
    assert text_of(events) == "Hello, world"
    assert events[0].data["user_message_id"] == str(reply.user_message_id)
    assert events[-1].data["finish_reason"] == "stop"
    assert events[-1].data["usage"]["completion_tokens"] == 5
    stored = await world.store.session_messages(world.org, session.id)
    assert [(m.role, m.content, m.status) for m in stored] == [
        (MessageRole.USER, "hi", MessageStatus.COMPLETED),
        (MessageRole.ASSISTANT, "Hello, world", MessageStatus.COMPLETED),
    ]
    assert stored[1].usage is not None and stored[1].usage.estimated is False


async def test_reply_finishes_and_is_stored_when_nobody_listens(
    world: World, autojump_clock
) -> None:
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "hi")
    follower = reply.follow()
    assert as_seen(await follower.next_batch())[0].kind == "start"
    del follower  # the client went away mid-stream
    with trio.fail_after(60):
        await reply.wait_ended()
    stored = await world.store.get_message(world.org, reply.message_id)
    assert stored is not None and stored.content == "Hello, world"
    assert stored.status is MessageStatus.COMPLETED


async def test_follower_after_an_id_gets_only_later_events_once(
    world: World, autojump_clock
) -> None:
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "hi")
    first = await read_all(reply)
    again = await read_all(reply, after=first[1].id)
    assert again == first[2:]


async def test_queued_messages_run_one_after_another_never_interleaved(
    world: World, autojump_clock
) -> None:
    session = await world.new_session()
    first = await world.service.send_message(world.who, world.org, session.id, "one")
    second = await world.service.send_message(world.who, world.org, session.id, "two")
    # What the first reply had sent when the second one started, seen live.
    first_when_second_started: list[str] = []
    first_seen: list[str] = []

    async def live(name: str, reply: LiveReply) -> None:
        follower = reply.follow()
        while batch := await follower.next_batch():
            for event in as_seen(batch):
                if name == "one":
                    first_seen.append(event.kind)
                elif event.kind == "start":
                    first_when_second_started.extend(
                        e.kind for e in as_seen(await first.follow().next_batch())
                    )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(live, "one", first)
        nursery.start_soon(live, "two", second)
    assert first_when_second_started[-1] == "end"
    assert first_seen[-1] == "end"
    stored = await world.store.session_messages(world.org, session.id)
    assert [m.content for m in stored] == ["one", "Hello, world", "two", "Hello, world"]
    # The second reply saw the first exchange as context.
    assert [p.content for p in world.catalog.model.prompts[1]] == ["one", "Hello, world", "two"]


async def test_reject_refuses_a_message_while_a_reply_runs(world: World, autojump_clock) -> None:
    session = await world.new_session()
    running = await world.service.send_message(world.who, world.org, session.id, "one")
    with pytest.raises(SessionBusy):
        await world.service.send_message(
            world.who, world.org, session.id, "two", multitask=Multitask.REJECT
        )
    await read_all(running)
    stored = await world.store.session_messages(world.org, session.id)
    assert [m.content for m in stored] == ["one", "Hello, world"]


async def test_interrupt_cancels_the_running_reply_then_runs_the_new_one(
    world: World, autojump_clock
) -> None:
    world.catalog.model.scripts = [Script(hang=True), Script()]
    session = await world.new_session()
    first = await world.service.send_message(world.who, world.org, session.id, "one")
    await trio.sleep(10)
    second = await world.service.send_message(
        world.who, world.org, session.id, "two", multitask=Multitask.INTERRUPT
    )
    first_events = await read_all(first)
    assert first_events[-1].data["finish_reason"] == "cancelled"
    assert text_of(await read_all(second)) == "Hello, world"
    stored = await world.store.session_messages(world.org, session.id)
    assert [(m.content, m.status) for m in stored] == [
        ("one", MessageStatus.COMPLETED),
        ("Hello, world", MessageStatus.CANCELLED),
        ("two", MessageStatus.COMPLETED),
        ("Hello, world", MessageStatus.COMPLETED),
    ]


async def test_cancel_keeps_the_partial_reply_and_twice_is_harmless(
    world: World, autojump_clock
) -> None:
    world.catalog.model.scripts = [Script(chunks=("a", "b", "c"), hang=True)]
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    await trio.sleep(2.5)  # two chunks written
    await world.service.cancel(world.who, world.org, session.id)
    await world.service.cancel(world.who, world.org, session.id, reply.message_id)
    events = await read_all(reply)
    assert text_of(events) == "ab"
    assert events[-1].kind == "end" and events[-1].data["finish_reason"] == "cancelled"
    assert world.catalog.model.cancelled == 1
    stored = await world.store.get_message(world.org, reply.message_id)
    assert stored is not None and (stored.content, stored.status) == ("ab", MessageStatus.CANCELLED)
    await world.service.cancel(world.who, world.org, session.id)  # nothing runs: harmless


async def test_full_mailbox_is_rate_limited(world: World, autojump_clock) -> None:
    world.catalog.model.default = Script(hang=True)
    session = await world.new_session()
    await world.service.send_message(world.who, world.org, session.id, "running")
    await trio.sleep(1)
    for text in ("q1", "q2"):  # max_queued = 2
        await world.service.send_message(world.who, world.org, session.id, text)
    with pytest.raises(RateLimited) as caught:
        await world.service.send_message(world.who, world.org, session.id, "one too many")
    assert caught.value.retry_after > 0
    await world.service.cancel(world.who, world.org, session.id)


async def test_model_failure_sends_error_then_end_and_stores_failed(
    world: World, autojump_clock
) -> None:
    world.catalog.model.scripts = [Script(fail_after=1)]
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "hi")
    events = await read_all(reply)
    assert [e.kind for e in events] == ["start", "content", "error", "end"]
    assert events[2].data == {"code": "upstream_error", "message": "the model broke"}
    assert events[3].data["finish_reason"] == "error"
    stored = await world.store.get_message(world.org, reply.message_id)
    assert stored is not None and (stored.content, stored.status) == ("Hello", MessageStatus.FAILED)
    # The session takes the next message.
    assert (
        text_of(
            await read_all(
                await world.service.send_message(world.who, world.org, session.id, "again")
            )
        )
        == "Hello, world"
    )


async def test_completed_session_refuses_messages(world: World, autojump_clock) -> None:
    session = await world.new_session()
    done = await world.service.complete_session(world.who, world.org, session.id)
    assert done.status is SessionState.COMPLETED
    with pytest.raises(SessionCompleted):
        await world.service.send_message(world.who, world.org, session.id, "hi")
    stored = await world.store.get_session(world.org, session.id)
    assert stored is not None and stored.status is SessionState.COMPLETED


async def test_status_is_responding_while_a_reply_runs(world: World, autojump_clock) -> None:
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "hi")
    await trio.sleep(0.5)
    live = await world.service.get_with_sessions(world.who, world.org, session.conversation_id)
    assert live.sessions[0].status is SessionState.RESPONDING
    await read_all(reply)
    live = await world.service.get_with_sessions(world.who, world.org, session.conversation_id)
    assert live.sessions[0].status is SessionState.ACTIVE


async def test_idle_actor_retires_and_comes_back_with_its_history(
    world: World, autojump_clock
) -> None:
    session = await world.new_session()
    await read_all(await world.service.send_message(world.who, world.org, session.id, "one"))
    assert world.supervisor.find(session.id) is not None
    await trio.sleep(31)
    assert world.supervisor.find(session.id) is None
    await read_all(await world.service.send_message(world.who, world.org, session.id, "two"))
    assert [p.content for p in world.catalog.model.prompts[-1]] == ["one", "Hello, world", "two"]


async def test_partial_reply_is_flushed_while_streaming(world: World, autojump_clock) -> None:
    world.catalog.model.scripts = [Script(chunks=tuple("abcdef"), hang=True)]
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    await trio.sleep(6.5)
    stored = await world.store.get_message(world.org, reply.message_id)
    assert stored is not None and stored.status is MessageStatus.IN_PROGRESS
    assert stored.content.startswith("abcde")
    await world.service.cancel(world.who, world.org, session.id)


async def test_reader_that_never_reads_does_not_hold_up_others(
    world: World, autojump_clock
) -> None:
    world.catalog.model.default = Script(chunks=("x",) * 500, delay=0.01)
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    stalled = reply.follow()  # never read
    events = await read_all(reply)
    assert text_of(events) == "x" * 500 and events[-1].kind == "end"
    assert len(await stalled.next_batch()) == len(events)  # it can still catch up later


async def test_stopping_mid_reply_stores_it_incomplete_and_tells_listeners(
    world: World, autojump_clock
) -> None:
    world.catalog.model.scripts = [Script(chunks=("a", "b"), hang=True)]
    session = await world.new_session()
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    await trio.sleep(5)
    world.supervisor.stop_accepting()
    with pytest.raises(Unavailable):
        await world.service.send_message(world.who, world.org, session.id, "late")
    await world.supervisor.stop()
    events = await read_all(reply)
    assert [e.kind for e in events][-2:] == ["error", "end"]
    assert events[-2].data["code"] == "shutting_down"
    stored = await world.store.get_message(world.org, reply.message_id)
    assert stored is not None and (stored.content, stored.status) == (
        "ab",
        MessageStatus.INCOMPLETE,
    )
    assert world.supervisor.live_actors == 0


async def test_a_sender_cancelled_after_telling_still_learns_its_message_was_taken(
    world: World, autojump_clock
) -> None:
    # What an Idempotency-Key keeps for a retry depends on it: the message was accepted.
    session = await world.new_session()
    taken = None
    with trio.move_on_after(0):  # cancelled at once, while the actor is deciding
        taken = await world.service.send_message(world.who, world.org, session.id, "hi")
    assert taken is not None
    assert text_of(await read_all(taken)) == "Hello, world"
    stored = await world.store.session_messages(world.org, session.id)
    assert [m.content for m in stored] == ["hi", "Hello, world"]


class _GatedBegin:
    """The in-memory store, whose begin_reply waits for `gate` while `held` (and then
    fails with StorageUnavailable if `fail` is set)."""

    def __init__(self) -> None:
        from conversation_service.adapters.memory_store import InMemoryStore

        self.inner = InMemoryStore()
        self.held = False
        self.fail = False
        self.gate = trio.Event()
        self.begins_done = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def begin_reply(self, *args: object, **kwargs: object) -> object:
        from conversation_service.ports.storage import StorageUnavailable

        if self.held:
            await self.gate.wait()
            if self.fail:
                raise StorageUnavailable("the database went away")
        result = await self.inner.begin_reply(*args, **kwargs)
        self.begins_done += 1
        return result


async def test_a_known_history_asks_the_model_while_storing_but_no_text_precedes_start(
    actor_settings, autojump_clock
) -> None:
    from conversation_service.testing.scripted import Script
    from tests.actors.conftest import open_world

    store = _GatedBegin()
    async with open_world(store=store, settings=actor_settings) as world:
        model = world.catalog.model
        model.default = Script(chunks=("Hel", "lo"), delay=0.0)
        session = await world.new_session()
        await read_all(await world.service.send_message(world.who, world.org, session.id, "a"))
        store.held = True  # the next message's history is known: no need to read it
        reply = await world.service.send_message(world.who, world.org, session.id, "b")
        follower = reply.follow()
        with trio.move_on_after(5) as waited:
            await follower.next_batch()
        assert waited.cancelled_caught  # nothing at all before the messages are stored
        assert len(model.prompts) == 2 and store.begins_done == 1  # yet the model was asked
        assert [m.content for m in model.prompts[1]] == ["a", "Hello", "b"]
        store.gate.set()
        events = await read_all(reply)
        assert [e.kind for e in events] == ["start", "content", "content", "end"]
        assert text_of(events) == "Hello"
        stored = await world.store.session_messages(world.org, session.id)
        assert [m.content for m in stored] == ["a", "Hello", "b", "Hello"]


async def test_an_early_model_call_is_cancelled_when_the_messages_cannot_be_stored(
    actor_settings, autojump_clock
) -> None:
    from conversation_service.testing.scripted import Script
    from tests.actors.conftest import open_world

    store = _GatedBegin()
    async with open_world(store=store, settings=actor_settings) as world:
        model = world.catalog.model
        model.default = Script(chunks=("Hel", "lo"), delay=0.0)
        session = await world.new_session()
        await read_all(await world.service.send_message(world.who, world.org, session.id, "a"))
        model.default = Script(chunks=("never",), hang=True, delay=0.0)
        store.held, store.fail = True, True
        reply = await world.service.send_message(world.who, world.org, session.id, "b")
        await trio.sleep(1)
        assert len(model.prompts) == 2  # asked early
        store.gate.set()
        events = await read_all(reply)
        assert [e.kind for e in events] == ["error", "end"]  # no start, no text
        assert events[0].data["code"] == "storage_unavailable"
        await trio.sleep(1)  # the actor retires, and its nursery's tasks with it
        assert model.cancelled == 1
        stored = await world.store.session_messages(world.org, session.id)
        assert [m.content for m in stored] == ["a", "Hello"]
