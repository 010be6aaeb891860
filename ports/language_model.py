"""The language models a chat session talks to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from uuid import UUID

import attrs

from conversation_service.domain.context import PromptMessage
from conversation_service.domain.errors import DomainError
from conversation_service.domain.model import GenerationParams, Usage


@attrs.frozen(kw_only=True)
class ModelInfo:
    """What a client sees of a model: enough to pick a model_id."""

    id: UUID
    name: str
    provider: str
    context_window: int = 8192  # tokens the model reads, prompt and reply together
    max_output_tokens: int = 1024  # tokens it writes at most in one reply
    scope: str = "global"  # "global": every organisation's; "org": one organisation's own


@attrs.frozen(kw_only=True)
class ModelResult:
    """How a generation ended: "stop", "length", ..., and usage when the provider reported it."""

    finish_reason: str
    usage: Usage | None = None


class ModelFailure(DomainError):
    """The model could not produce (the rest of) a reply; `code` says why.

    Codes: upstream_unavailable, upstream_rate_limited, upstream_error, upstream_timeout,
    upstream_bad_response, model_misconfigured.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Emit = Callable[[str], Awaitable[None]]

DEFAULT_PARAMS = GenerationParams()  # every sampling setting left to the model (frozen: shareable)


class LanguageModel(Protocol):
    """One configured model. `generate` streams text through `emit`, chunk by chunk.

    It returns when the reply is complete and raises ModelFailure when it cannot finish.
    Cancellation (the caller's cancel scope) must close any upstream request promptly.
    """

    async def generate(
        self,
        prompt: Sequence[PromptMessage],
        emit: Emit,
        params: GenerationParams = DEFAULT_PARAMS,
    ) -> ModelResult: ...


class ModelCatalog(Protocol):
    """The models an organisation may use."""

    def models_for(self, org_id: UUID) -> Sequence[ModelInfo]: ...

    def get(self, org_id: UUID, model_id: UUID) -> ModelInfo:
        """The model, or domain.errors.ModelNotFound."""
        ...

    def language_model(self, model_id: UUID) -> LanguageModel:
        """The runnable model for an id that `get` returned."""
        ...
