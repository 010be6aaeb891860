"""One owner per session: only the actor's loop changes a session, before the write that
records it, so no command ever acts on a state that storage will not have.

The store here is slowed down on purpose (every write waits a while), so that commands
arrive while the writes of earlier ones are still in flight.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path
from typing import Any

import pytest
import trio

from conversation_service.adapters.actors.session_actor import ActorSettings
from conversation_service.domain.errors import RateLimited, SessionBusy, SessionCompleted
from conversation_service.domain.model import MessageRole, MessageStatus
from conversation_service.domain.replies import Multitask
from conversation_service.domain.session_machine import SessionState
from conversation_service.testing.scripted import Script
from tests.actors.conftest import drain, open_world, text_of
from tests.actors.store_wrappers import SlowStore

ROOT = Path(__file__).resolve().parents[2]


async def test_a_session_answered_completed_takes_no_message_after(autojump_clock) -> None:
    async with open_world(SlowStore(lambda: 0.3)) as world:
        session = await world.new_session()
        done = await world.service.complete_session(world.who, world.org, session.id)
        assert done.status is SessionState.COMPLETED
        await trio.sleep(0.1)
        with pytest.raises(SessionCompleted):
            await world.service.send_message(world.who, world.org, session.id, "late")
        await trio.sleep(5)
        stored = await world.store.get_session(world.org, session.id)
        assert stored == done == world.supervisor.live_session(session.id)
        assert await world.store.session_messages(world.org, session.id) == []


async def test_completing_a_replying_session_stops_the_reply_then_completes(
    autojump_clock,
) -> None:
    async with open_world(SlowStore(lambda: 0.2)) as world:
        world.catalog.model.default = Script(chunks=("a", "b", "c"), delay=1, hang=True)
        session = await world.new_session()
        running = await world.service.send_message(world.who, world.org, session.id, "one")
        waiting = await world.service.send_message(world.who, world.org, session.id, "two")
        await trio.sleep(2.5)
        done = await world.service.complete_session(world.who, world.org, session.id)
        assert done.status is SessionState.COMPLETED
        events = await drain(running)
        assert text_of(events) == "ab" and events[-1].data["finish_reason"] == "cancelled"
        assert [e.kind for e in await drain(waiting)] == ["end"]  # dropped before it began
        stored = await world.store.session_messages(world.org, session.id)
        assert [(m.content, m.status) for m in stored] == [
            ("one", MessageStatus.COMPLETED),
            ("ab", MessageStatus.CANCELLED),
        ]
        assert (await world.store.get_session(world.org, session.id)) == done


async def _race(seed: int) -> None:
    """Messages (each with a random multitask) and one complete_session, at random times,
    against a store whose writes take up to 0.3 s."""
    chance = random.Random(seed)
    settings = ActorSettings(idle_timeout=chance.choice([0.2, 30.0]), max_queued=2)
    async with open_world(SlowStore.seeded(seed), settings) as world:
        world.catalog.model.default = Script(chunks=("x", "y"), delay=0.2)
        session = await world.new_session()
        completed_at: list[float] = []
        sends: list[tuple[float, Any]] = []

        async def complete(at: float) -> None:
            await trio.sleep(at)
            done = await world.service.complete_session(world.who, world.org, session.id)
            assert done.status is SessionState.COMPLETED
            completed_at.append(trio.current_time())

        async def send(at: float, multitask: Multitask) -> None:
            await trio.sleep(at)
            started = trio.current_time()
            try:
                reply = await world.service.send_message(
                    world.who, world.org, session.id, f"m{len(sends)}", multitask=multitask
                )
            except (SessionCompleted, SessionBusy, RateLimited) as refused:
                sends.append((started, refused))
                return
            sends.append((started, reply))
            events = await drain(reply)
            assert events[-1].kind == "end"

        async with trio.open_nursery() as nursery:
            nursery.start_soon(complete, chance.uniform(0, 2))
            for _ in range(chance.randint(1, 6)):
                nursery.start_soon(send, chance.uniform(0, 3), chance.choice(list(Multitask)))

        (answered,) = completed_at
        for started, result in sends:
            if started > answered:
                assert isinstance(result, SessionCompleted), f"seed {seed}: taken after completed"
        accepted = {r.user_message_id for _, r in sends if not isinstance(r, Exception)}
        await trio.sleep(1)  # the idle actor may retire: storage alone must tell the same
        stored = await world.store.get_session(world.org, session.id)
        assert stored is not None and stored.status is SessionState.COMPLETED, f"seed {seed}"
        live = world.supervisor.live_session(session.id)
        assert live is None or live == stored, f"seed {seed}: memory and storage disagree"
        messages = await world.store.session_messages(world.org, session.id)
        users = [m for m in messages if m.role is MessageRole.USER]
        assert {m.id for m in users} <= accepted, f"seed {seed}"
        assert all(m.status is not MessageStatus.IN_PROGRESS for m in messages), f"seed {seed}"


async def test_completion_races_with_messages_and_always_wins_after_it_answered(
    autojump_clock,
) -> None:
    for seed in range(60):
        await _race(seed)


def _calls_apply(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "apply"
        for node in ast.walk(tree)
    )


def test_only_the_actor_and_the_stores_recovery_apply_session_transitions() -> None:
    appliers = {
        str(path.relative_to(ROOT))
        for layer in ("service_layer", "adapters", "entrypoints")
        for path in (ROOT / layer).rglob("*.py")
        if _calls_apply(path)
    }
    # The stores apply RECOVER at start, before any actor runs.
    assert appliers == {"adapters/actors/session_actor.py", "adapters/memory_store.py"}
