"""The model registry file: which models the service offers to every organisation, in TOML.

Every entry is checked before the service starts (see registry_entry); a mistake is a
RegistryError naming the file, the entry and the field.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs

from conversation_service.adapters.llm.echo import ECHO_MODEL_ID
from conversation_service.adapters.llm.registry_entry import (
    PROVIDERS,
    RegisteredModel,
    RegistryError,
    is_number,
    parse_model_entry,
    refuse_unknown,
)

__all__ = [
    "BUNDLED",
    "DEFAULT_ECHO_DELAY",
    "PROVIDERS",
    "RegisteredModel",
    "Registry",
    "RegistryError",
    "load_registry",
    "parse_registry",
]

DEFAULT_ECHO_DELAY = 0.03  # seconds between words when the file has no [echo] table
BUNDLED = "adapters/llm/models.toml (bundled)"


@attrs.frozen(kw_only=True)
class Registry:
    """A validated registry file."""

    source: str
    echo_delay: float  # seconds
    models: tuple[RegisteredModel, ...]
    title_model_id: UUID | None = None  # [titles] model_id: the model that titles conversations


def load_registry(path: Path | None = None) -> Registry:
    """The registry at `path`, or the bundled adapters/llm/models.toml when None."""
    if path is None:
        bundled = resources.files("conversation_service.adapters.llm").joinpath("models.toml")
        return parse_registry(bundled.read_text(encoding="utf-8"), source=BUNDLED)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RegistryError(f"{path}: cannot read the model registry: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise RegistryError(f"{path}: the model registry is not UTF-8 text") from e
    return parse_registry(text, source=str(path))


def parse_registry(text: str, *, source: str) -> Registry:
    """The registry in TOML `text`; `source` names it in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"{source}: not valid TOML: {e}") from e
    refuse_unknown(document, ("echo", "models", "titles"), source)
    echo_delay = _echo_delay(document.get("echo", {}), f"{source}: [echo]")
    entries = document.get("models", [])
    if not isinstance(entries, list):
        raise RegistryError(f"{source}: 'models' must be an array of tables: [[models]]")
    models: list[RegisteredModel] = []
    for index, entry in enumerate(entries):
        where = f"{source}: models[{index}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: must be a table: [[models]]")
        if isinstance(entry.get("name"), str):
            where += f" ({entry['name']!r})"
        model = parse_model_entry(entry, where)
        _refuse_repeats(model, models, where)
        models.append(model)
    title_model_id = _title_model(document.get("titles", {}), models, f"{source}: [titles]")
    return Registry(
        source=source, echo_delay=echo_delay, models=tuple(models), title_model_id=title_model_id
    )


def _title_model(table: Any, models: list[RegisteredModel], where: str) -> UUID | None:
    """[titles] model_id: one of the registry's models (or echo), which writes the titles of
    conversations created without one. Absent: titles are the first words of the first
    message."""
    if not isinstance(table, dict):
        raise RegistryError(f"{where}: must be a table")
    refuse_unknown(table, ("model_id",), where)
    raw = table.get("model_id")
    if raw is None:
        return None
    try:
        model_id = UUID(raw) if isinstance(raw, str) else None
    except ValueError:
        model_id = None
    if model_id is None:
        raise RegistryError(f"{where}: field 'model_id': not a UUID: {raw!r}")
    if model_id != ECHO_MODEL_ID and all(model.id != model_id for model in models):
        raise RegistryError(
            f"{where}: field 'model_id': {model_id} is not the id of a model of this registry"
        )
    return model_id


def _echo_delay(table: Any, where: str) -> float:
    if not isinstance(table, dict):
        raise RegistryError(f"{where}: must be a table")
    refuse_unknown(table, ("delay_ms",), where)
    delay_ms = table.get("delay_ms", DEFAULT_ECHO_DELAY * 1000)
    if not is_number(delay_ms) or not 0 <= delay_ms < math.inf:
        raise RegistryError(f"{where}: field 'delay_ms': must be a number >= 0")
    return float(delay_ms) / 1000


def _refuse_repeats(model: RegisteredModel, earlier: list[RegisteredModel], where: str) -> None:
    for index, other in enumerate(earlier):
        if other.id == model.id:
            raise RegistryError(
                f"{where}: field 'id': {model.id} is already used by models[{index}]"
            )
        if other.name == model.name:
            raise RegistryError(f"{where}: field 'name': already used by models[{index}]")
