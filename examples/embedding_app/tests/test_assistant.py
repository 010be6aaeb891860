"""The assistant tested with the Conversation Service's testing kit: its plugin's fixtures, its
scripted model and its strategies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from notes_assistant import Assistant, AssistantError, ask_remote

from conversation_service.client import ECHO_MODEL_ID
from conversation_service.testing import strategies as cs
from conversation_service.testing.in_process import InProcessService, open_in_process_service
from conversation_service.testing.scripted import Script
from conversation_service.testing.server_thread import ServedOrg


def assistant(running: InProcessService) -> Assistant:
    return Assistant(running.service, running.who, running.catalog.info.id)


async def test_an_answer_is_the_models_reply_whole(in_process_service: InProcessService) -> None:
    in_process_service.catalog.model.default = Script.reply("Tomatoes like sun.", chunk_chars=4)
    answer = await assistant(in_process_service).ask("garden", "What do tomatoes like?")
    assert answer == "Tomatoes like sun."


async def test_a_failing_model_is_an_assistant_error(
    in_process_service: InProcessService,
) -> None:
    in_process_service.catalog.model.default = Script.error_after(2, "upstream_rate_limited")
    with pytest.raises(AssistantError, match="upstream_rate_limited"):
        await assistant(in_process_service).ask("garden", "Anything?")


@settings(max_examples=25, deadline=None)
@given(topic=cs.titles(), questions=cs.message_texts(max_size=300).map(lambda q: [q, q + "?"]))
async def test_any_topic_keeps_its_questions_and_answers_in_order(
    topic: str, questions: list[str]
) -> None:
    async with open_in_process_service() as running:
        running.catalog.model.default = Script.reply("Noted.")
        asked = assistant(running)
        for question in questions:
            assert await asked.ask(topic, question) == "Noted."
        assert await asked.history(topic) == [
            turn for q in questions for turn in (("user", q), ("assistant", "Noted."))
        ]


def test_the_same_over_http_against_a_real_server(served_org: ServedOrg) -> None:
    with served_org.client() as client:
        assert ask_remote(client, "garden", "hello", ECHO_MODEL_ID) == "Echo: hello"
