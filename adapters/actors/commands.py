"""What can be asked of a session actor, how it answers, and what its own tasks report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar, cast
from uuid import UUID

import attrs
import trio

from conversation_service.adapters.actors.reply_log import ReplyLog
from conversation_service.domain.branches import TurnRequest
from conversation_service.domain.model import ChatSession, Message
from conversation_service.domain.replies import Multitask, ReplyOutcome

if TYPE_CHECKING:
    from conversation_service.adapters.actors.turn import Turn

T = TypeVar("T")


@attrs.define(eq=False)
class Verdict(Generic[T]):
    """The actor's answer to one command: given once, awaited by the sender."""

    _value: T | None = None
    _error: Exception | None = None
    _done: trio.Event = attrs.field(factory=trio.Event)

    def accept(self, value: T) -> None:
        self._value = value
        self._done.set()

    def refuse(self, error: Exception) -> None:
        self._error = error
        self._done.set()

    @property
    def decided(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> T:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


@attrs.frozen
class Fork:
    """What storage says of the message a regenerate or an edit starts from."""

    target: Message
    question: Message | None  # the target's parent (for a regenerate: what it answers)
    on_branch: bool  # whether the target is on the session's current branch


@attrs.define(eq=False)
class Send:
    """A turn for the model: a new user message, or a branch off an earlier one (regenerate,
    edit); `reply` is where its answer will appear."""

    request: TurnRequest
    multitask: Multitask
    reply: ReplyLog
    verdict: Verdict[None]
    fork: Fork | None = None  # read when the turn was accepted by an idle session


@attrs.define(eq=False)
class Cancel:
    """Stop the running reply (or the one named), keeping what was written. Answers whether
    anything was stopped."""

    message_id: UUID | None
    verdict: Verdict[bool]


@attrs.define(eq=False)
class Complete:
    """Close the session for new messages. Answers the completed session."""

    verdict: Verdict[ChatSession]


@attrs.define(eq=False)
class Retire:
    """Stop for good (the session is being deleted): the running reply is cancelled, waiting
    ones are dropped, and the actor ends. Answered once nothing of the session runs."""

    verdict: Verdict[None]


@attrs.define(eq=False)
class SelectBranch:
    """Make the branch through a message the current one (its newest leaf the head).
    Answers the session."""

    message_id: UUID
    verdict: Verdict[ChatSession]


@attrs.define(eq=False)
class Generated:
    """Reported by a turn's generation task: the model is done with the reply."""

    turn: Turn
    outcome: ReplyOutcome


Command = Send | Cancel | Complete | Retire | SelectBranch | Generated
