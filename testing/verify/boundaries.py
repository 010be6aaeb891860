"""The state machine's rules at the edges of an organisation: another's token or ids (404,
403, nothing of the owner's shown), and bodies with one thing wrong (400 naming it)."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from conversation_service.testing import strategies as cs
from conversation_service.testing.verify.api import expect
from conversation_service.testing.verify.base import (
    BASE,
    JSON,
    MachineBase,
    has_active_session,
    has_conv,
)

ERROR_FIELDS = {"code", "message", "request_id", "field"}


class BoundaryRules(MachineBase):
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
