"""The export file: JSON Lines, one object per line, and the line-by-line checks of an import.

Version 1 of the format, in order:

    {"type": "header", "format": "conversation-service-export", "version": 1,
     "exported_at": ..., "org_id": ..., "conversation_id": ... or null}
    {"type": "conversation", "id", "title", "is_archived", "created_at", "updated_at"}
    {"type": "session", "id", "conversation_id", "model_id", "status", "system_prompt",
     "params": {"temperature", "max_tokens", "top_p"}, "context", "head_id", "created_at",
     "updated_at"}
    {"type": "message", "id", "conversation_id", "chat_session_id", "parent_id", "role",
     "content", "status", "model_id", "finish_reason", "usage", "error", "latency",
     "created_at", "updated_at",
     "feedback": {"rating", "comment", "created_at", "updated_at"} or null}
    ...
    {"type": "end", "conversations": n, "sessions": n, "messages": n}

Each conversation comes with its sessions, then its messages, in the order they were stored.
Branches are the messages' `parent_id`s (each names an earlier message of its session) and
each session's `head_id` (the last message of its current branch, a message after it).
The end line counts what came before it: a file cut short (a dropped download) has none,
and is refused whole. Field values are as the API shows them (views.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

from conversation_service.domain.errors import InvalidField
from conversation_service.domain.feedback import Feedback, Rating
from conversation_service.domain.model import (
    ChatSession,
    ContextScope,
    Conversation,
    GenerationParams,
    Latency,
    Message,
    MessageRole,
    MessageStatus,
    Usage,
)
from conversation_service.domain.rules import InputLimits
from conversation_service.domain.session_machine import SessionState
from conversation_service.domain.transfer import ImportCheck, MessageRecord, TransferRecord
from conversation_service.entrypoints.http.field_rules import Range
from conversation_service.entrypoints.http.inputs import structure
from conversation_service.entrypoints.http.views import timestamp

MEDIA_TYPE = "application/x-ndjson"
FORMAT = "conversation-service-export"
VERSION = 1
_STORED_INT = Range(minimum=0, maximum=2**31 - 1)  # what a database INTEGER holds
_TOKENS = Range(minimum=1, maximum=2**31 - 1)
_NOBODY = UUID(int=0)  # the organisation of a record read from a file: the importer's, later


# -- writing ---------------------------------------------------------------------------------
def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def header_line(org_id: UUID, conversation_id: UUID | None, at: datetime) -> bytes:
    return _line(
        {
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "exported_at": timestamp(at),
            "org_id": str(org_id),
            "conversation_id": None if conversation_id is None else str(conversation_id),
        }
    )


def end_line(counts: dict[str, int]) -> bytes:
    return _line({"type": "end", **counts})


def record_lines(records: Sequence[TransferRecord], counts: dict[str, int]) -> bytes:
    """The lines of `records`, counted into `counts` (conversations, sessions, messages)."""
    out = []
    for record in records:
        match record:
            case Conversation():
                counts["conversations"] += 1
                out.append(_line(_conversation(record)))
            case ChatSession():
                counts["sessions"] += 1
                out.append(_line(_session(record)))
            case MessageRecord():
                counts["messages"] += 1
                out.append(_line(_message(record)))
    return b"".join(out)


def _conversation(c: Conversation) -> dict[str, Any]:
    return {
        "type": "conversation",
        "id": str(c.id),
        "title": c.title,
        "is_archived": c.is_archived,
        "created_at": timestamp(c.created_at),
        "updated_at": timestamp(c.updated_at),
    }


def _session(s: ChatSession) -> dict[str, Any]:
    return {
        "type": "session",
        "id": str(s.id),
        "conversation_id": str(s.conversation_id),
        "model_id": str(s.model_id),
        "status": s.status.value,
        "system_prompt": s.system_prompt,
        "params": attrs.asdict(s.params),
        "context": s.context.value,
        "head_id": None if s.head_id is None else str(s.head_id),
        "created_at": timestamp(s.created_at),
        "updated_at": timestamp(s.updated_at),
    }


def _message(record: MessageRecord) -> dict[str, Any]:
    m, f = record.message, record.feedback
    return {
        "type": "message",
        "id": str(m.id),
        "conversation_id": str(m.conversation_id),
        "chat_session_id": str(m.chat_session_id),
        "parent_id": None if m.parent_id is None else str(m.parent_id),
        "role": m.role.value,
        "content": m.content,
        "status": m.status.value,
        "model_id": None if m.model_id is None else str(m.model_id),
        "finish_reason": m.finish_reason,
        "usage": None if m.usage is None else attrs.asdict(m.usage),
        "error": None
        if m.error_code is None
        else {"code": m.error_code, "message": m.error_message or ""},
        "latency": None if m.latency is None else attrs.asdict(m.latency),
        "created_at": timestamp(m.created_at),
        "updated_at": timestamp(m.updated_at),
        "feedback": None
        if f is None
        else {
            "rating": f.rating.value,
            "comment": f.comment,
            "created_at": timestamp(f.created_at),
            "updated_at": timestamp(f.updated_at),
        },
    }


# -- reading: each line structured strictly, as request bodies are (inputs.py) ---------------
def _moment(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise InvalidField(attribute.name, "must be a date-time with its time zone (ISO 8601)")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _moment_field() -> Any:
    return attrs.field(validator=_moment)


def _count() -> Any:
    return attrs.field(validator=_STORED_INT)


@attrs.frozen(kw_only=True)
class HeaderLine:
    format: str
    version: int
    exported_at: str = _moment_field()
    org_id: UUID
    conversation_id: UUID | None = None


@attrs.frozen(kw_only=True)
class ConversationLine:
    id: UUID
    title: str | None = None
    is_archived: bool
    created_at: str = _moment_field()
    updated_at: str = _moment_field()


@attrs.frozen(kw_only=True)
class ParamsLine:
    temperature: float | None = attrs.field(default=None, validator=Range(minimum=0, maximum=2))
    max_tokens: int | None = attrs.field(
        default=None, validator=Range(minimum=1, maximum=2**31 - 1)
    )
    top_p: float | None = attrs.field(default=None, validator=Range(above=0, maximum=1))


@attrs.frozen(kw_only=True)
class SessionLine:
    id: UUID
    conversation_id: UUID
    model_id: UUID
    status: SessionState
    system_prompt: str | None = None
    params: ParamsLine = ParamsLine()
    context: ContextScope = ContextScope.SESSION
    head_id: UUID | None
    created_at: str = _moment_field()
    updated_at: str = _moment_field()


@attrs.frozen(kw_only=True)
class UsageLine:
    prompt_tokens: int = _count()
    completion_tokens: int = _count()
    estimated: bool


@attrs.frozen(kw_only=True)
class ErrorLine:
    code: str
    message: str


@attrs.frozen(kw_only=True)
class LatencyLine:
    first_token_ms: int | None = attrs.field(default=None, validator=_STORED_INT)
    total_ms: int = _count()


@attrs.frozen(kw_only=True)
class FeedbackLine:
    rating: Rating
    comment: str | None = None
    created_at: str = _moment_field()
    updated_at: str = _moment_field()


@attrs.frozen(kw_only=True)
class MessageLine:
    id: UUID
    conversation_id: UUID
    chat_session_id: UUID
    parent_id: UUID | None
    role: MessageRole
    content: str
    status: MessageStatus
    model_id: UUID | None = None
    finish_reason: str | None = None
    usage: UsageLine | None = None
    error: ErrorLine | None = None
    latency: LatencyLine | None = None
    created_at: str = _moment_field()
    updated_at: str = _moment_field()
    feedback: FeedbackLine | None = None


@attrs.frozen(kw_only=True)
class EndLine:
    conversations: int = _count()
    sessions: int = _count()
    messages: int = _count()


_KINDS: dict[str, type] = {
    "header": HeaderLine,
    "conversation": ConversationLine,
    "session": SessionLine,
    "message": MessageLine,
    "end": EndLine,
}
# A JSON escape of a lone surrogate (\ud800-\udfff), which is no text a database stores.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _problem(number: int, field: str, reason: str) -> InvalidField:
    return InvalidField(f"lines[{number}].{field}" if field else f"lines[{number}]", reason)


def _lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, the line without its end) of every line; a final newline ends
    the last line rather than starting an empty one."""
    start, number, size = 0, 0, len(body)
    while start < size:
        end = body.find(b"\n", start)
        if end < 0:
            end = size
        number += 1
        yield number, body[start:end].removesuffix(b"\r")
        start = end + 1


