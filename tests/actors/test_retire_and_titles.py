"""Retiring a session for good (its conversation is being deleted), and the titles the
service writes for conversations created without one."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from conversation_service.adapters.actors.titles import TitleSettings
from conversation_service.domain.errors import ConversationNotFound, SessionNotFound
from conversation_service.domain.model import Conversation, MessageStatus
from conversation_service.domain.replies import Multitask
from tests.actors.conftest import World, drain, open_world, text_of
from tests.actors.scripted import Script, ScriptedCatalog


async def test_retire_cancels_the_running_reply_drops_the_waiting_and_refuses_the_rest(
    world: World, autojump_clock: Any
) -> None:
    session = await world.new_session()
    world.catalog.model.default = Script(chunks=["a "] * 100, delay=1.0)
    running = await world.service.send_message(world.who, world.org, session.id, "one")
    waiting = await world.service.send_message(world.who, world.org, session.id, "two")
    await trio.sleep(3.5)  # three chunks written

    with trio.fail_after(10):
        await world.supervisor.retire(session)

    assert world.catalog.model.cancelled == 1  # the model's request was stopped
    assert world.supervisor.live_actors == 0
    events = await drain(running)
    assert events[-1].data["finish_reason"] == "cancelled" and text_of(events) == "a a a "
    assert (await drain(waiting))[-1].data["finish_reason"] == "cancelled"
    stored = await world.store.get_message(world.org, running.message_id)
    assert stored.status is MessageStatus.CANCELLED and stored.content == "a a a "
    assert await world.store.get_message(world.org, waiting.message_id) is None  # never begun
    # The session is still stored (its rows go next), but the runtime takes nothing for it.
    for multitask in Multitask:
        with pytest.raises(SessionNotFound):
            await world.service.send_message(
                world.who, world.org, session.id, "three", multitask=multitask
            )
    assert not await world.service.cancel(world.who, world.org, session.id)
    assert world.supervisor.live_session(session.id) is None
    assert world.supervisor.live_reply(session.id, running.message_id) is None
    with pytest.raises(SessionNotFound):
        await world.service.complete_session(world.who, world.org, session.id)


async def test_retiring_a_session_without_a_live_actor_starts_none(
    world: World, autojump_clock: Any
) -> None:
    session = await world.new_session()
    await world.supervisor.retire(session)
    assert world.supervisor.live_actors == 0
    with pytest.raises(SessionNotFound):
        await world.service.send_message(world.who, world.org, session.id, "hi")
    assert world.supervisor.live_actors == 0


async def test_deleting_a_conversation_mid_reply_leaves_nothing_and_answers_404_after(
    world: World, autojump_clock: Any
) -> None:
    session = await world.new_session()
    world.catalog.model.default = Script(chunks=["w "] * 50, delay=1.0)
    reply = await world.service.send_message(world.who, world.org, session.id, "go on")
    await trio.sleep(2.5)
    conversation_id = session.conversation_id

    await world.service.delete_conversation(world.who, world.org, conversation_id)

    assert (await drain(reply))[-1].data["finish_reason"] == "cancelled"
    assert world.catalog.model.cancelled == 1
    assert await world.store.get_message(world.org, reply.message_id) is None
    assert await world.store.get_session(world.org, session.id) is None
    with pytest.raises(ConversationNotFound):
        await world.service.get_with_sessions(world.who, world.org, conversation_id)
    with pytest.raises(SessionNotFound):
        await world.service.send_message(world.who, world.org, session.id, "again")
    with pytest.raises(ConversationNotFound):
        await world.service.delete_conversation(world.who, world.org, conversation_id)


async def untitled_reply(world: World, text: str = "How do vector databases index data?") -> Any:
    conversation = await world.service.create_conversation(world.who, world.org)
    assert conversation.title is None
    session = await world.service.create_session(
        world.who, world.org, conversation_id=conversation.id, model_id=world.catalog.info.id
    )
    reply = await world.service.send_message(world.who, world.org, session.id, text)
    await drain(reply)
    return conversation


async def title_of(world: World, conversation: Conversation, wait: float = 60) -> str | None:
    with trio.move_on_after(wait):
        while True:
            found = await world.store.get_conversation(world.org, conversation.id)
            if found.title is not None:
                return found.title
            await trio.sleep(0.5)
    return None


async def test_without_a_title_model_the_title_is_the_first_words(
    world: World, autojump_clock: Any
) -> None:
    conversation = await untitled_reply(
        world, "  Can you   explain how vector databases work, in short and simply?"
    )
    assert await title_of(world, conversation) == "Can you explain how vector databases work, in…"
    assert len(world.catalog.model.prompts) == 1  # the reply's only: no title model


def with_title_model(script: Script) -> Any:
    def settings(catalog: ScriptedCatalog) -> TitleSettings:
        _, model = catalog.add("titler")
        model.default = script
        info = catalog.models_for(catalog.info.id)[-1]
        return TitleSettings(model_id=info.id, timeout=20)

    return settings


async def test_a_title_model_names_the_conversation_from_its_first_exchange(
    autojump_clock: Any,
) -> None:
    titles = with_title_model(
        Script(chunks=['Title: "Vector', " databases", ' explained".\n', "x"])
    )
    async with open_world(titles=titles) as world:
        conversation = await untitled_reply(world)
        assert await title_of(world, conversation) == "Vector databases explained"
        titler = world.catalog.language_model(world.catalog.models_for(world.org)[-1].id)
        prompt = titler.prompts[0]
        assert prompt[0].role == "system" and "title" in prompt[0].content
        assert "User: How do vector databases index data?" in prompt[1].content
        assert "Assistant: Hello, world" in prompt[1].content
        assert titler.params[0].max_tokens == 32
        # Titled once: later replies do not ask again.
        session = (await world.store.list_sessions(world.org, conversation.id))[0]
        await drain(await world.service.send_message(world.who, world.org, session.id, "more"))
        await trio.sleep(5)
        assert len(titler.prompts) == 1


@pytest.mark.parametrize(
    "script",
    [
        Script(chunks=["Half"], fail_after=0),  # the model fails
        Script(chunks=["never"], delay=1000),  # past the timeout
        Script(chunks=["  \n", '""', "\n"]),  # nothing usable
    ],
)
async def test_a_failing_title_model_falls_back_to_the_first_words(
    script: Script, autojump_clock: Any
) -> None:
    async with open_world(titles=with_title_model(script)) as world:
        conversation = await untitled_reply(world, "Plan the launch")
        assert await title_of(world, conversation) == "Plan the launch"


async def test_a_failed_reply_still_gets_its_conversation_a_title(
    world: World, autojump_clock: Any
) -> None:
    world.catalog.model.default = Script(chunks=["x", "y"], fail_after=1)
    conversation = await untitled_reply(world, "Broken one")
    assert await title_of(world, conversation) == "Broken one"


async def test_a_title_the_user_sets_while_the_title_model_runs_is_kept(
    autojump_clock: Any,
) -> None:
    async with open_world(titles=with_title_model(Script(chunks=["Generated"], delay=10))) as world:
        conversation = await untitled_reply(world)
        await trio.sleep(5)  # the title model is writing
        renamed = await world.service.update_conversation(
            world.who, world.org, conversation.id, title="Mine"
        )
        assert renamed.title == "Mine"
        await trio.sleep(30)  # the title model is done
        titler = world.catalog.language_model(world.catalog.models_for(world.org)[-1].id)
        assert len(titler.prompts) == 1
        assert (await world.store.get_conversation(world.org, conversation.id)).title == "Mine"


async def test_a_titled_conversation_is_never_retitled(world: World, autojump_clock: Any) -> None:
    conversation = await world.service.create_conversation(world.who, world.org, title="Given")
    session = await world.service.create_session(
        world.who, world.org, conversation_id=conversation.id, model_id=world.catalog.info.id
    )
    await drain(await world.service.send_message(world.who, world.org, session.id, "hi"))
    await trio.sleep(5)
    assert (await world.store.get_conversation(world.org, conversation.id)).title == "Given"
