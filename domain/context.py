"""What a model is shown: the prompt built from a session's stored messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from conversation_service.domain.errors import InvalidField
from conversation_service.domain.model import ChatSession, Message, MessageRole, Usage


@attrs.frozen(kw_only=True)
class PromptMessage:
    """One entry of the prompt a model receives."""

    role: str  # "system" | "user" | "assistant"
    content: str


def is_shown(message: Message) -> bool:
    """Whether a model is shown `message`: every one but a reply that produced no text."""
    return message.role is not MessageRole.ASSISTANT or bool(message.content)


def build_prompt(history: Iterable[Message]) -> tuple[PromptMessage, ...]:
    """The session's messages in order, leaving out those a model is not shown."""
    return tuple(_entry(message) for message in history if is_shown(message))


def _entry(message: Message) -> PromptMessage:
    # `_value_` is what `.value` returns, without its descriptor's two calls: this runs for
    # every message of every prompt.
    return PromptMessage(role=message.role._value_, content=message.content)


# Chat formats wrap each message in a few tokens of markup (role, separators).
MESSAGE_OVERHEAD_TOKENS = 4


@attrs.frozen(kw_only=True)
class PromptPlan:
    """The prompt that fits the model, and what had to be left out to fit it."""

    messages: tuple[PromptMessage, ...]
    included: int  # conversation messages in the prompt (the system prompt not counted)
    trimmed: int  # older messages left out so that the prompt fits
    estimated_tokens: int


def prompt_tokens(message: PromptMessage | Message) -> int:
    return estimate_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS


def plan_prompt(
    *,
    system_prompt: str | None,
    history: Sequence[Message],
    context_window: int,
    reserve_for_reply: int,
) -> PromptPlan:
    """The system prompt, then as many of the newest messages as fit, oldest first.

    The last message of `history` (the one being answered) and the system prompt are always
    kept; older messages are dropped, oldest first, until the estimate fits in
    `context_window - reserve_for_reply`.
    """
    system = () if not system_prompt else (PromptMessage(role="system", content=system_prompt),)
    budget = context_window - reserve_for_reply - sum(prompt_tokens(m) for m in system)
    # From the newest back, making prompt entries only for the messages kept: a long
    # session's older messages are counted, not copied.
    kept: list[PromptMessage] = []
    used = shown = 0
    full = False
    for message in reversed(history):
        if not is_shown(message):
            continue
        shown += 1
        if full:
            continue
        cost = prompt_tokens(message)
        if kept and used + cost > budget:
            full = True  # nothing older is shown, however small: the prompt stays contiguous
            continue
        kept.append(_entry(message))
        used += cost
    kept.reverse()
    return PromptPlan(
        messages=system + tuple(kept),
        included=len(kept),
        trimmed=shown - len(kept),
        estimated_tokens=used + sum(prompt_tokens(m) for m in system),
    )


def history_limit(session: ChatSession, *, context_window: int, max_output_tokens: int) -> int:
    """The most earlier messages a prompt for `session` can hold, so that a store can read
    no more than that: every message shown costs at least MESSAGE_OVERHEAD_TOKENS + 1 tokens
    (empty replies are not shown), and the newest is shown whatever it costs."""
    system = estimate_tokens(session.system_prompt or "")
    budget = context_window - reserve_for_reply(session, max_output_tokens) - system
    return max(budget, 0) // (MESSAGE_OVERHEAD_TOKENS + 1) + 1


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


def reserve_for_reply(session: ChatSession, max_output_tokens: int) -> int:
    """Tokens of the context window kept for the reply: the session's max_tokens if set,
    else the model's largest reply."""
    return session.params.max_tokens or max_output_tokens


def check_message_fits(
    session: ChatSession,
    text: str,
    *,
    model_name: str,
    context_window: int,
    max_output_tokens: int,
    field: str = "message",
) -> None:
    """InvalidField on `field` when the text cannot fit the model's context with the system
    prompt.

    Older messages are trimmed to make room, but the new one and the system prompt never are.
    """
    needed = sum(
        prompt_tokens(PromptMessage(role=role, content=content))
        for role, content in (("system", session.system_prompt or ""), ("user", text))
        if content
    )
    reserve = reserve_for_reply(session, max_output_tokens)
    if needed > context_window - reserve:
        raise InvalidField(
            field,
            f"is too long for model {model_name}: about {needed} tokens with the system "
            f"prompt, and the model reads {context_window} of which {reserve} are kept "
            "for its reply",
        )
