"""Response bodies: domain values to JSON-ready dicts through one private cattrs converter."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import cattrs

from adapters.actors.reply_writer import usage_view
from domain.model import ChatSession, Conversation, Message, Page
from ports.language_model import ModelInfo

_out = cattrs.Converter()
_out.register_unstructure_hook(UUID, str)
_out.register_unstructure_hook(enum.Enum, lambda value: value.value)


def timestamp(at: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z, e.g. 2026-11-26T06:02:59.123456Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_out.register_unstructure_hook(datetime, timestamp)


def conversation(value: Conversation) -> dict[str, Any]:
    body = _out.unstructure(value)
    del body["org_id"]
    return body


def session(value: ChatSession) -> dict[str, Any]:
    body = _out.unstructure(value)
    del body["org_id"]
    return body


def message(value: Message) -> dict[str, Any]:
    body = _out.unstructure(value)
    del body["org_id"]
    body["usage"] = usage_view(value.usage)
    return body


def model(value: ModelInfo) -> dict[str, Any]:
    return _out.unstructure(value)


def page(key: str, value: Page[Any], view: Any) -> dict[str, Any]:
    return {
        key: [view(item) for item in value.items],
        "limit": value.limit,
        "offset": value.offset,
        "has_more": value.has_more,
    }
