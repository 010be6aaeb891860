"""SSE framing: the fast path for content events frames exactly as the general one does."""

from __future__ import annotations

import json
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from conversation_service.domain.replies import ReplyContent
from conversation_service.entrypoints.http.sse import event_data, frame


@given(text=st.text(min_size=1), offset=st.integers(min_value=1, max_value=10**12))
def test_a_content_frame_is_one_event_whose_data_is_its_json(text: str, offset: int) -> None:
    event = ReplyContent(id=offset, message_id=uuid4(), text=text)
    framed = frame(event).decode()
    name, data = event_data(event)
    general = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert framed == f"id: {offset}\nevent: {name}\ndata: {general}\n\n"
    assert framed.count("\n\n") == 1 and framed.endswith("\n\n")  # one event, one data line
    assert json.loads(framed.split("data: ", 1)[1]) == {
        "message_id": str(event.message_id),
        "content": text,
    }
