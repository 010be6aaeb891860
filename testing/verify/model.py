"""The plain model the verifier holds the deployment to: each organisation's conversations (its
own, made by this run), their sessions and messages in order, and what a reply must say.

A reply's text is known in advance for the built-in echo model ("Echo: " and the message,
streamed word by word, cut after `max_tokens` words); for any other model the model knows
only that the stored text is the streamed one.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from conversation_service.testing.verify.api import Disagreement, Event, Tenant, expect

ECHO_PREFIX = "Echo: "
# As the echo model splits its reply: a word with the whitespace after it (the first also
# takes any before it).
_WORD = re.compile(r"\s*\S+\s*")


@attrs.define
class Msg:
    """A stored message as the model expects it."""

    role: str
    content: str
    status: str
    session_id: str
    id: str | None = None
    finish_reason: str | None = None


@attrs.define
class Sess:
    id: str
    model_id: str
    max_tokens: int | None = None
    completed: bool = False


@attrs.define
class Conv:
    id: str
    title: str
    is_archived: bool
    activity: int  # the model's clock at the last new session or message
    sessions: list[Sess] = attrs.Factory(list)
    messages: list[Msg] = attrs.Factory(list)


@attrs.define
class Org:
    tenant: Tenant
    convs: dict[str, Conv] = attrs.Factory(dict)  # in creation order


@attrs.frozen
class ModelUnderTest:
    """The model sessions are made on, as GET /api/models lists it."""

    id: str
    name: str
    max_output_tokens: int
    echo: bool  # the built-in echo model: replies known in advance

    def reply(self, session: Sess, message: str) -> tuple[str, str] | None:
        """The text and finish reason of the reply to `message`; None if not known."""
        if not self.echo:
            return None
        words = _WORD.findall(ECHO_PREFIX + message)
        if session.max_tokens is not None and len(words) > session.max_tokens:
            return "".join(words[: session.max_tokens]), "length"
        return "".join(words), "stop"


def whole_reply(
    events: list[Event], what: str, *, session: Sess, model: ModelUnderTest
) -> tuple[str, dict[str, Any]]:
    """Check the events of a reply from its `start` (the session's, on its model) to its
    `end`; its text and the `end`'s data."""
    expect(bool(events), "stream", f"{what}: no events")
    start = events[0]
    expect(start.kind == "start" and start.id == 0, "stream", f"{what}: begins with {start}")
    expect(
        start.data.get("chat_session_id") == session.id and start.data.get("model_id") == model.id,
        "stream",
        f"{what}: `start` names another session or model: {start.data}",
    )
    return rest_of_reply(events[1:], what, kind="stream")


def rest_of_reply(
    events: list[Event], what: str, *, kind: str, before: str = "", after: int = 0
) -> tuple[str, dict[str, Any]]:
    """Check the events that follow event id `after` (the text up to there: `before`): ids
    grow, a `content` id is the text's length once it is added, `error` is the final length
    + 1 and `end`, last, + 2. The text they add, and the `end`'s data."""
    text, last = before, after
    for index, event in enumerate(events):
        expect(event.id > last, kind, f"{what}: event {event} after id {last}: sent twice")
        last = event.id
        if event.kind == "content":
            text += event.data["content"]
            expect(event.id == len(text), kind, f"{what}: {event} ends at {len(text)}")
        elif event.kind == "error":
            expect(event.id == len(text) + 1, kind, f"{what}: {event} after {len(text)} chars")
        elif event.kind == "end":
            expect(event.id == len(text) + 2, kind, f"{what}: {event} after {len(text)} chars")
            expect(index == len(events) - 1, kind, f"{what}: events after `end`")
        else:
            raise Disagreement(kind, f"{what}: {event} in the middle of a reply")
    expect(bool(events) and events[-1].kind == "end", kind, f"{what}: no `end` at the end")
    return text[len(before) :], events[-1].data
