"""Every answer the views render is what the document's schema for it says, for any value.

The values are made from the domain classes' type hints here, independently of the
generator that made the schemas, so a view and its schema cannot drift apart unseen: a
field a view adds, drops or renders differently fails here, for values (failed replies,
latencies, archived conversations, ...) the HTTP tests may never produce.
"""

from __future__ import annotations

import enum
import json
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from conversation_service.domain.branches import ListedMessage
from conversation_service.domain.feedback import Feedback
from conversation_service.domain.model import ChatSession, Conversation, Message, Page, Usage
from conversation_service.domain.rules import InputLimits
from conversation_service.domain.search import SearchResult, Snippet, parse_query
from conversation_service.domain.transfer import ImportReport
from conversation_service.entrypoints.http import views
from conversation_service.entrypoints.http.json_schema import Schemas, Shape
from conversation_service.entrypoints.http.openapi import build_openapi
from conversation_service.entrypoints.http.openapi_schemas import COMPONENTS
from conversation_service.entrypoints.http.routes import HttpSettings
from conversation_service.ports.language_model import ModelInfo
from conversation_service.ports.storage import ModelUsage
from conversation_service.service_layer.conversation_service import ConversationWithSessions
from conversation_service.service_layer.search import SearchPage

DOCUMENT = build_openapi(HttpSettings(), InputLimits())
SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    str: st.text(max_size=20),
    int: st.integers(min_value=0, max_value=2**53),  # every integer answered is a count
    float: st.floats(allow_nan=False, allow_infinity=False),
    bool: st.booleans(),
    UUID: st.uuids(),
    datetime: st.datetimes(timezones=st.just(UTC)),
}


def values(hint: Any) -> st.SearchStrategy[Any]:
    """Any value of a type, built from its hints."""
    args = typing.get_args(hint)
    if type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return st.none() | values(inner)
    if typing.get_origin(hint) is tuple:
        return st.lists(values(args[0]), max_size=3).map(tuple)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(hint)
    if isinstance(hint, type) and attrs.has(hint):
        hints = typing.get_type_hints(hint)
        return st.builds(hint, **{f.name: values(hints[f.name]) for f in attrs.fields(hint)})
    return SCALARS[hint]


def page_of(kind: type) -> st.SearchStrategy[Page[Any]]:
    return st.builds(
        Page,
        items=values(tuple[kind, ...]),
        limit=st.integers(1, 1000),
        offset=values(int),
        has_more=values(bool),
    )


QUERIES = st.sampled_from(["vector", 'AND "vector data"* -x', "ünïcode"]).map(parse_query)
RESULTS = st.builds(
    attrs.evolve, values(SearchResult), message_ids=st.lists(st.uuids(), max_size=20).map(tuple)
)


def _searched(result: SearchResult) -> dict[str, Any]:
    """One result as the search answer shows it."""
    page = Page(items=(result,), limit=1, offset=0, has_more=False)
    return views.search_page(SearchPage(query=parse_query("x"), results=page))["results"][0]


# A message with its place among the alternatives: at least 1 of at least 1.
LISTED = st.builds(
    lambda message, count, index: ListedMessage(
        message=message, sibling_count=count, sibling_index=min(index, count)
    ),
    values(Message),
    st.integers(1, 2**31),
    st.integers(1, 2**31),
)
MODELS = st.builds(attrs.evolve, values(ModelInfo), scope=st.sampled_from(["global", "org"]))

