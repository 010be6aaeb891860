"""What a session's model was shown last, kept while the session is in use.

A prompt holds the newest messages that fit the model's context window; the messages it
leaves out are never shown again, because later turns only add newer ones. So the messages
of the last prompt, plus the new user message and its reply, are all the next turn needs:
kept between the turns of a busy session, they spare reading (and decoding) its history
every turn, and they never grow past one context window. An actor forgets them when its
session has been idle for a while, or when its branch changes (a regenerate, an edit, another
branch selected: the messages kept are another branch's), and a session whose context spans
the conversation (other sessions add to it) never keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from conversation_service.domain.model import Message, MessageRole
from conversation_service.ports.storage import History


class ShownHistory:
    """The messages a session's next prompt can be made of, once a turn has read them."""

    def __init__(self) -> None:
        self._messages: list[Message] | None = None
        self._left_out = 0  # older messages a prompt could have shown but no longer will
        self._tip: UUID | None = None  # the last message of the branch they are of

    @property
    def known(self) -> bool:
        return self._messages is not None

    def follows(self, parent_id: UUID | None) -> bool:
        """Whether a message whose parent is `parent_id` continues the branch kept here
        (another branch's history is read again)."""
        return self._messages is not None and self._tip == parent_id

    def history(self) -> History:
        assert self._messages is not None
        return History(messages=tuple(self._messages), not_read=self._left_out)

    def planned(self, candidates: Sequence[Message], included: int, not_read: int) -> None:
        """A prompt was made of the newest `included` of `candidates` (oldest first, the new
        user message last); `not_read` older ones were not even read."""
        cut = len(candidates) - included
        self._messages = list(candidates[cut:])
        self._left_out = not_read + cut
        self._tip = candidates[-1].id if candidates else None

    def replied(self, reply: Message) -> None:
        """The turn's reply, as stored; an empty one is never shown."""
        if self._messages is not None and (reply.content or reply.role is MessageRole.USER):
            self._messages.append(reply)
        self._tip = reply.id

    def forget(self) -> None:
        self._messages = None
        self._left_out = 0
        self._tip = None
