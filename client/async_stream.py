"""A reply's stream for the async client: events exactly once, across dropped connections.

It runs on trio and on asyncio alike: httpx's AsyncClient does (through anyio), and the
waits here are anyio's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any
from uuid import UUID

import anyio
import httpx
from httpx_sse import EventSource, ServerSentEvent

from conversation_service.client.calls import Call
from conversation_service.client.endpoint import check_event_stream, connection_error
from conversation_service.client.events import ContentEvent, Reply, StreamEvent
from conversation_service.client.reply_tracker import ReplyTracker
from conversation_service.client.retries import RETRYABLE_ERRORS, Attempts

# Sends a call (retrying as its Attempts allow) and answers its streamed response.
AsyncOpen = Callable[[Call[Any], Mapping[str, str], Attempts], Awaitable[httpx.Response]]

CLOSE_DEADLINE = 5.0  # seconds a connection gets to close, even when the caller is cancelled


class AsyncChatStream:
    """A reply as it streams: `async for` its events, or `text_stream` for its text.

    `async with client.stream_chat(...) as stream:`; entering sends the request, so an error
    answer raises there. A dropped connection is resumed where the caller is, so each event
    comes once; `end` is the last. A failed reply raises ReplyFailedError after its last
    text. Iteration can go on after an interruption: it resumes from the last event handed
    out.
    """

    def __init__(self, open_: AsyncOpen, tracker: ReplyTracker, attempts: Attempts) -> None:
        self._open_call = open_
        self._tracker = tracker
        self._attempts = attempts
        self._response: httpx.Response | None = None
        self._events: AsyncIterator[ServerSentEvent] | None = None

    async def __aenter__(self) -> AsyncChatStream:
        await self._open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def message_id(self) -> UUID | None:
        """The reply's message id, once its `start` has been seen."""
        return self._tracker.message_id

    @property
    def text(self) -> str:
        """The reply's text handed out so far."""
        return self._tracker.text

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """The reply's text, chunk by chunk (the same stream: events it passes are used up)."""
        return _Texts(self)

    async def final_message(self) -> Reply:
        """The whole reply, once it has ended (reading the rest of the stream)."""
        async for _ in self:
            pass
        return self._tracker.reply()

    async def aclose(self) -> None:
        """Close the connection; the reply goes on on the server (cancel stops it)."""
        await self._drop()

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        tracker = self._tracker
        while not tracker.over:
            if self._events is None:
                await self._open()
                continue
            try:
                sse = await self._events.__anext__()
            except StopAsyncIteration:  # closed without `end`: as good as dropped
                await self._dropped(None)
                continue
            except RETRYABLE_ERRORS as error:
                await self._dropped(error)
                continue
            except BaseException:
                await self._drop()  # cancelled, say: this response is spent
                raise
            try:
                event = tracker.accept(sse)
            except BaseException:
                await self._drop()
                raise
            if event is not None:
                self._attempts.progressed()
                return event
        await self._drop()
        raise StopAsyncIteration

    async def _open(self) -> None:
        if self._events is not None or self._tracker.over:
            return
        call, headers = self._tracker.next_request()
        response = await self._open_call(call, headers, self._attempts)
        if response.status_code == 204:
            await _close(response)
            self._tracker.ended_early()
            return
        try:
            check_event_stream(response)
        except BaseException:
            await _close(response)
            raise
        self._response = response
        self._events = EventSource(response).aiter_sse()

    async def _dropped(self, error: httpx.TransportError | None) -> None:
        await self._drop()
        wait = self._attempts.next_wait(None)
        if wait is None:
            if error is None:
                error = httpx.RemoteProtocolError("the stream closed before its end")
            raise connection_error(error) from error
        await anyio.sleep(wait)

    async def _drop(self) -> None:
        response, events = self._response, self._events
        self._response = self._events = None
        if response is None:
            return
        with anyio.move_on_after(CLOSE_DEADLINE, shield=True):
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
            await response.aclose()


async def _close(response: httpx.Response) -> None:
    with anyio.move_on_after(CLOSE_DEADLINE, shield=True):
        await response.aclose()


class _Texts:
    """The text of a stream's content events, as an async iterator (not a generator, so that
    nothing is left for the event loop to finalise when the caller stops early)."""

    def __init__(self, stream: AsyncChatStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _Texts:
        return self

    async def __anext__(self) -> str:
        async for event in self._stream:
            if isinstance(event, ContentEvent):
                return event.text
        raise StopAsyncIteration
