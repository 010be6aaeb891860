"""A reply as its clients see it: how it ended, the events of its stream, and what to do with
a message that arrives while another reply is being written.

Event ids are positions in the reply text: `start` is 0, a `content` event's id is the length
of the text once its chunk is added, `error` is the final length + 1 and `end` the final
length + 2. Ids grow strictly within a reply, and a reply read back from storage can be
continued after any id a client saw live, without the original chunk boundaries.
"""

from __future__ import annotations

import enum
from uuid import UUID

import attrs

from conversation_service.domain.errors import DomainError
from conversation_service.domain.model import Message, MessageStatus, Usage


class Multitask(enum.Enum):
    """What to do with a message that arrives while the session is writing a reply."""

    ENQUEUE = "enqueue"  # wait its turn
    REJECT = "reject"  # refuse it (SessionBusy)
    INTERRUPT = "interrupt"  # cancel the running reply, then run this one


# The finish reasons a reply can end with, in its `end` event and in storage alike.
FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_CANCELLED = "cancelled"
FINISH_ERROR = "error"


@attrs.frozen(kw_only=True)
class ReplyOutcome:
    """How a reply ended: its stored status, its finish reason and, for a failure, why."""

    status: MessageStatus
    finish_reason: str
    usage: Usage | None = None
    error: tuple[str, str] | None = None  # (code, message), as the `error` event says

    @classmethod
    def completed(cls, finish_reason: str, usage: Usage | None) -> ReplyOutcome:
        return cls(status=MessageStatus.COMPLETED, finish_reason=finish_reason, usage=usage)

    @classmethod
    def cancelled(cls) -> ReplyOutcome:
        return cls(status=MessageStatus.CANCELLED, finish_reason=FINISH_CANCELLED)

    @classmethod
    def failed(cls, code: str, message: str) -> ReplyOutcome:
        """The model or the service could not finish the reply."""
        return cls(status=MessageStatus.FAILED, finish_reason=FINISH_ERROR, error=(code, message))

    @classmethod
    def interrupted(cls, code: str, message: str) -> ReplyOutcome:
        """The service stopped (or lost the reply) before it was finished."""
        return cls(
            status=MessageStatus.INCOMPLETE, finish_reason=FINISH_ERROR, error=(code, message)
        )


INTERNAL_ERROR = ("internal_error", "the reply failed unexpectedly")
SHUTTING_DOWN = ("shutting_down", "the service is stopping")
INTERRUPTED = ("interrupted", "the service stopped while writing this reply")


@attrs.frozen(kw_only=True)
class ReplyStarted:
    """The reply begins: its ids, and how much of the history the model is shown."""

    message_id: UUID
    user_message_id: UUID | None
    chat_session_id: UUID
    model_id: UUID | None
    context_messages: int | None = None  # known while the reply is live, not in storage
    trimmed_messages: int | None = None

    @property
    def id(self) -> int:
        return 0


@attrs.frozen(kw_only=True)
class ReplyContent:
    """A chunk of the reply's text; `id` is the length of the text once it is added."""

    id: int
    message_id: UUID
    text: str


@attrs.frozen(kw_only=True)
class ReplyError:
    """Why the reply could not be finished; `end` follows."""

    id: int
    code: str
    message: str


@attrs.frozen(kw_only=True)
class ReplyEnd:
    """The last event of every reply."""

    id: int
    message_id: UUID
    finish_reason: str
    usage: Usage | None


ReplyEvent = ReplyStarted | ReplyContent | ReplyError | ReplyEnd


def closing_events(
    message_id: UUID, text_length: int, outcome: ReplyOutcome
) -> tuple[ReplyError | ReplyEnd, ...]:
    """The `error` (for a failure) and `end` events of a reply of `text_length` characters."""
    end = ReplyEnd(
        id=end_event_id(text_length),
        message_id=message_id,
        finish_reason=outcome.finish_reason,
        usage=outcome.usage,
    )
    if outcome.error is None:
        return (end,)
    return (ReplyError(id=text_length + 1, code=outcome.error[0], message=outcome.error[1]), end)


_STORED_ERRORS = {
    MessageStatus.FAILED: ("reply_failed", "the model could not finish this reply"),
    MessageStatus.INCOMPLETE: INTERRUPTED,
    MessageStatus.IN_PROGRESS: ("interrupted", "this reply is no longer being written"),
}


def stored_outcome(message: Message) -> ReplyOutcome:
    """How a stored reply ended, as its `end` (and `error`) events say it."""
    default_error = _STORED_ERRORS.get(message.status)
    if default_error is not None:
        error = default_error
        if message.error_code:
            error = (message.error_code, message.error_message or default_error[1])
        return ReplyOutcome(
            status=message.status, finish_reason=FINISH_ERROR, usage=message.usage, error=error
        )
    if message.status is MessageStatus.CANCELLED:
        return ReplyOutcome(
            status=message.status, finish_reason=FINISH_CANCELLED, usage=message.usage
        )
    return ReplyOutcome.completed(message.finish_reason or FINISH_STOP, message.usage)


class ResumedPastEnd(DomainError):
    """A client asked to resume after an event id beyond a finished reply's last event."""

    code = "invalid_field"

    def __init__(self, after: int, last_event_id: int) -> None:
        super().__init__(f"is {after}, beyond this reply's last event ({last_event_id}, its `end`)")
        self.after = after
        self.last_event_id = last_event_id


def end_event_id(text_length: int) -> int:
    """The id of the `end` event of a reply of `text_length` characters: its last event."""
    return text_length + 2


def check_resume(after: int | None, last_event_id: int) -> bool:
    """Whether anything of a finished reply follows event id `after`; ResumedPastEnd for an
    id no event of it ever had."""
    if after is None or after < last_event_id:
        return True
    if after > last_event_id:
        raise ResumedPastEnd(after, last_event_id)
    return False


# Stored with every character the stream sent: the final write of a finished reply. An
# incomplete reply may have been recovered after a crash from a text flushed earlier.
_FINAL_TEXT = (MessageStatus.COMPLETED, MessageStatus.CANCELLED, MessageStatus.FAILED)


def stored_reply_events(
    message: Message, *, user_message_id: UUID | None, after: int | None
) -> tuple[ReplyEvent, ...] | None:
    """The events of a stored reply that come after event id `after` (all when None).

    The text a client saw already (up to `after`) is left out; the rest comes as one chunk
    whose id is the stored text's length, as the last live chunk's was. None when `after`
    is the reply's last event (nothing follows it); ResumedPastEnd when it is beyond it.
    A reply whose stored text may be shorter than what was streamed (recovered after a
    crash) ends, for a client that saw more of it, with `error` and `end` just after `after`.
    """
    length = len(message.content)
    outcome = stored_outcome(message)
    if after is not None and after > end_event_id(length) and message.status not in _FINAL_TEXT:
        return closing_events(message.id, after, outcome)  # ids after+1 and after+2
    if not check_resume(after, end_event_id(length)):
        return None
    start = ReplyStarted(
        message_id=message.id,
        user_message_id=user_message_id,
        chat_session_id=message.chat_session_id,
        model_id=message.model_id,
    )
    seen = min(max(after or 0, 0), length)
    events: list[ReplyEvent] = [start]
    if seen < length:
        events.append(ReplyContent(id=length, message_id=message.id, text=message.content[seen:]))
    events.extend(closing_events(message.id, length, outcome))
    if after is None:
        return tuple(events)
    return tuple(event for event in events if event.id > after)
