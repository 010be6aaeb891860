"""Running a model in a test: collect what it emits, or the failure it raises, in bounded time."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from conversation_service.domain.context import PromptMessage
from conversation_service.domain.model import GenerationParams
from conversation_service.ports.language_model import (
    DEFAULT_PARAMS,
    LanguageModel,
    ModelFailure,
    ModelResult,
)

PROMPT = (
    PromptMessage(role="system", content="Be brief."),
    PromptMessage(role="user", content="Say hello"),
)


async def generate(
    model: LanguageModel,
    prompt: Sequence[PromptMessage] = PROMPT,
    params: GenerationParams = DEFAULT_PARAMS,
) -> tuple[list[str], ModelResult]:
    """The chunks `model` emitted and how it ended; fails the test after 5 seconds."""
    emitted: list[str] = []

    async def emit(text: str) -> None:
        emitted.append(text)

    with trio.fail_after(5):
        result = await model.generate(prompt, emit, params)
    return emitted, result


async def failure(
    model: LanguageModel,
    prompt: Sequence[PromptMessage] = PROMPT,
    params: GenerationParams = DEFAULT_PARAMS,
) -> ModelFailure:
    """The ModelFailure `model` raises; the test fails if it raises none."""
    with pytest.raises(ModelFailure) as info:
        await generate(model, prompt, params)
    return info.value


async def closed_port() -> int:
    """A loopback port nothing listens on: bound, then closed."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
