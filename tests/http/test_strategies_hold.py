"""The testing kit's request strategies say what the real server does: it takes every body
they call valid, and refuses every refused one with 400 naming the field they name."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
from httpx_sse import connect_sse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation_service.testing import strategies as cs
from conversation_service.testing.server_thread import server_in_thread
from tests.http.conftest import ECHO, settings_for

pytestmark = pytest.mark.backends("sqlite")

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = {"Content-Type": "application/json"}


@attrs.frozen
class Caller:
    """An organisation's token on the module's server, and another organisation's."""

    http: httpx.Client
    org_id: str
    token: str
    other: tuple[str, str]

    def call(self, method: str, path: str, *, as_org: str | None = None, **kw: Any) -> Any:
        params = {"org_id": as_org or self.org_id, **kw.pop("params", {})}
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.http.request(method, path, params=params, headers=headers, **kw)

    def conversation_and_session(
        self, token: str | None = None, org: str | None = None, title: str = "t"
    ) -> tuple[str, str]:
        """A new conversation with a session on echo, of this org (or the one given)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        made = self.call("POST", "/api/conversation/create", as_org=org, headers=headers,
                         json={"title": title}).json()  # fmt: skip
        session = self.call("POST", "/api/conversation/create_session", as_org=org,
                            headers=headers, json={"conversation_id": made["id"],
                                                   "model_id": ECHO}).json()  # fmt: skip
        return made["id"], session["id"]


@pytest.fixture(scope="module")
def caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caller]:
    config = settings_for(
        tmp_path_factory.mktemp("strategies"),
        rate_limit="1000000/minute",
        allow_private_model_urls=True,
    )
    with (
        server_in_thread(config) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        yield Caller(http, *server.new_org("ours"), other=server.new_org("theirs"))


@EXAMPLES
@given(data=st.data())
def test_every_valid_body_is_taken(caller: Caller, data: st.DataObject) -> None:
    body = data.draw(cs.create_conversation_bodies(), label="create")
    created = caller.call("POST", "/api/conversation/create", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["title"] == body["title"]
    conversation = created.json()["id"]

    body = data.draw(cs.create_session_bodies(conversation, ECHO), label="create_session")
    made = caller.call("POST", "/api/conversation/create_session", json=body)
    assert made.status_code == 201, made.text
    session = made.json()["id"]

    body = data.draw(cs.stream_chat_bodies(session, max_message_chars=100), label="stream_chat")
    with connect_sse(
        caller.http,
        "POST",
        "/api/conversation/stream_chat",
        params={"org_id": caller.org_id},
        headers={"Authorization": f"Bearer {caller.token}"},
        json=body,
    ) as source:
        assert source.response.status_code == 200, source.response.read()
        events = [(sse.event, sse.json()) for sse in source.iter_sse()]
    assert events[-1][0] == "end" and events[-1][1]["finish_reason"] in ("stop", "length")

    body = data.draw(cs.cancel_bodies(session, events[0][1]["message_id"]), label="cancel")
    cancelled = caller.call("POST", "/api/conversation/cancel", json=body)
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is False

    body = data.draw(cs.complete_session_bodies(session), label="complete_session")
    completed = caller.call("POST", "/api/conversation/complete_session", json=body)
    assert completed.status_code == 200, completed.text


@EXAMPLES
@given(data=st.data())
def test_every_refused_body_is_refused_naming_its_field(
    caller: Caller, data: st.DataObject
) -> None:
    conversation, session = caller.conversation_and_session()
    route, refused = data.draw(
        st.one_of(
            st.tuples(st.just("create"), cs.refused_create_conversation_bodies()),
            st.tuples(
                st.just("create_session"),
                cs.refused_create_session_bodies(conversation, ECHO, max_output_tokens=100_000),
            ),
            st.tuples(st.just("stream_chat"), cs.refused_stream_chat_bodies(session)),
            st.tuples(st.just("cancel"), cs.refused_cancel_bodies(session)),
            st.tuples(st.just("complete_session"), cs.refused_complete_session_bodies(session)),
            st.tuples(st.just("update"), cs.refused_update_conversation_bodies(conversation)),
            st.tuples(st.just("delete"), cs.refused_delete_conversation_bodies(conversation)),
            st.tuples(st.just("feedback"), cs.refused_feedback_bodies(uuid.uuid4())),
            st.tuples(st.just("clear_feedback"), cs.refused_clear_feedback_bodies(uuid.uuid4())),
            st.tuples(st.just("regenerate"), cs.refused_regenerate_bodies(session)),
            st.tuples(st.just("edit"), cs.refused_edit_bodies(session, uuid.uuid4())),
            st.tuples(
                st.just("select_branch"), cs.refused_select_branch_bodies(session, uuid.uuid4())
            ),
        ),
        label="refused",
    )
    response = caller.call(
        "POST", f"/api/conversation/{route}", content=refused.content(), headers=JSON
    )
    assert response.status_code == 400, (route, refused, response.text[:300])
    assert response.json()["error"].get("field") == refused.field, (route, refused, response.text)
    listed = caller.call(
        "GET", "/api/conversation/messages", params={"conversation_id": conversation}
    ).json()
    assert listed["messages"] == []  # nothing was sent
    kept = caller.call(
        "GET", "/api/conversation/get_with_sessions", params={"conversation_id": conversation}
    )
    assert kept.status_code == 200 and kept.json()["title"] == "t"  # nor changed, nor deleted


def _streamed(caller: Caller, route: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    with connect_sse(
        caller.http,
        "POST",
        f"/api/conversation/{route}",
        params={"org_id": caller.org_id},
        headers={"Authorization": f"Bearer {caller.token}"},
        json=body,
    ) as source:
        assert source.response.status_code == 200, source.response.read()
        return [(sse.event, sse.json()) for sse in source.iter_sse()]


@settings(EXAMPLES, max_examples=15)
@given(data=st.data())
def test_every_valid_body_of_the_keeping_and_branching_routes_is_taken(
    caller: Caller, data: st.DataObject
) -> None:
    conversation, session = caller.conversation_and_session()
    events = _streamed(caller, "stream_chat", {"chat_session_id": session, "message": "hi"})
    question, reply = events[0][1]["user_message_id"], events[0][1]["message_id"]

    body = data.draw(cs.feedback_bodies(reply), label="feedback")
    rated = caller.call("POST", "/api/conversation/feedback", json=body)
    assert rated.status_code == 200 and rated.json()["rating"] == body["rating"], rated.text
    body = data.draw(cs.clear_feedback_bodies(reply), label="clear_feedback")
    assert caller.call("POST", "/api/conversation/clear_feedback", json=body).status_code == 200

    body = data.draw(cs.regenerate_bodies(session, reply), label="regenerate")
    assert _streamed(caller, "regenerate", body)[-1][0] == "end"
    body = data.draw(cs.edit_bodies(session, question, max_message_chars=100), label="edit")
    assert _streamed(caller, "edit", body)[-1][0] == "end"
    body = data.draw(cs.select_branch_bodies(session, question), label="select_branch")
    chosen = caller.call("POST", "/api/conversation/select_branch", json=body)
    assert chosen.status_code == 200, chosen.text

    body = data.draw(cs.update_conversation_bodies(conversation), label="update")
    updated = caller.call("POST", "/api/conversation/update", json=body)
    assert updated.status_code == 200, updated.text
    if body.get("title") is not None:
        assert updated.json()["title"] == body["title"]
    body = data.draw(cs.delete_conversation_bodies(conversation), label="delete")
    assert caller.call("POST", "/api/conversation/delete", json=body).status_code == 200
    gone = caller.call(
        "GET", "/api/conversation/get_with_sessions", params={"conversation_id": conversation}
    )
    assert gone.status_code == 404


@EXAMPLES
@given(refused=cs.refused_list_queries())
def test_every_refused_list_query_is_refused_naming_its_parameter(
    caller: Caller, refused: cs.Refused
) -> None:
    response = caller.call("GET", "/api/conversation/list", params=dict(refused.query))
    assert response.status_code == 400, (refused, response.text)
    assert response.json()["error"]["field"] == refused.field


@EXAMPLES
@given(data=st.data())
def test_other_organisations_ids_are_not_found(caller: Caller, data: st.DataObject) -> None:
    theirs, _ = caller.conversation_and_session(*reversed(caller.other), title="their secret")
    conversation = data.draw(cs.foreign_ids([theirs]), label="conversation_id")
    found = caller.call(
        "GET", "/api/conversation/get_with_sessions", params={"conversation_id": conversation}
    )
    assert found.status_code == 404 and "their secret" not in found.text
    org = data.draw(cs.other_org_ids(caller.org_id), label="org_id")
    assert caller.call("GET", "/api/conversation/list", as_org=org).status_code == 403


MODEL_URL = "http://127.0.0.1:9/v1"  # nothing listens there; nothing here calls it


@EXAMPLES
@given(body=cs.register_model_bodies(MODEL_URL))
def test_every_valid_model_is_registered(caller: Caller, body: dict[str, Any]) -> None:
    body = {**body, "name": f"{body['name']} {uuid.uuid4()}"}  # an organisation's are unique
    made = caller.call("POST", "/api/models", json=body)
    assert made.status_code == 201, (body, made.text)
    shown = made.json()
    assert (shown["name"], shown["max_output_tokens"]) == (body["name"], body["max_output_tokens"])


@EXAMPLES
@given(refused=cs.refused_register_model_bodies(MODEL_URL))
def test_every_refused_model_is_refused_naming_its_field(
    caller: Caller, refused: cs.Refused
) -> None:
    response = caller.call("POST", "/api/models", content=refused.content(), headers=JSON)
    assert response.status_code == 400, (refused, response.text[:300])
    assert response.json()["error"].get("field") == refused.field, (refused, response.text)
