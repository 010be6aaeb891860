"""The state machine's rules of conversations and sessions: made (bodies from the kit's
strategies), completed, read back, their messages paged and the list walked, in order."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from conversation_service.testing import strategies as cs
from conversation_service.testing.verify.api import expect
from conversation_service.testing.verify.base import (
    BASE,
    MachineBase,
    has_completed_session,
    has_conv,
    has_session,
)
from conversation_service.testing.verify.model import Conv, Org, Sess


class ConversationRules(MachineBase):
    """Rules of conversations and sessions."""

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
