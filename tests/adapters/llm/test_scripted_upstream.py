"""The testing kit's scripts, played in process (ScriptedModel) and over HTTP (ScriptedUpstream,
read by the real OpenAI provider adapter): the same text, and each failure ending with the
code the kit's table says."""

from __future__ import annotations

import pytest
import trio

from conversation_service.adapters.llm.http1 import UpstreamClient
from conversation_service.adapters.llm.openai_chat import OpenAIChatModel
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.domain.context import PromptMessage
from conversation_service.domain.model import Usage
from conversation_service.testing.scripted import Script, ScriptedModel
from conversation_service.testing.upstream import ScriptedUpstream, start_scripted_upstream

from .generation import failure, generate

FAST = Timeouts(connect=1.0, first_token=0.3, idle=0.3, total=5.0)
QUICK = Retries(base=0.01, cap=0.02)  # 2 retries, 5 to 20 ms apart


def over_http(
    client: UpstreamClient, upstream: ScriptedUpstream, **retries: float
) -> OpenAIChatModel:
    return OpenAIChatModel(
        client,
        base_url=upstream.base_url,
        upstream_model="scripted",
        timeouts=FAST,
        retries=Retries(base=0.01, cap=0.02, **retries) if retries else QUICK,
    )


SCRIPTS = [
    # (script, the code in process, the code over HTTP)
    (Script.error_before_first_token(), "upstream_error", "upstream_error"),
    (Script.rate_limited(), "upstream_rate_limited", "upstream_rate_limited"),
    (
        Script.error_before_first_token("upstream_unavailable"),
        "upstream_unavailable",
        "upstream_unavailable",
    ),
    (Script.error_after(2), "upstream_error", "upstream_error"),
    (Script.malformed(), "upstream_bad_response", "upstream_bad_response"),
    (Script.malformed(after=3), "upstream_bad_response", "upstream_bad_response"),
    (
        Script.error_after(1, "upstream_unavailable"),
        "upstream_unavailable",
        "upstream_bad_response",
    ),
    (Script.error_after(1, "upstream_timeout"), "upstream_timeout", "upstream_timeout"),
]


@pytest.mark.parametrize(("script", "in_process", "_"), SCRIPTS)
async def test_a_failing_script_in_process_ends_with_its_code(
    script: Script, in_process: str, _: str
) -> None:
    model = ScriptedModel()
    model.default = script
    assert (await failure(model)).code == in_process


@pytest.mark.parametrize(("script", "_", "over_http_code"), SCRIPTS)
async def test_a_failing_script_over_http_ends_with_its_code(
    nursery: trio.Nursery, client: UpstreamClient, script: Script, _: str, over_http_code: str
) -> None:
    upstream = await start_scripted_upstream(nursery)
    upstream.default = script
    emitted: list[str] = []

    async def emit(text: str) -> None:
        emitted.append(text)

    with trio.fail_after(5), pytest.raises(Exception) as raised:
        await over_http(client, upstream).generate([PromptMessage(role="user", content="hi")], emit)
    assert getattr(raised.value, "code", None) == over_http_code, raised.value
    assert "".join(emitted) == script.text


async def test_a_reply_reads_the_same_in_process_and_over_http(
    nursery: trio.Nursery, client: UpstreamClient
) -> None:
    script = Script.reply("The same reply, chunk by chunk.", chunk_chars=4, delay=0.01)
    script = Script(
        chunks=script.chunks, delay=0.01, finish_reason="length",
        usage=Usage(prompt_tokens=7, completion_tokens=9, estimated=False),
    )  # fmt: skip
    model = ScriptedModel()
    model.default = script
    upstream = await start_scripted_upstream(nursery)
    upstream.default = script
    for played in (model, over_http(client, upstream)):
        chunks, result = await generate(played)
        assert chunks == list(script.chunks)
        assert (result.finish_reason, result.usage) == ("length", script.usage)


async def test_scripts_are_chosen_by_the_last_message_then_in_turn(
    nursery: trio.Nursery, client: UpstreamClient
) -> None:
    upstream = await start_scripted_upstream(nursery)
    upstream.scripts = [Script.rate_limited(retry_after=0.01), Script.reply("second attempt")]
    upstream.by_text["special"] = Script.reply("for you")
    model = over_http(client, upstream)
    chunks, _ = await generate(model)  # the first attempt is refused, the retry replies
    assert "".join(chunks) == "second attempt" and upstream.requests_seen == 2
    chunks, _ = await generate(model, [PromptMessage(role="user", content="special")])
    assert "".join(chunks) == "for you"
    chunks, _ = await generate(model)
    assert "".join(chunks) == "Hello, world"  # the default


async def test_silence_lasts_until_the_client_gives_up(
    nursery: trio.Nursery, client: UpstreamClient
) -> None:
    upstream = await start_scripted_upstream(nursery)
    upstream.default = Script.silence(["Hel"])
    assert (await failure(over_http(client, upstream, max_retries=0))).code == "upstream_timeout"
    model = ScriptedModel()
    model.default = Script.silence(["Hel"])
    with trio.move_on_after(1) as waited:
        await generate(model)
    assert waited.cancelled_caught and model.cancelled == 1
