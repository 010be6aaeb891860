"""The two provider APIs side by side, for the tests of what their models do alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from conversation_service.adapters.llm.anthropic_messages import AnthropicMessagesModel
from conversation_service.adapters.llm.http1 import UpstreamClient
from conversation_service.adapters.llm.openai_chat import OpenAIChatModel
from conversation_service.adapters.llm.provider_model import ProviderModel
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.testing.upstream import (
    Exchange,
    Handler,
    chunk,
    error_reply,
    streaming_reply,
)
from conversation_service.testing.upstream.anthropic import (
    messages_error,
    messages_reply,
    send,
    start_message,
    text_delta,
)

FAST = Timeouts(connect=1.0, first_token=0.5, idle=0.5, total=5.0)
QUICK = Retries(base=0.01, cap=0.02)  # the default 2 retries, with waits of 5 to 20 ms


@attrs.frozen
class Provider:
    """How to build a provider's model and script its server."""

    name: str
    model_type: type[ProviderModel]
    api_path: str  # added to the server's root for base_url
    reply: Callable[..., Handler]  # (pieces, *, usage=(prompt, completion))
    error: Callable[[int, str], Handler]  # (status, message): its error body
    start_text: Callable[[Exchange, bool], Awaitable[None]]  # (exchange, chunked): head, "Hel"
    key_header: str  # where the API key goes, and in what form
    key_form: str

    def model(self, client: UpstreamClient, root_url: str, **settings: Any) -> ProviderModel:
        settings = {"timeouts": FAST, "retries": QUICK, **settings}
        return self.model_type(
            client, base_url=root_url + self.api_path, upstream_model="test-model", **settings
        )

    async def first_text(self, exchange: Exchange) -> None:
        """A handler streaming "Hel", then hanging up."""
        await self.start_text(exchange, True)


async def _openai_text(exchange: Exchange, chunked: bool) -> None:
    await exchange.send_head(chunked=chunked)
    await exchange.send_event(chunk("Hel"))


async def _anthropic_text(exchange: Exchange, chunked: bool) -> None:
    await start_message(exchange, chunked=chunked)
    await send(exchange, text_delta("Hel"))


PROVIDERS = [
    Provider(
        name="openai",
        model_type=OpenAIChatModel,
        api_path="/v1",
        reply=streaming_reply,
        error=error_reply,
        start_text=_openai_text,
        key_header="authorization",
        key_form="Bearer {}",
    ),
    Provider(
        name="anthropic",
        model_type=AnthropicMessagesModel,
        api_path="",
        reply=messages_reply,
        error=lambda status, message: messages_error(status, "api_error", message),
        start_text=_anthropic_text,
        key_header="x-api-key",
        key_form="{}",
    ),
]
OPENAI = PROVIDERS[0]
