"""A busy session keeps what its model was shown last instead of reading its history each
turn; the prompts are exactly those a fresh read would make, and an idle session forgets."""

from __future__ import annotations

from typing import Any

import trio

from conversation_service.adapters.actors.session_actor import ActorSettings
from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.domain.context import plan_prompt, reserve_for_reply
from conversation_service.domain.model import MessageRole, MessageStatus
from conversation_service.testing.scripted import Script
from tests.actors.conftest import World, drain, open_world


class CountingStore(InMemoryStore):
    """Counts the turns that read their history from the store."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def begin_reply(self, *args: Any, history_limit: int) -> Any:
        self.reads += history_limit > 0
        return await super().begin_reply(*args, history_limit=history_limit)


async def fresh_plan(world: World, session_id: Any) -> tuple[list[str], int]:
    """The prompt and trimmed count a turn would have from the whole stored history."""
    stored = await world.store.session_messages(world.org, session_id)
    session = await world.store.get_session(world.org, session_id)
    shown = [
        m for m in stored[:-1]  # the reply being written is the last message
        if not (m.role is MessageRole.ASSISTANT and not m.content)
        and m.status is not MessageStatus.IN_PROGRESS
    ]  # fmt: skip
    info = world.catalog.info
    plan = plan_prompt(
        system_prompt=session.system_prompt,
        history=shown,
        context_window=info.context_window,
        reserve_for_reply=reserve_for_reply(session, info.max_output_tokens),
    )
    return [m.content for m in plan.messages], plan.trimmed


async def test_a_busy_session_reads_its_history_once_and_prompts_as_if_it_read_it_all(
    autojump_clock,
) -> None:
    store = CountingStore()
    async with open_world(store, ActorSettings(idle_timeout=60, history_keep=10)) as world:
        session = await world.new_session()
        for turn in range(12):  # ~30 tokens a message: the 200-token window trims early on
            if turn == 4:
                world.catalog.model.scripts = [Script(chunks=())]  # an empty reply: not shown
            reply = await world.service.send_message(
                world.who, world.org, session.id, f"{turn} " + "x" * 100
            )
            follower = reply.follow()
            start = (await follower.next_batch())[0]
            expected_prompt, expected_trimmed = await fresh_plan(world, session.id)
            await drain(follower)
            assert [m.content for m in world.catalog.model.prompts[-1]] == expected_prompt
            assert start.trimmed_messages == expected_trimmed
            await trio.sleep(1)  # a user typing: well within history_keep
        assert store.reads == 1  # only the first turn read the session's history

        await trio.sleep(11)  # idle past history_keep: the session forgets
        await drain(await world.service.send_message(world.who, world.org, session.id, "back"))
        assert store.reads == 2
        assert world.supervisor.find(session.id) is not None  # forgot, but did not retire
