"""Domain values to and from database rows, through one private cattrs converter.

Ids are canonical UUID text. Timestamps are fixed-width ISO-8601 UTC text with microseconds
(`2026-11-26T06:02:59.123456Z`), so that comparing the text compares the instants and an
index on a timestamp column orders rows by time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from conversation_service.domain.model import (
    ChatSession,
    Conversation,
    Latency,
    Message,
    MessageRole,
    MessageStatus,
    Usage,
)
from conversation_service.ports.storage import StorageUnavailable

T = TypeVar("T")

_PARAM_COLUMNS = ("temperature", "top_p", "max_tokens")
UNTITLED = ""  # the stored title of a conversation that has none yet


def format_timestamp(at: datetime) -> str:
    """The stored text of an aware datetime: UTC, microseconds, fixed width."""
    if at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: the store keeps timezone-aware instants only")
    # isoformat pads the year to four digits, strftime("%Y") does not on every platform.
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    """The aware UTC datetime of stored timestamp text."""
    if not text.endswith("Z"):
        raise ValueError(f"stored timestamp {text!r} is not UTC text")
    return datetime.fromisoformat(text)  # C-fast; strptime cost a third of a read


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_unstructure_hook(UUID, str)
    converter.register_structure_hook(UUID, lambda value, _: UUID(value))
    converter.register_unstructure_hook(datetime, format_timestamp)
    converter.register_structure_hook(datetime, lambda value, _: parse_timestamp(value))
    # SQLite has no boolean type: it hands back 0 and 1.
    converter.register_structure_hook(bool, lambda value, _: bool(value))

    # A message's usage is three nullable columns, not a nested object.
    unstructure_message = make_dict_unstructure_fn(Message, converter)

    def message_to_row(message: Message) -> dict[str, Any]:
        row = unstructure_message(message)
        usage = row.pop("usage")
        row["prompt_tokens"] = usage["prompt_tokens"] if usage else None
        row["completion_tokens"] = usage["completion_tokens"] if usage else None
        row["usage_estimated"] = usage["estimated"] if usage else None
        latency = row.pop("latency")
        row["first_token_ms"] = latency["first_token_ms"] if latency else None
        row["total_ms"] = latency["total_ms"] if latency else None
        return row

    def message_from_row(row: Mapping[str, Any], _: type) -> Message:
        # Written out rather than generated: the history a reply reads is hundreds of rows,
        # and cattrs' generic path (a hook per field, Optional unions) cost 35 us a row.
        prompt, total_ms = row["prompt_tokens"], row["total_ms"]
        model_id = row["model_id"]
        return Message(
            id=UUID(row["id"]),
            org_id=UUID(row["org_id"]),
            conversation_id=UUID(row["conversation_id"]),
            chat_session_id=UUID(row["chat_session_id"]),
            role=MessageRole(row["role"]),
            content=row["content"],
            status=MessageStatus(row["status"]),
            model_id=None if model_id is None else UUID(model_id),
            created_at=parse_timestamp(row["created_at"]),
            updated_at=parse_timestamp(row["updated_at"]),
            finish_reason=row["finish_reason"],
            usage=None
            if prompt is None
            else Usage(
                prompt_tokens=prompt,
                completion_tokens=row["completion_tokens"],
                estimated=bool(row["usage_estimated"]),
            ),
            error_code=row["error_code"],
            error_message=row["error_message"],
            latency=None
            if total_ms is None
            else Latency(first_token_ms=row["first_token_ms"], total_ms=total_ms),
            parent_id=None if row["parent_id"] is None else UUID(row["parent_id"]),
        )

    converter.register_unstructure_hook(Message, message_to_row)
    converter.register_structure_hook(Message, message_from_row)

    # A session's sampling parameters are three nullable columns too.
    unstructure_session = make_dict_unstructure_fn(ChatSession, converter)
    structure_session = make_dict_structure_fn(ChatSession, converter)

    def session_to_row(session: ChatSession) -> dict[str, Any]:
        row = unstructure_session(session)
        row.update(row.pop("params"))
        return row

    def session_from_row(row: Mapping[str, Any], _: type) -> ChatSession:
        fields = dict(row)
        fields["params"] = {name: fields.pop(name) for name in _PARAM_COLUMNS}
        return structure_session(fields, ChatSession)

    converter.register_unstructure_hook(ChatSession, session_to_row)
    converter.register_structure_hook(ChatSession, session_from_row)

    # An untitled conversation's title is stored as '' (schema.py: the migration that adds
    # message_feedback).
    unstructure_conversation = make_dict_unstructure_fn(Conversation, converter)
    structure_conversation = make_dict_structure_fn(Conversation, converter)

    def conversation_to_row(conversation: Conversation) -> dict[str, Any]:
        row = unstructure_conversation(conversation)
        row["title"] = row["title"] or UNTITLED
        return row

    def conversation_from_row(row: Mapping[str, Any], _: type) -> Conversation:
        return structure_conversation({**row, "title": row["title"] or None}, Conversation)

    converter.register_unstructure_hook(Conversation, conversation_to_row)
    converter.register_structure_hook(Conversation, conversation_from_row)
    return converter


_rows = _make_converter()


def to_row(value: object) -> dict[str, Any]:
    """The column values of a domain value, keyed by column name."""
    row: dict[str, Any] = _rows.unstructure(value)
    return row


def from_row(cls: type[T], row: Mapping[str, Any]) -> T:
    """The domain value stored in `row`; StorageUnavailable if the row does not fit."""
    try:
        return _rows.structure(row, cls)
    except (cattrs.BaseValidationError, KeyError, ValueError, TypeError) as e:
        raise StorageUnavailable(f"a stored {cls.__name__} could not be read: {e}") from e
