"""Branches: a chat session's messages as a tree, and the turns that grow it.

Each message follows its parent within its session (`Message.parent_id`): a reply follows the
user message it answers, a user message the reply before it. A session's current branch is
the path from its first message down to its head (`ChatSession.head_id`). A new message
continues the current branch; regenerating a reply, or editing a user message, adds a sibling
instead (the same parent): nothing is ever overwritten, and the head moves to the new turn's
reply. Selecting a branch moves the head to the newest leaf below a message.

A session that never branches is a single path: its current branch is every message it has,
in order, which is what it was before branches existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import attrs

from conversation_service.domain.errors import (
    InvalidField,
    MessageNotFound,
    NothingToRegenerate,
    NotOnCurrentBranch,
    ReplyInProgress,
)
from conversation_service.domain.model import ChatSession, Message, MessageRole, MessageStatus
from conversation_service.domain.rules import assistant_message, user_message
from conversation_service.domain.session_machine import SessionInput

# -- what a turn answers ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class NewQuestion:
    """A user message that continues the session's current branch (stream_chat)."""

    text: str


@attrs.frozen(kw_only=True)
class Regenerate:
    """Another reply to the user message an earlier reply answered; None: the head reply."""

    reply_id: UUID | None = None


@attrs.frozen(kw_only=True)
class Edit:
    """A new version of an earlier user message (a sibling of it), answered anew."""

    message_id: UUID
    text: str


TurnRequest = NewQuestion | Regenerate | Edit


@attrs.frozen(kw_only=True)
class TurnStart:
    """How a turn begins: the user message its reply answers, the reply, the session after."""

    question: Message
    asked: bool  # the question is new and is stored with the reply (False: regenerating)
    reply: Message  # in progress, following the question
    session: ChatSession  # responding, its head on the reply


def ask(
    session: ChatSession, *, text: str, question_id: UUID, reply_id: UUID, at: datetime
) -> TurnStart:
    """A new user message at the end of the current branch, and its reply."""
    question = user_message(
        id=question_id, session=session, text=text, at=at, parent_id=session.head_id
    )
    return _answer(session, question, asked=True, reply_id=reply_id, at=at)


def regenerate(
    session: ChatSession,
    *,
    target: Message,
    question: Message | None,
    on_branch: bool,
    reply_id: UUID,
    at: datetime,
) -> TurnStart:
    """A new reply to the question `target` answered: `target`'s sibling.

    `question` is `target`'s parent as stored, `on_branch` whether `target` is on the current
    branch. MessageNotFound, InvalidField (`message_id`), NotOnCurrentBranch, ReplyInProgress
    or NothingToRegenerate when it cannot be regenerated.
    """
    check_reply_to_regenerate(session, target)
    if not on_branch:
        raise NotOnCurrentBranch(target.id)
    if target.status is MessageStatus.IN_PROGRESS:
        raise ReplyInProgress(target.id)
    if question is None or question.id != target.parent_id or question.role is not MessageRole.USER:
        raise NothingToRegenerate(session.id)  # a reply that answers no user message
    return _answer(session, question, asked=False, reply_id=reply_id, at=at)


def edit(
    session: ChatSession,
    *,
    target: Message,
    on_branch: bool,
    text: str,
    question_id: UUID,
    reply_id: UUID,
    at: datetime,
) -> TurnStart:
    """A new user message in `target`'s place (its sibling), and its reply."""
    check_message_to_edit(session, target)
    if not on_branch:
        raise NotOnCurrentBranch(target.id)
    question = user_message(
        id=question_id, session=session, text=text, at=at, parent_id=target.parent_id
    )
    return _answer(session, question, asked=True, reply_id=reply_id, at=at)


def _answer(
    session: ChatSession, question: Message, *, asked: bool, reply_id: UUID, at: datetime
) -> TurnStart:
    reply = assistant_message(id=reply_id, session=session, at=at, parent_id=question.id)
    responding = session.apply(SessionInput.SEND, at).at_head(reply.id)
    return TurnStart(question=question, asked=asked, reply=reply, session=responding)


def check_in_session(session: ChatSession, message: Message | None, message_id: UUID) -> Message:
    """The message, if it is one of the session's; MessageNotFound otherwise."""
    if message is None or message.chat_session_id != session.id:
        raise MessageNotFound(message_id)
    return message


def check_reply_to_regenerate(session: ChatSession, target: Message) -> None:
    """What can be told of a reply to regenerate from the reply alone."""
    check_in_session(session, target, target.id)
    if target.role is not MessageRole.ASSISTANT:
        raise InvalidField("message_id", "must be a reply (an assistant message) to regenerate")


def check_message_to_edit(session: ChatSession, target: Message) -> None:
    """What can be told of a message to edit from the message alone."""
    check_in_session(session, target, target.id)
    if target.role is not MessageRole.USER:
        raise InvalidField("message_id", "must be a user message to edit")


# -- the tree -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ListedMessage:
    """A message as a branch lists it, with the alternatives at its place."""

    message: Message
    sibling_count: int  # messages at its place (same session, same parent), itself included
    sibling_index: int  # its place among them: 1 for the oldest


class MessageTree:
    """Messages (of one session or several, in the order they were added) as their trees.

    Built once from the messages and never changed; every question is answered from them.
    """

    def __init__(self, messages: Iterable[Message]) -> None:
        self._by_id: dict[UUID, Message] = {}
        self._children: dict[tuple[UUID, UUID | None], list[Message]] = {}
        for message in messages:
            self._by_id[message.id] = message
            self._children.setdefault(_place(message), []).append(message)

    def get(self, message_id: UUID | None) -> Message | None:
        return None if message_id is None else self._by_id.get(message_id)

    def children(self, message: Message) -> Sequence[Message]:
        """The messages that follow `message`, oldest first."""
        return self._children.get((message.chat_session_id, message.id), ())

    def lineage(self, message_id: UUID | None) -> list[Message]:
        """The branch down to `message_id`: its first message to it, in order (empty for
        None or an unknown id)."""
        found: list[Message] = []
        message = self.get(message_id)
        while message is not None and len(found) <= len(self._by_id):  # a cycle cannot hang it
            found.append(message)
            message = self.get(message.parent_id)
        found.reverse()
        return found

    def on_branch(self, leaf_id: UUID | None, message_id: UUID) -> bool:
        """Whether `message_id` is on the branch down to `leaf_id`."""
        return any(message.id == message_id for message in self.lineage(leaf_id))

    def newest_leaf(self, message_id: UUID) -> Message | None:
        """The end of the branch through `message_id` that follows its newest children."""
        message = self.get(message_id)
        while message is not None and (below := self.children(message)):
            message = below[-1]
        return message

    def listed(self, message: Message) -> ListedMessage:
        """The message with how many alternatives its place has, and which it is."""
        siblings = self._children[_place(message)]
        index = next(i for i, sibling in enumerate(siblings, 1) if sibling.id == message.id)
        return ListedMessage(message=message, sibling_count=len(siblings), sibling_index=index)


def _place(message: Message) -> tuple[UUID, UUID | None]:
    return message.chat_session_id, message.parent_id
