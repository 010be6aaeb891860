"""Response bodies: what each answer shows of the domain's values.

Each is declared once, as a `Shape` (or a small attrs class): the same declaration renders
the JSON here, through one private cattrs converter, and generates the answer's schema in
the OpenAPI document (`openapi_schemas.py`), so the two cannot disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import attrs
import cattrs

from conversation_service.domain.branches import ListedMessage
from conversation_service.domain.model import (
    ChatSession,
    Conversation,
    GenerationParams,
    Latency,
    Message,
    Page,
    Usage,
)
from conversation_service.domain.search import MATCHED_IDS, SearchResult, Snippet, SnippetPart
from conversation_service.entrypoints.http.field_rules import about, note
from conversation_service.entrypoints.http.json_schema import Shape
from conversation_service.ports.language_model import ModelInfo
from conversation_service.ports.storage import ModelUsage
from conversation_service.service_layer.conversation_service import ConversationWithSessions
from conversation_service.service_layer.search import SearchPage

FINISH_REASONS = (
    "Why the reply ended: `stop` (complete), `length` (the model's token cap), `cancelled`, "
    "`error` (see the stream's `error` event, and the message's `error`; a reply the service "
    "stopped or lost is stored `incomplete` with this reason), or another value a provider "
    "reports."
)

_out = cattrs.Converter()
_out.register_unstructure_hook(UUID, str)
_out.register_unstructure_hook(enum.Enum, lambda value: value.value)


def timestamp(at: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z, e.g. 2026-11-26T06:02:59.123456Z."""
    # isoformat pads the year to four digits; strftime("%Y") does not for years before 1000.
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_out.register_unstructure_hook(datetime, timestamp)


@attrs.frozen(kw_only=True)
class ReplyFailure:
    """Why the reply failed or stopped early, as its stream's `error` event said."""

    code: str
    message: str


def _failure(value: Message) -> ReplyFailure | None:
    if value.error_code is None:
        return None
    # Stored with its code; `or` only for the type checker.
    return ReplyFailure(code=value.error_code, message=value.error_message or "")


USAGE = Shape(
    kind=Usage,
    added={"total_tokens": (int, lambda usage: usage.total_tokens)},
    notes={"estimated": note("Counted by this service (one token per four characters).")},
    order=("prompt_tokens", "completion_tokens", "total_tokens", "estimated"),  # SSE: unsorted
)
PARAMS = Shape(
    kind=GenerationParams,
    description="The sampling settings the session asks its model for; null: the model's own.",
)
LATENCY = Shape(
    kind=Latency,
    description="How long the reply took, in milliseconds: to its first chunk (null if none "
    "came) and in all.",
)
CONVERSATION = Shape(kind=Conversation, hidden=("org_id",))
SESSION = Shape(
    kind=ChatSession,
    hidden=("org_id", "version"),  # version: storage's check
    notes={
        "head_id": note(
            "The last message of the session's current branch: what its next message follows "
            "and what `messages` shows of it; null before its first message."
        )
    },
)
# A message is always shown with its place among the alternatives (ListedMessage): `message`
# renders one, never the converter's hook for Message alone (it lacks the place).
MESSAGE = Shape(
    kind=Message,
    hidden=("org_id", "error_code", "error_message"),
    added={
        "error": (ReplyFailure | None, _failure),
        "sibling_count": (int, None),
        "sibling_index": (int, None),
    },
    notes={
        "model_id": note("null for the user's messages."),
        "finish_reason": note(FINISH_REASONS),
        "parent_id": note(
            "The message it follows in its chat session: a reply the user message it "
            "answers, a user message the reply before it; null for a session's first message "
            "(and each edit of it)."
        ),
        "sibling_count": note(
            "How many alternatives its place has (messages of its session with the same "
            "parent: regenerated replies, edited questions), itself included; 1 when nobody "
            "branched there.",
            minimum=1,
        ),
        "sibling_index": note(
            "Which of them it is, 1 for the oldest: `messages?leaf_id=` with another's id "
            "shows that one's branch.",
            minimum=1,
        ),
    },
)
MODEL = Shape(
    kind=ModelInfo,
    notes={
        "context_window": note("Tokens it reads, prompt and reply together."),
        "max_output_tokens": note("Tokens it writes at most in one reply."),
        "scope": note("`global`, or `org`: this organisation's own.", enum=["global", "org"]),
    },
)
# Search results (GET /api/conversation/search).
SNIPPET_PART = Shape(
    kind=SnippetPart,
    notes={"highlight": note("Whether this piece is a match of the query, to be shown marked.")},
)
SNIPPET = Shape(
    kind=Snippet,
    description="A short piece of the best matching message (or of the title, when only it "
    "matches): its parts, joined, are the text to show, the query's matches in the parts "
    "marked `highlight`. Runs of whitespace are one space; `…` stands for text left out.",
    notes={"message_id": note("The message the text is from; null: the conversation's title.")},
)
SEARCH_RESULT = Shape(
    kind=SearchResult,
    notes={
        "title_matches": note("Whether the title holds every term of the query."),
        "message_count": note("How many of its messages hold every term."),
        "message_ids": note(
            f"The first {MATCHED_IDS} of those messages, oldest first.", maxItems=MATCHED_IDS
        ),
    },
)

