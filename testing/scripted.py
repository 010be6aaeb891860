"""A language model whose replies the test scripts, and a catalog serving it.

A `Script` says what one reply does: its chunks, the pause before each, and how it ends
(finish reason and usage, or one of the failures a real upstream has). `ScriptedModel` is a
`LanguageModel` that plays scripts in process; `conversation_service.testing.upstream`
plays the same scripts as an OpenAI-compatible HTTP server, for the real provider path.

Which script a reply plays: the one `by_text` names for the prompt's last message, else the
next of `scripts`, else `default`.
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

USAGE = Usage(prompt_tokens=3, completion_tokens=5, estimated=False)


@attrs.frozen(kw_only=True)
class Script:
    """One reply: `chunks`, each after `delay` seconds, then `finish_reason` and `usage`.

    Failures, as the ModelFailure code they end with:
    - `fail_after=n`: ModelFailure(`failure`) after n chunks (0: before the first token);
      `failure` is upstream_error, upstream_rate_limited, upstream_unavailable,
      upstream_bad_response (a malformed stream) or upstream_timeout;
    - `hang`: after the chunks, silence until cancelled;
    - `crash_after=n`: an unexpected error (a bug in a provider) after n chunks.
    """

    chunks: Sequence[str] = ("Hello", ", ", "world")
    delay: float = 1.0
    fail_after: int | None = None
    failure: str = "upstream_error"
    retry_after: float | None = None  # over HTTP: the Retry-After of a 429 or 503
    hang: bool = False
    crash_after: int | None = None
    finish_reason: str = "stop"
    usage: Usage | None = USAGE

    @classmethod
    def reply(cls, text: str, *, chunk_chars: int = 5, delay: float = 0.0) -> Script:
        """`text` in chunks of `chunk_chars` characters."""
        chunks = tuple(text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars))
        return cls(chunks=chunks, delay=delay)

    @classmethod
    def error_before_first_token(cls, code: str = "upstream_error") -> Script:
        return cls(chunks=(), fail_after=0, failure=code, delay=0.0)

    @classmethod
    def error_after(
        cls, chunks: int, code: str = "upstream_error", *, delay: float = 0.0
    ) -> Script:
        """`chunks` chunks of text, then a failure."""
        return cls(
            chunks=tuple(f"part {n} " for n in range(chunks + 1)),
            fail_after=chunks,
            failure=code,
            delay=delay,
        )

    @classmethod
    def rate_limited(cls, retry_after: float | None = None) -> Script:
        return cls(
            chunks=(),
            fail_after=0,
            failure="upstream_rate_limited",
            retry_after=retry_after,
            delay=0.0,
        )

    @classmethod
    def silence(cls, chunks: Sequence[str] = ()) -> Script:
        """`chunks`, then nothing more, ever (a timeout or a cancel ends it)."""
        return cls(chunks=tuple(chunks), hang=True, delay=0.0)

    @classmethod
    def malformed(cls, after: int = 0) -> Script:
        """`after` chunks, then a stream that cannot be read."""
        return cls.error_after(after, "upstream_bad_response")

    @property
    def text(self) -> str:
        """The text a client sees of this reply."""
        shown = self.chunks
        for cut in (self.fail_after, self.crash_after):
            if cut is not None:
                shown = shown[:cut]
        return "".join(shown)


class ScriptBook:
    """The scripts to play: by the prompt's last message, queued, or the default."""

    def __init__(self, default: Script) -> None:
        self.scripts: list[Script] = []
        self.default = default
        self.by_text: dict[str, Script] = {}  # the script for a given last user message

    def script_for(self, last_text: str | None) -> Script:
        script = self.by_text.get(last_text) if last_text is not None else None
        if script is None:
            script = self.scripts.pop(0) if self.scripts else self.default
        return script


class ScriptedModel(ScriptBook):
    """A LanguageModel that plays scripts in process; it records what it was asked.

    The default script (three chunks a second apart) suits trio's autojump clock.
    """

    def __init__(self) -> None:
        super().__init__(Script())
        self.prompts: list[tuple[PromptMessage, ...]] = []
        self.cancelled = 0
        self.params: list[GenerationParams] = []

    async def generate(
        self,
        prompt: Sequence[PromptMessage],
        emit: Emit,
        params: GenerationParams = DEFAULT_PARAMS,
    ) -> ModelResult:
        self.prompts.append(tuple(prompt))
        self.params.append(params)
        script = self.script_for(prompt[-1].content if prompt else None)
        try:
            for index, chunk in enumerate(script.chunks):
                if script.fail_after is not None and index >= script.fail_after:
                    raise ModelFailure(script.failure, "the model broke")
                if script.crash_after is not None and index >= script.crash_after:
                    raise ZeroDivisionError("a bug deep inside a provider")
                await trio.sleep(script.delay)
                await emit(chunk)
            if script.fail_after is not None and script.fail_after >= len(script.chunks):
                raise ModelFailure(script.failure, "the model broke")
            if script.hang:
                await trio.sleep_forever()
        except trio.Cancelled:
            self.cancelled += 1
            raise
        return ModelResult(finish_reason=script.finish_reason, usage=script.usage)


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
