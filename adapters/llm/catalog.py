"""The catalog of models: the built-in echo model and the registry file's models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from uuid import UUID

import httpx

from adapters.llm.echo import ECHO_MODEL_ID, EchoModel
from adapters.llm.openai_chat import OpenAIChatModel
from adapters.llm.registry_file import Registry, RegistryError, load_registry
from domain.errors import ModelNotFound
from ports.language_model import LanguageModel, ModelInfo

__all__ = [
    "ECHO_MODEL_ID",
    "Registry",
    "RegistryCatalog",
    "RegistryError",
    "load_registry",
    "open_catalog",
]


class RegistryCatalog:
    """ModelCatalog over the echo model and a registry's models; every organisation sees all.

    The OpenAI-compatible models share `client`, which the caller owns (see `open_catalog`).
    """

    def __init__(
        self, registry: Registry, client: httpx.AsyncClient, *, echo_delay: float | None = None
    ) -> None:
        delay = registry.echo_delay if echo_delay is None else echo_delay
        self._infos = {ECHO_MODEL_ID: ModelInfo(id=ECHO_MODEL_ID, name="echo", provider="echo")}
        self._models: dict[UUID, LanguageModel] = {ECHO_MODEL_ID: EchoModel(delay)}
        for entry in registry.models:
            self._infos[entry.id] = ModelInfo(id=entry.id, name=entry.name, provider=entry.provider)
            self._models[entry.id] = OpenAIChatModel(
                client,
                base_url=entry.base_url,
                upstream_model=entry.upstream_model,
                api_key_env=entry.api_key_env,
                timeouts=entry.timeouts,
            )

    def models_for(self, org_id: UUID) -> Sequence[ModelInfo]:
        return tuple(self._infos.values())

    def get(self, org_id: UUID, model_id: UUID) -> ModelInfo:
        try:
            return self._infos[model_id]
        except KeyError:
            raise ModelNotFound(model_id) from None

    def language_model(self, model_id: UUID) -> LanguageModel:
        try:
            return self._models[model_id]
        except KeyError:
            raise ModelNotFound(model_id) from None


@asynccontextmanager
async def open_catalog(
    registry: Registry, *, echo_delay: float | None = None
) -> AsyncIterator[RegistryCatalog]:
    """A RegistryCatalog and the HTTP client its models share, closed on exit.

    `echo_delay` (seconds) overrides the registry's [echo] delay_ms.
    """
    # Per-request timeouts come from each model; the service's stream limits bound how many
    # generations, hence connections, run at once.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:
        yield RegistryCatalog(registry, client, echo_delay=echo_delay)
