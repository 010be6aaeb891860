"""What the state machine's rules share: the organisations of an example and their model,
how to reach the deployment as each, how to pick what a rule acts on, and how to check a
page of messages against the model."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from conversation_service.domain.rules import InputLimits
from conversation_service.testing.verify.api import Api, Disagreement, expect
from conversation_service.testing.verify.model import Conv, Msg, Org, Sess
from conversation_service.testing.verify.target import Target

BASE = "/api/conversation"
JSON = {"Content-Type": "application/json"}


class MachineBase(RuleBasedStateMachine):
    """One example's organisations, their model, and the means of the rules."""

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


# Preconditions of the rules.
def has_conv(machine: MachineBase) -> bool:
    return bool(machine.convs())


def has_session(machine: MachineBase) -> bool:
    return bool(machine.sessions())


def has_active_session(machine: MachineBase) -> bool:
    return bool(machine.sessions(completed=False))


def has_completed_session(machine: MachineBase) -> bool:
    return bool(machine.sessions(completed=True))
