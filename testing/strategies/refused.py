"""Requests the service must refuse, and the field its 400 must name.

Each refused body is a valid one (from `bodies.py`) with exactly one thing wrong: a field of
the wrong JSON type, null where null is not taken, a text blank, with a NUL or too long, a
number out of range, an enum value it does not know, an id
in another form than 8-4-4-4-12, a required field missing, an unknown key; or a body that
is no JSON object, or holds an unpaired surrogate (field `body`). Refused queries work the
same way. Ids of other organisations are not refused but not found: `foreign_ids`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

import attrs
from hypothesis import strategies as st

from conversation_service.domain.rules import InputLimits
from conversation_service.entrypoints.http.routes import HttpSettings
from conversation_service.testing.strategies import bodies
from conversation_service.testing.strategies.fields import (
    Field,
    register_model_schema,
    schemas,
    wrong_values,
)
from conversation_service.testing.strategies.texts import LIMITS, texts, with_lone_surrogate


@attrs.frozen
class Refused:
    """A request the service must answer 400, naming `field` (dotted for nested fields).

    Send `content()` as the body (Content-Type application/json): httpx's `json=` cannot
    encode an unpaired surrogate, which JSON can hold escaped.
    """

    field: str
    body: Any = None
    query: Mapping[str, str] = attrs.field(factory=dict)

    def content(self) -> bytes:
        return json.dumps(self.body).encode()


def _paths(fields: Mapping[str, Field], prefix: str = "") -> list[tuple[str, Field]]:
    found = []
    for name, field in fields.items():
        found.append((prefix + name, field))
        if field.kind == "object":
            found += _paths(field.fields, f"{prefix}{name}.")
    return found


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *outer, last = path.split(".")
    inner = changed
    for name in outer:
        if not isinstance(inner.get(name), dict):
            inner[name] = {}
        inner = inner[name]
    inner[last] = value
    return changed


def _drop(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != name}


def refused_bodies(
    valid: st.SearchStrategy[dict[str, Any]], fields: Mapping[str, Field]
) -> st.SearchStrategy[Refused]:
    """`valid` bodies with one thing wrong, and the field the refusal names."""
    paths = _paths(fields)
    texts_at = [path for path, field in paths if field.kind == "text"]
    wrong_field = st.sampled_from(paths).flatmap(
        lambda chosen: st.tuples(st.just(chosen[0]), wrong_values(chosen[1]))
    )
    unknown = st.sampled_from(["", *(f"{p}." for p, f in paths if f.kind == "object")]).flatmap(
        lambda prefix: st.tuples(
            st.just(prefix),
            texts(12).filter(lambda key: "." not in key and key not in _names(fields, prefix)),
        )
    )
    required = [name for name, field in fields.items() if field.required]
    changes = [
        st.tuples(valid, wrong_field).map(lambda d: Refused(d[1][0], _set(d[0], *d[1]))),
        st.tuples(valid, unknown).map(
            lambda d: Refused(d[1][0] + d[1][1], _set(d[0], d[1][0] + d[1][1], 1))
        ),
        st.sampled_from([[], "body", 42, None, True]).map(lambda body: Refused("body", body)),
    ]
    if required:
        changes.append(
            st.tuples(valid, st.sampled_from(required)).map(
                lambda d: Refused(d[1], _drop(d[0], d[1]))
            )
        )
    if texts_at:
        changes.append(
            st.tuples(valid, st.sampled_from(texts_at), with_lone_surrogate()).map(
                lambda d: Refused("body", _set(d[0], d[1], d[2]))
            )
        )
    return st.one_of(changes)


def _names(fields: Mapping[str, Field], prefix: str) -> set[str]:
    for name in filter(None, prefix.rstrip(".").split(".")):
        fields = fields[name].fields
    return set(fields)


def refused_create_conversation_bodies(limits: InputLimits = LIMITS) -> st.SearchStrategy[Refused]:
    return refused_bodies(bodies.create_conversation_bodies(limits), schemas(limits)["create"])


def refused_create_session_bodies(
    conversation_id: UUID | str,
    model_id: UUID | str,
    *,
    max_output_tokens: int | None = None,
    limits: InputLimits = LIMITS,
) -> st.SearchStrategy[Refused]:
    valid = bodies.create_session_bodies(
        conversation_id, model_id, max_output_tokens=max_output_tokens, limits=limits
    )
    return refused_bodies(valid, schemas(limits, max_output_tokens)["create_session"])


def refused_stream_chat_bodies(
    chat_session_id: UUID | str, *, limits: InputLimits = LIMITS
) -> st.SearchStrategy[Refused]:
    valid = bodies.stream_chat_bodies(chat_session_id, limits=limits, max_message_chars=200)
    return refused_bodies(valid, schemas(limits)["stream_chat"])


def refused_cancel_bodies(chat_session_id: UUID | str) -> st.SearchStrategy[Refused]:
    return refused_bodies(bodies.cancel_bodies(chat_session_id), schemas()["cancel"])


def refused_complete_session_bodies(chat_session_id: UUID | str) -> st.SearchStrategy[Refused]:
    valid = bodies.complete_session_bodies(chat_session_id)
    return refused_bodies(valid, schemas()["complete_session"])


def refused_update_conversation_bodies(conversation_id: UUID | str) -> st.SearchStrategy[Refused]:
    valid = bodies.update_conversation_bodies(conversation_id)
    return refused_bodies(valid, schemas()["update"])


def refused_delete_conversation_bodies(conversation_id: UUID | str) -> st.SearchStrategy[Refused]:
    return refused_bodies(bodies.delete_conversation_bodies(conversation_id), schemas()["delete"])


def refused_feedback_bodies(message_id: UUID | str) -> st.SearchStrategy[Refused]:
    return refused_bodies(bodies.feedback_bodies(message_id), schemas()["feedback"])


def refused_clear_feedback_bodies(message_id: UUID | str) -> st.SearchStrategy[Refused]:
    return refused_bodies(bodies.clear_feedback_bodies(message_id), schemas()["clear_feedback"])


def refused_regenerate_bodies(chat_session_id: UUID | str) -> st.SearchStrategy[Refused]:
    return refused_bodies(bodies.regenerate_bodies(chat_session_id), schemas()["regenerate"])


def refused_edit_bodies(
    chat_session_id: UUID | str, message_id: UUID | str
) -> st.SearchStrategy[Refused]:
    valid = bodies.edit_bodies(chat_session_id, message_id, max_message_chars=200)
    return refused_bodies(valid, schemas()["edit"])


def refused_select_branch_bodies(
    chat_session_id: UUID | str, message_id: UUID | str
) -> st.SearchStrategy[Refused]:
    valid = bodies.select_branch_bodies(chat_session_id, message_id)
    return refused_bodies(valid, schemas()["select_branch"])


def refused_register_model_bodies(base_url: str) -> st.SearchStrategy[Refused]:
    """Models an admin registers at `base_url` with one field wrong (POST /api/models)."""
    return refused_bodies(bodies.register_model_bodies(base_url), register_model_schema())


# -- queries --------------------------------------------------------------------------------


def _bad_integers(minimum: int, maximum: int) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [str(minimum - 1), str(maximum + 1), "1_0", "1.0", "one", "\u0661", "+-1", " 1"]
    )


def refused_list_queries(settings: HttpSettings | None = None) -> st.SearchStrategy[Refused]:
    """Queries of GET /api/conversation/list it refuses, naming the parameter."""
    most = (settings or HttpSettings()).list_max_limit
    return st.one_of(
        _bad_integers(1, most).map(lambda v: Refused("limit", query={"limit": v})),
        _bad_integers(0, 2**31).map(lambda v: Refused("offset", query={"offset": v})),
        st.sampled_from(["yes", "no", "2", "maybe", "TRUE "]).map(
            lambda v: Refused("is_archived", query={"is_archived": v})
        ),
        st.sampled_from(["colour", "org", "Limit"]).map(lambda k: Refused(k, query={k: "1"})),
    )


# -- other organisations -------------------------------------------------------------------


def foreign_ids(theirs: Iterable[UUID | str] = ()) -> st.SearchStrategy[str]:
    """Ids the caller's organisation does not have: another organisation's (`theirs`) or
    nobody's. The service answers both alike: 404, nothing of the other's shown."""
    known = sorted({str(i) for i in theirs})
    nobodys = st.uuids().map(str).filter(lambda i: i not in known)
    return st.sampled_from(known) | nobodys if known else nobodys


def other_org_ids(own: UUID | str) -> st.SearchStrategy[str]:
    """`org_id`s that are not the token's own: the service answers 403 for any of them."""
    return st.uuids().map(str).filter(lambda i: i != str(own).lower())
