"""JSON Schemas (2020-12, the dialect of OpenAPI 3.1) generated from attrs classes.

A field's type gives its schema: str, int, float, bool, UUID, datetime, enums, `X | None`,
tuples and lists, nested attrs classes (a `$ref` when they are components). What a type
cannot say comes from the field itself (`field_rules.py`), so that a class, its checks and its
schema are one declaration: its default, a validator that states its keywords, and its
`about(...)` metadata. A response is a `Shape`: what a view shows of a class. Every object
is closed (`additionalProperties: false`), as the request converter holds bodies and the
tests hold answers.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

from conversation_service.entrypoints.http.field_rules import KEY, Note, Schema, text

TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "description": "UTC, with microseconds and a Z, e.g. 2026-11-26T06:02:59.123456Z",
}


Added = tuple[Any, Callable[[Any], Any] | None]  # (type, how to get it; None: the view gives it)


@attrs.frozen(kw_only=True)
class Shape:
    """What a view shows of an attrs class: its fields but `hidden`, then `added` ones.

    An added name that is a field's replaces it in place. The view renders by the same
    declaration (`views.py`), giving itself the values of the added names with no getter.
    """

    kind: type
    hidden: tuple[str, ...] = ()
    added: Mapping[str, Added] = attrs.field(factory=dict)
    notes: Mapping[str, Note] = attrs.field(factory=dict)
    order: tuple[str, ...] = ()  # when the order of the keys matters (an unsorted answer)
    description: str | None = None  # else the class docstring's first paragraph

    def names(self) -> tuple[str, ...]:
        found = [f.name for f in attrs.fields(self.kind) if f.name not in self.hidden]
        found += [name for name in self.added if name not in found]
        if self.order:
            assert sorted(self.order) == sorted(found), f"{self.kind}: order lists {found}"
            return self.order
        return tuple(found)


class Schemas:
    """The schemas of attrs classes and shapes; `refs` names the classes that are components."""

    def __init__(
        self,
        refs: Mapping[type, str],
        *,
        shapes: Mapping[type, Shape] | None = None,
        limits: object = None,
    ) -> None:
        self.refs = refs
        self.shapes = shapes or {}
        self.limits = limits

    def request(self, kind: type, **extra: Any) -> Schema:
        """A request body: fields with a default may be left out."""
        fields = attrs.fields(kind)
        hints = typing.get_type_hints(kind)
        properties = {f.name: self._field(hints[f.name], f, response=False) for f in fields}
        required = [f.name for f in fields if f.default is attrs.NOTHING]
        return _object(properties, required, _doc(kind), extra)

    def response(self, shape: Shape | type, **extra: Any) -> Schema:
        """A response body: every name it shows is always there."""
        if not isinstance(shape, Shape):
            shape = self.shapes.get(shape) or Shape(kind=shape)
        fields = {f.name: f for f in attrs.fields(shape.kind)}
        hints = typing.get_type_hints(shape.kind)
        properties = {}
        for name in shape.names():
            hint = shape.added[name][0] if name in shape.added else hints[name]
            properties[name] = self._field(
                hint, fields.get(name), response=True, given=shape.notes.get(name)
            )
        description = shape.description or _doc(shape.kind)
        return _object(properties, list(properties), description, extra)

    def _field(
        self,
        hint: Any,
        field: attrs.Attribute[Any] | None,
        *,
        response: bool,
        given: Note | None = None,
    ) -> Schema:
        inner, nullable = _without_none(hint)
        schema = self.type_schema(inner, response=response)
        found = given or (field.metadata.get(KEY) if field is not None else None)
        if found is not None and found.text_limit is not None:
            schema = text(getattr(self.limits, found.text_limit), found.description or "")
        describes = getattr(field.validator if field else None, "keywords", None)
        if describes is not None:
            schema.update(describes())
        if found is not None:
            schema.update(found.keywords)
        if nullable:
            schema = _or_null(schema)
        if found is not None and found.description and found.text_limit is None:
            schema["description"] = found.description
        default = field.default if field is not None else None
        # A factory's value stands for one the class cannot state; only plain values show.
        plain = isinstance(default, bool | int | float | str | enum.Enum)
        if not response and plain and default is not attrs.NOTHING:  # NOTHING is an Enum
            schema["default"] = default.value if isinstance(default, enum.Enum) else default
        return schema

    def type_schema(self, hint: Any, *, response: bool) -> Schema:
        """The schema of a (non-None) type."""
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (tuple, list):
            return {"type": "array", "items": self.type_schema(args[0], response=response)}
        if hint in self.refs:
            return {"$ref": f"#/components/schemas/{self.refs[hint]}"}
        if inspect.isclass(hint) and attrs.has(hint):
            return self.response(hint) if response else self.request(hint)
        if inspect.isclass(hint) and issubclass(hint, enum.Enum):
            return {"type": "string", "enum": [member.value for member in hint]}
        if hint in _SCALARS:
            schema = dict(_SCALARS[hint])
            # Every integer this API answers with counts something (tokens, ms, items).
            return {**schema, "minimum": 0} if response and hint is int else schema
        raise TypeError(f"no JSON Schema for {hint!r}")


_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    UUID: {"type": "string", "format": "uuid"},
    datetime: TIMESTAMP,
}


def _without_none(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        assert len(rest) == 1, f"one type or None, not {hint!r}"
        return rest[0], True
    return hint, False


def _or_null(schema: Schema) -> Schema:
    if isinstance(schema.get("type"), str):
        nullable = {**schema, "type": [schema["type"], "null"]}
        if "enum" in schema:
            nullable["enum"] = [*schema["enum"], None]
        return nullable
    return {"oneOf": [schema, {"type": "null"}]}


def _doc(kind: type) -> str | None:
    """The class docstring's first paragraph, on one line."""
    doc = inspect.getdoc(kind)
    return " ".join(doc.split("\n\n")[0].split()) if doc else None


def _object(
    properties: Schema, required: list[str], description: str | None, extra: Schema
) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return {**schema, **extra}
