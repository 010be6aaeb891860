"""The reply log read by followers: whatever the chunks, the moments they are read and the
event a reader resumes after, it gets the reply's text once, cut where its chunks ended."""

from __future__ import annotations

from uuid import uuid4

import trio
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import wait_all_tasks_blocked

from conversation_service.adapters.actors.reply_log import ReplyFollower, ReplyLog
from conversation_service.domain.replies import (
    ReplyContent,
    ReplyEnd,
    ReplyError,
    ReplyEvent,
    ReplyOutcome,
    ReplyStarted,
)

chunks = st.lists(st.text(min_size=1, max_size=12), min_size=0, max_size=30)


def new_log() -> ReplyLog:
    return ReplyLog(message_id=uuid4(), user_message_id=uuid4(), chat_session_id=uuid4())


def read_ready(follower: ReplyFollower, into: list[ReplyEvent]) -> None:
    batch = follower.ready_batch()
    if batch is not None:
        assert batch, "an empty batch is only for a reply that ended and was read"
        into.extend(batch)


@given(
    pieces=chunks,
    reads=st.lists(st.booleans(), min_size=31, max_size=31),
    resuming=st.booleans(),
    failed=st.booleans(),
    data=st.data(),
)
def test_a_follower_gets_the_text_once_cut_at_chunk_ends(
    pieces: list[str], reads: list[bool], resuming: bool, failed: bool, data: st.DataObject
) -> None:
    log = new_log()
    text = "".join(pieces)
    # Any id a client may have seen: a chunk's end, or (text read back from storage) any
    # point of the text.
    after = data.draw(st.integers(0, len(text))) if resuming else None
    follower = log.follow(after)
    seen: list[ReplyEvent] = []
    assert follower.ready_batch() is None  # nothing yet: a reader would wait
    log.start(uuid4())
    for piece, read_now in zip(pieces, reads, strict=False):
        log.content(piece)
        if read_now:
            read_ready(follower, seen)
    outcome = ReplyOutcome.failed("boom", "it broke") if failed else ReplyOutcome.cancelled()
    log.close(outcome)
    read_ready(follower, seen)
    assert follower.ready_batch() == []  # ended and all read

    kinds = [type(event) for event in seen]
    assert (ReplyStarted in kinds) == (after is None)
    contents = [event for event in seen if isinstance(event, ReplyContent)]
    assert "".join(event.text for event in contents) == text[after or 0 :]
    ends = [sum(map(len, pieces[: i + 1])) for i in range(len(pieces))]
    assert [event.id for event in contents] == [end for end in ends if end > (after or 0)]
    assert all(event.text for event in contents)
    assert kinds[-1] is ReplyEnd
    assert (ReplyError in kinds) == failed
    ids = [event.id for event in seen]
    assert ids == sorted(set(ids))  # each event once, in order


async def test_next_batch_waits_for_the_next_chunk_and_ready_batch_does_not() -> None:
    log = new_log()
    follower = log.follow()
    log.start(uuid4())
    assert [type(event) for event in await follower.next_batch()] == [ReplyStarted]
    assert follower.ready_batch() is None
    got: list[ReplyEvent] = []

    async def read() -> None:
        got.extend(await follower.next_batch())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await wait_all_tasks_blocked()
        assert got == []  # waiting
        log.content("hello")
        log.content(" world")
    assert [event.text for event in got if isinstance(event, ReplyContent)] == ["hello", " world"]
    log.close(ReplyOutcome.completed("stop", None))
    assert [type(event) for event in follower.ready_batch() or []] == [ReplyEnd]
    assert await follower.next_batch() == []


async def test_a_reader_whose_wait_was_cancelled_is_not_woken_and_reads_on_later() -> None:
    log = new_log()
    follower, other = log.follow(), log.follow()
    log.start(uuid4())
    await follower.next_batch()
    await other.next_batch()
    got: list[ReplyEvent] = []

    async def read_other() -> None:
        got.extend(await other.next_batch())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_other)
        with trio.move_on_after(0.01) as waited:  # a keep-alive's timeout, say
            await follower.next_batch()
        assert waited.cancelled_caught
        log.content("late")  # wakes the other reader only: the first no longer waits
    assert [event.text for event in got if isinstance(event, ReplyContent)] == ["late"]
    batch = await follower.next_batch()
    assert [event.text for event in batch if isinstance(event, ReplyContent)] == ["late"]