def _parsed(number: int, raw: bytes, *, first: bool = False) -> tuple[str, Any]:
    """The line's kind and its object, structured; InvalidField naming the line and field."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _problem(number, "", f"is not a JSON object ({error})") from None
    except RecursionError:
        raise _problem(number, "", "is nested too deeply") from None
    if not isinstance(data, dict):
        raise _problem(number, "", "must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise _problem(number, "", "contains an unpaired surrogate: not text") from None
    kind = data.pop("type", None)
    if first and kind != "header":
        raise _problem(1, "type", "must be header: an export file starts with its header line")
    if kind not in _KINDS:
        raise _problem(number, "type", f"must be one of {', '.join(_KINDS)}")
    try:
        return kind, structure(data, _KINDS[kind])
    except InvalidField as error:
        raise _problem(number, error.field, error.reason) from None


def _record(kind: str, line: Any) -> TransferRecord:
    match kind:
        case "conversation":
            return Conversation(
                id=line.id,
                org_id=_NOBODY,
                title=line.title,
                is_archived=line.is_archived,
                created_at=_at(line.created_at),
                updated_at=_at(line.updated_at),
            )
        case "session":
            return ChatSession(
                id=line.id,
                org_id=_NOBODY,
                conversation_id=line.conversation_id,
                model_id=line.model_id,
                status=line.status,
                created_at=_at(line.created_at),
                updated_at=_at(line.updated_at),
                system_prompt=line.system_prompt,
                params=GenerationParams(**attrs.asdict(line.params)),
                context=line.context,
                head_id=line.head_id,
            )
    return _message_record(line)


def _message_record(line: MessageLine) -> MessageRecord:
    message = Message(
        id=line.id,
        org_id=_NOBODY,
        conversation_id=line.conversation_id,
        chat_session_id=line.chat_session_id,
        parent_id=line.parent_id,
        role=line.role,
        content=line.content,
        status=line.status,
        model_id=line.model_id,
        created_at=_at(line.created_at),
        updated_at=_at(line.updated_at),
        finish_reason=line.finish_reason,
        usage=None if line.usage is None else Usage(**attrs.asdict(line.usage)),
        error_code=None if line.error is None else line.error.code,
        error_message=None if line.error is None else line.error.message,
        latency=None if line.latency is None else Latency(**attrs.asdict(line.latency)),
    )
    given = line.feedback
    if given is None:
        return MessageRecord(message=message)
    feedback = Feedback(
        message_id=message.id,
        org_id=_NOBODY,
        conversation_id=message.conversation_id,
        rating=given.rating,
        comment=given.comment,
        created_at=_at(given.created_at),
        updated_at=_at(given.updated_at),
    )
    return MessageRecord(message=message, feedback=feedback)


@attrs.frozen(kw_only=True)
class Checked:
    """What a checked file holds."""

    conversations: int
    sessions: int
    messages: int


def check_file(body: bytes, limits: InputLimits) -> Checked:
    """Every line of an import checked, in order: a header first, records as an export
    writes them (domain.transfer.ImportCheck), an end line last whose counts match.
    InvalidField naming `lines[<number>].<field>` at the first problem."""
    check = ImportCheck(limits)
    counts = {"conversations": 0, "sessions": 0, "messages": 0}
    session_lines: dict[UUID, int] = {}  # those with a head: where to say it never came
    ended = 0
    number = 0
    for number, raw in _lines(body):
        if ended:
            raise _problem(number, "", f"comes after the end line (line {ended})")
        if not raw.strip():
            raise _problem(number, "", "is empty: every line holds one JSON object")
        kind, line = _parsed(number, raw, first=number == 1)
        if number == 1:
            _check_header(line)
            continue
        if kind == "header":
            raise _problem(number, "type", "a header comes first only")
        if kind == "end":
            for session_id in check.heads_missing():
                at = session_lines[session_id]
                raise _problem(at, "head_id", "names no message of this session after it")
            for name, found in counts.items():
                if getattr(line, name) != found:
                    raise _problem(
                        number, name, f"says {getattr(line, name)}, but the file holds {found}"
                    )
            ended = number
            continue
        try:
            check.take(_record(kind, line))
        except InvalidField as error:
            raise _problem(number, error.field, error.reason) from None
        counts[f"{kind}s"] += 1
        if kind == "session" and line.head_id is not None:
            session_lines[line.id] = number
    if number == 0:
        raise InvalidField("body", "is empty: an export file starts with its header line")
    if not ended:
        raise _problem(number + 1, "", "is missing: the end line (the file was cut short?)")
    return Checked(**counts)


def _check_header(line: HeaderLine) -> None:
    if line.format != FORMAT:
        raise _problem(1, "format", f"must be {FORMAT}")
    if line.version != VERSION:
        raise _problem(1, "version", f"must be {VERSION}: this server reads version {VERSION}")


def records_of(body: bytes) -> Iterator[TransferRecord]:
    """The records of a file check_file() accepted, in order."""
    for number, raw in _lines(body):
        kind, line = _parsed(number, raw)
        if kind in ("header", "end"):
            continue
        yield _record(kind, line)
