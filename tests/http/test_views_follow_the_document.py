"""Every answer the views render is what the document's schema for it says, for any value.

The values are made from the domain classes' type hints (the testing kit's `any_value_of`),
independently of the generator that made the schemas, so a view and its schema cannot drift
apart unseen: a field a view adds, drops or renders differently fails here, for values
(failed replies, latencies, archived conversations, ...) the HTTP tests may never produce.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

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
from conversation_service.testing.strategies import any_value_of, pages_of

DOCUMENT = build_openapi(HttpSettings(), InputLimits())


QUERIES = st.sampled_from(["vector", 'AND "vector data"* -x', "ünïcode"]).map(parse_query)
RESULTS = st.builds(
    attrs.evolve,
    any_value_of(SearchResult),
    message_ids=st.lists(st.uuids(), max_size=20).map(tuple),
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
    any_value_of(Message),
    st.integers(1, 2**31),
    st.integers(1, 2**31),
)
MODELS = st.builds(attrs.evolve, any_value_of(ModelInfo), scope=st.sampled_from(["global", "org"]))

# Component -> the values a view renders under it, and the view.
RENDERED: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], Any]]] = {
    "Usage": (any_value_of(Usage), views.usage_view),
    "Conversation": (any_value_of(Conversation), views.conversation),
    "ChatSession": (any_value_of(ChatSession), views.session),
    "ConversationWithSessions": (any_value_of(ConversationWithSessions), views.with_sessions),
    "Message": (
        st.tuples(LISTED, any_value_of(Feedback | None)),
        lambda pair: views.message(*pair),
    ),
    "ConversationPage": (pages_of(Conversation), views.conversation_page),
    "MessagePage": (
        st.tuples(
            st.builds(
                Page,
                items=st.lists(LISTED, max_size=3).map(tuple),
                limit=st.integers(1, 1000),
                offset=any_value_of(int),
                has_more=any_value_of(bool),
            ),
            any_value_of(Feedback),
        ),
        # The feedback given on the page's first message, if it has one.
        lambda pair: views.message_page(
            pair[0], {pair[0].items[0].message.id: pair[1]} if pair[0].items else {}
        ),
    ),
    "Model": (MODELS, views.model),
    "ModelList": (st.lists(MODELS, max_size=3), views.models),
    "ModelUsage": (
        st.tuples(
            any_value_of(ModelUsage),
            any_value_of(str | None),
            any_value_of(views.FeedbackCounts | None),
        ),
        lambda triple: views.model_usage(*triple),
    ),
    "Cancelled": (st.tuples(st.uuids(), st.booleans()), lambda pair: views.cancelled(*pair)),
    "Feedback": (any_value_of(Feedback), views.feedback_view),
    "FeedbackCounts": (any_value_of(views.FeedbackCounts), attrs.asdict),
    "FeedbackCleared": (
        st.tuples(st.uuids(), st.booleans()),
        lambda pair: views.feedback_cleared(*pair),
    ),
    "ConversationDeleted": (st.uuids(), views.conversation_deleted),
    "ImportReport": (
        st.builds(
            ImportReport,
            **{name: any_value_of(int) for name in ("conversations", "sessions", "messages")},
            feedback=any_value_of(int),
            new_ids=any_value_of(int),
            conversation_ids=st.lists(st.tuples(st.uuids(), st.uuids()), max_size=3).map(tuple),
        ),
        views.imported,
    ),
    "SearchPage": (
        st.builds(SearchPage, query=QUERIES, results=pages_of(SearchResult)),
        views.search_page,
    ),
    "SearchResult": (RESULTS, lambda result: _searched(result)),
    "Snippet": (
        st.builds(attrs.evolve, RESULTS, snippet=any_value_of(Snippet)),
        lambda result: _searched(result)["snippet"],
    ),
    "SnippetPart": (
        st.builds(attrs.evolve, RESULTS, snippet=any_value_of(Snippet)).filter(
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
