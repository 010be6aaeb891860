"""Regenerate, edit and select a branch through the session's actor: each keeps what was there,
moves the head, and the model is shown the current branch only."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from conversation_service.domain.errors import (
    MessageNotFound,
    NothingToRegenerate,
    NotOnCurrentBranch,
    SessionBusy,
)
from conversation_service.domain.model import ChatSession
from conversation_service.domain.replies import Multitask
from tests.actors.conftest import World, drain, text_of
from tests.actors.scripted import Script


async def say(world: World, session: ChatSession, text: str, **options: Any) -> Any:
    reply = await world.service.send_message(world.who, world.org, session.id, text, **options)
    await drain(reply)
    return reply


def prompt(world: World, turn: int = -1) -> list[str]:
    return [m.content for m in world.catalog.model.prompts[turn]]


async def branch(world: World, session: ChatSession, **options: Any) -> list[str]:
    page = await world.service.list_messages(
        world.who, world.org, session.conversation_id, limit=100, **options
    )
    return [m.message.content for m in page.items]


async def test_regenerating_answers_the_same_question_again_beside_the_first(
    world: World, autojump_clock: object
) -> None:
    session = await world.new_session()
    first = await say(world, session, "one")
    world.catalog.model.scripts = [Script(chunks=("Another",))]
    again = await world.service.regenerate(world.who, world.org, session.id)
    events = await drain(again)
    assert events[0].data["user_message_id"] == str(first.user_message_id)
    assert text_of(events) == "Another"
    assert prompt(world) == ["one"]  # not its first answer
    assert await branch(world, session) == ["one", "Another"]
    live = await world.service.get_session(world.who, world.org, session.id)
    assert live.head_id == again.message_id
    kept = await world.store.get_message(world.org, first.message_id)
    assert kept.content == "Hello, world" and kept.parent_id == first.user_message_id


async def test_an_edit_is_a_new_question_whose_branch_the_model_is_shown(
    world: World, autojump_clock: object
) -> None:
    session = await world.new_session()
    await say(world, session, "one")
    two = await say(world, session, "two")
    edited = await world.service.edit_message(
        world.who, world.org, session.id, two.user_message_id, "deux"
    )
    await drain(edited)
    assert prompt(world) == ["one", "Hello, world", "deux"]
    await say(world, session, "three")
    assert prompt(world) == ["one", "Hello, world", "deux", "Hello, world", "three"]
    assert (await world.store.get_message(world.org, two.user_message_id)).content == "two"


async def test_selecting_a_branch_moves_listing_and_the_next_prompt(
    world: World, autojump_clock: object
) -> None:
    session = await world.new_session()
    one = await say(world, session, "one")
    await say(world, session, "two")
    world.catalog.model.scripts = [Script(chunks=("Again",))]
    await drain(await world.service.regenerate(world.who, world.org, session.id, one.message_id))
    assert await branch(world, session) == ["one", "Again"]
    selected = await world.service.select_branch(world.who, world.org, session.id, one.message_id)
    assert await branch(world, session) == ["one", "Hello, world", "two", "Hello, world"]
    assert selected.head_id != one.message_id and selected.version > session.version
    await say(world, session, "three")  # the session's kept history was another branch's
    assert prompt(world) == ["one", "Hello, world", "two", "Hello, world", "three"]
    # Another branch, without selecting it: down its newest children.
    assert await branch(world, session, leaf_id=one.user_message_id) == ["one", "Again"]
    listed = await branch(world, session)
    assert listed[-2:] == ["three", "Hello, world"]


async def test_what_cannot_be_regenerated_edited_or_selected_is_refused_before_anything(
    world: World, autojump_clock: object
) -> None:
    session = await world.new_session()
    with pytest.raises(NothingToRegenerate):
        await world.service.regenerate(world.who, world.org, session.id)
    one = await say(world, session, "one")
    await drain(await world.service.regenerate(world.who, world.org, session.id))
    with pytest.raises(NotOnCurrentBranch):
        await world.service.regenerate(world.who, world.org, session.id, one.message_id)
    other = await world.new_session()
    with pytest.raises(MessageNotFound):
        await world.service.edit_message(
            world.who, world.org, other.id, one.user_message_id, "elsewhere"
        )
    with pytest.raises(MessageNotFound):
        await world.service.select_branch(world.who, world.org, other.id, one.message_id)
    assert len(await world.store.session_messages(world.org, session.id)) == 3


async def test_a_running_reply_is_regenerated_once_it_is_stopped(
    world: World, autojump_clock: object
) -> None:
    session = await world.new_session()
    world.catalog.model.scripts = [Script(chunks=("slow",) * 10)]
    running = await world.service.send_message(world.who, world.org, session.id, "one")
    follower = running.follow()
    await follower.next_batch()
    with pytest.raises(SessionBusy):
        await world.service.regenerate(
            world.who, world.org, session.id, running.message_id, multitask=Multitask.REJECT
        )
    with pytest.raises(SessionBusy):
        await world.service.select_branch(world.who, world.org, session.id, running.message_id)
    again = await world.service.regenerate(
        world.who, world.org, session.id, multitask=Multitask.INTERRUPT
    )
    ended = await drain(follower)
    assert ended[-1].data["finish_reason"] == "cancelled"
    events = await drain(again)
    assert text_of(events) == "Hello, world"
    assert events[0].data["user_message_id"] == str(running.user_message_id)
    assert await branch(world, session) == ["one", "Hello, world"]


async def test_a_regenerate_sent_while_a_reply_runs_waits_and_regenerates_it(
    world: World, autojump_clock: object
) -> None:
    session = await world.new_session()
    world.catalog.model.scripts = [Script(chunks=("first",) * 3)]
    running = await world.service.send_message(world.who, world.org, session.id, "one")
    queued = await world.service.regenerate(world.who, world.org, session.id)
    assert text_of(await drain(running)) == "first" * 3
    events = await drain(queued)
    assert events[0].data["user_message_id"] == str(running.user_message_id)
    assert await branch(world, session) == ["one", "Hello, world"]
    listed = await world.service.list_messages(
        world.who, world.org, session.conversation_id, leaf_id=running.message_id
    )
    assert [(m.sibling_count, m.sibling_index) for m in listed.items] == [(1, 1), (2, 1)]


async def test_a_queued_edit_whose_message_left_the_branch_ends_with_an_error(
    world: World, autojump_clock: object
) -> None:
    session = await world.new_session()
    one = await say(world, session, "one")
    world.catalog.model.scripts = [Script(chunks=("slow",) * 5)]
    running = await world.service.send_message(world.who, world.org, session.id, "two")
    # Waiting its turn, behind an edit of "one" that takes "one" off the current branch.
    first_edit = await world.service.edit_message(
        world.who, world.org, session.id, one.user_message_id, "uno"
    )
    second_edit = await world.service.edit_message(
        world.who, world.org, session.id, one.user_message_id, "un"
    )
    await drain(running)
    await drain(first_edit)
    events = await drain(second_edit)
    assert [e.kind for e in events] == ["error", "end"]
    assert events[0].data["code"] == "not_on_current_branch"
    assert await branch(world, session) == ["uno", "Hello, world"]
    with trio.fail_after(5):  # the session goes on
        await say(world, session, "dos")
