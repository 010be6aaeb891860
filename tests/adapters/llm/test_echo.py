"""The built-in echo model: deterministic, streamed word by word, paced by its delay."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from conversation_service.adapters.llm.echo import NOTHING_TO_ECHO, EchoModel
from conversation_service.domain.context import PromptMessage, estimated_usage
from conversation_service.domain.model import GenerationParams
from conversation_service.ports.language_model import DEFAULT_PARAMS, ModelResult


def user(content: str) -> PromptMessage:
    return PromptMessage(role="user", content=content)


async def run(
    model: EchoModel, prompt: list[PromptMessage], params: GenerationParams = DEFAULT_PARAMS
) -> tuple[list[str], ModelResult]:
    emitted: list[str] = []

    async def emit(text: str) -> None:
        emitted.append(text)

    with trio.fail_after(60):  # virtual seconds under autojump_clock
        result = await model.generate(prompt, emit, params)
    return emitted, result


async def test_streams_the_reply_word_by_word():
    emitted, result = await run(EchoModel(0), [user("hello  brave\nnew world")])

    assert emitted == ["Echo: ", "hello  ", "brave\n", "new ", "world"]
    assert "".join(emitted) == "Echo: hello  brave\nnew world"
    assert result.finish_reason == "stop"


async def test_echoes_the_last_user_message():
    prompt = [
        PromptMessage(role="system", content="Be brief."),
        user("first"),
        PromptMessage(role="assistant", content="Echo: first"),
        user("second"),
        PromptMessage(role="assistant", content=""),
    ]

    emitted, _ = await run(EchoModel(0), prompt)

    assert "".join(emitted) == "Echo: second"


@pytest.mark.parametrize("prompt", [[], [PromptMessage(role="system", content="hi")], [user(" ")]])
async def test_a_prompt_without_user_text_gets_a_fixed_reply(prompt):
    emitted, _ = await run(EchoModel(0), prompt)

    assert "".join(emitted) == NOTHING_TO_ECHO


async def test_is_deterministic():
    prompt = [user("the same words twice")]

    assert await run(EchoModel(0), prompt) == await run(EchoModel(0), prompt)


async def test_usage_is_estimated_over_prompt_and_reply():
    prompt = [user("count me")]

    _, result = await run(EchoModel(0), prompt)

    assert result.usage == estimated_usage(prompt, "Echo: count me")
    assert result.usage.estimated


async def test_waits_delay_between_words(autojump_clock):
    times: list[float] = []

    async def emit(text: str) -> None:
        times.append(trio.current_time())

    start = trio.current_time()
    with trio.fail_after(60):
        await EchoModel(0.5).generate([user("one two three")], emit)

    assert [t - start for t in times] == [0, 0.5, 1.0, 1.5]


async def test_max_tokens_stops_the_reply_after_that_many_words():
    prompt = [user("one two three four")]

    emitted, result = await run(EchoModel(0), prompt, GenerationParams(max_tokens=3))

    assert emitted == ["Echo: ", "one ", "two "]
    assert result.finish_reason == "length"
    assert result.usage == estimated_usage(prompt, "Echo: one two ")


@pytest.mark.parametrize("max_tokens", [5, 6, None])
async def test_a_reply_within_max_tokens_stops_as_usual(max_tokens):
    params = GenerationParams(max_tokens=max_tokens, temperature=1.5, top_p=0.1)

    emitted, result = await run(EchoModel(0), [user("one two three four")], params)

    assert "".join(emitted) == "Echo: one two three four"
    assert result.finish_reason == "stop"


def test_refuses_a_negative_delay():
    with pytest.raises(ValueError, match="delay"):
        EchoModel(-1)


@given(text=st.text().filter(str.strip))
async def test_joined_emits_are_the_reply_for_any_text(text):
    emitted, _ = await run(EchoModel(0), [user(text)])

    assert "".join(emitted) == "Echo: " + text
    assert all(piece.strip() for piece in emitted)
