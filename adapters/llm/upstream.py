"""One streamed request to a model provider: its timeouts, its retries, its failures.

Every provider streams Server-Sent Events over `http1.UpstreamClient`, decoded by
`event_stream`; a provider's `Reply` subclass says what its events mean. Transport
errors become ModelFailure here. A failure before the first token may be retried (see
`Retries`); once text has been emitted, none is.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any, ClassVar, TypeGuard, TypeVar

import attrs
import orjson
import trio

from conversation_service.adapters.llm.event_stream import EventStreamDecoder, ServerSentEvent
from conversation_service.adapters.llm.http1 import (
    UpstreamClient,
    UpstreamConnectError,
    UpstreamConnectTimeout,
    UpstreamTransportError,
)
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream_errors import (
    TransientFailure,
    redact,
    status_failure,
)
from conversation_service.domain.context import PromptMessage, estimated_usage
from conversation_service.domain.model import Usage
from conversation_service.ports.language_model import Emit, ModelFailure, ModelResult

Guard = Callable[[str], Awaitable[None]]  # raises ValueError when a URL may not be requested


@attrs.frozen(kw_only=True)
class Timeouts:
    """How long to wait on the upstream, in seconds."""

    connect: float = 10.0
    first_token: float = 60.0  # from sending the request to the first event
    idle: float = 30.0  # between two events
    total: float = 600.0  # the whole reply, retries included, however fast it streams


@attrs.frozen(kw_only=True)
class StreamRequest:
    """A provider's POST whose answer is an event stream."""

    url: str
    headers: dict[str, str] = attrs.field(repr=False)  # they carry the key
    body: dict[str, Any]
    secret: str | None = attrs.field(default=None, repr=False)  # kept out of every failure


@attrs.define
class Reply:
    """What one attempt's stream has produced so far; a provider subclass reads its events."""

    end_marker: ClassVar[str] = "its end"  # what a complete stream ends with, for failures

    secret: str | None = attrs.field(default=None, repr=False)
    responded: bool = False
    events: int = 0
    parts: list[str] = attrs.Factory(list)
    finish_reason: str | None = None
    usage: Usage | None = None

    async def take(self, event: ServerSentEvent, emit: Emit) -> bool:
        """Apply one event; True once it completes the reply."""
        raise NotImplementedError

    async def text(self, piece: object, emit: Emit) -> None:
        """Emit `piece` when it is text; anything else carries none.

        A NUL (JSON's \u0000) becomes U+FFFD: no text the service stores holds one (a user's
        is refused, and PostgreSQL cannot store it in text).
        """
        if isinstance(piece, str) and piece:
            if "\x00" in piece:
                piece = piece.replace("\x00", "\ufffd")
            self.parts.append(piece)
            await emit(piece)

    def result(self, prompt: Sequence[PromptMessage]) -> ModelResult:
        """How the reply ended; usage is estimated when the provider reported none.

        A stream that ends properly without a single piece of text is a failure, not a
        reply: the user would get an empty message that says nothing of why.
        """
        if not self.parts:
            raise ModelFailure(
                "upstream_bad_response",
                f"the model ended its reply without any text "
                f"(finish_reason {self.finish_reason or 'none'})",
            )
        usage = self.usage or estimated_usage(prompt, "".join(self.parts))
        return ModelResult(finish_reason=self.finish_reason or "stop", usage=usage)


R = TypeVar("R", bound=Reply)


def json_object(data: str, what: str) -> dict[str, Any]:
    """An event's `data` as the JSON object it must be; upstream_bad_response if it is not."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ModelFailure(
            "upstream_bad_response", f"the model sent {what} that is not JSON"
        ) from None
    if not isinstance(value, dict):
        raise ModelFailure("upstream_bad_response", f"the model sent {what} that is not an object")
    return value


def is_count(value: object) -> TypeGuard[int]:
    """Whether a provider's token count is one: an int >= 0 (JSON's true is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def stream_reply(
    client: UpstreamClient,
    request: StreamRequest,
    new_reply: Callable[[], R],
    emit: Emit,
    *,
    timeouts: Timeouts,
    retries: Retries,
    guard: Guard | None = None,
) -> R:
    """Send `request`, feed its events to a fresh `new_reply()` per attempt, return the last.

    Raises ModelFailure when the reply cannot be completed, after any retries it deserves.
    """
    with trio.move_on_after(timeouts.total) as whole:
        for attempt in itertools.count(1):
            reply = new_reply()
            try:
                await _attempt(client, request, reply, emit, timeouts, guard)
            except TransientFailure as failure:
                if reply.parts:  # the caller has text already: another attempt would repeat it
                    raise ModelFailure(failure.code, failure.message) from failure
                await trio.sleep(_wait_or_give_up(failure, attempt, retries, whole.deadline))
            else:
                return reply
    raise ModelFailure("upstream_timeout", f"the reply took longer than {timeouts.total:g}s")


