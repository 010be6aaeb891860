"""The blocking client: every API call as a method, typed results, retries, resumed streams."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx

from conversation_service.client import calls
from conversation_service.client.calls import Call
from conversation_service.client.endpoint import DEFAULT_TIMEOUT, Endpoint, connection_error
from conversation_service.client.errors import error_from_response
from conversation_service.client.reply_tracker import ReplyTracker
from conversation_service.client.retries import Attempts, RetryPolicy, retry_after
from conversation_service.client.sync_stream import ChatStream
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


class Pager(Generic[T]):
    """A listing, fetched a page at a time as it is iterated."""

    def __init__(self, fetch: Callable[[int, int], Page[T]], page_size: int, offset: int) -> None:
        self._fetch = fetch
        self._page_size = page_size
        self._offset = offset

    def pages(self) -> Iterator[Page[T]]:
        offset = self._offset
        while True:
            page = self._fetch(self._page_size, offset)
            yield page
            if not page.has_more or not page.items:
                return
            offset += len(page.items)

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items


class Client:
    """A Conversation Service client for one organisation, with one token.

    `Client("http://127.0.0.1:8000", token=..., org_id=...)`; close it (or use `with`).
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
        http_client: httpx.Client | None = None,
    ) -> None:
        self._endpoint = Endpoint(base_url=base_url, token=token, org_id=org_id)
        self._retry = retry or RetryPolicy()
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # Models and usage

    def list_models(self) -> list[Model]:
        return self._run(calls.list_models())

    def register_model(self, entry: Mapping[str, Any]) -> Model:
        """An organisation's own model (admin tokens); `entry` as POST /api/models takes it."""
        return self._run(calls.register_model(entry))

    def remove_model(self, model_id: UUID | str) -> None:
        self._run(calls.remove_model(model_id))

    def usage(self, *, start: datetime | None = None, end: datetime | None = None) -> UsageReport:
        """What replies cost per model from `start` to `end` (default: the last 30 days)."""
        return self._run(calls.usage(start, end))

    def health(self) -> str:
        return self._run(calls.health())

    # Conversations

    def create_conversation(self, title: str, *, is_archived: bool = False) -> Conversation:
        return self._run(calls.create_conversation(title, is_archived))

    def list_conversations(
        self, *, is_archived: bool | None = None, page_size: int = 100, offset: int = 0
    ) -> Pager[Conversation]:
        """Every conversation, newest activity first (one activity moves a conversation up,
        so a long walk may meet one twice)."""
        return Pager(
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
    ) -> Pager[SearchResult]:
        """Conversations whose title or messages hold every term of `q`, best first (the
        syntax: words, "phrases", prefix*; BadRequestError naming `q` for no word)."""
        return Pager(
            lambda limit, at: self._run(calls.search(q, limit, at, is_archived)),
            page_size,
            offset,
        )

    def get_conversation(self, conversation_id: UUID | str) -> ConversationWithSessions:
        return self._run(calls.get_conversation(conversation_id))

    def list_messages(
        self,
        conversation_id: UUID | str,
        *,
        leaf_id: UUID | str | None = None,
        page_size: int = 100,
        offset: int = 0,
    ) -> Pager[Message]:
        """A conversation's messages, oldest first: each session's current branch, or with
        `leaf_id` that message's branch of its session (down its newest children)."""
        return Pager(
            lambda limit, at: self._run(calls.list_messages(conversation_id, limit, at, leaf_id)),
            page_size,
            offset,
        )

    # Chat sessions and replies

    def create_session(
        self,
        conversation_id: UUID | str,
        model_id: UUID | str,
        *,
        system_prompt: str | None = None,
        params: GenerationParams | None = None,
        context: ContextScope | str | None = None,
    ) -> ChatSession:
        call = calls.create_session(conversation_id, model_id, system_prompt, params, context)
        return self._run(call)

    def stream_chat(
        self, session_id: UUID | str, message: str, *, multitask: Multitask | str | None = None
    ) -> ChatStream:
        """Send a message and follow its reply: `with client.stream_chat(id, "hi") as s:`."""
        opening = calls.stream_chat(session_id, message, multitask)
        return self._stream(ReplyTracker(session_id=session_id, opening=opening))

    def regenerate(
        self,
        session_id: UUID | str,
        message_id: UUID | str | None = None,
        *,
        multitask: Multitask | str | None = None,
    ) -> ChatStream:
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
    ) -> ChatStream:
        """A new version of user message `message_id`, answered and streamed like
        stream_chat's reply; the first version is kept on its own branch."""
        opening = calls.edit_message(session_id, message_id, content, multitask)
        return self._stream(ReplyTracker(session_id=session_id, opening=opening))

    def select_branch(self, session_id: UUID | str, message_id: UUID | str) -> ChatSession:
        """Make the branch through `message_id` the session's current one; the session."""
        return self._run(calls.select_branch(session_id, message_id))

    def attach(
        self, session_id: UUID | str, message_id: UUID | str, *, after: int | None = None
    ) -> ChatStream:
        """Follow a reply again, running or finished, from after event id `after` (all of
        it when None); a reply already over at `after` is a stream without events."""
        opening = calls.reattach(session_id, message_id)
        return self._stream(ReplyTracker(session_id=session_id, opening=opening, after=after))

    def cancel(self, session_id: UUID | str, *, message_id: UUID | str | None = None) -> bool:
        """Stop the session's running reply (or `message_id`, running or waiting); whether
        one was stopped."""
        return self._run(calls.cancel(session_id, message_id))

    def complete_session(self, session_id: UUID | str) -> ChatSession:
        return self._run(calls.complete_session(session_id))

    # Sending

    def _stream(self, tracker: ReplyTracker) -> ChatStream:
        return ChatStream(self._open_stream, tracker, Attempts(self._retry))

    def _open_stream(
        self, call: Call[Any], headers: Mapping[str, str], attempts: Attempts
    ) -> httpx.Response:
        return self._send(call, headers, attempts, stream=True)

    def _run(self, call: Call[T]) -> T:
        response = self._send(call, {}, Attempts(self._retry))
        return call.read(response)

    def _send(
        self, call: Call[Any], headers: Mapping[str, str], attempts: Attempts, stream: bool = False
    ) -> httpx.Response:
        """`call`'s successful answer (2xx), after the retries its failures allow."""
        while True:
            request = self._endpoint.build(self._http, call, headers)
            try:
                response = self._http.send(request, stream=stream)
                if not response.is_success:
                    try:
                        response.read()  # the error's JSON
                    finally:
                        response.close()
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
            time.sleep(wait)
