"""The model registry file: which OpenAI-compatible models the service offers, in TOML.

Every entry is checked before the service starts; a mistake is a RegistryError naming the
file, the entry and the field. API keys never live in the file, only the names of the
environment variables that hold them.
"""

from __future__ import annotations

import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import attrs

from adapters.llm.echo import ECHO_MODEL_ID
from adapters.llm.openai_chat import Timeouts

# Labels clients see; every one of them is served through the Chat Completions adapter.
PROVIDERS = frozenset({"openai", "vllm", "ollama", "llamacpp", "litellm", "openai-compatible"})
DEFAULT_ECHO_DELAY = 0.03  # seconds between words when the file has no [echo] table
BUNDLED = "adapters/llm/models.toml (bundled)"

_REQUIRED = ("id", "name", "provider", "base_url", "upstream_model")
_TIMEOUTS = {
    "connect_timeout": "connect",
    "first_token_timeout": "first_token",
    "idle_timeout": "idle",
    "total_timeout": "total",
}
_OPTIONAL = ("api_key_env", *_TIMEOUTS)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RegistryError(ValueError):
    """The model registry cannot be read or one of its entries is invalid."""


@attrs.frozen(kw_only=True)
class RegisteredModel:
    """One [[models]] entry: a model served by an OpenAI-compatible endpoint."""

    id: UUID
    name: str
    provider: str
    base_url: str
    upstream_model: str
    api_key_env: str | None
    timeouts: Timeouts


@attrs.frozen(kw_only=True)
class Registry:
    """A validated registry file."""

    source: str
    echo_delay: float  # seconds
    models: tuple[RegisteredModel, ...]


def load_registry(path: Path | None = None) -> Registry:
    """The registry at `path`, or the bundled adapters/llm/models.toml when None."""
    if path is None:
        bundled = resources.files("adapters.llm").joinpath("models.toml")
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
    _refuse_unknown(document, ("echo", "models"), source)
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
        models.append(_model(entry, where, models))
    return Registry(source=source, echo_delay=echo_delay, models=tuple(models))


def _echo_delay(table: Any, where: str) -> float:
    if not isinstance(table, dict):
        raise RegistryError(f"{where}: must be a table")
    _refuse_unknown(table, ("delay_ms",), where)
    delay_ms = table.get("delay_ms", DEFAULT_ECHO_DELAY * 1000)
    if not _is_number(delay_ms) or not 0 <= delay_ms < math.inf:
        raise RegistryError(f"{where}: field 'delay_ms': must be a number >= 0")
    return float(delay_ms) / 1000


def _model(entry: dict[str, Any], where: str, earlier: list[RegisteredModel]) -> RegisteredModel:
    if "api_key" in entry:  # before anything else: never echo a secret back
        raise RegistryError(
            f"{where}: field 'api_key': keys do not belong in the registry; put the key in an"
            " environment variable and give its name as api_key_env"
        )
    _refuse_unknown(entry, (*_REQUIRED, *_OPTIONAL), where)
    for field in _REQUIRED:
        if field not in entry:
            raise RegistryError(f"{where}: field {field!r}: missing")
        if field != "id" and not (isinstance(entry[field], str) and entry[field].strip()):
            raise RegistryError(f"{where}: field {field!r}: must be a non-empty string")

    model_id = _uuid(entry["id"], where)
    if model_id == ECHO_MODEL_ID:
        raise RegistryError(f"{where}: field 'id': {model_id} is the built-in echo model's id")
    for index, other in enumerate(earlier):
        if other.id == model_id:
            raise RegistryError(
                f"{where}: field 'id': {model_id} is already used by models[{index}]"
            )
        if other.name == entry["name"]:
            raise RegistryError(f"{where}: field 'name': already used by models[{index}]")
    if entry["name"] == "echo":
        raise RegistryError(f"{where}: field 'name': 'echo' is the built-in echo model's name")
    if entry["provider"] not in PROVIDERS:
        raise RegistryError(
            f"{where}: field 'provider': unknown provider {entry['provider']!r};"
            f" expected one of {', '.join(sorted(PROVIDERS))}"
        )
    return RegisteredModel(
        id=model_id,
        name=entry["name"],
        provider=entry["provider"],
        base_url=_base_url(entry["base_url"], where),
        upstream_model=entry["upstream_model"],
        api_key_env=_api_key_env(entry.get("api_key_env"), where),
        timeouts=_timeouts(entry, where),
    )


def _uuid(value: Any, where: str) -> UUID:
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise RegistryError(f"{where}: field 'id': not a UUID: {value!r}")


def _base_url(value: str, where: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RegistryError(
            f"{where}: field 'base_url': must be an http:// or https:// URL, not {value!r}"
        )
    return value.rstrip("/")


def _api_key_env(value: Any, where: str) -> str | None:
    if value is None:
        return None
    # The value is not quoted back: a key pasted here by mistake must not reach the logs.
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise RegistryError(
            f"{where}: field 'api_key_env': must be the NAME of an environment variable"
            " (letters, digits and '_'), not the key itself"
        )
    return value


def _timeouts(entry: dict[str, Any], where: str) -> Timeouts:
    given = {}
    for field, attribute in _TIMEOUTS.items():
        if field in entry:
            value = entry[field]
            if not _is_number(value) or not 0 < value < math.inf:
                raise RegistryError(f"{where}: field {field!r}: must be a number of seconds > 0")
            given[attribute] = float(value)
    return Timeouts(**given)


def _refuse_unknown(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            raise RegistryError(
                f"{where}: unknown field {key!r}; expected one of {', '.join(known)}"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
