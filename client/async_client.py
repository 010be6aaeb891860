"""The async client: the sync client's methods as coroutines, on trio or asyncio.

httpx's AsyncClient runs on either through anyio, and so do the waits here: the same code
serves a trio program and an asyncio one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar
from uuid import UUID

import anyio
import httpx

from conversation_service.client import calls
from conversation_service.client.async_stream import AsyncChatStream
from conversation_service.client.calls import Call
from conversation_service.client.endpoint import DEFAULT_TIMEOUT, Endpoint, connection_error
from conversation_service.client.errors import error_from_response
from conversation_service.client.reply_tracker import ReplyTracker
from conversation_service.client.retries import Attempts, RetryPolicy, retry_after
from conversation_service.client.types import (
    ChatSession,
    ContextScope,
    Conversation,
    ConversationWithSessions,
    GenerationParams,
    Message,
    Model,
    Multitask,
    Page,
    SearchResult,
    UsageReport,
)

T = TypeVar("T")


class AsyncPager(Generic[T]):
    """A listing, fetched a page at a time as it is iterated with `async for`."""

    def __init__(
        self, fetch: Callable[[int, int], Awaitable[Page[T]]], page_size: int, offset: int
    ) -> None:
        self._fetch = fetch
        self._page_size = page_size
        self._offset = offset

    def __aiter__(self) -> _PageWalk[T]:
        return _PageWalk(self._fetch, self._page_size, self._offset)


class _PageWalk(Generic[T]):
    """One walk through a listing (a class, not an async generator: nothing is left for the
    event loop to finalise when the caller stops early)."""

    def __init__(
        self, fetch: Callable[[int, int], Awaitable[Page[T]]], page_size: int, offset: int
    ) -> None:
        self._fetch = fetch
        self._page_size = page_size
        self._offset: int | None = offset  # None: the last page was read
        self._items: list[T] = []

    def __aiter__(self) -> _PageWalk[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._offset is None:
                raise StopAsyncIteration
            page = await self._fetch(self._page_size, self._offset)
            self._items = list(page.items)
            more = page.has_more and page.items
            self._offset = self._offset + len(page.items) if more else None
        return self._items.pop(0)


class AsyncClient:
    """A Conversation Service client for one organisation, with one token, for trio or asyncio.

    `AsyncClient("http://127.0.0.1:8000", token=..., org_id=...)`; `await client.aclose()`
    (or use `async with`).
    Requests that fail in a way that may pass (429 and 503 after their Retry-After,
    connection failures) are retried as `retry` says; every POST carries an Idempotency-Key
    reused by its retries, so a retry never does the work twice. Errors are ApiError
    subclasses (see `conversation_service.client.errors`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        org_id: UUID | str,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._endpoint = Endpoint(base_url=base_url, token=token, org_id=org_id)
        self._retry = retry or RetryPolicy()
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # Models and usage

    async def list_models(self) -> list[Model]:
        return await self._run(calls.list_models())

    async def register_model(self, entry: Mapping[str, Any]) -> Model:
        """An organisation's own model (admin tokens); `entry` as POST /api/models takes it."""
        return await self._run(calls.register_model(entry))

    async def remove_model(self, model_id: UUID | str) -> None:
        await self._run(calls.remove_model(model_id))

    async def usage(
        self, *, start: datetime | None = None, end: datetime | None = None
    ) -> UsageReport:
        """What replies cost per model from `start` to `end` (default: the last 30 days)."""
        return await self._run(calls.usage(start, end))

    async def health(self) -> str:
        return await self._run(calls.health())

    # Conversations

    async def create_conversation(self, title: str, *, is_archived: bool = False) -> Conversation:
        return await self._run(calls.create_conversation(title, is_archived))

    def list_conversations(
        self, *, is_archived: bool | None = None, page_size: int = 100, offset: int = 0
    ) -> AsyncPager[Conversation]:
        """Every conversation, newest activity first (one activity moves a conversation up,
        so a long walk may meet one twice)."""
        return AsyncPager(
            lambda limit, at: self._run(calls.list_conversations(limit, at, is_archived)),
            page_size,
            offset,
        )

    def search(
        self,
        q: str,
        *,
        is_archived: bool | None = None,
        page_size: int = 20,
        offset: int = 0,
    ) -> AsyncPager[SearchResult]:
        """Conversations whose title or messages hold every term of `q`, best first (the
        syntax: words, "phrases", prefix*; BadRequestError naming `q` for no word)."""
        return AsyncPager(
            lambda limit, at: self._run(calls.search(q, limit, at, is_archived)),
            page_size,
            offset,
        )

    async def get_conversation(self, conversation_id: UUID | str) -> ConversationWithSessions:
        return await self._run(calls.get_conversation(conversation_id))

    def list_messages(
        self,
        conversation_id: UUID | str,
        *,
        leaf_id: UUID | str | None = None,
        page_size: int = 100,
        offset: int = 0,
    ) -> AsyncPager[Message]:
        """A conversation's messages, oldest first: each session's current branch, or with
        `leaf_id` that message's branch of its session (down its newest children)."""
        return AsyncPager(
            lambda limit, at: self._run(calls.list_messages(conversation_id, limit, at, leaf_id)),
            page_size,
            offset,
        )

    # Chat sessions and replies

    async def create_session(
        self,
        conversation_id: UUID | str,
        model_id: UUID | str,
        *,
        system_prompt: str | None = None,
        params: GenerationParams | None = None,
        context: ContextScope | str | None = None,
    ) -> ChatSession:
        call = calls.create_session(conversation_id, model_id, system_prompt, params, context)
        return await self._run(call)

    def stream_chat(
        self, session_id: UUID | str, message: str, *, multitask: Multitask | str | None = None
    ) -> AsyncChatStream:
        """Send a message and follow its reply: `async with client.stream_chat(id, "hi") as s:`."""
        opening = calls.stream_chat(session_id, message, multitask)
        return self._stream(ReplyTracker(session_id=session_id, opening=opening))

    def regenerate(
        self,
        session_id: UUID | str,
        message_id: UUID | str | None = None,
        *,
        multitask: Multitask | str | None = None,
    ) -> AsyncChatStream:
        """Another reply to the question `message_id` answered (None: the session's last
        reply), streamed like stream_chat's; the first reply is kept beside it."""
        opening = calls.regenerate(session_id, message_id, multitask)
        return self._stream(ReplyTracker(session_id=session_id, opening=opening))

    def edit_message(
        self,
        session_id: UUID | str,
        message_id: UUID | str,
        content: str,
        *,
        multitask: Multitask | str | None = None,
    ) -> AsyncChatStream:
        """A new version of user message `message_id`, answered and streamed like
        stream_chat's reply; the first version is kept on its own branch."""
        opening = calls.edit_message(session_id, message_id, content, multitask)
        return self._stream(ReplyTracker(session_id=session_id, opening=opening))

    async def select_branch(self, session_id: UUID | str, message_id: UUID | str) -> ChatSession:
        """Make the branch through `message_id` the session's current one; the session."""
        return await self._run(calls.select_branch(session_id, message_id))

    def attach(
        self, session_id: UUID | str, message_id: UUID | str, *, after: int | None = None
    ) -> AsyncChatStream:
        """Follow a reply again, running or finished, from after event id `after` (all of
        it when None); a reply already over at `after` is a stream without events."""
        opening = calls.reattach(session_id, message_id)
        return self._stream(ReplyTracker(session_id=session_id, opening=opening, after=after))

    async def cancel(self, session_id: UUID | str, *, message_id: UUID | str | None = None) -> bool:
        """Stop the session's running reply (or `message_id`, running or waiting); whether
        one was stopped."""
        return await self._run(calls.cancel(session_id, message_id))

    async def complete_session(self, session_id: UUID | str) -> ChatSession:
        return await self._run(calls.complete_session(session_id))

    # Sending

    def _stream(self, tracker: ReplyTracker) -> AsyncChatStream:
        return AsyncChatStream(self._open_stream, tracker, Attempts(self._retry))

    async def _open_stream(
        self, call: Call[Any], headers: Mapping[str, str], attempts: Attempts
    ) -> httpx.Response:
        return await self._send(call, headers, attempts, stream=True)

    async def _run(self, call: Call[T]) -> T:
        response = await self._send(call, {}, Attempts(self._retry))
        return call.read(response)

    async def _send(
        self, call: Call[Any], headers: Mapping[str, str], attempts: Attempts, stream: bool = False
    ) -> httpx.Response:
        """`call`'s successful answer (2xx), after the retries its failures allow."""
        while True:
            request = self._endpoint.build(self._http, call, headers)
            try:
                response = await self._http.send(request, stream=stream)
                if not response.is_success:
                    try:
                        await response.aread()  # the error's JSON
                    finally:
                        await response.aclose()
            except httpx.TransportError as error:
                wait = attempts.after_error(error)
                if wait is None:
                    raise connection_error(error) from error
            else:
                if response.is_success:
                    return response
                wait = attempts.after_response(response)
                if wait is None:
                    raise error_from_response(response, retry_after(response.headers))
            await anyio.sleep(wait)
