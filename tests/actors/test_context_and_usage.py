"""What the model is shown (system prompt, session or conversation, trimmed to fit), the
parameters it gets, and what a reply records: usage and latency."""

from __future__ import annotations

import pytest

from conversation_service.domain.errors import InvalidField
from conversation_service.domain.model import ContextScope, GenerationParams
from conversation_service.testing.scripted import Script
from tests.actors.conftest import Seen, World, drain


async def session_with(world: World, conversation_id=None, **options):
    if conversation_id is None:
        conversation_id = (
            await world.service.create_conversation(world.who, world.org, title="t")
        ).id
    return await world.service.create_session(
        world.who,
        world.org,
        conversation_id=conversation_id,
        model_id=world.catalog.info.id,
        **options,
    )


async def say(world: World, session, text: str) -> list[Seen]:
    return await drain(await world.service.send_message(world.who, world.org, session.id, text))


async def test_system_prompt_leads_and_params_reach_the_model(world: World, autojump_clock) -> None:
    params = GenerationParams(temperature=0.2, max_tokens=10, top_p=0.9)
    session = await session_with(world, system_prompt="Answer in French.", params=params)
    await say(world, session, "hello")
    prompt = world.catalog.model.prompts[-1]
    assert [(m.role, m.content) for m in prompt] == [
        ("system", "Answer in French."),
        ("user", "hello"),
    ]
    assert world.catalog.model.params[-1] == params
    stored = await world.store.get_session(world.org, session.id)
    assert stored is not None and stored.system_prompt == "Answer in French."
    assert stored.params == params


async def test_conversation_context_carries_other_sessions_messages(
    world: World, autojump_clock
) -> None:
    first = await session_with(world)
    await say(world, first, "my name is Ada")
    second = await session_with(
        world, conversation_id=first.conversation_id, context=ContextScope.CONVERSATION
    )
    own = await session_with(world, conversation_id=first.conversation_id)
    events = await say(world, second, "what is my name?")
    assert [m.content for m in world.catalog.model.prompts[-1]] == [
        "my name is Ada",
        "Hello, world",
        "what is my name?",
    ]
    assert events[0].data["context_messages"] == 3 and events[0].data["trimmed_messages"] == 0
    await say(world, own, "and now?")  # a session-scoped one sees only its own
    assert [m.content for m in world.catalog.model.prompts[-1]] == ["and now?"]


async def test_old_messages_are_trimmed_and_the_start_event_says_so(
    world: World, autojump_clock
) -> None:
    # The scripted model reads 200 tokens and keeps 50 for its reply.
    session = await session_with(world)
    for i in range(6):
        await say(world, session, f"{i} " + "x" * 100)  # ~30 tokens a message
    events = await say(world, session, "last")
    prompt = world.catalog.model.prompts[-1]
    assert prompt[-1].content == "last"
    assert events[0].data["context_messages"] == len(prompt)
    assert events[0].data["trimmed_messages"] == 13 - len(prompt) > 0
    assert sum(len(m.content) // 4 + 4 for m in prompt) <= 150


async def test_a_message_that_cannot_fit_is_refused_before_anything_is_stored(
    world: World, autojump_clock
) -> None:
    session = await session_with(world, system_prompt="s" * 300)
    with pytest.raises(InvalidField) as caught:
        await world.service.send_message(world.who, world.org, session.id, "y" * 400)
    assert caught.value.field == "message" and "scripted" in caught.value.reason
    assert await world.store.session_messages(world.org, session.id) == []


async def test_params_out_of_range_for_the_model_are_refused(world: World, autojump_clock) -> None:
    with pytest.raises(InvalidField) as caught:
        await session_with(world, params=GenerationParams(max_tokens=51))
    assert caught.value.field == "params.max_tokens"
    with pytest.raises(InvalidField) as caught:
        await session_with(world, system_prompt="  ")
    assert caught.value.field == "system_prompt"


async def test_replies_record_usage_and_latency(world: World, autojump_clock) -> None:
    world.catalog.model.scripts = [Script(chunks=("a", "b"), delay=0.5)]
    session = await session_with(world)
    reply = await world.service.send_message(world.who, world.org, session.id, "go")
    await drain(reply)
    stored = await world.store.get_message(world.org, reply.message_id)
    assert stored is not None and stored.latency is not None
    assert stored.latency.first_token_ms == 500 and stored.latency.total_ms == 1000
    assert stored.usage is not None and not stored.usage.estimated
    usage = await world.service.usage(
        world.who, world.org, start=stored.created_at, end=stored.updated_at
    )
    assert [(u.model_id, u.replies, u.prompt_tokens, u.completion_tokens) for u in usage] == [
        (world.catalog.info.id, 1, 3, 5)
    ]
