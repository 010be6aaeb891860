"""A stored reply read back as events: exactly the part after any event id, ids growing."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversation_service.domain.model import Message, MessageRole, MessageStatus
from conversation_service.domain.replies import (
    ReplyContent,
    ReplyEnd,
    ReplyError,
    ResumedPastEnd,
    stored_reply_events,
)

AT = datetime(2026, 11, 27, tzinfo=UTC)
FINAL = (MessageStatus.COMPLETED, MessageStatus.CANCELLED, MessageStatus.FAILED)


def stored(content: str, status: MessageStatus) -> Message:
    return Message(
        id=uuid4(),
        org_id=uuid4(),
        conversation_id=uuid4(),
        chat_session_id=uuid4(),
        role=MessageRole.ASSISTANT,
        content=content,
        status=status,
        model_id=uuid4(),
        created_at=AT,
        updated_at=AT,
        finish_reason={MessageStatus.COMPLETED: "stop"}.get(status, "error"),
    )


@given(
    content=st.text(max_size=40),
    status=st.sampled_from(MessageStatus),
    after=st.none() | st.integers(min_value=0, max_value=60),
)
def test_a_stored_reply_resumes_exactly_after_any_id(
    content: str, status: MessageStatus, after: int | None
) -> None:
    message = stored(content, status)
    end_id = len(content) + 2
    if after is not None and after > end_id and status in FINAL:
        with pytest.raises(ResumedPastEnd):
            stored_reply_events(message, user_message_id=None, after=after)
        return
    events = stored_reply_events(message, user_message_id=None, after=after)
    if after == end_id:
        assert events is None  # nothing follows the last event
        return
    assert events is not None
    ids = [event.id for event in events]
    assert ids == sorted(set(ids)) and all(i > (after if after is not None else -1) for i in ids)
    assert isinstance(events[-1], ReplyEnd)
    text = "".join(e.text for e in events if isinstance(e, ReplyContent))
    start = 0 if after is None else min(after, len(content))
    assert text == content[start:]
    failed = status not in (MessageStatus.COMPLETED, MessageStatus.CANCELLED)
    assert any(isinstance(e, ReplyError) for e in events) == (failed and after != end_id - 1)


def test_a_client_that_saw_more_than_a_recovered_reply_stored_gets_its_end() -> None:
    message = stored("Hel", MessageStatus.INCOMPLETE)  # it saw "Hello, wor" before the crash
    events = stored_reply_events(message, user_message_id=None, after=10)
    assert events is not None
    assert [(type(e), e.id) for e in events] == [(ReplyError, 11), (ReplyEnd, 12)]
