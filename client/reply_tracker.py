"""What a reply's stream has shown so far, without I/O: the sync and async streams feed it the
events they read, and ask it how to resume when their connection drops.

Resuming (README, "Streams"): once `start` has been seen the reply has a message id, and
GET /api/conversation/stream with Last-Event-ID set to the last id handed out sends every
later event once. Before `start`, the POST is sent again with its Idempotency-Key: the
server answers it by re-attaching to the same reply from its beginning, and stores no second
message. Ids at or below the last one handed out are dropped, so the caller sees each event
exactly once whatever a server resends.
"""

from __future__ import annotations

from uuid import UUID

import attrs
from httpx_sse import ServerSentEvent

from conversation_service.client.calls import Call, reattach
from conversation_service.client.decoding import decode_event
from conversation_service.client.errors import ReplyFailedError, ResponseFormatError, StreamError
from conversation_service.client.events import (
    ContentEvent,
    EndEvent,
    ErrorEvent,
    Reply,
    StartEvent,
    StreamEvent,
)
from conversation_service.client.types import ReplyFailure


@attrs.define
class ReplyTracker:
    """One reply's stream, as seen so far."""

    session_id: UUID | str
    opening: Call[None]  # the POST that sent the message, or the GET of a re-attach
    after: int | None = None  # the last event id handed out (or given to re-attach after)
    start: StartEvent | None = None
    end: EndEvent | None = None
    error: ErrorEvent | None = None
    over: bool = False  # nothing more will come: `end` was seen, or the server said 204
    _parts: list[str] = attrs.field(factory=list)

    @property
    def message_id(self) -> UUID | None:
        """The reply's message id, once its `start` was seen."""
        return None if self.start is None else self.start.message_id

    @property
    def text(self) -> str:
        """The reply's text handed out so far."""
        return "".join(self._parts)

    def next_request(self) -> tuple[Call[None], dict[str, str]]:
        """The request that (re)opens the stream where the caller is, and its extra headers."""
        headers = {"Accept": "text/event-stream"}
        if self.after is not None:
            headers["Last-Event-ID"] = str(self.after)
        if self.start is not None and self.opening.method == "POST":
            return reattach(self.session_id, self.start.message_id), headers
        return self.opening, headers

    def ended_early(self) -> None:
        """The server answered 204: the reply was over at the last event handed out."""
        self.over = True

    def accept(self, sse: ServerSentEvent) -> StreamEvent | None:
        """The event to hand out for `sse`; None for one already handed out, one this client
        does not know, or `error` (kept: `end` raises it). Raises ReplyFailedError at the
        `end` of a failed reply."""
        try:
            event_id = int(sse.id)
        except (TypeError, ValueError):
            raise ResponseFormatError(f"a {sse.event!r} event without a numeric id") from None
        if self.over or (self.after is not None and event_id <= self.after):
            return None
        event = decode_event(sse.event, event_id, sse.data)
        self.after = event_id
        match event:
            case StartEvent():
                self.start = event
            case ContentEvent():
                self._parts.append(event.text)
            case ErrorEvent():
                self.error = event
                return None
            case EndEvent():
                self.end, self.over = event, True
                if self.error is not None:
                    raise self.failure()
        return event

    def reply(self) -> Reply:
        """The finished reply; raises ReplyFailedError for a failed one."""
        if self.end is None:
            raise StreamError(
                "the reply was over before this stream's first event: read it with list_messages"
            )
        if self.error is not None:
            raise self.failure()
        return self._reply()

    def failure(self) -> ReplyFailedError:
        assert self.error is not None
        return ReplyFailedError(self.error.code, self.error.message, self._reply())

    def _reply(self) -> Reply:
        assert self.end is not None
        error = self.error
        return Reply(
            id=self.end.message_id,
            chat_session_id=self.start.chat_session_id
            if self.start
            else UUID(str(self.session_id)),
            user_message_id=self.start.user_message_id if self.start else None,
            model_id=self.start.model_id if self.start else None,
            content=self.text,
            finish_reason=self.end.finish_reason,
            usage=self.end.usage,
            error=None if error is None else ReplyFailure(code=error.code, message=error.message),
        )