# The one shape each class is shown in, wherever it appears: each renders its class.
SHAPE_OF: dict[type, Shape] = {
    shape.kind: shape for shape in (USAGE, PARAMS, LATENCY, CONVERSATION, SESSION, MESSAGE, MODEL)
}
SHAPE_OF.update({shape.kind: shape for shape in (SNIPPET_PART, SNIPPET, SEARCH_RESULT)})

# Answers that show more than one value: the handler gives what `added` has no getter for.
WITH_SESSIONS = attrs.evolve(
    CONVERSATION,
    added={"sessions": (tuple[ChatSession, ...], None)},
    description="A conversation with its chat sessions, each with its live status.",
)
CONVERSATION_PAGE = Shape(
    kind=Page,
    hidden=("items",),
    added={"conversations": (tuple[Conversation, ...], lambda page: page.items)},
    notes={"limit": note(minimum=1)},
)
MESSAGE_PAGE = attrs.evolve(
    CONVERSATION_PAGE,
    added={"messages": (tuple[Message, ...], None)},
    description="A page of a conversation's messages: the current branch of each of its chat "
    "sessions (or the one asked for), in the order they were added.",
)
SEARCH_PAGE = Shape(
    kind=Page,
    hidden=("items",),
    added={
        "query": (str, None),
        "results": (tuple[SearchResult, ...], lambda page: page.items),
    },
    notes={
        "limit": note(minimum=1),
        "query": note(
            'The query as the service read it, in its own syntax: words, "phrases", '
            "prefix* (what it ignored, such as punctuation, left out)."
        ),
    },
    description="A page of the conversations a query matches, best first.",
)
MODEL_USAGE = Shape(
    kind=ModelUsage,
    added={
        "name": (str | None, None),
        "total_tokens": (int, lambda row: row.prompt_tokens + row.completion_tokens),
    },
    notes={"name": note("null: the model is gone.")},
)


@attrs.frozen(kw_only=True)
class ModelList:
    """The models this organisation's chat sessions can use."""

    models: tuple[ModelInfo, ...]


@attrs.frozen(kw_only=True)
class Cancelled:
    """What cancel did."""

    chat_session_id: UUID
    cancelled: bool = attrs.field(
        metadata=about(
            "Whether a reply was running or waiting and was stopped (false: nothing to stop)."
        )
    )


def _render(shape: Shape, value: Any, **given: Any) -> dict[str, Any]:
    body = {}
    for name in shape.names():
        if name in shape.added:
            get = shape.added[name][1]
            found = given.pop(name) if get is None else get(value)
        else:
            found = getattr(value, name)
        body[name] = _out.unstructure(found)
    assert not given, f"{shape.kind.__name__} shows no {sorted(given)}"
    return body


def _hook(shape: Shape) -> Callable[[Any], dict[str, Any]]:
    return lambda value: _render(shape, value)


for _shape in SHAPE_OF.values():
    _out.register_unstructure_hook(_shape.kind, _hook(_shape))


def usage_view(usage: Usage | None) -> dict[str, Any] | None:
    """A reply's usage as its `end` event and the messages API show it."""
    return None if usage is None else _render(USAGE, usage)


def conversation(value: Conversation) -> dict[str, Any]:
    return _render(CONVERSATION, value)


def with_sessions(value: ConversationWithSessions) -> dict[str, Any]:
    return _render(WITH_SESSIONS, value.conversation, sessions=value.sessions)


def session(value: ChatSession) -> dict[str, Any]:
    return _render(SESSION, value)


def message(value: ListedMessage) -> dict[str, Any]:
    return _render(
        MESSAGE,
        value.message,
        sibling_count=value.sibling_count,
        sibling_index=value.sibling_index,
    )


def conversation_page(value: Page[Conversation]) -> dict[str, Any]:
    return _render(CONVERSATION_PAGE, value)


def message_page(value: Page[ListedMessage]) -> dict[str, Any]:
    return _render(MESSAGE_PAGE, value, messages=[message(item) for item in value.items])


def search_page(value: SearchPage) -> dict[str, Any]:
    return _render(SEARCH_PAGE, value.results, query=str(value.query))


def model(value: ModelInfo) -> dict[str, Any]:
    return _render(MODEL, value)


def models(values: Sequence[ModelInfo]) -> dict[str, Any]:
    return _out.unstructure(ModelList(models=tuple(values)))


def model_usage(value: ModelUsage, name: str | None) -> dict[str, Any]:
    return _render(MODEL_USAGE, value, name=name)


def cancelled(chat_session_id: UUID, stopped: bool) -> dict[str, Any]:
    return _out.unstructure(Cancelled(chat_session_id=chat_session_id, cancelled=stopped))
