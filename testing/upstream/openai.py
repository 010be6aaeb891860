"""OpenAI's streamed Chat Completions, spoken by the raw server of `server.py`: stock
handlers (a reply, an error, several in turn) and `ScriptedUpstream`, which plays the
scripts of `conversation_service.testing.scripted` for the real provider path.

A script's failures, over HTTP, as the service's provider adapter reads them:

| script                                 | sent                           | code (ModelFailure)   |
|----------------------------------------|--------------------------------|-----------------------|
| fail_after=0, upstream_rate_limited    | HTTP 429 (Retry-After)         | upstream_rate_limited |
| fail_after=0, upstream_unavailable     | HTTP 503, overloaded_error     | upstream_unavailable  |
| fail_after=0, upstream_error           | HTTP 500                       | upstream_error        |
| fail_after=n, upstream_bad_response    | `data:` that is not JSON       | upstream_bad_response |
| fail_after=n, upstream_timeout; hang   | nothing more (silence)         | upstream_timeout      |
| fail_after=n>0, upstream_unavailable   | the connection closes mid-body | upstream_bad_response |
| fail_after=n>0, other codes; crash     | an error chunk (as vLLM sends) | upstream_error        |

The 429, 503 and 500 are retried by the provider before the first token: queue a script
per attempt (`scripts`), or one `by_text` for all of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import trio

from conversation_service.testing.scripted import Script, ScriptBook
from conversation_service.testing.upstream.server import (
    Exchange,
    FakeOpenAIServer,
    Handler,
    start_fake_openai,
)

# The id and name of the model `registry_file` registers (README's OpenAI example id).
UPSTREAM_MODEL_ID = UUID("457d4f38-e3c0-43eb-b519-a867f9f5325a")
UPSTREAM_MODEL_NAME = "gpt-test"


def chunk(
    content: str | None = None, *, finish_reason: str | None = None, role: str | None = None
) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The last chunk OpenAI sends with stream_options.include_usage: no choices, usage."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def streaming_reply(
    pieces: Sequence[str],
    *,
    finish_reason: str = "stop",
    usage: tuple[int, int] | None = None,
) -> Handler:
    """A handler streaming `pieces` as OpenAI does: role, contents, finish, [usage], [DONE]."""

    async def handler(exchange: Exchange) -> None:
        await exchange.send_head()
        await exchange.send_event(chunk(role="assistant", content=""))
        for piece in pieces:
            await exchange.send_event(chunk(piece))
        await exchange.send_event(chunk(finish_reason=finish_reason))
        if usage is not None:
            await exchange.send_event(usage_chunk(*usage))
        await exchange.send_event("[DONE]")
        await exchange.end_body()

    return handler


def in_turn(*handlers: Handler) -> Handler:
    """A handler answering the n-th request with the n-th handler, and the rest with the last."""

    served = 0

    async def handler(exchange: Exchange) -> None:
        nonlocal served
        served += 1
        await handlers[min(served, len(handlers)) - 1](exchange)

    return handler


def error_reply(
    status: int, message: str | None = None, *, headers: dict[str, str] | None = None
) -> Handler:
    """A handler answering with `status` and, given a message, OpenAI's error body."""

    async def handler(exchange: Exchange) -> None:
        body: Any = {}
        if message is not None:
            body = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        await exchange.send_json(status, body, headers=headers)

    return handler


# Before the first token: the status (and the error's type) each failure is answered with.
_BEFORE_FIRST_TOKEN = {
    "upstream_rate_limited": (429, "rate_limit_error"),
    "upstream_unavailable": (503, "overloaded_error"),
    "upstream_error": (500, "server_error"),
}


async def play(exchange: Exchange, script: Script) -> None:
    """Answer one request as `script` says (see the table above)."""
    if script.fail_after == 0 and script.failure in _BEFORE_FIRST_TOKEN:
        status, kind = _BEFORE_FIRST_TOKEN[script.failure]
        headers = {}
        if script.retry_after is not None:
            headers["Retry-After"] = f"{script.retry_after:g}"
        error = {"message": f"scripted {script.failure}", "type": kind}
        await exchange.send_json(status, {"error": error}, headers=headers)
        return
    await exchange.send_head()
    await exchange.send_event(chunk(role="assistant", content=""))
    cuts = [n for n in (script.fail_after, script.crash_after) if n is not None]
    for piece in script.chunks[: min(cuts, default=None)]:
        await trio.sleep(script.delay)
        await exchange.send_event(chunk(piece))
    if cuts:
        await _break_off(exchange, script)
    elif script.hang:
        await exchange.wait_closed_by_client()
    else:
        await exchange.send_event(chunk(finish_reason=script.finish_reason))
        if script.usage is not None:
            usage = script.usage
            await exchange.send_event(usage_chunk(usage.prompt_tokens, usage.completion_tokens))
        await exchange.send_event("[DONE]")
        await exchange.end_body()


async def _break_off(exchange: Exchange, script: Script) -> None:
    """The failure after some chunks (or before any, for what no status says)."""
    failure = "upstream_error" if script.crash_after is not None else script.failure
    if failure == "upstream_bad_response":
        await exchange.send('data: {"choices": [{"delta": \n\n')
    elif failure == "upstream_timeout":
        await exchange.wait_closed_by_client()
    elif failure == "upstream_unavailable":
        await exchange.close()  # the body ends unfinished
    else:
        await exchange.send_event({"error": {"message": f"scripted {failure}"}})


class ScriptedUpstream(ScriptBook):
    """An OpenAI-compatible server on 127.0.0.1 playing scripts; the default script replies
    "Hello, world" at once. Start it with `start_scripted_upstream(nursery)`."""

    def __init__(self) -> None:
        super().__init__(Script(delay=0.0))
        self.server: FakeOpenAIServer | None = None

    @property
    def base_url(self) -> str:
        """The API root to register the model at (ends in /v1)."""
        assert self.server is not None, "not started"
        return self.server.base_url

    @property
    def requests_seen(self) -> int:
        return 0 if self.server is None else len(self.server.exchanges)

    async def handle(self, exchange: Exchange) -> None:
        try:
            messages = exchange.request.json().get("messages") or []
            last = messages[-1].get("content") if messages else None
        except (ValueError, AttributeError):
            last = None
        await play(exchange, self.script_for(last if isinstance(last, str) else None))


async def start_scripted_upstream(nursery: trio.Nursery) -> ScriptedUpstream:
    """A ScriptedUpstream serving until `nursery` is cancelled."""
    upstream = ScriptedUpstream()
    upstream.server = await start_fake_openai(nursery, upstream.handle, keep_alive=True)
    return upstream


def registry_file(
    folder: Path,
    base_url: str,
    *,
    model_id: UUID = UPSTREAM_MODEL_ID,
    name: str = UPSTREAM_MODEL_NAME,
    **settings: float | int | str,
) -> Path:
    """A model registry (`--models`) offering one OpenAI-compatible model at `base_url`;
    `settings` are further keys of its entry (first_token_timeout=2, max_retries=0, ...)."""
    lines = [
        "[[models]]",
        f'id = "{model_id}"',
        f"name = {json.dumps(name)}",
        'provider = "openai"',
        f"base_url = {json.dumps(base_url)}",
        f"upstream_model = {json.dumps(name)}",
        *(f"{key} = {json.dumps(value)}" for key, value in settings.items()),
    ]
    registry = folder / "models.toml"
    registry.write_text("\n".join(lines) + "\n")
    return registry
