"""The API's rule-based state machine: organisations make conversations and sessions, list and
page them, try each other's objects and send what must be refused; the reply rules
(replies.py) stream, re-attach, cancel and interrupt. Every answer is checked against the
plain model of model.py; what disagrees raises a Disagreement naming its kind."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conversation_service.domain.rules import InputLimits
from conversation_service.testing import strategies as cs
from conversation_service.testing.verify.api import Api, Disagreement, expect
from conversation_service.testing.verify.model import Conv, Msg, Org, Sess
from conversation_service.testing.verify.replies import ReplyRules
from conversation_service.testing.verify.target import Target

BASE = "/api/conversation"
JSON = {"Content-Type": "application/json"}
ERROR_FIELDS = {"code", "message", "request_id", "field"}


class DeploymentMachine(ReplyRules, RuleBasedStateMachine):
    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target
        self.model = target.model
        self.limits = target.limits
        # Sessions' system prompts stay short: the model's context must hold them.
        self.session_limits = InputLimits(
            max_title_chars=target.limits.max_title_chars,
            max_message_chars=target.limits.max_message_chars,
            max_system_prompt_chars=min(200, target.limits.max_system_prompt_chars),
        )
        self.orgs = [Org(tenant) for tenant in target.tenants_for_example()]
        self.apis = {id(org): Api(target.http, org.tenant) for org in self.orgs}
        self.clock = 0

    # -- helpers ----------------------------------------------------------------------------
    def api(self, org: Org) -> Api:
        return self.apis[id(org)]

    def teardown(self) -> None:
        self.target.requests += sum(api.requests for api in self.apis.values())

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def convs(self) -> list[tuple[Org, Conv]]:
        return [(org, conv) for org in self.orgs for conv in org.convs.values()]

    def sessions(self, *, completed: bool | None = None) -> list[tuple[Org, Conv, Sess]]:
        return [
            (org, conv, sess)
            for org, conv in self.convs()
            for sess in conv.sessions
            if completed is None or sess.completed == completed
        ]

    # Draws name what they pick by its id: a report shows them so.
    def pick_org(
        self, data: st.DataObject, among: list[Org] | None = None, label: str = "org"
    ) -> Org:
        orgs = {org.tenant.org_id: org for org in among or self.orgs}
        return orgs[data.draw(st.sampled_from(list(orgs)), label=label)]

    def pick_conv(self, data: st.DataObject) -> tuple[Org, Conv]:
        convs = {conv.id: (org, conv) for org, conv in self.convs()}
        return convs[data.draw(st.sampled_from(list(convs)), label="conversation")]

    def pick_session(
        self, data: st.DataObject, *, completed: bool | None = None
    ) -> tuple[Org, Conv, Sess]:
        sessions = {
            sess.id: (org, conv, sess) for org, conv, sess in self.sessions(completed=completed)
        }
        return sessions[data.draw(st.sampled_from(list(sessions)), label="session")]

    def has_conv(self) -> bool:
        return bool(self.convs())

    def has_session(self) -> bool:
        return bool(self.sessions())

    def has_active_session(self) -> bool:
        return bool(self.sessions(completed=False))

    def has_completed_session(self) -> bool:
        return bool(self.sessions(completed=True))

    # -- conversations and sessions -----------------------------------------------------------
    @initialize(data=st.data())
    def a_session_each(self, data: st.DataObject) -> None:
        """Each organisation starts with a conversation and a session: the reply rules can
        run from the first step."""
        for org in self.orgs:
            self.create_conversation(data, org)
            self.create_session(data, (org, list(org.convs.values())[-1]))

    @rule(data=st.data())
    def create_conversation(self, data: st.DataObject, org: Org | None = None) -> None:
        org = org or self.pick_org(data)
        body = data.draw(cs.create_conversation_bodies(self.limits), label="body")
        api = self.api(org)
        made = api.json(api.call("POST", f"{BASE}/create", json=body), 201, "create")
        archived = body.get("is_archived", False)
        expect(
            (made["title"], made["is_archived"]) == (body["title"], archived),
            "answer",
            f"create: made {made}, asked for {body}",
        )
        expect(
            all(made["id"] not in other.convs for other in self.orgs),
            "answer",
            f"create: a new conversation has an old id {made['id']}",
        )
        org.convs[made["id"]] = Conv(made["id"], body["title"], archived, self.tick())

    @precondition(has_conv)
    @rule(data=st.data())
    def create_session(self, data: st.DataObject, on: tuple[Org, Conv] | None = None) -> None:
        org, conv = on or self.pick_conv(data)
        body = data.draw(
            cs.create_session_bodies(
                conv.id,
                self.model.id,
                max_output_tokens=self.model.max_output_tokens,
                limits=self.session_limits,
            ),
            label="body",
        )
        api = self.api(org)
        made = api.json(api.call("POST", f"{BASE}/create_session", json=body), 201, "session")
        params = body.get("params") or {}
        wanted = {
            "conversation_id": conv.id,
            "model_id": self.model.id,
            "status": "active",
            "system_prompt": body.get("system_prompt"),
            "context": body.get("context", "session"),
            "params": {name: params.get(name) for name in ("temperature", "top_p", "max_tokens")},
        }
        got = {name: made.get(name) for name in wanted}
        expect(got == wanted, "answer", f"create_session: made {got}, the model says {wanted}")
        conv.sessions.append(Sess(made["id"], self.model.id, max_tokens=params.get("max_tokens")))
        conv.activity = self.tick()

    @precondition(has_session)
    @rule(data=st.data())
    def complete_session(self, data: st.DataObject) -> None:
        org, conv, sess = self.pick_session(data)
        api = self.api(org)
        body = {"chat_session_id": sess.id}
        done = api.json(api.call("POST", f"{BASE}/complete_session", json=body), 200, "complete")
        expect(
            (done["id"], done["status"]) == (sess.id, "completed"),
            "answer",
            f"complete_session: {done}",
        )
        sess.completed = True

    @precondition(has_completed_session)
    @rule(data=st.data(), message=cs.words(5))
    def send_to_a_completed_session(self, data: st.DataObject, message: str) -> None:
        org, _, sess = self.pick_session(data, completed=True)
        api = self.api(org)
        body = {"chat_session_id": sess.id, "message": message}
        refused = api.json(api.call("POST", f"{BASE}/stream_chat", json=body), 409, "send")
        expect(
            refused["error"]["code"] == "session_completed",
            "answer",
            f"a message to a completed session: {refused}",
        )

    # -- reading ----------------------------------------------------------------------------
    @precondition(has_conv)
    @rule(data=st.data())
    def get_with_sessions(self, data: st.DataObject) -> None:
        org, conv = self.pick_conv(data)
        api = self.api(org)
        found = api.json(
            api.call("GET", f"{BASE}/get_with_sessions", params={"conversation_id": conv.id}),
            200,
            "get_with_sessions",
        )
        shown = (found["id"], found["title"], found["is_archived"])
        expect(shown == (conv.id, conv.title, conv.is_archived), "answer", f"shown: {shown}")
        sessions = [(s["id"], s["status"]) for s in found["sessions"]]
        wanted = [(s.id, "completed" if s.completed else "active") for s in conv.sessions]
        expect(
            sessions == wanted, "ordering", f"sessions of {conv.id}: {sessions}, model: {wanted}"
        )

    @precondition(has_conv)
    @rule(data=st.data(), limit=st.integers(1, 7), offset=st.integers(0, 10))
    def page_messages(self, data: st.DataObject, limit: int, offset: int) -> None:
        org, conv = self.pick_conv(data)
        one = self.messages_page(org, conv, limit, offset)
        self.same_messages(conv.messages[offset : offset + limit], one["messages"], conv, offset)
        expect(
            one["has_more"] is (offset + limit < len(conv.messages)),
            "listing",
            f"messages of {conv.id} at {offset}+{limit}: has_more {one['has_more']} of "
            f"{len(conv.messages)}",
        )
        walked: list[dict[str, Any]] = []
        for page_no in range(len(conv.messages) // limit + 1):
            page = self.messages_page(org, conv, limit, page_no * limit)
            walked += page["messages"]
            if not page["has_more"]:
                break
        self.same_messages(conv.messages, walked, conv, 0)

    def messages_page(self, org: Org, conv: Conv, limit: int, offset: int) -> dict[str, Any]:
        api = self.api(org)
        params = {"conversation_id": conv.id, "limit": str(limit), "offset": str(offset)}
        page = api.json(api.call("GET", f"{BASE}/messages", params=params), 200, "messages")
        expect(
            (page["limit"], page["offset"]) == (limit, offset),
            "answer",
            f"a page of messages says limit {page['limit']}, offset {page['offset']}",
        )
        return dict(page)

    @staticmethod
    def same_messages(
        model: list[Msg], listed: list[dict[str, Any]], conv: Conv, offset: int
    ) -> None:
        """The listed messages are the model's, in its order; an "ordering" disagreement when
        they are the same ones in another order."""

        def seen(m: dict[str, Any]) -> tuple[Any, ...]:
            return (m["role"], m["content"], m["status"], m["chat_session_id"])

        wanted = [(m.role, m.content, m.status, m.session_id) for m in model]
        got = [seen(m) for m in listed]
        ids_known = [(m.id, shown["id"]) for m, shown in zip(model, listed, strict=False) if m.id]
        if got == wanted and all(mine == theirs for mine, theirs in ids_known):
            return
        kind = "ordering" if sorted(map(repr, got)) == sorted(map(repr, wanted)) else "stored"
        raise Disagreement(
            kind,
            f"messages of conversation {conv.id} from {offset}: listed "
            f"{[(r, c[:40], s) for r, c, s, _ in got]}, the model has "
            f"{[(r, c[:40], s) for r, c, s, _ in wanted]}",
        )

    @rule(
        data=st.data(),
        limit=st.integers(1, 12),
        is_archived=st.sampled_from([None, True, False]),
    )
    def list_conversations(self, data: st.DataObject, limit: int, is_archived: bool | None) -> None:
        org = self.pick_org(data)
        mine = sorted(
            (c for c in org.convs.values() if is_archived in (None, c.is_archived)),
            key=lambda c: -c.activity,
        )
        listed = self.walk_conversations(org, limit, is_archived, want=len(mine))
        ids = [c["id"] for c in listed]
        expect(len(set(ids)) == len(ids), "listing", f"a walk of the list met twice: {ids}")
        ours = [c for c in listed if c["id"] in org.convs] if not self.target.exclusive else listed
        got = [(c["id"], c["title"], c["is_archived"]) for c in ours]
        wanted = [(c.id, c.title, c.is_archived) for c in mine]
        expect(
            got == wanted,
            "ordering",
            f"conversations (is_archived={is_archived}), newest activity first: listed "
            f"{[g[0] for g in got]}, the model has {[w[0] for w in wanted]}",
        )

    def walk_conversations(
        self, org: Org, limit: int, is_archived: bool | None, *, want: int
    ) -> list[dict[str, Any]]:
        """Pages of the list until its end (with others' conversations about, until this
        run's `want` were met, 50 pages at most)."""
        api, listed, offset = self.api(org), [], 0
        if not self.target.exclusive:
            limit = 100
        for _ in range(50):
            params = {"limit": str(limit), "offset": str(offset)}
            if is_archived is not None:
                params["is_archived"] = str(is_archived).lower()
            page = api.json(api.call("GET", f"{BASE}/list", params=params), 200, "list")
            listed += page["conversations"]
            if not page["has_more"]:
                break
            if not self.target.exclusive and sum(c["id"] in org.convs for c in listed) >= want:
                break
            offset += limit
        return listed

    @invariant()
    def each_org_sees_exactly_its_own(self) -> None:
        if not self.target.exclusive:
            return
        for org in self.orgs:
            listed = self.walk_conversations(org, 1000, None, want=len(org.convs))
            wanted = [c.id for c in sorted(org.convs.values(), key=lambda c: -c.activity)]
            got = [c["id"] for c in listed]
            kind = "isolation" if set(got) != set(wanted) else "ordering"
            expect(got == wanted, kind, f"the list of {org.tenant.org_id}: {got}, model {wanted}")

    # -- other organisations and refused requests ---------------------------------------------
    @precondition(has_conv)
    @rule(
        data=st.data(),
        route=st.sampled_from(["get_with_sessions", "messages", "create_session",
                               "stream_chat", "cancel", "complete_session"]),
        own_org_id=st.booleans(),
    )  # fmt: skip
    def intrude(self, data: st.DataObject, route: str, own_org_id: bool) -> None:
        """Another organisation's token on a conversation: 404 in its own org, else 403; with
        one organisation, ids of nobody's (404) and others' org ids (403)."""
        owner, conv = self.pick_conv(data)
        others = [o for o in self.orgs if o is not owner]
        if others:
            intruder = self.pick_org(data, others, label="intruder")
            target_ids = (conv.id, conv.sessions[0].id if conv.sessions else conv.id)
            as_org = intruder.tenant.org_id if own_org_id else owner.tenant.org_id
        else:
            intruder = owner
            target_ids = (data.draw(cs.foreign_ids(), label="id"),) * 2
            as_org = (
                owner.tenant.org_id
                if own_org_id
                else data.draw(cs.other_org_ids(owner.tenant.org_id), label="org_id")
            )
        api = self.api(intruder)
        conversation_id, session_id = target_ids
        if route in ("get_with_sessions", "messages"):
            params = {"conversation_id": conversation_id}
            got = api.call("GET", f"{BASE}/{route}", as_org=as_org, params=params)
        else:
            body: dict[str, str] = {"chat_session_id": session_id}
            if route == "create_session":
                body = {"conversation_id": conversation_id, "model_id": self.model.id}
            elif route == "stream_chat":
                body["message"] = "hi"
            got = api.call("POST", f"{BASE}/{route}", as_org=as_org, json=body)
        status = 404 if own_org_id else 403
        expect(
            got.status_code == status,
            "isolation",
            f"{route} on {conversation_id} of another organisation: {got.status_code}, "
            f"the model expects {status}: {got.text[:200]!r}",
        )
        shown = got.json()
        expect(
            set(shown) == {"error"} and set(shown["error"]) <= ERROR_FIELDS,
            "isolation",
            f"{route}: the refusal shows more than the error: {got.text[:300]!r}",
        )

    @precondition(has_active_session)
    @rule(data=st.data())
    def refuse(self, data: st.DataObject) -> None:
        """A body with one thing wrong: 400 naming the field, and nothing changes."""
        org, conv, sess = self.pick_session(data, completed=False)
        routes = {
            "create": cs.refused_create_conversation_bodies(self.limits),
            "create_session": cs.refused_create_session_bodies(
                conv.id, self.model.id, max_output_tokens=self.model.max_output_tokens,
                limits=self.limits,
            ),
            "stream_chat": cs.refused_stream_chat_bodies(sess.id, limits=self.limits),
            "cancel": cs.refused_cancel_bodies(sess.id),
            "complete_session": cs.refused_complete_session_bodies(sess.id),
        }  # fmt: skip
        route = data.draw(st.sampled_from(sorted(routes)), label="route")
        refused = data.draw(routes[route], label="refused")
        api = self.api(org)
        got = api.call("POST", f"{BASE}/{route}", content=refused.content(), headers=JSON)
        field = got.json().get("error", {}).get("field") if got.status_code == 400 else None
        expect(
            got.status_code == 400 and field == refused.field,
            "refusal",
            f"{route} with {refused.field} wrong ({str(refused.body)[:120]}): answered "
            f"{got.status_code} naming {field!r}: {got.text[:200]!r}",
        )
