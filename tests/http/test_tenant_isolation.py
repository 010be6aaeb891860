"""Every route, walked with organisation A's tokens on organisation B's ids.

Organisation B has real data: conversations (one archived), sessions on echo and on a model
of its own, stored replies, a completed session, requests kept under Idempotency-Keys, and a
reply still streaming during the walk. A's viewer, member and admin tokens then call every
route the app has, with B's ids in every id parameter, once with org_id = A (404 or 400, and
exactly what an id that exists nowhere gets) and once with org_id = B (403). No answer may
carry B's data, and B's data must be the same afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from conversation_service.domain.access import Action
from conversation_service.domain.model import AccessRole
from conversation_service.entrypoints.settings import Settings
from tests.http.conftest import ECHO, Api, Tenant, open_api, settings_for
from tests.http.tenant_walk import (
    PUBLIC,
    PUBLIC_STATUS,
    ROLE_MAY,
    WALK,
    Answer,
    Call,
    calls_for,
    discovered_routes,
    leaks,
    send,
    strangers,
)

LIVE_WORDS = 12_000  # at 5 ms a word the live reply would last a minute: the walk is over first
MESSAGES = "/api/conversation/messages"


@attrs.define
class LiveReply:
    """A reply of B's that streams for the whole walk."""

    session_id: str
    text: str
    events: list[tuple[str, dict]] = attrs.Factory(list)
    started: trio.Event = attrs.Factory(trio.Event)
    finished: trio.Event = attrs.Factory(trio.Event)

    @property
    def message_id(self) -> str:
        return self.events[0][1]["message_id"]

    async def follow(self, api: Api, who: Tenant) -> None:
        try:
            with trio.fail_after(120):
                async with api.open_stream(self.session_id, self.text, who) as source:
                    assert source.response.status_code == 200, await source.response.aread()
                    async for sse in source.aiter_sse():
                        self.events.append((sse.event, sse.json()))
                        self.started.set()
        finally:
            self.started.set()
            self.finished.set()


@attrs.define
class World:
    theirs: dict[str, list[str]]  # B's ids by parameter name
    ours: dict[str, list[str]]  # A's ids by parameter name
    secrets: frozenset[str]  # every id and text of B's that A must never see
    live: LiveReply
    replayable: list[Call]  # B's POSTs under Idempotency-Keys, for A to send again


async def all_pages(api: Api, path: str, key: str, who: Tenant, limit: int, **q: str) -> list:
    items: list = []
    for page in range(1000):
        got = await api.get(path, who, limit=str(limit), offset=str(page * limit), **q)
        assert got.status_code == 200, got.text
        items.extend(got.json()[key])
        if not got.json()["has_more"]:
            return items
    raise AssertionError("paging never ended")


async def snapshot(api: Api, who: Tenant, live_message_id: str) -> dict[str, Any]:
    """B's data as B sees it; the live reply by identity only (its text is still growing)."""
    models = await api.get("/api/models", who)
    assert models.status_code == 200, models.text
    seen: dict[str, Any] = {"models": models.json()}
    for conv in await all_pages(api, "/api/conversation/list", "conversations", who, 1000):
        found = await api.get(
            "/api/conversation/get_with_sessions", who, conversation_id=conv["id"]
        )
        assert found.status_code == 200, found.text
        messages = await all_pages(api, MESSAGES, "messages", who, 100, conversation_id=conv["id"])
        seen[conv["id"]] = {
            "conversation": conv,
            "sessions": found.json()["sessions"],
            "messages": [
                {k: m[k] for k in ("id", "role", "chat_session_id")}
                if m["id"] == live_message_id
                else m
                for m in messages
            ],
        }
    return seen


async def keyed(api: Api, call: Call) -> Answer:
    """`call` made by B under an Idempotency-Key (kept by the service for replays)."""
    answer = await send(api.client, call, api.b.org_id, api.b.token)
    assert answer.status_code in (200, 201), answer.text
    return answer


