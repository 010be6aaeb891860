"""What a model is shown: the prompt built from a session's stored messages."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from domain.model import Message, MessageRole, Usage


@attrs.frozen(kw_only=True)
class PromptMessage:
    """One entry of the prompt a model receives."""

    role: str  # "system" | "user" | "assistant"
    content: str


def build_prompt(history: Iterable[Message]) -> tuple[PromptMessage, ...]:
    """The session's messages in order, leaving out replies that produced no text."""
    prompt = []
    for message in history:
        if message.role is MessageRole.ASSISTANT and not message.content:
            continue
        prompt.append(PromptMessage(role=message.role.value, content=message.content))
    return tuple(prompt)


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate: one token per four characters, rounded up.

    English text averages about four characters per token in the common BPE vocabularies;
    this is a documented approximation used only when a provider does not report usage.
    """
    return (len(text) + 3) // 4


def estimated_usage(prompt: Iterable[PromptMessage], completion: str) -> Usage:
    """Usage counted by `estimate_tokens` over the prompt and the reply."""
    return Usage(
        prompt_tokens=sum(estimate_tokens(m.content) for m in prompt),
        completion_tokens=estimate_tokens(completion),
        estimated=True,
    )
