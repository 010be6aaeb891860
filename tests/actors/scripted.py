"""A language model whose replies the test scripts, and a catalog serving it.

For actor and service tests only: provider tests run real HTTP servers instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID, uuid4

import attrs
import trio

from conversation_service.domain.context import PromptMessage
from conversation_service.domain.errors import ModelNotFound
from conversation_service.domain.model import GenerationParams, Usage
from conversation_service.ports.language_model import (
    DEFAULT_PARAMS,
    Emit,
    ModelFailure,
    ModelInfo,
    ModelResult,
)


@attrs.define
class Script:
    chunks: Sequence[str] = ("Hello", ", ", "world")
    delay: float = 1.0
    fail_after: int | None = None  # raise ModelFailure after this many chunks
    hang: bool = False  # after the chunks, wait forever
    crash_after: int | None = None  # raise an unexpected error (a bug) after this many chunks


class ScriptedModel:
    def __init__(self) -> None:
        self.scripts: list[Script] = []
        self.prompts: list[tuple[PromptMessage, ...]] = []
        self.cancelled = 0
        self.params: list[GenerationParams] = []
        self.default = Script()
        self.by_text: dict[str, Script] = {}  # the script for a given last user message

    async def generate(
        self,
        prompt: Sequence[PromptMessage],
        emit: Emit,
        params: GenerationParams = DEFAULT_PARAMS,
    ) -> ModelResult:
        self.prompts.append(tuple(prompt))
        self.params.append(params)
        script = self.by_text.get(prompt[-1].content) if prompt else None
        if script is None:
            script = self.scripts.pop(0) if self.scripts else self.default
        try:
            for index, chunk in enumerate(script.chunks):
                if script.fail_after is not None and index >= script.fail_after:
                    raise ModelFailure("upstream_error", "the model broke")
                if script.crash_after is not None and index >= script.crash_after:
                    raise ZeroDivisionError("a bug deep inside a provider")
                await trio.sleep(script.delay)
                await emit(chunk)
            if script.hang:
                await trio.sleep_forever()
        except trio.Cancelled:
            self.cancelled += 1
            raise
        return ModelResult(
            finish_reason="stop", usage=Usage(prompt_tokens=3, completion_tokens=5, estimated=False)
        )


class ScriptedCatalog:
    """One scripted model to start with (`info`, `model`); more can be added and removed."""

    def __init__(self) -> None:
        self.model = ScriptedModel()
        self.info = ModelInfo(
            id=uuid4(), name="scripted", provider="test", context_window=200, max_output_tokens=50
        )
        self._models: dict[UUID, tuple[ModelInfo, ScriptedModel]] = {
            self.info.id: (self.info, self.model)
        }

    def add(self, name: str) -> tuple[ModelInfo, ScriptedModel]:
        info = attrs.evolve(self.info, id=uuid4(), name=name)
        self._models[info.id] = (info, ScriptedModel())
        return self._models[info.id]

    def remove(self, model_id: UUID) -> None:
        del self._models[model_id]

    def models_for(self, org_id: UUID) -> Sequence[ModelInfo]:
        return [info for info, _ in self._models.values()]

    def get(self, org_id: UUID, model_id: UUID) -> ModelInfo:
        if model_id not in self._models:
            raise ModelNotFound(model_id)
        return self._models[model_id][0]

    def language_model(self, model_id: UUID) -> ScriptedModel:
        if model_id not in self._models:
            raise ModelNotFound(model_id)
        return self._models[model_id][1]