async def populate(api: Api, nursery: trio.Nursery) -> World:
    b, tag = api.b, uuid.uuid4().hex[:12]
    create, create_session, stream_chat, cancel, complete_session = (
        f"/api/conversation/{name}"
        for name in ("create", "create_session", "stream_chat", "cancel", "complete_session")
    )

    def by_b(rule: str, ids: dict[str, str], **extra: Any) -> Call:
        key = {"Idempotency-Key": f"b-{rule.rsplit('/', 1)[1]}-{tag}"}
        return Call(method="POST", rule=rule, ids=ids, extra=extra, headers=key)

    b_admin = await api.tenant(AccessRole.ADMIN, org_id=b.org_id)
    registered = await api.post(
        "/api/models",
        {
            "name": f"b-model-{tag}",
            "provider": "openai-compatible",
            "base_url": "http://127.0.0.1:9/v1",
            "upstream_model": f"b-upstream-{tag}",
            "api_key": f"sk-b-{tag}",
        },
        b_admin,
    )
    assert registered.status_code == 201, registered.text
    own_model = registered.json()["id"]

    replayable = [by_b(create, {}, title="Plans")]
    plain = (await keyed(api, replayable[0])).json()
    archived = await api.post(create, {"title": f"B archive {tag}", "is_archived": True}, b)
    assert archived.status_code == 201, archived.text
    archived_id = archived.json()["id"]
    live_conv = await api.conversation(f"B live {tag}", b)
    replayable.append(by_b(create_session, {"conversation_id": plain["id"], "model_id": ECHO}))
    first = (await keyed(api, replayable[-1])).json()
    done = await api.session(plain["id"], who=b)
    on_own_model = await api.session(plain["id"], own_model, b)
    in_archive = await api.session(archived_id, who=b)
    live_session = await api.session(live_conv["id"], who=b)
    texts = [f"B secret text {tag} {n}" for n in range(3)]
    replayable.append(by_b(stream_chat, {"chat_session_id": first["id"]}, message=texts[0]))
    assert "event: end" in (await keyed(api, replayable[-1])).text
    for session, text in zip((done, in_archive), texts[1:], strict=True):
        events = await api.stream(session["id"], text, b)
        assert events[-1][1] == "end" and events[-1][2]["finish_reason"] == "stop"
    replayable.append(by_b(cancel, {"chat_session_id": first["id"]}))
    await keyed(api, replayable[-1])
    replayable.append(by_b(complete_session, {"chat_session_id": done["id"]}))
    assert (await keyed(api, replayable[-1])).json()["status"] == "completed"
    plain_messages = await all_pages(api, MESSAGES, "messages", b, 100, conversation_id=plain["id"])
    first_pair = [m["id"] for m in plain_messages if m["chat_session_id"] == first["id"]]
    assert len(first_pair) == 2

    live = LiveReply(
        session_id=live_session["id"],
        text=f"Bw-{tag} " + " ".join(f"w{i}" for i in range(LIVE_WORDS)),
    )
    nursery.start_soon(live.follow, api, b)
    with trio.fail_after(30):
        await live.started.wait()
    assert live.events and live.events[0][0] == "start", live.events

    a_conv = await api.conversation("A's own")
    a_session = await api.session(a_conv["id"])
    a_events = await api.stream(a_session["id"], "A's own words")

    theirs = {
        "conversation_id": [plain["id"], archived_id, live_conv["id"]],
        "chat_session_id": [s["id"] for s in (first, done, on_own_model, in_archive)]
        + [live.session_id],
        "message_id": [*first_pair, live.message_id],
        "model_id": [own_model],
        "leaf_id": [*first_pair, live.message_id],
    }
    ours = {
        "conversation_id": [a_conv["id"]],
        "chat_session_id": [a_session["id"]],
        "message_id": [a_events[0][2]["message_id"]],
        "model_id": [ECHO],
        "leaf_id": [a_events[0][2]["message_id"]],
    }
    every_id: set[str] = set()
    for conv_id in theirs["conversation_id"]:
        messages = await all_pages(api, MESSAGES, "messages", b, 100, conversation_id=conv_id)
        every_id.update(m["id"] for m in messages)
    secrets = frozenset(
        {str(b.org_id), b.token, b_admin.token, f"sk-b-{tag}", f"b-upstream-{tag}"}
        | {f"b-model-{tag}", f"B archive {tag}", f"B live {tag}", *texts, f"Bw-{tag}"}
        | {v for values in theirs.values() for v in values}
        | every_id
    )
    return World(theirs=theirs, ours=ours, secrets=secrets, live=live, replayable=replayable)


def expected(
    action: Action, role: AccessRole, own_org: bool, has_ids: bool, target_is_theirs: bool
) -> set[int] | None:
    """The statuses a call may get; None: exactly what a call with ids that exist nowhere gets."""
    if not own_org or action not in ROLE_MAY[role]:
        return {403}
    if not has_ids:
        return {200, 201}
    return {400, 404} if target_is_theirs else None


async def check_call(
    api: Api,
    world: World,
    call: Call,
    path_args: frozenset[str],
    who: tuple[AccessRole, Tenant],
    org: uuid.UUID,
    target_is_theirs: bool,
) -> list[str]:
    role, tenant = who
    route = WALK[(call.method, call.rule)]
    allowed = expected(route.action, role, org == api.a.org_id, bool(call.ids), target_is_theirs)
    if route.creates and allowed is not None and allowed != {403}:
        allowed = None  # exactly what ids that exist nowhere get
    answer = await send(api.client, call, org, tenant.token, path_args)
    label = (
        f"{call.method} {call.rule} as {role.value} of A, "
        f"org_id={'A' if org == api.a.org_id else 'B'}, ids={dict(call.ids)} {dict(call.extra)}"
        f" {dict(call.headers)}"
    )
    problems = []
    if found := leaks(answer, world.secrets, call.sent | {str(org)}):
        problems.append(f"{label}: answer {answer.status_code} carries B's {found}")
    if "idempotent-replayed" in answer.headers:
        problems.append(f"{label}: answered with a kept answer (Idempotent-Replayed)")
    if allowed is None or allowed == {400, 404}:
        twin = await send(api.client, strangers(call, world.theirs), org, tenant.token, path_args)
        if (answer.status_code, answer.error_code) != (twin.status_code, twin.error_code):
            problems.append(
                f"{label}: answered {answer.status_code} {answer.error_code}, but "
                f"{twin.status_code} {twin.error_code} for ids that exist nowhere"
            )
        allowed = allowed or {twin.status_code}
    if answer.status_code not in allowed:
        problems.append(f"{label}: got {answer.status_code}, want one of {sorted(allowed)}")
    return problems


