"""A LanguageModel for any server speaking OpenAI's streamed Chat Completions API.

OpenAI itself, vLLM, Ollama, llama.cpp's server and LiteLLM accept the same request and stream
the reply as Server-Sent Events ending with `data: [DONE]`. Library errors are translated into
ModelFailure here; the API key never appears in a failure.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any, TypeGuard

import attrs
import httpx
import trio
from httpx_sse import SSEError, aconnect_sse

from domain.context import PromptMessage, estimated_usage
from domain.model import Usage
from ports.language_model import Emit, ModelFailure, ModelResult

_MAX_DETAIL = 300  # characters of an upstream error message passed on to our callers
_MAX_ERROR_BODY = 16_384  # bytes of an error response read to find that message


@attrs.frozen(kw_only=True)
class Timeouts:
    """How long to wait on the upstream, in seconds."""

    connect: float = 10.0
    first_token: float = 60.0  # from sending the request to the first event
    idle: float = 30.0  # between two events
    total: float = 600.0  # the whole reply, however fast it streams


class OpenAIChatModel:
    """One model served by an OpenAI-compatible Chat Completions endpoint, streamed.

    `client` is shared and owned by the caller (the catalog). The API key is read from the
    environment variable named `api_key_env` at each generation; None sends no Authorization.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        upstream_model: str,
        api_key_env: str | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._upstream_model = upstream_model
        self._api_key_env = api_key_env
        self._timeouts = timeouts or Timeouts()

    async def generate(self, prompt: Sequence[PromptMessage], emit: Emit) -> ModelResult:
        api_key = self._api_key()
        reply = _Reply(secret=api_key)
        timeouts = self._timeouts
        with trio.move_on_after(timeouts.total) as whole:
            # Upstream silence: first_token until the first event, then idle between events.
            with trio.CancelScope(deadline=trio.current_time() + timeouts.first_token) as silence:
                await self._stream(prompt, api_key, reply, silence, emit)
            if silence.cancelled_caught:
                if reply.events:
                    raise ModelFailure(
                        "upstream_timeout", f"the model sent nothing for {timeouts.idle:g}s"
                    )
                raise ModelFailure(
                    "upstream_timeout", f"the model did not start within {timeouts.first_token:g}s"
                )
        if whole.cancelled_caught:
            raise ModelFailure(
                "upstream_timeout", f"the reply took longer than {timeouts.total:g}s"
            )
        usage = reply.usage or estimated_usage(prompt, "".join(reply.parts))
        return ModelResult(finish_reason=reply.finish_reason or "stop", usage=usage)

    def _api_key(self) -> str | None:
        if self._api_key_env is None:
            return None
        key = os.environ.get(self._api_key_env)
        if not key:
            raise ModelFailure(
                "model_misconfigured",
                f"the model needs an API key but environment variable {self._api_key_env}"
                " is not set",
            )
        return key

    async def _stream(
        self,
        prompt: Sequence[PromptMessage],
        api_key: str | None,
        reply: _Reply,
        silence: trio.CancelScope,
        emit: Emit,
    ) -> None:
        body = {
            "model": self._upstream_model,
            "messages": [{"role": m.role, "content": m.content} for m in prompt],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        t = self._timeouts
        # Reads are bounded by the cancel scopes in `generate`, not by httpx.
        timeout = httpx.Timeout(connect=t.connect, read=None, write=t.connect, pool=t.connect)
        try:
            async with aconnect_sse(
                self._client, "POST", self._url, json=body, headers=headers, timeout=timeout
            ) as source:
                reply.responded = True
                if not source.response.is_success:
                    raise await _status_failure(source.response, api_key)
                async with aclosing(source.aiter_sse()) as events:
                    async for event in events:
                        reply.events += 1
                        if event.data == "[DONE]":
                            return
                        silence.deadline = math.inf  # the caller's pace is not upstream silence
                        await reply.take(event.data, emit)
                        silence.deadline = trio.current_time() + t.idle
            raise ModelFailure(
                "upstream_bad_response", "the model's stream ended before data: [DONE]"
            )
        except httpx.ConnectTimeout as e:
            raise ModelFailure(
                "upstream_timeout", f"could not connect to the model within {t.connect:g}s"
            ) from e
        except httpx.ConnectError as e:
            raise ModelFailure("upstream_unavailable", "could not connect to the model") from e
        except SSEError as e:
            raise ModelFailure("upstream_bad_response", f"the model did not stream: {e}") from e
        except httpx.TransportError as e:
            if not reply.responded:
                raise ModelFailure(
                    "upstream_unavailable",
                    f"the request to the model failed: {_describe(e)}",
                ) from e
            raise ModelFailure(
                "upstream_bad_response",
                f"the connection broke before the reply was complete: {_describe(e)}",
            ) from e


@attrs.define
class _Reply:
    """What the stream has produced so far."""

    secret: str | None
    responded: bool = False
    events: int = 0
    parts: list[str] = attrs.Factory(list)
    finish_reason: str | None = None
    usage: Usage | None = None

    async def take(self, data: str, emit: Emit) -> None:
        """Apply one `data:` payload: emit its text, remember how and at what cost it ended."""
        if not data.strip():  # a keep-alive: it proves the upstream alive, nothing more
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ModelFailure(
                "upstream_bad_response", "the model sent a chunk that is not JSON"
            ) from None
        if not isinstance(chunk, dict):
            raise ModelFailure(
                "upstream_bad_response", "the model sent a chunk that is not an object"
            )
        if "error" in chunk:  # vLLM and LiteLLM report mid-stream failures this way
            detail = _error_message(chunk, self.secret) or "no details"
            raise ModelFailure("upstream_error", f"the model failed mid-reply: {detail}")
        choices = chunk.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise ModelFailure("upstream_bad_response", "the model sent malformed choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                self.parts.append(content)
                await emit(content)
            if isinstance(choice.get("finish_reason"), str):
                self.finish_reason = choice["finish_reason"]
        self.usage = _usage(chunk.get("usage")) or self.usage


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt_tokens = value.get("prompt_tokens")
    completion_tokens = value.get("completion_tokens")
    if not (_is_count(prompt_tokens) and _is_count(completion_tokens)):
        return None
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, estimated=False)


async def _status_failure(response: httpx.Response, secret: str | None) -> ModelFailure:
    status = response.status_code
    detail = await _error_detail(response, secret)
    suffix = f": {detail}" if detail else ""
    if status == 429:
        return ModelFailure(
            "upstream_rate_limited", f"the model provider is rate limiting (HTTP 429){suffix}"
        )
    if status >= 500:
        return ModelFailure("upstream_error", f"the model provider failed (HTTP {status}){suffix}")
    return ModelFailure(
        "upstream_error", f"the model provider refused the request (HTTP {status}){suffix}"
    )


async def _error_detail(response: httpx.Response, secret: str | None) -> str | None:
    """The message of an error body, `{"error": {"message": ...}}` or `{"error": "..."}`."""
    body = b""
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) > _MAX_ERROR_BODY:
            return None
    try:
        return _error_message(json.loads(body), secret)
    except ValueError:
        return None


def _error_message(body: Any, secret: str | None) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if not isinstance(error, str) or not error.strip():
        return None
    message = " ".join(error.split())
    if secret:
        message = message.replace(secret, "[redacted]")
    if len(message) > _MAX_DETAIL:
        message = message[: _MAX_DETAIL - 1] + "…"
    return message


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _describe(error: httpx.TransportError) -> str:
    return str(error) or type(error).__name__
