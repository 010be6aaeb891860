"""A LanguageModel for any server speaking OpenAI's streamed Chat Completions API.

OpenAI itself, vLLM, Ollama, llama.cpp's server and LiteLLM accept the same request and stream
the reply as Server-Sent Events ending with `data: [DONE]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from conversation_service.adapters.llm.event_stream import ServerSentEvent
from conversation_service.adapters.llm.provider_model import ProviderModel
from conversation_service.adapters.llm.upstream import Reply, StreamRequest, is_count, json_object
from conversation_service.adapters.llm.upstream_errors import error_message
from conversation_service.domain.context import PromptMessage
from conversation_service.domain.model import GenerationParams, Usage
from conversation_service.ports.language_model import Emit, ModelFailure


@attrs.define
class _ChatReply(Reply):
    """A Chat Completions stream: `chat.completion.chunk` objects, then `[DONE]`."""

    end_marker = "data: [DONE]"

    async def take(self, event: ServerSentEvent, emit: Emit) -> bool:
        if event.data == "[DONE]":
            return True
        if not event.data.strip():  # a keep-alive: it proves the upstream alive, nothing more
            return False
        chunk = json_object(event.data, "a chunk")
        if "error" in chunk:  # vLLM and LiteLLM report mid-stream failures this way
            detail = error_message(chunk, self.secret) or "no details"
            raise ModelFailure("upstream_error", f"the model failed mid-reply: {detail}")
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise ModelFailure("upstream_bad_response", "the model sent malformed choices")
        for choice in choices:
            if not isinstance(choice, dict):
                raise ModelFailure("upstream_bad_response", "the model sent malformed choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or {}
            await self.text(delta.get("content") if isinstance(delta, dict) else None, emit)
            if isinstance(choice.get("finish_reason"), str):
                self.finish_reason = choice["finish_reason"]
        usage = chunk.get("usage")
        if usage is not None:  # most chunks carry none; a null one, as OpenAI sends, is none
            self.usage = _usage(usage) or self.usage
        return False


class OpenAIChatModel(ProviderModel):
    """One model served by an OpenAI-compatible Chat Completions endpoint, streamed.

    `base_url` is the API root, e.g. https://api.openai.com/v1. The key goes out as
    `Authorization: Bearer`.
    """

    reply_type = _ChatReply

    def request(
        self, prompt: Sequence[PromptMessage], params: GenerationParams, api_key: str | None
    ) -> StreamRequest:
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "messages": [{"role": m.role, "content": m.content} for m in prompt],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for name in ("temperature", "top_p", "max_tokens"):
            value = getattr(params, name)
            if value is not None:  # left out, the server's own default applies
                body[name] = value
        return StreamRequest(
            url=self.base_url + "/chat/completions",
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            body=body,
            secret=api_key,
        )


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt_tokens = value.get("prompt_tokens")
    completion_tokens = value.get("completion_tokens")
    if not (is_count(prompt_tokens) and is_count(completion_tokens)):
        return None
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, estimated=False)