# Component -> the values a view renders under it, and the view.
RENDERED: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], Any]]] = {
    "Usage": (values(Usage), views.usage_view),
    "Conversation": (values(Conversation), views.conversation),
    "ChatSession": (values(ChatSession), views.session),
    "ConversationWithSessions": (values(ConversationWithSessions), views.with_sessions),
    "Message": (
        st.tuples(LISTED, values(Feedback | None)),
        lambda pair: views.message(*pair),
    ),
    "ConversationPage": (page_of(Conversation), views.conversation_page),
    "MessagePage": (
        st.tuples(
            st.builds(
                Page,
                items=st.lists(LISTED, max_size=3).map(tuple),
                limit=st.integers(1, 1000),
                offset=values(int),
                has_more=values(bool),
            ),
            values(Feedback),
        ),
        # The feedback given on the page's first message, if it has one.
        lambda pair: views.message_page(
            pair[0], {pair[0].items[0].message.id: pair[1]} if pair[0].items else {}
        ),
    ),
    "Model": (MODELS, views.model),
    "ModelList": (st.lists(MODELS, max_size=3), views.models),
    "ModelUsage": (
        st.tuples(values(ModelUsage), values(str | None), values(views.FeedbackCounts | None)),
        lambda triple: views.model_usage(*triple),
    ),
    "Cancelled": (st.tuples(st.uuids(), st.booleans()), lambda pair: views.cancelled(*pair)),
    "Feedback": (values(Feedback), views.feedback_view),
    "FeedbackCounts": (values(views.FeedbackCounts), attrs.asdict),
    "FeedbackCleared": (
        st.tuples(st.uuids(), st.booleans()),
        lambda pair: views.feedback_cleared(*pair),
    ),
    "ConversationDeleted": (st.uuids(), views.conversation_deleted),
    "ImportReport": (
        st.builds(
            ImportReport,
            **{name: values(int) for name in ("conversations", "sessions", "messages")},
            feedback=values(int),
            new_ids=values(int),
            conversation_ids=st.lists(st.tuples(st.uuids(), st.uuids()), max_size=3).map(tuple),
        ),
        views.imported,
    ),
    "SearchPage": (
        st.builds(SearchPage, query=QUERIES, results=page_of(SearchResult)),
        views.search_page,
    ),
    "SearchResult": (RESULTS, lambda result: _searched(result)),
    "Snippet": (
        st.builds(attrs.evolve, RESULTS, snippet=values(Snippet)),
        lambda result: _searched(result)["snippet"],
    ),
    "SnippetPart": (
        st.builds(attrs.evolve, RESULTS, snippet=values(Snippet)).filter(
            lambda result: bool(result.snippet.parts)
        ),
        lambda result: _searched(result)["snippet"]["parts"][0],
    ),
}


def test_every_component_a_view_declares_is_rendered_here() -> None:
    assert set(RENDERED) == set(COMPONENTS)


@pytest.mark.parametrize("name", sorted(RENDERED))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_what_a_view_renders_is_what_its_schema_says(name: str, data: st.DataObject) -> None:
    strategy, view = RENDERED[name]
    # JSON as the server sends it (tuples become arrays).
    body = json.loads(json.dumps(view(data.draw(strategy))))
    check = Draft202012Validator(
        {**DOCUMENT, "$ref": f"#/components/schemas/{name}"},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    check.validate(body)


def test_a_field_a_shape_adds_is_in_its_schema_and_one_it_hides_is_not() -> None:
    message = DOCUMENT["components"]["schemas"]["Message"]
    assert "error" in message["properties"] and "error_code" not in message["properties"]
    shown = Shape(kind=Usage, added={"cost": (int, lambda usage: 0)}, hidden=("estimated",))
    generated = Schemas({}).response(shown)
    assert list(generated["properties"]) == ["prompt_tokens", "completion_tokens", "cost"]
    assert generated["required"] == list(generated["properties"])


def _objects(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [found for item in schema for found in _objects(item)]
    if not isinstance(schema, dict):
        return []
    kind = schema.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    own = [schema] if is_object else []
    return own + [found for value in schema.values() for found in _objects(value)]


def test_every_object_of_the_document_is_closed() -> None:
    objects = _objects(DOCUMENT["components"]["schemas"])
    assert len(objects) > 25
    for found in objects:
        assert found.get("additionalProperties") is False, found
        assert set(found.get("required", ())) <= set(found.get("properties", {})), found
