"""What every model behind a provider's HTTP API shares: its settings, its key, its generate.

A provider subclass says how to ask (`request`) and how to read the answer (`reply_type`);
streaming, timeouts, retries and failures are `upstream.stream_reply`'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import ClassVar, Required, TypedDict, Unpack

from conversation_service.adapters.llm.http1 import UpstreamClient
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import (
    Guard,
    Reply,
    StreamRequest,
    Timeouts,
    stream_reply,
)
from conversation_service.domain.context import PromptMessage
from conversation_service.domain.model import GenerationParams
from conversation_service.ports.language_model import (
    DEFAULT_PARAMS,
    Emit,
    ModelFailure,
    ModelResult,
)


class ModelSettings(TypedDict, total=False):
    """What every provider model takes besides its HTTP client and base URL."""

    upstream_model: Required[str]  # the provider's own name for the model
    api_key_env: str | None  # the environment variable holding the key, read at each generation
    api_key: str | None  # or the key itself, for a model an organisation registers at runtime
    timeouts: Timeouts | None
    retries: Retries | None
    guard: Guard | None  # checks the URL before every attempt (see url_guard)


class ProviderModel:
    """A LanguageModel served over HTTP by a provider. `client` is shared, owned by the caller.

    The key is never logged nor shown in a failure; without one, no key header is sent.
    """

    reply_type: ClassVar[type[Reply]] = Reply

    def __init__(
        self, client: UpstreamClient, *, base_url: str, **settings: Unpack[ModelSettings]
    ) -> None:
        api_key, api_key_env = settings.get("api_key"), settings.get("api_key_env")
        if api_key is not None and api_key_env is not None:
            raise ValueError("a model takes api_key or api_key_env, not both")
        if api_key == "":
            raise ValueError("api_key is empty; give None for a model that needs no key")
        self._client = client
        self.base_url = base_url.rstrip("/")
        self.upstream_model = settings["upstream_model"]
        self._key, self._key_env = api_key, api_key_env
        self.timeouts = settings.get("timeouts") or Timeouts()
        self.retries = settings.get("retries") or Retries()
        self.guard = settings.get("guard")

    async def generate(
        self,
        prompt: Sequence[PromptMessage],
        emit: Emit,
        params: GenerationParams = DEFAULT_PARAMS,
    ) -> ModelResult:
        api_key = self._api_key()
        reply = await stream_reply(
            self._client,
            self.request(prompt, params, api_key),
            lambda: self.reply_type(secret=api_key),
            emit,
            timeouts=self.timeouts,
            retries=self.retries,
            guard=self.guard,
        )
        return reply.result(prompt)

    def request(
        self, prompt: Sequence[PromptMessage], params: GenerationParams, api_key: str | None
    ) -> StreamRequest:
        """The provider's streaming request for `prompt`."""
        raise NotImplementedError

    def _api_key(self) -> str | None:
        if self._key_env is None:
            return self._key
        key = os.environ.get(self._key_env)
        if not key:
            raise ModelFailure(
                "model_misconfigured",
                f"the model needs an API key but environment variable {self._key_env} is not set",
            )
        return key
