"""The kit's pytest plugin is installed with the package, and its fixtures work: the service
in process on a scripted model, and a real server with a new organisation for each test."""

from __future__ import annotations

from importlib.metadata import entry_points

import httpx

from conversation_service.client import ECHO_MODEL_ID
from conversation_service.testing.in_process import InProcessService, drain, text_of
from conversation_service.testing.scripted import Script
from conversation_service.testing.server_thread import ServedOrg, ServerThread


def test_the_plugin_is_a_pytest11_entry_point() -> None:
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins["conversation_service"] == "conversation_service.testing.plugin"


async def test_the_in_process_service_replies_with_its_scripted_model(
    in_process_service: InProcessService,
) -> None:
    running = in_process_service
    running.catalog.model.default = Script.reply("A scripted answer.", chunk_chars=3)
    session = await running.new_session()
    reply = await running.service.send_message(running.who, running.org, session.id, "hi")
    events = await drain(reply)
    assert text_of(events) == "A scripted answer." and events[-1].kind == "end"
    assert running.catalog.model.prompts[-1][-1].content == "hi"


def test_a_served_org_streams_a_reply_through_the_client(served_org: ServedOrg) -> None:
    with served_org.client() as client:
        conversation = client.create_conversation("from the plugin")
        session = client.create_session(conversation.id, ECHO_MODEL_ID)
        with client.stream_chat(session.id, "hi there") as stream:
            reply = stream.final_message()
    assert reply.content == "Echo: hi there"


def test_each_test_gets_an_organisation_of_its_own(
    served_org: ServedOrg, served_service: ServerThread
) -> None:
    listed = httpx.get(
        f"{served_service.base_url}/api/conversation/list",
        params=served_org.params,
        headers=served_org.headers,
    )
    assert listed.status_code == 200 and listed.json()["conversations"] == []


async def test_a_served_org_has_an_async_client_too(served_org: ServedOrg) -> None:
    async with served_org.async_client() as client:
        conversation = await client.create_conversation("async, from the plugin")
        assert (await client.get_conversation(conversation.id)).title == conversation.title
