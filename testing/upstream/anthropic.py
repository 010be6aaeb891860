"""Anthropic's Messages API, spoken by the raw server of `server.py`: handlers for tests of
the `anthropic` provider path.

The same Exchange machinery as `openai.py`, speaking Anthropic's protocol: named SSE events
(message_start, content_block_*, message_delta, message_stop, ping, error) and its error bodies
`{"type": "error", "error": {"type": ..., "message": ...}}`. Models are pointed at
`server.root_url` (the model adds /v1/messages).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conversation_service.testing.upstream.server import Exchange, Handler


async def send(exchange: Exchange, payload: dict[str, Any]) -> None:
    """One event named, as Anthropic names them, after its payload's type."""
    await exchange.send_event(payload, event=payload["type"])


def message_start(input_tokens: int = 10) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-test",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }


BLOCK_START = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
BLOCK_STOP = {"type": "content_block_stop", "index": 0}
MESSAGE_STOP = {"type": "message_stop"}
PING = {"type": "ping"}


def text_delta(text: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }


def message_delta(stop_reason: str = "end_turn", output_tokens: int = 5) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error, as an HTTP body and as the data of an `event: error`."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


async def start_message(
    exchange: Exchange, input_tokens: int = 10, *, chunked: bool = True
) -> None:
    """The head of a streamed reply, up to the first text block opening."""
    await exchange.send_head(chunked=chunked)
    await send(exchange, message_start(input_tokens))
    await send(exchange, BLOCK_START)


def messages_reply(
    pieces: Sequence[str],
    *,
    stop_reason: str = "end_turn",
    usage: tuple[int, int] = (10, 5),
    pings: bool = False,
) -> Handler:
    """A handler streaming `pieces` as Anthropic does, with a ping between pieces if asked."""

    async def handler(exchange: Exchange) -> None:
        await start_message(exchange, usage[0])
        for piece in pieces:
            if pings:
                await send(exchange, PING)
            await send(exchange, text_delta(piece))
        await send(exchange, BLOCK_STOP)
        await send(exchange, message_delta(stop_reason, usage[1]))
        await send(exchange, MESSAGE_STOP)
        await exchange.end_body()

    return handler


def messages_error(
    status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None
) -> Handler:
    """A handler answering `status` with Anthropic's error body."""

    async def handler(exchange: Exchange) -> None:
        await exchange.send_json(status, error_body(error_type, message), headers=headers)

    return handler
