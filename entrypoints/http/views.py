"""Response bodies: what each answer shows of the domain's values.

Each is declared once, as a `Shape` (or a small attrs class): the same declaration renders
the JSON here, through one private cattrs converter, and generates the answer's schema in
the OpenAPI document (`openapi_schemas.py`), so the two cannot disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import attrs
import cattrs

from conversation_service.domain.branches import ListedMessage
from conversation_service.domain.feedback import Feedback
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
from conversation_service.domain.transfer import ImportReport
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
CONVERSATION = Shape(
    kind=Conversation,
    hidden=("org_id",),
    notes={
        "title": note(
            "null until it has one: a conversation created without a title gets one after "
            "its first reply (written by the operator's title model, or its first words); a "
            "title set at create or by update is never replaced."
        ),
        "updated_at": note("Moves with every new session, message or change (update)."),
    },
)
FEEDBACK = Shape(
    kind=Feedback,
    hidden=("org_id",),
    notes={"created_at": note("When feedback was first given on this reply.")},
)
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
        "feedback": (Feedback | None, None),
    },
    notes={
        "model_id": note("null for the user's messages."),
        "finish_reason": note(FINISH_REASONS),
        "feedback": note("The rating given to this reply (POST feedback); null: none."),
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
    shape.kind: shape
    for shape in (USAGE, PARAMS, LATENCY, CONVERSATION, SESSION, MESSAGE, MODEL, FEEDBACK)
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


@attrs.frozen(kw_only=True)
class FeedbackCounts:
    """How the replies were rated (POST feedback)."""

    up: int
    down: int


MODEL_USAGE = Shape(
    kind=ModelUsage,
    added={
        "name": (str | None, None),
        "total_tokens": (int, lambda row: row.prompt_tokens + row.completion_tokens),
        "feedback": (FeedbackCounts, None),
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


@attrs.frozen(kw_only=True)
class FeedbackCleared:
    """What clear_feedback did."""

    message_id: UUID
    cleared: bool = attrs.field(
        metadata=about("Whether the reply had feedback, now gone (false: it had none).")
    )


@attrs.frozen(kw_only=True)
class ConversationDeleted:
    """The conversation, its sessions, messages and feedback are gone for good."""

    conversation_id: UUID
    deleted: bool = attrs.field(metadata=about("Always true.", const=True))


@attrs.frozen(kw_only=True)
class ImportedConversation:
    """Where an imported conversation is now."""

    exported_id: UUID = attrs.field(metadata=about("Its id in the file."))
    id: UUID = attrs.field(
        metadata=about("Its id here: the same unless another conversation had it already.")
    )


@attrs.frozen(kw_only=True)
class Imported:
    """What an import stored: everything in the file."""

    conversations: int
    sessions: int
    messages: int
    feedback: int
    new_ids: int = attrs.field(
        metadata=about(
            "Objects stored under a new id because theirs was taken (by this organisation, or "
            "another one of this server); every line naming them was changed to match."
        )
    )
    conversation_ids: tuple[ImportedConversation, ...]


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


def message(value: ListedMessage, feedback: Feedback | None = None) -> dict[str, Any]:
    return _render(
        MESSAGE,
        value.message,
        sibling_count=value.sibling_count,
        sibling_index=value.sibling_index,
        feedback=feedback,
    )


def conversation_page(value: Page[Conversation]) -> dict[str, Any]:
    return _render(CONVERSATION_PAGE, value)


def message_page(
    value: Page[ListedMessage], feedback: Mapping[UUID, Feedback] | None = None
) -> dict[str, Any]:
    given = feedback or {}
    messages = [message(item, given.get(item.message.id)) for item in value.items]
    return _render(MESSAGE_PAGE, value, messages=messages)


def search_page(value: SearchPage) -> dict[str, Any]:
    return _render(SEARCH_PAGE, value.results, query=str(value.query))


def model(value: ModelInfo) -> dict[str, Any]:
    return _render(MODEL, value)


def models(values: Sequence[ModelInfo]) -> dict[str, Any]:
    return _out.unstructure(ModelList(models=tuple(values)))


def model_usage(
    value: ModelUsage, name: str | None, feedback: FeedbackCounts | None = None
) -> dict[str, Any]:
    counts = feedback or FeedbackCounts(up=0, down=0)
    return _render(MODEL_USAGE, value, name=name, feedback=_out.unstructure(counts))


def feedback_view(value: Feedback) -> dict[str, Any]:
    return _render(FEEDBACK, value)


def feedback_cleared(message_id: UUID, cleared: bool) -> dict[str, Any]:
    return _out.unstructure(FeedbackCleared(message_id=message_id, cleared=cleared))


def conversation_deleted(conversation_id: UUID) -> dict[str, Any]:
    return _out.unstructure(ConversationDeleted(conversation_id=conversation_id, deleted=True))


def imported(report: ImportReport) -> dict[str, Any]:
    ids = tuple(ImportedConversation(exported_id=a, id=b) for a, b in report.conversation_ids)
    return _out.unstructure(
        Imported(
            conversations=report.conversations,
            sessions=report.sessions,
            messages=report.messages,
            feedback=report.feedback,
            new_ids=report.new_ids,
            conversation_ids=ids,
        )
    )


def cancelled(chat_session_id: UUID, stopped: bool) -> dict[str, Any]:
    return _out.unstructure(Cancelled(chat_session_id=chat_session_id, cancelled=stopped))
