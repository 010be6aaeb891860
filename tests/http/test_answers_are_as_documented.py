"""What the README and the OpenAPI document promise about answers, checked on the server:
unknown query parameters, exact idempotent replays, what cancel says, completing a session
that is replying."""

from __future__ import annotations

import trio

from tests.http.conftest import Api


async def _documented_queries(api: Api) -> list[tuple[str, str, set[str]]]:
    document = (await api.client.get("/openapi.json")).json()
    shared = document["components"]["parameters"]
    routes = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            names = set()
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = shared[parameter["$ref"].rsplit("/", 1)[-1]]
                if parameter["in"] == "query":
                    names.add(parameter["name"])
            url = path.replace("{model_id}", "6563686f-0000-4000-8000-000000000000")
            routes.append((method.upper(), url, names))
    return routes


async def test_every_route_refuses_a_query_parameter_it_does_not_document(api: Api) -> None:
    routes = await _documented_queries(api)
    assert len(routes) >= 12
    for method, url, names in routes:
        documented = {name: "1" for name in names} | {"org_id": str(api.a.org_id)}
        response = await api.client.request(
            method, url, headers=api.a.auth, params={**documented, "colour": "blue"}
        )
        assert response.status_code == 400, (method, url)
        error = response.json()["error"]
        assert (error["field"], error["message"]) == ("colour", "colour: unknown query parameter")
        # ...and never one that it documents.
        response = await api.client.request(method, url, headers=api.a.auth, params=documented)
        assert "unknown query parameter" not in response.text, (method, url)


async def test_a_query_parameter_given_twice_is_refused(api: Api) -> None:
    response = await api.client.get(
        "/api/conversation/list",
        headers=api.a.auth,
        params=[("org_id", str(api.a.org_id)), ("limit", "1"), ("limit", "2")],
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "limit"


async def test_an_idempotent_retry_gets_the_first_answers_exact_bytes(api: Api) -> None:
    conversation = await api.conversation()
    for path, body in [
        ("/api/conversation/create", {"title": "once"}),
        ("/api/conversation/create_session", {
            "conversation_id": conversation["id"],
            "model_id": "6563686f-0000-4000-8000-000000000000",
        }),
    ]:  # fmt: skip
        headers = {**api.a.auth, "Idempotency-Key": f"key-{path}"}
        first = await api.client.post(path, json=body, headers=headers, params=api.a.q)
        again = await api.client.post(path, json=body, headers=headers, params=api.a.q)
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["Idempotent-Replayed"] == "true"


async def test_cancel_says_whether_a_reply_was_stopped(api: Api) -> None:
    session = await api.session((await api.conversation())["id"])
    ref = {"chat_session_id": session["id"]}
    idle = await api.post("/api/conversation/cancel", ref)
    assert idle.json() == {"chat_session_id": session["id"], "cancelled": False}
    async with api.open_stream(session["id"], " ".join(["word"] * 500)) as source:
        events = source.aiter_sse()
        assert (await anext(events)).event == "start"
        stopped = await api.post("/api/conversation/cancel", ref)
        assert stopped.json()["cancelled"] is True
        kinds = [sse.event async for sse in events]
    assert kinds[-1] == "end"
    again = await api.post("/api/conversation/cancel", ref)
    assert again.json()["cancelled"] is False


async def test_completing_a_session_that_is_replying_stops_the_reply_first(api: Api) -> None:
    session = await api.session((await api.conversation())["id"])
    ref = {"chat_session_id": session["id"]}
    with trio.fail_after(30):
        async with api.open_stream(session["id"], " ".join(["word"] * 500)) as source:
            events = source.aiter_sse()
            assert (await anext(events)).event == "start"
            done = await api.post("/api/conversation/complete_session", ref)
            assert done.status_code == 200 and done.json()["status"] == "completed"
            rest = [sse async for sse in events]
    assert rest[-1].event == "end" and rest[-1].json()["finish_reason"] == "cancelled"
    messages = (
        await api.get("/api/conversation/messages", conversation_id=session["conversation_id"])
    ).json()["messages"]
    assert [(m["status"], m["finish_reason"]) for m in messages][-1] == ("cancelled", "cancelled")
    refused = await api.post(
        "/api/conversation/stream_chat", {"chat_session_id": session["id"], "message": "more"}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "session_completed"