async def test_a_token_of_org_a_never_reaches_org_bs_objects_on_any_route(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, echo_delay_ms=5, rate_limit="1000000/minute", allow_private_model_urls=True
    )
    with trio.fail_after(180):
        await walk_every_route(settings)


async def walk_every_route(settings: Settings) -> None:
    async with open_api(settings) as api, trio.open_nursery() as nursery:
        world = await populate(api, nursery)
        callers = [(AccessRole.MEMBER, api.a)] + [
            (role, await api.tenant(role, org_id=api.a.org_id))
            for role in (AccessRole.VIEWER, AccessRole.ADMIN)
        ]
        before = await snapshot(api, api.b, world.live.message_id)
        routes = discovered_routes(api)
        problems = [
            f"{m} {r}: neither walked nor public; add it to tenant_walk.WALK (or to PUBLIC if "
            "it is meant to answer without a token)"
            for m, r in sorted(set(routes) - set(PUBLIC) - set(WALK))
        ]
        problems += [
            f"{m} {r}: in WALK but the app has no such route" for m, r in set(WALK) - set(routes)
        ]
        walked = 0
        for (method, rule), route in WALK.items():
            path_args = routes.get((method, rule), frozenset())
            for call, target_is_theirs in calls_for(
                method, rule, path_args, route, world.theirs, world.ours
            ):
                for who in callers:
                    for org in (api.a.org_id, api.b.org_id):
                        walked += 1
                        problems += await check_call(
                            api, world, call, path_args, who, org, target_is_theirs
                        )
        # B's own requests, byte for byte under B's Idempotency-Keys: never B's kept answer.
        for call in world.replayable:
            for who in callers:
                for org in (api.a.org_id, api.b.org_id):
                    problems += await check_call(
                        api, world, call, frozenset(), who, org, bool(call.ids)
                    )
        assert walked > 500  # the walk did walk
        after = await snapshot(api, api.b, world.live.message_id)
        if after != before:
            problems.append(f"B's data changed during the walk:\n{before}\n{after}")
        assert not problems, "\n".join(problems[:40])

        # The live reply was neither cancelled, interrupted nor completed by any of A's calls.
        assert not [e for e, _ in world.live.events if e == "end"]
        stopped = await api.post(
            "/api/conversation/cancel", {"chat_session_id": world.live.session_id}, api.b
        )
        assert stopped.status_code == 200, stopped.text
        with trio.fail_after(30):
            await world.live.finished.wait()
        assert world.live.events[-1][0] == "end"
        assert world.live.events[-1][1]["finish_reason"] == "cancelled"


async def test_only_the_public_routes_answer_without_a_token(api: Api) -> None:
    with trio.fail_after(60):
        await call_every_route_without_a_token(api)


async def call_every_route_without_a_token(api: Api) -> None:
    routes = discovered_routes(api)
    assert set(PUBLIC) <= set(routes), "PUBLIC names a route the app no longer has"
    problems = []
    async with httpx.AsyncClient(base_url=api.server.base_url, timeout=10) as client:
        for (method, rule), path_args in sorted(routes.items()):
            route = WALK.get((method, rule))
            public = (method, rule) in PUBLIC
            ids = {name: str(uuid.uuid4()) for name in (*path_args, *(route.ids if route else ()))}
            call = Call(
                method=method,
                rule=rule,
                ids=PUBLIC[(method, rule)] if public else ids,
                extra=route.fixed if route else {},
            )
            answer = await send(client, call, api.a.org_id, None, path_args)
            expected = PUBLIC_STATUS.get((method, rule), 200)
            if public and answer.status_code != expected:
                problems.append(f"{method} {rule}: public, but answered {answer.status_code}")
            if not public and answer.status_code != 401:
                problems.append(
                    f"{method} {rule}: answered {answer.status_code} without a token "
                    "(only the routes in tenant_walk.PUBLIC may)"
                )
            if not public and "Bearer" not in answer.headers.get("www-authenticate", ""):
                problems.append(f"{method} {rule}: no WWW-Authenticate: Bearer")
    assert not problems, "\n".join(problems)
