"""Branches: the turns that grow a session's tree of messages, and the tree's questions."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conversation_service.domain import branches
from conversation_service.domain.branches import MessageTree
from conversation_service.domain.errors import (
    InvalidField,
    MessageNotFound,
    NothingToRegenerate,
    NotOnCurrentBranch,
    ReplyInProgress,
)
from conversation_service.domain.model import Message, MessageRole, MessageStatus
from conversation_service.domain.session_machine import SessionInput, SessionState
from tests.domain.test_session_machine import T0, _session


class Conversation:
    """One session driven through the domain's turns, its messages kept as a store would."""

    def __init__(self) -> None:
        self.session = _session()
        self.messages: list[Message] = []
        self.at = T0

    def tick(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at

    @property
    def tree(self) -> MessageTree:
        return MessageTree(self.messages)

    def run(self, start: branches.TurnStart, *, finish: bool = True) -> branches.TurnStart:
        if start.asked:
            self.messages.append(start.question)
        self.messages.append(start.reply)
        self.session = start.session
        if finish:
            at = self.tick()
            done = start.reply.finished(
                content=f"re: {start.question.content}",
                status=MessageStatus.COMPLETED,
                finish_reason="stop",
                usage=None,
                at=at,
            )
            self.messages[-1] = done
            self.session = self.session.apply(SessionInput.FINISH, at)
        return start

    def send(self, text: str, **run: bool) -> branches.TurnStart:
        start = branches.ask(
            self.session, text=text, question_id=uuid4(), reply_id=uuid4(), at=self.tick()
        )
        return self.run(start, **run)

    def regenerate(self, target_id: UUID | None = None) -> branches.TurnStart:
        tree = self.tree
        target = tree.get(target_id if target_id is not None else self.session.head_id)
        assert target is not None
        start = branches.regenerate(
            self.session,
            target=target,
            question=tree.get(target.parent_id),
            on_branch=tree.on_branch(self.session.head_id, target.id),
            reply_id=uuid4(),
            at=self.tick(),
        )
        return self.run(start)

    def edit(self, target_id: UUID, text: str) -> branches.TurnStart:
        tree = self.tree
        target = tree.get(target_id)
        assert target is not None
        start = branches.edit(
            self.session,
            target=target,
            on_branch=tree.on_branch(self.session.head_id, target.id),
            text=text,
            question_id=uuid4(),
            reply_id=uuid4(),
            at=self.tick(),
        )
        return self.run(start)

    def select(self, message_id: UUID) -> None:
        leaf = self.tree.newest_leaf(message_id)
        assert leaf is not None
        self.session = self.session.moved_to(leaf.id, self.tick())

    def branch(self) -> list[str]:
        return [m.content for m in self.tree.lineage(self.session.head_id)]


def test_a_session_that_never_branches_is_one_path_of_every_message() -> None:
    chat = Conversation()
    first = chat.send("one")
    assert first.question.parent_id is None
    assert first.reply.parent_id == first.question.id
    assert chat.session.head_id == first.reply.id
    second = chat.send("two")
    assert second.question.parent_id == first.reply.id
    assert chat.tree.lineage(chat.session.head_id) == chat.messages
    assert [chat.tree.listed(m).sibling_count for m in chat.messages] == [1, 1, 1, 1]


def test_regenerating_adds_a_sibling_reply_to_the_same_question() -> None:
    chat = Conversation()
    first = chat.send("one")
    again = chat.regenerate()
    assert not again.asked and again.question == first.question
    assert again.reply.parent_id == first.question.id
    assert chat.session.head_id == again.reply.id
    assert chat.branch() == ["one", "re: one"]
    listed = [chat.tree.listed(m) for m in chat.messages]
    assert [(x.sibling_count, x.sibling_index) for x in listed] == [(1, 1), (2, 1), (2, 2)]
    assert chat.session.version == 1 + 4  # SEND and FINISH, twice


def test_editing_adds_a_sibling_question_with_the_same_parent() -> None:
    chat = Conversation()
    chat.send("one")
    two = chat.send("two")
    edited = chat.edit(two.question.id, "two, better")
    assert edited.asked and edited.question.parent_id == two.question.parent_id
    assert chat.branch() == ["one", "re: one", "two, better", "re: two, better"]
    assert len(chat.messages) == 6  # nothing overwritten
    first_question = chat.messages[0]
    edited_first = chat.edit(first_question.id, "uno")
    assert edited_first.question.parent_id is None  # a second first message
    assert chat.branch() == ["uno", "re: uno"]


def test_selecting_a_message_moves_the_head_to_its_newest_leaf() -> None:
    chat = Conversation()
    one = chat.send("one")
    chat.send("two")
    chat.regenerate(one.reply.id)  # the head moves off "two"
    assert chat.branch() == ["one", "re: one"]
    chat.select(one.question.id)  # newest child: the regenerated reply
    assert chat.branch() == ["one", "re: one"] and chat.session.head_id != one.reply.id
    chat.select(one.reply.id)
    assert chat.branch() == ["one", "re: one", "two", "re: two"]


def test_what_cannot_be_regenerated_or_edited_is_refused() -> None:
    chat = Conversation()
    one = chat.send("one")
    chat.regenerate()
    with pytest.raises(NotOnCurrentBranch):
        chat.regenerate(one.reply.id)  # the first reply is on the other branch now
    with pytest.raises(InvalidField) as caught:
        chat.regenerate(one.question.id)
    assert caught.value.field == "message_id"
    with pytest.raises(InvalidField):
        chat.edit(chat.session.head_id, "a reply is not edited")
    running = chat.send("two", finish=False)
    with pytest.raises(ReplyInProgress):
        branches.regenerate(
            attrs.evolve(chat.session, status=SessionState.ACTIVE),
            target=running.reply,
            question=running.question,
            on_branch=True,
            reply_id=uuid4(),
            at=T0,
        )
    stranger = attrs.evolve(running.reply, chat_session_id=uuid4())
    with pytest.raises(MessageNotFound):
        branches.check_reply_to_regenerate(chat.session, stranger)
    orphan = attrs.evolve(running.reply, parent_id=None, status=MessageStatus.COMPLETED)
    with pytest.raises(NothingToRegenerate):
        branches.regenerate(
            chat.session, target=orphan, question=None, on_branch=True, reply_id=uuid4(), at=T0
        )


class Branching(RuleBasedStateMachine):
    """Any sequence of sends, regenerates, edits and selects, checked against the rules."""

    def __init__(self) -> None:
        super().__init__()
        self.chat = Conversation()
        self.seen: dict[UUID, Message] = {}

    def _pick(self, data: st.DataObject, role: MessageRole | None = None) -> Message | None:
        choices = [m for m in self.chat.messages if role is None or m.role is role]
        return data.draw(st.sampled_from(choices)) if choices else None

    @rule(text=st.sampled_from(["a", "b", "c"]))
    def send(self, text: str) -> None:
        self.chat.send(text)

    @rule(data=st.data())
    def regenerate(self, data: st.DataObject) -> None:
        target = self._pick(data, MessageRole.ASSISTANT)
        if target is None:
            return
        on_branch = self.chat.tree.on_branch(self.chat.session.head_id, target.id)
        try:
            self.chat.regenerate(target.id)
        except NotOnCurrentBranch:
            assert not on_branch
        else:
            assert on_branch

    @rule(data=st.data(), text=st.sampled_from(["x", "y"]))
    def edit(self, data: st.DataObject, text: str) -> None:
        target = self._pick(data, MessageRole.USER)
        if target is None:
            return
        on_branch = self.chat.tree.on_branch(self.chat.session.head_id, target.id)
        try:
            self.chat.edit(target.id, text)
        except NotOnCurrentBranch:
            assert not on_branch
        else:
            assert on_branch

    @rule(data=st.data())
    def select(self, data: st.DataObject) -> None:
        target = self._pick(data)
        if target is not None:
            self.chat.select(target.id)
            assert self.chat.tree.on_branch(self.chat.session.head_id, target.id)

    @invariant()
    def nothing_is_overwritten(self) -> None:
        for message in self.chat.messages:
            kept = self.seen.setdefault(message.id, message)
            assert kept == message
        assert len(self.seen) == len(self.chat.messages)

    @invariant()
    def every_message_is_reachable_from_a_first_message(self) -> None:
        tree = self.chat.tree
        for message in self.chat.messages:
            lineage = tree.lineage(message.id)
            assert lineage[0].parent_id is None and lineage[-1] == message
            leaf = tree.newest_leaf(message.id)
            assert leaf is not None and message in tree.lineage(leaf.id)

    @invariant()
    def the_current_branch_is_a_path_of_turns_ending_at_a_leaf(self) -> None:
        tree = self.chat.tree
        head = tree.get(self.chat.session.head_id)
        branch = tree.lineage(self.chat.session.head_id)
        if head is None:
            assert not self.chat.messages
            return
        assert not tree.children(head)
        previous = None
        for index, message in enumerate(branch):
            assert message.parent_id == (previous.id if previous else None)
            assert message.role is (MessageRole.USER if index % 2 == 0 else MessageRole.ASSISTANT)
            previous = message
        assert head.role is MessageRole.ASSISTANT

    @invariant()
    def siblings_are_numbered_oldest_first(self) -> None:
        tree = self.chat.tree
        places: dict[tuple[UUID, UUID | None], list[int]] = {}
        for message in self.chat.messages:
            listed = tree.listed(message)
            places.setdefault((message.chat_session_id, message.parent_id), []).append(
                listed.sibling_index
            )
            assert 1 <= listed.sibling_index <= listed.sibling_count
        for indices in places.values():
            assert indices == list(range(1, len(indices) + 1))


TestBranching = Branching.TestCase
