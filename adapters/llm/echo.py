"""The built-in echo model: a stand-in for a language model during development and tests."""

from __future__ import annotations

import re
from collections.abc import Sequence
from uuid import UUID

import trio

from conversation_service.domain.context import PromptMessage, estimated_usage
from conversation_service.domain.model import GenerationParams
from conversation_service.ports.language_model import DEFAULT_PARAMS, Emit, ModelResult

ECHO_MODEL_ID = UUID("6563686f-0000-4000-8000-000000000000")  # "echo" in hex
ECHO_PREFIX = "Echo: "
NOTHING_TO_ECHO = "Echo: (nothing to echo: the prompt has no user message)"

# A word with its following whitespace; the first also takes any leading whitespace, so the
# pieces always join back into the whole text.
_WORD = re.compile(r"\s*\S+\s*")


def echo_reply(prompt: Sequence[PromptMessage]) -> str:
    """The echo model's reply: its prefix and the last non-blank user message."""
    for message in reversed(prompt):
        if message.role == "user" and message.content.strip():
            return ECHO_PREFIX + message.content
    return NOTHING_TO_ECHO


class EchoModel:
    """A deterministic development model; NOT a language model.

    It replies "Echo: " and the last user message, streamed word by word with `delay` seconds
    between words, so streaming, cancellation and persistence can be exercised without a
    provider, a network or an API key. Usage is estimated. Of the generation params only
    max_tokens counts: it stops the reply after that many words, finish_reason "length".
    """

    def __init__(self, delay: float = 0.0) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, not {delay}")
        self.delay = delay

    async def generate(
        self,
        prompt: Sequence[PromptMessage],
        emit: Emit,
        params: GenerationParams = DEFAULT_PARAMS,
    ) -> ModelResult:
        reply = echo_reply(prompt)
        limit = params.max_tokens
        finish_reason, end = "stop", len(reply)
        # One word at a time: a 100 KB reply is 20,000 words, not worth holding as a list.
        for index, word in enumerate(_WORD.finditer(reply)):
            if limit is not None and index >= limit:
                finish_reason, end = "length", word.start()
                break
            if index:
                await trio.sleep(self.delay)
            await emit(word.group())
        usage = estimated_usage(prompt, reply[:end])
        return ModelResult(finish_reason=finish_reason, usage=usage)
