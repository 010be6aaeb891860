"""JSON answers and SSE events into the client's typed values, through one private converter.

Keys the client does not know are ignored (the server may add fields); a missing or mistyped
one is a ResponseFormatError naming the type that could not be read.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from conversation_service.client.errors import ResponseFormatError
from conversation_service.client.events import ContentEvent, EndEvent, ErrorEvent, StartEvent
from conversation_service.client.types import UsageReport

T = TypeVar("T")

_in = cattrs.Converter(forbid_extra_keys=False)
_in.register_structure_hook(UUID, lambda value, _: UUID(value))
_in.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
_in.register_structure_hook(
    UsageReport,
    make_dict_structure_fn(
        UsageReport, _in, start=override(rename="from"), end=override(rename="to")
    ),
)

_EVENTS: dict[str, type[StartEvent | ContentEvent | ErrorEvent | EndEvent]] = {
    "start": StartEvent,
    "content": ContentEvent,
    "error": ErrorEvent,
    "end": EndEvent,
}


def decode(data: Any, cls: type[T]) -> T:
    """`data` (parsed JSON) as a `cls`."""
    try:
        return _in.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ResponseFormatError(f"the answer is not a {_name(cls)}: {error!r}") from None


def decode_event(
    name: str, event_id: int, data: str
) -> StartEvent | ContentEvent | ErrorEvent | EndEvent | None:
    """A stream event from its SSE name, id and `data`; None for an event name this client
    does not know (a newer server's)."""
    cls = _EVENTS.get(name)
    if cls is None:
        return None
    try:
        fields = json.loads(data)
    except ValueError:
        raise ResponseFormatError(f"the {name} event's data is not JSON: {data!r}") from None
    if not isinstance(fields, dict):
        raise ResponseFormatError(f"the {name} event's data is not an object: {data!r}")
    if name == "content":  # the wire's `content` is the event's `text`
        fields["text"] = fields.pop("content", None)
    return decode({**fields, "id": event_id}, cls)


def _name(cls: object) -> str:
    return str(getattr(cls, "__name__", cls))
