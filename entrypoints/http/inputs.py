"""Request input: JSON bodies structured strictly by one private cattrs converter into their
classes (`request_bodies.py`), and query parameters; every failure is an InvalidField naming
the field."""

from __future__ import annotations

import enum
import json
import re
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from quart import g, request

from conversation_service.domain.errors import InvalidField

T = TypeVar("T")

_body = cattrs.Converter(forbid_extra_keys=True)


def _strict(kind: type, name: str) -> Any:
    def structure(value: object, _: object) -> object:
        # JSON has one kind of number: 2.0 is the integer 2, as JSON Schema reads it too.
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        # JSON true is not the integer 1, and 123 is not the string "123".
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"must be {name}")
        return value

    return structure


_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_EVENT_ID_TEXT = re.compile(r"[0-9]{1,18}")

MAX_JSON_DEPTH = 32  # no request body is nested nearly this deep


def _uuid(value: object, _: object) -> UUID:
    # UUID() also takes braces, urn:uuid: and unhyphenated forms; the API takes one form.
    if not isinstance(value, str) or not _UUID_TEXT.fullmatch(value):
        raise TypeError("must be a UUID string (8-4-4-4-12 hexadecimal digits)")
    return UUID(value)


def parse_uuid(name: str, raw: str) -> UUID:
    """An id from a query or a path, in the one form every id of the API takes."""
    if not _UUID_TEXT.fullmatch(raw):
        raise InvalidField(name, "must be a UUID (8-4-4-4-12 hexadecimal digits)")
    return UUID(raw)


def parse_event_id(name: str, raw: str) -> int:
    """An SSE event id to resume after: decimal digits, as the server sent them."""
    if not _EVENT_ID_TEXT.fullmatch(raw):
        raise InvalidField(name, "must be an event id: the digits of an `id:` the stream sent")
    return int(raw)


_body.register_structure_hook(str, _strict(str, "a string"))
_body.register_structure_hook(bool, _strict(bool, "true or false"))
_body.register_structure_hook(int, _strict(int, "an integer"))
_body.register_structure_hook(UUID, _uuid)


def _number(value: object, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("must be a number")
    return float(value)


_body.register_structure_hook(float, _number)


def _member(value: object, kind: type[enum.Enum]) -> enum.Enum:
    # A member's value as a JSON string; the reason lists the values, as the document does.
    for member in kind:
        if isinstance(value, str) and member.value == value:
            return member
    raise ValueError(f"must be one of {', '.join(member.value for member in kind)}")


_body.register_structure_hook(enum.Enum, _member)


def _first_problem(error: BaseException, path: str = "") -> InvalidField:
    if isinstance(error, InvalidField):  # a field's validator (field_rules.Range, ...)
        return InvalidField(f"{path}{error.field}", error.reason)
    if isinstance(error, ForbiddenExtraKeysError):
        extra = sorted(error.extra_fields)[0]
        return InvalidField(f"{path}{extra}", "unknown field")
    if isinstance(error, ClassValidationError):
        for inner in error.exceptions:
            note = _note(inner)
            if note is not None:
                if isinstance(inner, KeyError):
                    return InvalidField(f"{path}{note}", "required field is missing")
                return (
                    _first_problem(inner, f"{path}{note}.")
                    if isinstance(inner, ClassValidationError)
                    else InvalidField(f"{path}{note}", _reason(inner))
                )
            return _first_problem(inner, path)
    return InvalidField(path.rstrip(".") or "body", _reason(error))


def _note(error: BaseException) -> str | None:
    for note in getattr(error, "__notes__", []):
        name = getattr(note, "name", None)
        if name is not None:
            return str(name)
    return None


def _reason(error: BaseException) -> str:
    text = str(error)
    return text if text.startswith("must") else "has an invalid value"


async def read_json_body(kind: type[T], max_bytes: int) -> T:
    """The request body as `kind`; InvalidField on bad JSON, types or unknown fields."""
    return structure(await read_json_object(max_bytes), kind)


def structure(data: dict[str, Any], kind: type[T]) -> T:
    """A JSON object as `kind`; InvalidField on types, ranges or unknown fields."""
    try:
        return _body.structure(data, kind)
    except (ClassValidationError, ForbiddenExtraKeysError) as error:
        raise _first_problem(error) from None


async def request_body() -> bytes:
    """The request's whole body, read once: each read through Quart costs a timeout scope
    and a trip through the scheduler, even once the body has arrived."""
    body = g.get("body")
    if body is None:
        body = g.body = await request.get_data()
    assert isinstance(body, bytes)
    return body


async def read_json_object(max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object; InvalidField naming `body` otherwise."""
    raw = await request_body()  # an Idempotency-Key fingerprint reads it too
    if len(raw) > max_bytes:
        raise InvalidField("body", f"must be at most {max_bytes} bytes")
    if not raw:
        raise InvalidField("body", "must be a JSON object")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidField("body", f"is not valid JSON ({error})") from None
    except RecursionError:  # deeper than the parser goes: far deeper than the limit below
        raise InvalidField("body", f"is nested more than {MAX_JSON_DEPTH} levels deep") from None
    if not isinstance(data, dict):
        raise InvalidField("body", "must be a JSON object")
    if _depth(data) > MAX_JSON_DEPTH:
        raise InvalidField("body", f"is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        # JSON may escape lone surrogates ("\ud800"), which are no Unicode text at all.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidField("body", "contains an unpaired surrogate: not valid Unicode") from None
    return data


def _depth(value: object) -> int:
    """How deeply objects and arrays nest in a parsed JSON value (without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            todo.extend((inner, level + 1) for inner in item)
    return deepest


def check_query_names(accepted: set[str]) -> None:
    """InvalidField for a query parameter the route does not take, or one given twice."""
    for name in request.args:
        if name not in accepted:
            raise InvalidField(name, "unknown query parameter")
        if len(request.args.getlist(name)) > 1:
            raise InvalidField(name, "must be given once")


def query_uuid(name: str, *, required: bool = True) -> UUID | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise InvalidField(name, "required query parameter is missing")
        return None
    return parse_uuid(name, raw)


def query_int(name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER_TEXT.fullmatch(raw):  # int() would take "1_0" and non-ASCII digits
        raise InvalidField(name, "must be an integer")
    value = int(raw)
    if value < minimum:
        raise InvalidField(name, f"must be at least {minimum}")
    if value > maximum:
        raise InvalidField(name, f"must be at most {maximum}")
    return value


def query_datetime(name: str) -> datetime | None:
    """An ISO 8601 date or date-time; a time without a zone is taken as UTC."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise InvalidField(name, "must be an ISO 8601 date or date-time") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before the first instant we hold
        return EARLIEST if value.year == 1 else LATEST


EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def query_bool(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidField(name, "must be true or false")
