"""The catalog of models: the built-in echo model, the registry's, and organisations' own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from uuid import UUID

from conversation_service.adapters.llm.anthropic_messages import (
    DEFAULT_MAX_TOKENS,
    AnthropicMessagesModel,
)
from conversation_service.adapters.llm.echo import ECHO_MODEL_ID, EchoModel
from conversation_service.adapters.llm.http1 import Gathering, UpstreamClient
from conversation_service.adapters.llm.openai_chat import OpenAIChatModel
from conversation_service.adapters.llm.provider_model import ModelSettings
from conversation_service.adapters.llm.registry_entry import RegisteredModel
from conversation_service.adapters.llm.registry_file import Registry, RegistryError, load_registry
from conversation_service.adapters.llm.upstream import Guard
from conversation_service.adapters.llm.url_guard import (
    UnsafeModelURL,
    check_public_url,
    check_url_form,
)
from conversation_service.domain.errors import Conflict, InvalidField, ModelNotFound
from conversation_service.ports.language_model import LanguageModel, ModelInfo

__all__ = [
    "ECHO_MODEL_ID",
    "Registry",
    "RegistryCatalog",
    "RegistryError",
    "build_model",
    "load_registry",
    "open_catalog",
]

ECHO_INFO = ModelInfo(
    id=ECHO_MODEL_ID,
    name="echo",
    provider="echo",
    context_window=1_000_000,  # it reads only the last user message: no real limit
    max_output_tokens=100_000,
)


class RegistryCatalog:
    """ModelCatalog over echo and the registry's models, which every organisation sees, and
    the models each organisation registers for itself at runtime, which only it sees.

    The provider models share `client`, which the caller owns (see `open_catalog`). An
    organisation's model is checked against server-side request forgery (url_guard) when it
    is added and before every request, unless the catalog was made with `allow_private`.
    """

    def __init__(
        self,
        registry: Registry,
        client: UpstreamClient,
        *,
        echo_delay: float | None = None,
        allow_private: bool = False,
    ) -> None:
        delay = registry.echo_delay if echo_delay is None else echo_delay
        self._client = client
        self._allow_private = allow_private
        self._global = {ECHO_MODEL_ID: ECHO_INFO}
        self._by_org: dict[UUID, dict[UUID, ModelInfo]] = {}
        self._models: dict[UUID, LanguageModel] = {ECHO_MODEL_ID: EchoModel(delay)}
        for entry in registry.models:
            self._global[entry.id] = _info(entry, scope="global")
            self._models[entry.id] = build_model(client, entry)

    def models_for(self, org_id: UUID) -> Sequence[ModelInfo]:
        return (*self._global.values(), *self._by_org.get(org_id, {}).values())

    def get(self, org_id: UUID, model_id: UUID) -> ModelInfo:
        info = self._global.get(model_id) or self._by_org.get(org_id, {}).get(model_id)
        if info is None:
            raise ModelNotFound(model_id)
        return info

    def language_model(self, model_id: UUID) -> LanguageModel:
        try:
            return self._models[model_id]
        except KeyError:
            raise ModelNotFound(model_id) from None

    def add_org_model(self, org_id: UUID, model: RegisteredModel, api_key: str | None) -> ModelInfo:
        """Offer `model` to organisation `org_id` alone, calling it with `api_key`.

        InvalidField for a URL that may not be requested or a key read from the service's
        environment; Conflict for an id already in use or a name the organisation already sees.
        """
        if model.api_key_env is not None:  # it would hand the service's own key to the org
            raise InvalidField(
                "api_key_env", "an organisation's model takes its key directly, not by name"
            )
        try:
            check_url_form(model.base_url, allow_private=self._allow_private)
        except UnsafeModelURL as e:
            raise InvalidField("base_url", str(e)) from None
        if model.id in self._models:  # ids are global: `language_model` takes no org
            raise Conflict(f"model id {model.id} is already in use")
        if any(info.name == model.name for info in self.models_for(org_id)):
            raise Conflict(f"a model named {model.name!r} already exists")
        guard = None if self._allow_private else check_public_url
        self._models[model.id] = build_model(self._client, model, api_key=api_key, guard=guard)
        info = _info(model, scope="org")
        self._by_org.setdefault(org_id, {})[model.id] = info
        return info

    def org_model_ids(self) -> set[tuple[UUID, UUID]]:
        """(org_id, model_id) of every organisation's own model on offer."""
        return {
            (org_id, model_id) for org_id, models in self._by_org.items() for model_id in models
        }

    def remove_org_model(self, org_id: UUID, model_id: UUID) -> None:
        """Withdraw an organisation's model; ModelNotFound unless that organisation has it.

        A reply being generated with it runs to its end.
        """
        models = self._by_org.get(org_id, {})
        if model_id not in models:
            raise ModelNotFound(model_id)
        del models[model_id]
        del self._models[model_id]


def build_model(
    client: UpstreamClient,
    entry: RegisteredModel,
    *,
    api_key: str | None = None,
    guard: Guard | None = None,
) -> LanguageModel:
    """The LanguageModel serving `entry`, by its provider's API."""
    settings: ModelSettings = {
        "upstream_model": entry.upstream_model,
        "api_key_env": entry.api_key_env,
        "api_key": api_key,
        "timeouts": entry.timeouts,
        "retries": entry.retries,
        "guard": guard,
    }
    if entry.provider == "anthropic":
        max_tokens = entry.default_max_tokens or DEFAULT_MAX_TOKENS
        return AnthropicMessagesModel(
            client, base_url=entry.base_url, default_max_tokens=max_tokens, **settings
        )
    return OpenAIChatModel(client, base_url=entry.base_url, **settings)


def _info(entry: RegisteredModel, *, scope: str) -> ModelInfo:
    return ModelInfo(
        id=entry.id,
        name=entry.name,
        provider=entry.provider,
        context_window=entry.context_window,
        max_output_tokens=entry.max_output_tokens,
        scope=scope,
    )


@asynccontextmanager
async def open_catalog(
    registry: Registry,
    *,
    echo_delay: float | None = None,
    allow_private: bool = False,
    gathering: Gathering = Gathering(),  # noqa: B008 - frozen
) -> AsyncIterator[RegistryCatalog]:
    """A RegistryCatalog and the HTTP client its models share, closed on exit.

    `echo_delay` (seconds) overrides the registry's [echo] delay_ms. `allow_private` lets
    organisations' models use private and loopback addresses (a closed deployment).
    `gathering`: how a busy process lets a stream's pieces gather (see http1.Gathering).
    """
    # Per-request timeouts come from each model; the service's stream limits bound how many
    # generations, hence connections, run at once. Redirects are never followed: the target
    # of one has passed no URL check.
    async with UpstreamClient(max_idle=20, gathering=gathering) as client:
        yield RegistryCatalog(registry, client, echo_delay=echo_delay, allow_private=allow_private)
