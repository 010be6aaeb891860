"""The HTTP API driven as clients drive it, by a Hypothesis state machine, against a plain model.

Several organisations create conversations and sessions, send messages (the whole reply
streamed and parsed), list and page, and try each other's conversations with the wrong
token. The model says what every answer must hold: each organisation sees exactly its own
objects, fields and counts agree, paging yields every message once and in order, has_more is
exact, and the list is newest activity first.

The machine is synchronous; the server runs in a thread of its own with its own trio loop,
started once for the module, and every Hypothesis example gets fresh organisations.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
import trio
from httpx_sse import connect_sse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conversation_service.domain.model import AccessRole
from conversation_service.entrypoints.server import RunningServer, running_server
from tests.http.conftest import ECHO, settings_for

SERVER_LIFETIME = 600  # seconds; the module takes well under a minute

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
).filter(lambda t: t.strip() != "")
titles = text.filter(lambda t: len(t) <= 500)
messages = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=60,
).filter(lambda t: t.strip() != "")


@attrs.frozen
class Background:
    """The server, running in its own thread, and how to reach its trio loop."""

    server: RunningServer
    trio_token: trio.lowlevel.TrioToken
    stop: trio.Event

    def run(self, fn: Any, *args: Any) -> Any:
        """Run the async `fn(*args)` in the server's loop, from the test's thread."""

        async def bounded() -> Any:
            with trio.fail_after(30):
                return await fn(*args)

        return trio.from_thread.run(bounded, trio_token=self.trio_token)


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    handoff: queue.Queue[Background | BaseException] = queue.Queue()
    config = settings_for(
        tmp_path_factory.mktemp("stateful"), echo_delay_ms=0, rate_limit="1000000/minute"
    )

    async def serve() -> None:
        try:
            async with running_server(config) as server:
                stop = trio.Event()
                handoff.put(Background(server, trio.lowlevel.current_trio_token(), stop))
                with trio.fail_after(SERVER_LIFETIME):
                    await stop.wait()
        except BaseException as error:
            handoff.put(error)
            raise

    thread = threading.Thread(target=trio.run, args=(serve,), name="stateful-server")
    thread.start()
    started = handoff.get(timeout=60)
    if isinstance(started, BaseException):
        thread.join(timeout=60)
        raise started
    try:
        yield started
    finally:
        trio.from_thread.run_sync(started.stop.set, trio_token=started.trio_token)
        thread.join(timeout=60)
        assert not thread.is_alive(), "the server did not stop"


@attrs.define
class Conv:
    id: str
    title: str
    is_archived: bool
    activity: int  # the model's clock at the last create, new session or new message
    sessions: list[str] = attrs.Factory(list)
    messages: list[tuple[str, str, str]] = attrs.Factory(list)  # (role, content, session id)


@attrs.define
class Org:
    org_id: str
    token: str
    convs: dict[str, Conv] = attrs.Factory(dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_org(server: RunningServer, name: str) -> tuple[str, str]:
    org = await server.services.admin.create_org(name)
    issued = await server.services.admin.create_token(org.id, AccessRole.MEMBER)
    return str(org.id), issued.token


class ApiMachine(RuleBasedStateMachine):
    def __init__(self, background: Background, http: httpx.Client) -> None:
        super().__init__()
        self.background = background
        self.http = http
        self.orgs: list[Org] = []
        self.clock = 0

    # -- helpers ----------------------------------------------------------------------------
    def call(self, method: str, path: str, org: Org, as_org: str | None = None, **kw: Any) -> Any:
        params = {"org_id": as_org or org.org_id, **kw.pop("params", {})}
        return self.http.request(method, path, headers=org.auth, params=params, **kw)

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def pick_conv(self, data: st.DataObject) -> tuple[Org, Conv]:
        org = data.draw(st.sampled_from([o for o in self.orgs if o.convs]), label="org")
        # Dicts keep creation order: the draw depends on the model only, never on server ids.
        return org, data.draw(st.sampled_from(list(org.convs.values())), label="conversation")

    def has_conv(self) -> bool:
        return any(o.convs for o in self.orgs)

    def has_session(self) -> bool:
        return any(c.sessions for o in self.orgs for c in o.convs.values())

    # -- rules ------------------------------------------------------------------------------
    @initialize(count=st.integers(2, 3))
    def make_orgs(self, count: int) -> None:
        for n in range(count):
            org_id, token = self.background.run(new_org, self.background.server, f"org-{n}")
            self.orgs.append(Org(org_id=org_id, token=token))

    @rule(data=st.data(), title=titles, is_archived=st.booleans())
    def create_conversation(self, data: st.DataObject, title: str, is_archived: bool) -> None:
        org = data.draw(st.sampled_from(self.orgs), label="org")
        body: dict[str, Any] = {"title": title}
        if is_archived or data.draw(st.booleans(), label="explicit is_archived"):
            body["is_archived"] = is_archived
        got = self.call("POST", "/api/conversation/create", org, json=body)
        assert got.status_code == 201, got.text
        made = got.json()
        assert (made["title"], made["is_archived"]) == (title, is_archived)
        assert made["id"] not in org.convs
        org.convs[made["id"]] = Conv(made["id"], title, is_archived, self.tick())

    @precondition(has_conv)
    @rule(data=st.data())
    def create_session(self, data: st.DataObject) -> None:
        org, conv = self.pick_conv(data)
        got = self.call(
            "POST",
            "/api/conversation/create_session",
            org,
            json={"conversation_id": conv.id, "model_id": ECHO},
        )
        assert got.status_code == 201, got.text
        made = got.json()
        assert (made["conversation_id"], made["model_id"], made["status"]) == (
            conv.id,
            ECHO,
            "active",
        )
        conv.sessions.append(made["id"])
        conv.activity = self.tick()

    @precondition(has_session)
    @rule(data=st.data(), message=messages)
    def send_message(self, data: st.DataObject, message: str) -> None:
        org = data.draw(
            st.sampled_from([o for o in self.orgs if any(c.sessions for c in o.convs.values())]),
            label="org",
        )
        conv = data.draw(
            st.sampled_from([c for c in org.convs.values() if c.sessions]), label="conversation"
        )
        session_id = data.draw(st.sampled_from(conv.sessions), label="session")
        events = []
        with connect_sse(
            self.http,
            "POST",
            "/api/conversation/stream_chat",
            params={"org_id": org.org_id},
            headers=org.auth,
            json={"chat_session_id": session_id, "message": message},
        ) as source:
            assert source.response.status_code == 200, source.response.read()
            for sse in source.iter_sse():
                events.append((sse.event, sse.json()))
        kinds = [k for k, _ in events]
        assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) <= {"content"}
        assert events[0][1]["chat_session_id"] == session_id
        assert "".join(d["content"] for k, d in events if k == "content") == "Echo: " + message
        assert events[-1][1]["finish_reason"] == "stop"
        conv.messages += [
            ("user", message, session_id),
            ("assistant", "Echo: " + message, session_id),
        ]
        conv.activity = self.tick()

    @rule(
        data=st.data(),
        limit=st.integers(1, 12),
        offset=st.integers(0, 12),
        is_archived=st.sampled_from([None, True, False]),
    )
    def list_conversations(
        self, data: st.DataObject, limit: int, offset: int, is_archived: bool | None
    ) -> None:
        org = data.draw(st.sampled_from(self.orgs), label="org")
        params = {"limit": str(limit), "offset": str(offset)}
        if is_archived is not None:
            params["is_archived"] = str(is_archived).lower()
        got = self.call("GET", "/api/conversation/list", org, params=params)
        assert got.status_code == 200, got.text
        page = got.json()
        matching = sorted(
            (c for c in org.convs.values() if is_archived in (None, c.is_archived)),
            key=lambda c: -c.activity,
        )
        want = matching[offset : offset + limit]
        assert [(c["id"], c["title"], c["is_archived"]) for c in page["conversations"]] == [
            (c.id, c.title, c.is_archived) for c in want
        ]
        assert (page["limit"], page["offset"]) == (limit, offset)
        assert page["has_more"] is (offset + limit < len(matching))

    @precondition(has_conv)
    @rule(data=st.data(), limit=st.integers(1, 7), offset=st.integers(0, 10))
    def page_messages(self, data: st.DataObject, limit: int, offset: int) -> None:
        org, conv = self.pick_conv(data)
        want = [(role, content, session) for role, content, session in conv.messages]
        one = self.messages_page(org, conv, limit, offset)
        assert one["has_more"] is (offset + limit < len(want))
        assert [self.seen(m) for m in one["messages"]] == want[offset : offset + limit]
        walked: list[tuple[str, str, str]] = []
        ids: list[str] = []
        for page_no in range(len(want) // limit + 1):
            page = self.messages_page(org, conv, limit, page_no * limit)
            assert page["has_more"] is ((page_no + 1) * limit < len(want))
            walked += [self.seen(m) for m in page["messages"]]
            ids += [m["id"] for m in page["messages"]]
            if not page["has_more"]:
                break
        else:
            raise AssertionError("has_more still true past the model's last message")
        assert walked == want and len(set(ids)) == len(ids)

    def messages_page(self, org: Org, conv: Conv, limit: int, offset: int) -> dict:
        got = self.call(
            "GET",
            "/api/conversation/messages",
            org,
            params={"conversation_id": conv.id, "limit": str(limit), "offset": str(offset)},
        )
        assert got.status_code == 200, got.text
        page = got.json()
        assert (page["limit"], page["offset"]) == (limit, offset)
        for message in page["messages"]:
            assert message["conversation_id"] == conv.id and message["status"] == "completed"
            assert message["model_id"] == (ECHO if message["role"] == "assistant" else None)
        return page

    @staticmethod
    def seen(message: dict) -> tuple[str, str, str]:
        return (message["role"], message["content"], message["chat_session_id"])

    @precondition(has_conv)
    @rule(data=st.data())
    def get_with_sessions(self, data: st.DataObject) -> None:
        org, conv = self.pick_conv(data)
        got = self.call(
            "GET", "/api/conversation/get_with_sessions", org, params={"conversation_id": conv.id}
        )
        assert got.status_code == 200, got.text
        found = got.json()
        assert (found["id"], found["title"], found["is_archived"]) == (
            conv.id,
            conv.title,
            conv.is_archived,
        )
        assert [s["id"] for s in found["sessions"]] == conv.sessions
        for session in found["sessions"]:
            assert (session["conversation_id"], session["model_id"]) == (conv.id, ECHO)
            assert session["status"] == "active"

    @precondition(has_conv)
    @rule(
        data=st.data(),
        route=st.sampled_from(
            ["get_with_sessions", "messages", "create_session", "stream_chat", "cancel"]
        ),
        own_org_id=st.booleans(),
    )
    def intrude(self, data: st.DataObject, route: str, own_org_id: bool) -> None:
        """Another organisation's token on this conversation: 404 in its own org, else 403."""
        owner, conv = self.pick_conv(data)
        intruder = data.draw(
            st.sampled_from([o for o in self.orgs if o is not owner]), label="intruder"
        )
        as_org = intruder.org_id if own_org_id else owner.org_id
        session = conv.sessions[0] if conv.sessions else conv.id  # an id of the owner's anyway
        path = f"/api/conversation/{route}"
        if route in ("get_with_sessions", "messages"):
            got = self.call("GET", path, intruder, as_org, params={"conversation_id": conv.id})
        elif route == "create_session":
            got = self.call(
                "POST", path, intruder, as_org, json={"conversation_id": conv.id, "model_id": ECHO}
            )
        elif route == "stream_chat":
            got = self.call(
                "POST", path, intruder, as_org, json={"chat_session_id": session, "message": "hi"}
            )
        else:
            got = self.call("POST", path, intruder, as_org, json={"chat_session_id": session})
        assert got.status_code == (404 if own_org_id else 403), got.text
        assert set(got.json()) == {"error"}  # the error alone, nothing of the owner's
        assert set(got.json()["error"]) <= {"code", "message", "request_id", "field"}

    # -- what always holds ------------------------------------------------------------------
    @invariant()
    def every_org_sees_exactly_its_own_conversations(self) -> None:
        for org in self.orgs:
            got = self.call("GET", "/api/conversation/list", org, params={"limit": "1000"})
            assert got.status_code == 200, got.text
            listed = got.json()["conversations"]
            assert [c["id"] for c in listed] == [
                c.id for c in sorted(org.convs.values(), key=lambda c: -c.activity)
            ]


def test_the_api_agrees_with_a_plain_model(background: Background) -> None:
    with httpx.Client(base_url=background.server.base_url, timeout=30) as http:
        run_state_machine_as_test(
            lambda: ApiMachine(background, http),
            settings=settings(
                max_examples=25,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
