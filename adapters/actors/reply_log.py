"""The events of one live reply, kept compactly, read by any number of followers.

A reply is kept as its text plus the offsets where its chunks ended, not as event objects:
a 100 KB reply of 20,000 chunks costs about its text and 8 bytes a chunk. Events (the domain's
typed values, see domain/replies.py) are made when a follower reads them. Each follower keeps
its own cursor instead of a buffer, so a reader that stops reading costs nothing and never
slows the others.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable
from uuid import UUID

import trio

from conversation_service.domain.replies import (
    ReplyContent,
    ReplyEvent,
    ReplyOutcome,
    ReplyStarted,
    closing_events,
)

_BLOCK_CHARS = 4096  # small chunks are joined into blocks of about this size


class _Text:
    """Append-only text held in blocks of a few KB, sliceable by offsets."""

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._starts = array("q")
        self.length = 0

    def append(self, chunk: str) -> None:
        if self._blocks and len(self._blocks[-1]) < _BLOCK_CHARS:
            self._blocks[-1] += chunk  # copies at most one block
        else:
            self._starts.append(self.length)
            self._blocks.append(chunk)
        self.length += len(chunk)

    def slice(self, start: int, stop: int) -> str:
        parts = []
        index = max(bisect_right(self._starts, start) - 1, 0)
        while start < stop:
            block, offset = self._blocks[index], self._starts[index]
            parts.append(block[start - offset : stop - offset])
            start = offset + len(block)
            index += 1
        return "".join(parts)

    def __str__(self) -> str:
        return "".join(self._blocks)


class ReplyLog:
    """An append-only log of one reply: `start`, content chunks, then `error`? and `end`."""

    def __init__(
        self, *, message_id: UUID, user_message_id: UUID | None, chat_session_id: UUID
    ) -> None:
        self.message_id = message_id
        self.user_message_id = user_message_id
        self.chat_session_id = chat_session_id
        self._head: list[ReplyEvent] = []  # start
        self._text = _Text()
        self._ends = array("q")  # each content event's id: the text's length after it
        self._tail: list[ReplyEvent] = []  # error and end
        # The followers' tasks waiting for the next change: woken directly, with no event
        # made and set for every chunk (a trio.Event and its parking lot are two objects).
        self._waiting: list[trio.lowlevel.Task] = []
        self._ended = trio.Event()
        self._on_finished: list[Callable[[], None]] = []
        self.outcome: ReplyOutcome | None = None  # how it ended, once it has

    def on_finished(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when the reply has ended or was refused (abandoned)."""
        self._on_finished.append(callback)

    def abandon(self) -> None:
        """The reply will never be written (its message was refused): no events follow."""
        if not self._ended.is_set():
            self._ended.set()
            self._notify()
            self._finished()

    def _finished(self) -> None:
        callbacks, self._on_finished = self._on_finished, []
        for callback in callbacks:
            callback()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    @property
    def started(self) -> bool:
        return bool(self._head)

    @property
    def last_event_id(self) -> int | None:
        return self._tail[-1].id if self._tail else None

    @property
    def text_length(self) -> int:
        return self._text.length

    def text(self) -> str:
        """The reply's text so far."""
        return str(self._text)

    def start(
        self,
        model_id: UUID | None,
        *,
        answers: UUID | None = None,
        included: int | None = None,
        trimmed: int | None = None,
    ) -> None:
        """The reply begins; `answers`: the user message it answers (known by now when a
        regenerate chose it); `included`/`trimmed`: messages in the model's context, and
        older ones left out to fit it."""
        if self._head or self._ends or self._tail:
            raise RuntimeError("a reply starts once, first")
        if answers is not None:
            self.user_message_id = answers
        self._head.append(
            ReplyStarted(
                message_id=self.message_id,
                user_message_id=self.user_message_id,
                chat_session_id=self.chat_session_id,
                model_id=model_id,
                context_messages=included,
                trimmed_messages=trimmed,
            )
        )
        self._notify()

    def content(self, text: str) -> None:
        if not text:
            return  # an empty chunk would repeat the previous id
        if self._tail:
            raise RuntimeError("reply already ended")
        self._text.append(text)
        self._ends.append(self._text.length)
        self._notify()

    def close(self, outcome: ReplyOutcome) -> None:
        """`error` (for a failure) and `end`, as `outcome` says; the log takes nothing more."""
        if self._tail or self._ended.is_set():
            raise RuntimeError("reply already ended")
        self._tail.extend(closing_events(self.message_id, self._text.length, outcome))
        self.outcome = outcome
        self._ended.set()
        self._notify()
        self._finished()

    def _notify(self) -> None:
        # Chunks that come while no follower waits (they are all running, or woken and not
        # yet run) wake nobody: a follower checks the log before it waits.
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            for task in waiting:
                trio.lowlevel.reschedule(task)

    async def _wait_change(self) -> None:
        """Until the log changes (or the caller is cancelled)."""
        task = trio.lowlevel.current_task()
        self._waiting.append(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._waiting.remove(task)  # cancelled before any change woke it
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    @property
    def _count(self) -> int:
        return len(self._head) + len(self._ends) + len(self._tail)

    def _events(self, first: int, stop: int, after: int | None) -> list[ReplyEvent]:
        """Events [first, stop) of the log, leaving out the text up to event id `after`."""
        events: list[ReplyEvent] = []
        heads, contents = len(self._head), len(self._ends)
        index = first
        while index < stop and index < heads:
            event: ReplyEvent = self._head[index]
            if after is None or event.id > after:
                events.append(event)
            index += 1
        last = min(stop, heads + contents)
        if index < last:
            ends, k, k_stop = self._ends, index - heads, last - heads
            begin = ends[k - 1] if k else 0
            if after is not None:
                while k < k_stop and ends[k] <= after:
                    k += 1
                begin = max(begin, after)  # exactly once, even across chunk boundaries
            if k < k_stop:
                # The batch's text in one slice of the log, cut at its chunks' ends.
                text = self._text.slice(begin, ends[k_stop - 1])
                offset, message_id = begin, self.message_id
                for end in ends[k:k_stop]:
                    events.append(
                        ReplyContent(
                            id=end, message_id=message_id, text=text[begin - offset : end - offset]
                        )
                    )
                    begin = end
            index = last
        for at in range(max(index, heads + contents), stop):
            event = self._tail[at - heads - contents]
            if after is None or event.id > after:
                events.append(event)
        return events

    def follow(self, after: int | None = None) -> ReplyFollower:
        """A reader of every event whose id is greater than `after` (all when None)."""
        return ReplyFollower(self, after)


class ReplyFollower:
    """One reader's position in a ReplyLog."""

    def __init__(self, log: ReplyLog, after: int | None) -> None:
        self._log = log
        self._cursor = 0
        self._after = after

    async def next_batch(self) -> list[ReplyEvent]:
        """Every event not yet read, waiting for one; [] once the reply ended and all was read."""
        log = self._log
        while (batch := self.ready_batch()) is None:
            await log._wait_change()
        return batch

    def ready_batch(self) -> list[ReplyEvent] | None:
        """Every event not yet read, or [] once the reply ended and all was read; None when
        there is nothing yet."""
        log = self._log
        while self._cursor < log._count:
            count = log._count
            batch = log._events(self._cursor, count, self._after)
            self._cursor = count
            if batch:
                return batch
        return [] if log.ended else None
