"""A reply's stream for the sync client: events exactly once, across dropped connections."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx
from httpx_sse import EventSource, ServerSentEvent

from conversation_service.client.calls import Call
from conversation_service.client.endpoint import check_event_stream, connection_error
from conversation_service.client.events import ContentEvent, Reply, StreamEvent
from conversation_service.client.reply_tracker import ReplyTracker
from conversation_service.client.retries import RETRYABLE_ERRORS, Attempts

# Sends a call (retrying as its Attempts allow) and answers its streamed response.
Open = Callable[[Call[Any], Mapping[str, str], Attempts], httpx.Response]


class ChatStream:
    """A reply as it streams: iterate its events, or `text_stream` for its text.

    Use it as a context manager (`with client.stream_chat(...) as stream:`); entering sends
    the request, so an error answer (a busy or completed session, say) raises there. A
    dropped connection is resumed where the caller is, so each event comes once; `end` is
    the last. A failed reply raises ReplyFailedError after its last text. Iteration can go on
    after an interruption (KeyboardInterrupt, say): the stream resumes from the last event
    handed out.
    """

    def __init__(self, open_: Open, tracker: ReplyTracker, attempts: Attempts) -> None:
        self._open_call = open_
        self._tracker = tracker
        self._attempts = attempts
        self._response: httpx.Response | None = None
        self._events: Iterator[ServerSentEvent] | None = None

    def __enter__(self) -> ChatStream:
        self._open()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def message_id(self) -> UUID | None:
        """The reply's message id, once its `start` has been seen."""
        return self._tracker.message_id

    @property
    def text(self) -> str:
        """The reply's text handed out so far."""
        return self._tracker.text

    @property
    def text_stream(self) -> Iterator[str]:
        """The reply's text, chunk by chunk (the same stream: events it passes are used up)."""
        return (event.text for event in self if isinstance(event, ContentEvent))

    def final_message(self) -> Reply:
        """The whole reply, once it has ended (reading the rest of the stream)."""
        for _ in self:
            pass
        return self._tracker.reply()

    def close(self) -> None:
        """Close the connection; the reply goes on on the server (cancel stops it)."""
        self._drop()

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> StreamEvent:
        tracker = self._tracker
        while not tracker.over:
            if self._events is None:
                self._open()
                continue
            try:
                sse = next(self._events)
            except StopIteration:  # closed without `end`: as good as dropped
                self._dropped(None)
                continue
            except RETRYABLE_ERRORS as error:
                self._dropped(error)
                continue
            except BaseException:
                self._drop()  # whatever it was, this response is spent: resume on a new one
                raise
            try:
                event = tracker.accept(sse)
            except BaseException:
                self._drop()
                raise
            if event is not None:
                self._attempts.progressed()
                return event
        self._drop()
        raise StopIteration

    def _open(self) -> None:
        if self._events is not None or self._tracker.over:
            return
        call, headers = self._tracker.next_request()
        response = self._open_call(call, headers, self._attempts)
        if response.status_code == 204:
            response.close()
            self._tracker.ended_early()
            return
        try:
            check_event_stream(response)
        except BaseException:
            response.close()
            raise
        self._response = response
        self._events = EventSource(response).iter_sse()

    def _dropped(self, error: httpx.TransportError | None) -> None:
        self._drop()
        wait = self._attempts.next_wait(None)
        if wait is None:
            if error is None:
                error = httpx.RemoteProtocolError("the stream closed before its end")
            raise connection_error(error) from error
        time.sleep(wait)

    def _drop(self) -> None:
        response, self._response, self._events = self._response, None, None
        if response is not None:
            response.close()
