"""What a field declares beside its type, for the server and the document alike.

A request field's checks (`Range`, `OneOf`: attrs validators, run when the body is
structured, whose reasons read as the domain's) state their keywords in its JSON Schema; its
`about(...)` metadata holds its description, the `InputLimits` field its text is limited by,
and further keywords. `json_schema.py` reads them all.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import attrs

from conversation_service.domain.errors import InvalidField

Schema = dict[str, Any]
KEY = "json_schema"  # the metadata key of a field's Note


@attrs.frozen
class Note:
    """What a field's schema says beyond its type."""

    description: str | None = None
    text_limit: str | None = None  # an InputLimits field: the text's most characters
    keywords: Mapping[str, Any] = attrs.field(factory=dict)


def note(description: str | None = None, *, text_limit: str | None = None, **keywords: Any) -> Note:
    return Note(description, text_limit, keywords)


def about(description: str | None = None, **keywords: Any) -> dict[str, Note]:
    """Field metadata for its schema: `attrs.field(metadata=about("What it is."))`."""
    return {KEY: note(description, **keywords)}


@attrs.frozen
class Range:
    """A number's bounds (None passes): an attrs validator whose schema states them.

    Its reasons are the domain's (`domain/rules.py`), so a refusal reads the same whichever
    layer notices first. Infinities and NaN are refused too: JSON has no such numbers.
    """

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None  # exclusive minimum

    def __call__(self, _: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is None:
            return
        ok = math.isfinite(value) and not (
            (self.minimum is not None and value < self.minimum)
            or (self.above is not None and value <= self.above)
            or (self.maximum is not None and value > self.maximum)
        )
        if not ok:
            raise InvalidField(attribute.name, self.reason())

    def reason(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"must be between {self.minimum} and {self.maximum}"
        parts = []
        if self.minimum is not None:
            parts.append(f"at least {self.minimum}")
        if self.above is not None:
            parts.append(f"greater than {self.above}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum}")
        return "must be " + " and ".join(parts)

    def keywords(self) -> Schema:
        found = {"minimum": self.minimum, "exclusiveMinimum": self.above, "maximum": self.maximum}
        return {key: bound for key, bound in found.items() if bound is not None}


@attrs.frozen
class OneOf:
    """One of some strings: an attrs validator whose schema lists them."""

    choices: tuple[str, ...]

    def __call__(self, _: object, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in self.choices:
            raise InvalidField(attribute.name, f"must be one of {', '.join(self.choices)}")

    def keywords(self) -> Schema:
        return {"enum": list(self.choices)}


@functools.cache
def whitespace() -> str:
    """What Python's `str.strip()` removes, as the inside of a regex character class.

    Listed exactly, so every regex engine (Python, ECMA-262, Rust) agrees with the server on
    which texts count as blank.
    """
    runs: list[tuple[int, int]] = []
    for code in (code for code in range(0x110000) if chr(code).isspace()):
        if runs and runs[-1][1] == code - 1:
            runs[-1] = (runs[-1][0], code)
        else:
            runs.append((code, code))
    return "".join(f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in runs)


def not_blank() -> str:
    """A pattern for a string with some character that is not whitespace."""
    return f"[^{whitespace()}]"


def text(max_chars: int, what: str) -> Schema:
    """A text as `domain/rules.py` `_text` takes it: not blank, no NUL, at most `max_chars`."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_chars,
        "pattern": f"^[^\\u0000]*[^\\u0000{whitespace()}][^\\u0000]*$",
        "description": f"{what}: 1 to {max_chars} characters, not only whitespace, no NUL.",
    }
