"""A LanguageModel for Anthropic's streamed Messages API (POST /v1/messages).

The API differs from Chat Completions in what concerns us here: the system prompt is a field of
its own, turns must alternate user/assistant starting with the user, `max_tokens` is required,
and the stream is named events (message_start ... message_stop) that report usage themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

import attrs

from conversation_service.adapters.llm.event_stream import ServerSentEvent
from conversation_service.adapters.llm.http1 import UpstreamClient
from conversation_service.adapters.llm.provider_model import ModelSettings, ProviderModel
from conversation_service.adapters.llm.upstream import Reply, StreamRequest, is_count, json_object
from conversation_service.adapters.llm.upstream_errors import (
    error_message,
    error_type,
    failure_for_error,
)
from conversation_service.domain.context import PromptMessage
from conversation_service.domain.model import GenerationParams, Usage
from conversation_service.ports.language_model import Emit

ANTHROPIC_API = "https://api.anthropic.com"
API_VERSION = "2023-06-01"  # the version whose event stream this module reads
DEFAULT_MAX_TOKENS = 1024

# Anthropic's stop reasons in the names our clients already know from OpenAI's.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
}
# Usage fields that count prompt tokens: those read from or written to the prompt cache too.
_INPUT_COUNTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@attrs.define
class _MessagesReply(Reply):
    """A Messages stream; events it does not know (new ones may come) are skipped."""

    end_marker = "message_stop"

    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    async def take(self, event: ServerSentEvent, emit: Emit) -> bool:
        payload = json_object(event.data, "an event") if event.data.strip() else {}
        kind = payload.get("type") or event.event
        if kind == "error":
            detail = error_message(payload, self.secret) or "no details"
            kind_of_error = error_type(payload) or "unknown"
            when = "mid-reply" if self.parts else "before replying"
            raise failure_for_error(
                kind_of_error, f"the model failed {when} ({kind_of_error}): {detail}"
            )
        if kind == "message_start":
            message = payload.get("message")
            self._count(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "content_block_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                await self.text(delta.get("text"), emit)
        elif kind == "message_delta":
            delta = payload.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if isinstance(reason, str):
                self.finish_reason = _FINISH_REASONS.get(reason, reason)
            self._count(payload.get("usage"))
        elif kind == "message_stop":
            if self.prompt_tokens is not None and self.completion_tokens is not None:
                self.usage = Usage(
                    prompt_tokens=self.prompt_tokens,
                    completion_tokens=self.completion_tokens,
                    estimated=False,
                )
            return True
        return False  # ping, content_block_start/stop: alive, nothing to show

    def _count(self, usage: Any) -> None:
        """Take the counts a usage object carries; message_delta's are cumulative."""
        if not isinstance(usage, dict):
            return
        inputs = [usage.get(k) for k in _INPUT_COUNTS]
        if is_count(inputs[0]):
            self.prompt_tokens = sum(n for n in inputs if is_count(n))
        if is_count(usage.get("output_tokens")):
            self.completion_tokens = usage["output_tokens"]


class AnthropicMessagesModel(ProviderModel):
    """One model of Anthropic's Messages API, streamed.

    `base_url` is the API root without /v1. The key goes out as `x-api-key`.
    `default_max_tokens` is sent when the session sets no max_tokens: the API requires one.
    """

    reply_type = _MessagesReply

    def __init__(
        self,
        client: UpstreamClient,
        *,
        base_url: str = ANTHROPIC_API,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        **settings: Unpack[ModelSettings],
    ) -> None:
        if default_max_tokens < 1:
            raise ValueError(f"default_max_tokens must be >= 1, not {default_max_tokens}")
        super().__init__(client, base_url=base_url, **settings)
        self.default_max_tokens = default_max_tokens

    def request(
        self, prompt: Sequence[PromptMessage], params: GenerationParams, api_key: str | None
    ) -> StreamRequest:
        max_tokens = self.default_max_tokens if params.max_tokens is None else params.max_tokens
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "max_tokens": max_tokens,
            "messages": conversation_turns(prompt),
            "stream": True,
        }
        system = "\n\n".join(m.content for m in prompt if m.role == "system" and m.content.strip())
        if system:
            body["system"] = system
        for name in ("temperature", "top_p"):
            value = getattr(params, name)
            if value is not None:  # left out, the model's own default applies
                body[name] = value
        headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        return StreamRequest(
            url=self.base_url + "/v1/messages", headers=headers, body=body, secret=api_key
        )


def conversation_turns(prompt: Sequence[PromptMessage]) -> list[dict[str, str]]:
    """The prompt's user and assistant messages as the API accepts them.

    It refuses two turns of one role in a row and a conversation that opens with the
    assistant, so consecutive turns of a role are merged and leading assistant turns dropped.
    Blank messages are left out: the API refuses empty text.
    """
    turns: list[dict[str, str]] = []
    for message in prompt:
        if message.role not in ("user", "assistant") or not message.content.strip():
            continue
        if not turns and message.role == "assistant":
            continue
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": message.role, "content": message.content})
    return turns
