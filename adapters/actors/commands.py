"""What can be asked of a session actor, and how it answers."""

from __future__ import annotations

import enum
from uuid import UUID

import attrs
import trio

from conversation_service.adapters.actors.reply_log import ReplyLog


class Multitask(enum.Enum):
    """What to do with a message that arrives while the session is generating a reply."""

    ENQUEUE = "enqueue"  # wait its turn
    REJECT = "reject"  # refuse it (SessionBusy)
    INTERRUPT = "interrupt"  # cancel the running reply, then run this one


@attrs.define(eq=False)
class Verdict:
    """The actor's answer to one command: set once, awaited by the sender."""

    error: Exception | None = None
    _done: trio.Event = attrs.field(factory=trio.Event)

    def accept(self) -> None:
        self._done.set()

    def refuse(self, error: Exception) -> None:
        self.error = error
        self._done.set()

    @property
    def decided(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> None:
        await self._done.wait()
        if self.error is not None:
            raise self.error


@attrs.define(eq=False)
class Send:
    """A user message for the model; `reply` is where its answer will appear."""

    text: str
    multitask: Multitask
    reply: ReplyLog
    verdict: Verdict


@attrs.define(eq=False)
class Cancel:
    """Stop the running reply (or the one named), keeping what was written."""

    message_id: UUID | None
    verdict: Verdict


@attrs.define(eq=False)
class Complete:
    """Close the session for new messages."""

    verdict: Verdict


@attrs.define(eq=False)
class ReplyDone:
    """Sent by the actor's own generation task when a reply has ended."""

    reply: ReplyLog


Command = Send | Cancel | Complete | ReplyDone
