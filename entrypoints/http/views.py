"""Response bodies: domain values to JSON-ready dicts through one private cattrs converter."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import cattrs

from conversation_service.domain.model import ChatSession, Conversation, Message, Page, Usage
from conversation_service.ports.language_model import ModelInfo
from conversation_service.ports.storage import ModelUsage

_out = cattrs.Converter()
_out.register_unstructure_hook(UUID, str)
_out.register_unstructure_hook(enum.Enum, lambda value: value.value)


def timestamp(at: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z, e.g. 2026-11-26T06:02:59.123456Z."""
    # isoformat pads the year to four digits; strftime("%Y") does not for years before 1000.
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_out.register_unstructure_hook(datetime, timestamp)


def usage_view(usage: Usage | None) -> dict[str, Any] | None:
    """A reply's usage as its `end` event and the messages API show it."""
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "estimated": usage.estimated,
    }


def conversation(value: Conversation) -> dict[str, Any]:
    body = _out.unstructure(value)
    del body["org_id"]
    return body


def session(value: ChatSession) -> dict[str, Any]:
    body = _out.unstructure(value)
    del body["org_id"], body["version"]  # the version is storage's concurrency check
    return body


def message(value: Message) -> dict[str, Any]:
    body = _out.unstructure(value)
    del body["org_id"]
    body["usage"] = usage_view(value.usage)
    code, why = body.pop("error_code"), body.pop("error_message")
    body["error"] = None if code is None else {"code": code, "message": why}
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


def model_usage(value: ModelUsage, name: str | None) -> dict[str, Any]:
    return {
        "model_id": str(value.model_id),
        "name": name,
        "replies": value.replies,
        "prompt_tokens": value.prompt_tokens,
        "completion_tokens": value.completion_tokens,
        "total_tokens": value.prompt_tokens + value.completion_tokens,
        "estimated_replies": value.estimated_replies,
    }
