"""Every route of the running app, and how to call it with another organisation's ids.

The routes come from the app's own url_map, so a route added later cannot be forgotten: it is
either in PUBLIC (answers without a token) or in WALK (says which of its parameters are ids),
and the tests fail until it is one or the other.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import httpx
import trio

from conversation_service.domain.access import Action
from conversation_service.domain.model import AccessRole
from conversation_service.entrypoints.http.app import create_app
from tests.http.conftest import Api

# The routes that answer without a token, with the path arguments that reach a real page.
PUBLIC: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/healthz"): {},
    ("GET", "/openapi.json"): {},
    ("GET", "/docs"): {},
    ("GET", "/docs/assets/<name>"): {"name": "swagger-ui.css"},
    ("GET", "/"): {},
    ("GET", "/playground"): {},
    ("GET", "/playground/assets/<name>"): {"name": "app.js"},
    ("GET", "/metrics"): {},  # open unless the operator sets a metrics token (none here)
}
# What a public route answers when it is not 200: / leads to the playground.
PUBLIC_STATUS: dict[tuple[str, str], int] = {("GET", "/"): 302}

STREAM_PEEK = 2.0  # seconds: how long an event stream that should not exist is read

ID_KINDS = ("conversation_id", "chat_session_id", "message_id", "model_id", "leaf_id")


@attrs.frozen(kw_only=True)
class Route:
    """How to call one authenticated route: ids go in the query of a GET (or DELETE) and the
    body of a POST, except those the path names."""

    action: Action  # what the caller's role must allow
    ids: tuple[str, ...] = ()  # the id fields; the object the route acts on comes first
    optional: frozenset[str] = frozenset()  # id fields a call may leave out
    fixed: Mapping[str, Any] = attrs.field(factory=dict)  # the other fields it needs
    variants: tuple[Mapping[str, Any], ...] = ({},)  # filters and modes worth trying
    # The ids name objects the call makes (an import's file), not ones it acts on: it gets
    # exactly what ids that exist nowhere get, whoever's they are.
    creates: bool = False
    # The body, for a route whose body is not JSON: made from the call's ids.
    file: Callable[[Mapping[str, str]], bytes] | None = None


READ, WRITE, ADMINISTER = Action.READ, Action.WRITE, Action.ADMINISTER


def export_file(ids: Mapping[str, str]) -> bytes:
    """An export file (as another organisation's would be) whose conversation and message
    carry the call's ids: an import must store it as any other, under ids of its own."""
    at = "2026-11-26T06:10:00.000000Z"
    conversation = ids.get("conversation_id", str(uuid.uuid4()))
    session = str(uuid.uuid4())
    lines = [
        {"type": "header", "format": "conversation-service-export", "version": 1,
         "exported_at": at, "org_id": str(uuid.uuid4()), "conversation_id": None},
        {"type": "conversation", "id": conversation, "title": "walked import",
         "is_archived": False, "created_at": at, "updated_at": at},
        {"type": "session", "id": session, "conversation_id": conversation,
         "model_id": "6563686f-0000-4000-8000-000000000000", "status": "active",
         "system_prompt": None, "params": {}, "context": "session", "head_id": None,
         "created_at": at, "updated_at": at},
        {"type": "message", "id": ids.get("message_id", str(uuid.uuid4())),
         "conversation_id": conversation, "chat_session_id": session, "parent_id": None,
         "role": "user",
         "content": "walked words", "status": "completed", "created_at": at, "updated_at": at},
        {"type": "end", "conversations": 1, "sessions": 1, "messages": 1},
    ]  # fmt: skip
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


WALK: dict[tuple[str, str], Route] = {
    ("POST", "/api/conversation/create"): Route(action=WRITE, fixed={"title": "walked"}),
    ("POST", "/api/conversation/create_session"): Route(
        action=WRITE, ids=("conversation_id", "model_id")
    ),
    ("GET", "/api/conversation/list"): Route(
        action=READ,
        fixed={"limit": "1000"},
        variants=({}, {"is_archived": "true"}, {"is_archived": "false"}),
    ),
    ("GET", "/api/conversation/search"): Route(
        action=READ,
        fixed={"limit": "100"},
        # Words B's titles and messages hold (and A's own); the live reply's words too.
        variants=(
            {"q": "secret text"},
            {"q": "B archive", "is_archived": "true"},
            {"q": "live"},
            {"q": "w1 w2"},
            {"q": "own words"},
            {"q": "echo*", "is_archived": "false"},
        ),
    ),
    ("GET", "/api/conversation/get_with_sessions"): Route(action=READ, ids=("conversation_id",)),
    ("GET", "/api/conversation/messages"): Route(
        action=READ,
        ids=("conversation_id", "leaf_id"),
        optional=frozenset({"leaf_id"}),
        fixed={"limit": "100"},
    ),
    ("POST", "/api/conversation/stream_chat"): Route(
        action=WRITE,
        ids=("chat_session_id",),
        fixed={"message": "a message walked in"},
        variants=({}, {"multitask": "interrupt"}, {"multitask": "reject"}),
    ),
    ("POST", "/api/conversation/regenerate"): Route(
        action=WRITE,
        ids=("chat_session_id", "message_id"),
        optional=frozenset({"message_id"}),
        variants=({}, {"multitask": "interrupt"}, {"multitask": "reject"}),
    ),
    ("POST", "/api/conversation/edit"): Route(
        action=WRITE,
        ids=("chat_session_id", "message_id"),
        fixed={"content": "an edit walked in"},
        variants=({}, {"multitask": "interrupt"}),
    ),
    ("POST", "/api/conversation/select_branch"): Route(
        action=WRITE, ids=("chat_session_id", "message_id")
    ),
    ("GET", "/api/conversation/stream"): Route(
        action=READ, ids=("chat_session_id", "message_id"), fixed={"after": "-1"}
    ),
    ("POST", "/api/conversation/cancel"): Route(
        action=WRITE, ids=("chat_session_id", "message_id"), optional=frozenset({"message_id"})
    ),
    ("POST", "/api/conversation/complete_session"): Route(action=WRITE, ids=("chat_session_id",)),
    ("GET", "/api/models"): Route(action=READ),
    ("POST", "/api/models"): Route(
        action=ADMINISTER,
        fixed={
            "name": "walked-model",
            "provider": "openai-compatible",
            "base_url": "http://127.0.0.1:9/v1",
            "upstream_model": "walked",
        },
    ),
    ("DELETE", "/api/models/<model_id>"): Route(action=ADMINISTER),
    ("POST", "/api/conversation/update"): Route(
        action=WRITE,
        ids=("conversation_id",),
        fixed={"title": "walked"},
        variants=({}, {"is_archived": True}),
    ),
    ("POST", "/api/conversation/delete"): Route(action=WRITE, ids=("conversation_id",)),
    ("POST", "/api/conversation/feedback"): Route(
        action=WRITE, ids=("message_id",), fixed={"rating": "down", "comment": "walked"}
    ),
    ("POST", "/api/conversation/clear_feedback"): Route(action=WRITE, ids=("message_id",)),
    ("GET", "/api/conversation/export"): Route(
        action=READ, ids=("conversation_id",), optional=frozenset({"conversation_id"})
    ),
    ("POST", "/api/conversation/import"): Route(
        action=ADMINISTER,
        ids=("conversation_id", "message_id"),
        optional=frozenset({"conversation_id", "message_id"}),
        creates=True,
        file=export_file,
    ),
    ("GET", "/api/usage"): Route(
        action=READ, variants=({}, {"from": "2000-01-01", "to": "2100-01-01"})
    ),
}

ROLE_MAY: dict[AccessRole, frozenset[Action]] = {
    AccessRole.VIEWER: frozenset({READ}),
    AccessRole.MEMBER: frozenset({READ, WRITE}),
    AccessRole.ADMIN: frozenset({READ, WRITE, ADMINISTER}),
}


def discovered_routes(api: Api) -> dict[tuple[str, str], frozenset[str]]:
    """(method, rule) -> path arguments, of every route the running service's app has."""
    app = create_app(api.server.services.http)
    found: dict[tuple[str, str], frozenset[str]] = {}
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found[(method, rule.rule)] = frozenset(rule.arguments)
    return found


def fill_path(rule: str, values: Mapping[str, str]) -> str:
    """The rule with its <converter:name> arguments replaced; "x" for names it has no value for."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values.get(m.group(1), "x"), rule)


@attrs.frozen(kw_only=True)
class Call:
    """One request of the walk, with the ids it carries."""

    method: str
    rule: str
    ids: Mapping[str, str]  # id field -> value, path arguments included
    extra: Mapping[str, Any]  # the route's fixed fields and the variant
    headers: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def sent(self) -> frozenset[str]:
        """Every value the call carries: the answer may quote them back."""
        return frozenset(self.ids.values()) | {v for v in self.extra.values() if isinstance(v, str)}

    def with_ids(self, ids: Mapping[str, str]) -> Call:
        return attrs.evolve(self, ids=ids)


def calls_for(
    method: str,
    rule: str,
    path_args: frozenset[str],
    route: Route,
    theirs: Mapping[str, list[str]],
    ours: Mapping[str, list[str]],
) -> Iterator[tuple[Call, bool]]:
    """Every call of the route that carries at least one of `theirs` ids (a route without ids:
    each variant once), and whether the object it acts on (its first id) is theirs."""
    fields = (*route.ids, *sorted(path_args))
    unknown = [f for f in fields if f not in ID_KINDS]
    assert not unknown, f"{method} {rule}: no ids known for {unknown}; teach the walk"
    options = []
    for field in fields:
        choice: list[str | None] = [*theirs[field], *ours[field]]
        if field in route.optional:
            choice.append(None)
        options.append(choice)
    for variant in route.variants:
        extra = {**route.fixed, **variant}
        for values in itertools.product(*options):
            ids = {f: v for f, v in zip(fields, values, strict=True) if v is not None}
            # A call with ids but none of theirs is skipped; one with no ids at all (every
            # id left out: an organisation's whole export) is made once.
            if ids and not any(v in theirs[f] for f, v in ids.items()):
                continue
            target_is_theirs = bool(fields) and values[0] in theirs[fields[0]]
            yield Call(method=method, rule=rule, ids=ids, extra=extra), target_is_theirs


def strangers(call: Call, theirs: Mapping[str, list[str]]) -> Call:
    """The same call with each of `theirs` ids replaced by an id that exists nowhere."""
    return call.with_ids(
        {f: str(uuid.uuid4()) if v in theirs[f] else v for f, v in call.ids.items()}
    )


@attrs.frozen(kw_only=True)
class Answer:
    """What came back: status, headers and the body (or what an event stream sent at first)."""

    status_code: int
    headers: httpx.Headers
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error_code(self) -> str | None:
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


async def send(
    client: httpx.AsyncClient,
    call: Call,
    org_id: object,
    token: str | None,
    path_args: frozenset[str] = frozenset(),
) -> Answer:
    """The call as a client makes it; an event stream is read for a moment, enough to leak."""
    fields = {f: v for f, v in call.ids.items() if f not in path_args}
    path = fill_path(call.rule, {f: v for f, v in call.ids.items() if f in path_args})
    headers = dict(call.headers)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    query: dict[str, str] = {"org_id": str(org_id)}
    body = None
    content = None
    route = WALK.get((call.method, call.rule))
    if route is not None and route.file is not None:
        content = route.file(fields)
        headers["Content-Type"] = "application/x-ndjson"
    elif call.method in ("GET", "DELETE"):
        query.update({**call.extra, **fields})
    else:
        body = {**call.extra, **fields}
    chunks: list[bytes] = []
    with trio.fail_after(30):
        async with client.stream(
            call.method, path, params=query, json=body, content=content, headers=headers
        ) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                chunks.append(await response.aread())
            else:
                with trio.move_on_after(STREAM_PEEK):
                    async for chunk in response.aiter_bytes():
                        chunks.append(chunk)
    return Answer(
        status_code=response.status_code,
        headers=response.headers,
        text=b"".join(chunks).decode("utf-8", "replace"),
    )


def leaks(answer: Answer, secrets: frozenset[str], sent: frozenset[str]) -> list[str]:
    """The secrets in the answer that the caller did not send itself."""
    return sorted(s for s in secrets - sent if s in answer.text)
