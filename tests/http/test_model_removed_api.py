"""A model removed from under a session that is replying: the session's queued replies end
with model_unavailable, its next message is refused with 409, and nobody else notices."""

from __future__ import annotations

from pathlib import Path

import trio

from conversation_service.domain.model import AccessRole
from conversation_service.testing.upstream import Exchange, chunk, start_fake_openai
from tests.http.conftest import open_api, settings_for
from tests.http.test_org_models_api import entry


async def slow_reply(exchange: Exchange) -> None:
    await exchange.send_head()
    for piece in ("slow ", "and ", "steady"):
        await trio.sleep(0.3)
        await exchange.send_event(chunk(piece))
    await exchange.send_event(chunk(finish_reason="stop"))
    await exchange.send_event("[DONE]")
    await exchange.end_body()


async def test_removing_a_model_with_replies_queued_on_it_stops_nothing_else(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        upstream = await start_fake_openai(nursery, slow_reply)
        settings = settings_for(tmp_path, allow_private_model_urls=True, echo_delay_ms=20)
        async with open_api(settings) as api:
            admin = await api.tenant(AccessRole.ADMIN, org_id=api.a.org_id)
            model = (await api.post("/api/models", entry(upstream.base_url), who=admin)).json()
            session = await api.session((await api.conversation())["id"], model["id"])
            bystander = await api.session((await api.conversation(who=api.b))["id"], who=api.b)
            results: dict[str, list] = {}

            async def stream(name: str, session_id: str, text: str, who=None) -> None:
                results[name] = await api.stream(session_id, text, who=who)

            async with trio.open_nursery() as streams:
                streams.start_soon(stream, "running", session["id"], "one")
                await trio.sleep(0.2)
                streams.start_soon(stream, "queued", session["id"], "two")
                streams.start_soon(stream, "bystander", bystander["id"], " ".join("w" * 30), api.b)
                await trio.sleep(0.2)
                removed = await api.client.delete(
                    f"/api/models/{model['id']}", headers=admin.auth, params=admin.q
                )
                assert removed.status_code == 204

            running = results["running"]
            assert [k for _, k, _ in running][-1] == "end"
            assert "".join(d["content"] for _, k, d in running if k == "content") == (
                "slow and steady"
            )
            assert [
                (k, d.get("code"), d.get("finish_reason")) for _, k, d in results["queued"]
            ] == [
                ("error", "model_unavailable", None),
                ("end", None, "error"),
            ]
            assert results["bystander"][-1][2]["finish_reason"] == "stop"

            refused = await api.post(
                "/api/conversation/stream_chat", {"chat_session_id": session["id"], "message": "3"}
            )
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "model_unavailable"
            # The server is up for everyone, this session's history included.
            assert (await api.client.get("/healthz")).status_code == 200
            assert (await api.stream(bystander["id"], "still here", api.b))[-1][1] == "end"
            messages = await api.get(
                "/api/conversation/messages", conversation_id=session["conversation_id"]
            )
            assert [m["content"] for m in messages.json()["messages"]] == [
                "one",
                "slow and steady",
            ]
        nursery.cancel_scope.cancel()