def _wait_or_give_up(
    failure: TransientFailure, attempt: int, retries: Retries, deadline: float
) -> float:
    """Seconds to wait before the next attempt; raises the failure when there will be none."""
    message = failure.message
    if attempt > retries.max_retries:
        if attempt > 1:
            message += f" (gave up after {attempt} attempts)"
        raise ModelFailure(failure.code, message) from failure
    if failure.retry_after is not None and failure.retry_after > retries.max_wait:
        raise ModelFailure(
            failure.code,
            f"{message} (it asked to retry after {failure.retry_after:g}s, longer than the"
            f" {retries.max_wait:g}s this model waits)",
        ) from failure
    wait = failure.retry_after if failure.retry_after is not None else retries.backoff(attempt)
    if trio.current_time() + wait >= deadline:  # the retry could not finish in time anyway
        raise ModelFailure(
            failure.code, f"{message} (no time left to retry within the total timeout)"
        ) from failure
    return wait


# How long the body after the end marker may take to end. Read to its end, the connection
# goes back to the client's pool (no new TCP and TLS handshake for the next reply);
# abandoned, it is closed.
_DRAIN_SECONDS = 0.5


async def _read_to_the_end(body: AsyncIterator[bytes]) -> None:
    with trio.move_on_after(_DRAIN_SECONDS):
        try:
            async for _ in body:
                pass  # nothing follows the end marker but the end of the body
        except UpstreamTransportError:
            pass  # the reply is whole already; only the connection is lost


async def _attempt(
    client: UpstreamClient,
    request: StreamRequest,
    reply: Reply,
    emit: Emit,
    timeouts: Timeouts,
    guard: Guard | None,
) -> None:
    # Upstream silence: first_token until the first event, then idle between events.
    with trio.CancelScope(deadline=trio.current_time() + timeouts.first_token) as silence:
        if guard is not None:
            try:
                await guard(request.url)  # again at each attempt: DNS may have changed since
            except ValueError as e:
                raise ModelFailure("model_misconfigured", f"the model's URL is refused: {e}") from e
        await _stream(client, request, reply, silence, emit, timeouts)
    if silence.cancelled_caught:
        if reply.events:
            raise ModelFailure("upstream_timeout", f"the model sent nothing for {timeouts.idle:g}s")
        raise ModelFailure(
            "upstream_timeout", f"the model did not start within {timeouts.first_token:g}s"
        )


async def _stream(
    client: UpstreamClient,
    request: StreamRequest,
    reply: Reply,
    silence: trio.CancelScope,
    emit: Emit,
    t: Timeouts,
) -> None:
    # Reads are bounded by the cancel scopes; connecting and sending by t.connect.
    try:
        async with client.stream(
            "POST",
            request.url,
            headers=request.headers,
            json_body=request.body,
            connect_timeout=t.connect,
        ) as response:
            reply.responded = True
            if not response.is_success:
                raise await status_failure(response, request.secret)
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                raise ModelFailure(
                    "upstream_bad_response",
                    f"the model did not stream: its Content-Type is {content_type[:100]!r},"
                    " not text/event-stream",
                )
            first_event_due = silence.deadline
            whole = False

            def reading(waiting: bool) -> None:
                # Only waits on the upstream are silence: the caller's pace is not. Set
                # once per network read, not per event: a burst's events share one read.
                if not waiting or whole:  # once whole, only the drain's bound applies
                    silence.deadline = math.inf
                elif reply.events:
                    silence.deadline = trio.current_time() + t.idle
                else:
                    silence.deadline = first_event_due

            # The events of each network read are taken in a plain loop: an async generator
            # of events would cost a step of its own for every event.
            decoder = EventStreamDecoder()
            async with aclosing(response.aiter_bytes(reading)) as body:
                async for data in body:
                    for event in decoder.feed(data):
                        reply.events += 1
                        if await reply.take(event, emit):
                            whole = True
                            silence.deadline = math.inf
                            await _read_to_the_end(body)
                            return
        raise ModelFailure(
            "upstream_bad_response", f"the model's stream ended before {reply.end_marker}"
        )
    except UpstreamConnectTimeout as e:
        raise TransientFailure(
            "upstream_timeout", f"could not connect to the model within {t.connect:g}s"
        ) from e
    except UpstreamConnectError as e:
        raise TransientFailure("upstream_unavailable", "could not connect to the model") from e
    except UpstreamTransportError as e:
        described = redact(str(e) or type(e).__name__, request.secret)
        if not reply.responded:  # no answer came, so no reply had begun
            raise TransientFailure(
                "upstream_unavailable", f"the request to the model failed: {described}"
            ) from e
        raise ModelFailure(
            "upstream_bad_response",
            f"the connection broke before the reply was complete: {described}",
        ) from e
