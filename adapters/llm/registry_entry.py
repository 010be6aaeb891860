"""One model entry, as the registry file (or an organisation) describes it, checked field by field.

A mistake is a RegistryError naming where the entry stands and the field. API keys never live
in an entry, only the names of the environment variables that hold them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import attrs

from conversation_service.adapters.llm.anthropic_messages import ANTHROPIC_API, DEFAULT_MAX_TOKENS
from conversation_service.adapters.llm.echo import ECHO_MODEL_ID
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts

# Labels clients see. "anthropic" is served by the Messages adapter, every other one by the
# Chat Completions adapter.
PROVIDERS = frozenset(
    {"anthropic", "openai", "vllm", "ollama", "llamacpp", "litellm", "openai-compatible"}
)
DEFAULT_BASE_URLS = {"anthropic": ANTHROPIC_API}  # a provider with one public endpoint
DEFAULT_CONTEXT_WINDOW = 8192  # tokens
DEFAULT_MAX_OUTPUT_TOKENS = 1024  # tokens

_REQUIRED = ("id", "name", "provider", "base_url", "upstream_model")
_TIMEOUTS = {f"{field.name}_timeout": field.name for field in attrs.fields(Timeouts)}
_LIMITS = ("context_window", "max_output_tokens", "default_max_tokens")
_RETRIES = ("max_retries", "max_retry_wait")
_OPTIONAL = ("api_key_env", *_TIMEOUTS, *_LIMITS, *_RETRIES)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RegistryError(ValueError):
    """The model registry cannot be read or one of its entries is invalid."""


@attrs.frozen(kw_only=True)
class RegisteredModel:
    """One model a provider serves, and how to reach it."""

    id: UUID
    name: str
    provider: str
    base_url: str
    upstream_model: str
    api_key_env: str | None = None
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    context_window: int = DEFAULT_CONTEXT_WINDOW  # tokens, prompt and reply together
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS  # tokens of one reply at most
    default_max_tokens: int | None = None  # anthropic only: max_tokens when a session sets none


def parse_model_entry(entry: Mapping[str, Any], where: str) -> RegisteredModel:
    """The model `entry` describes; `where` names it in errors ("models.toml: models[2]")."""
    if "api_key" in entry:  # before anything else: never echo a secret back
        raise RegistryError(
            f"{where}: field 'api_key': keys do not belong in the registry; put the key in an"
            " environment variable and give its name as api_key_env"
        )
    refuse_unknown(entry, (*_REQUIRED, *_OPTIONAL), where)
    provider = entry.get("provider")
    if isinstance(provider, str) and provider in DEFAULT_BASE_URLS:
        entry = {"base_url": DEFAULT_BASE_URLS[provider], **entry}
    for field in _REQUIRED:
        if entry.get(field) is None:
            raise RegistryError(f"{where}: field {field!r}: missing")
        if field != "id" and not (isinstance(entry[field], str) and entry[field].strip()):
            raise RegistryError(f"{where}: field {field!r}: must be a non-empty string")

    model_id = _uuid(entry["id"], where)
    if model_id == ECHO_MODEL_ID:
        raise RegistryError(f"{where}: field 'id': {model_id} is the built-in echo model's id")
    if entry["name"] == "echo":
        raise RegistryError(f"{where}: field 'name': 'echo' is the built-in echo model's name")
    if entry["provider"] not in PROVIDERS:
        raise RegistryError(
            f"{where}: field 'provider': unknown provider {entry['provider']!r};"
            f" expected one of {', '.join(sorted(PROVIDERS))}"
        )
    context_window, max_output_tokens, default_max_tokens = _limits(entry, where)
    return RegisteredModel(
        id=model_id,
        name=entry["name"],
        provider=entry["provider"],
        base_url=_base_url(entry["base_url"], where),
        upstream_model=entry["upstream_model"],
        api_key_env=_api_key_env(entry.get("api_key_env"), where),
        timeouts=_timeouts(entry, where),
        retries=_retries(entry, where),
        context_window=context_window,
        max_output_tokens=max_output_tokens,
        default_max_tokens=default_max_tokens,
    )


def refuse_unknown(table: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    """A RegistryError naming the first key of `table` that is not `known`."""
    for key in table:
        if key not in known:
            raise RegistryError(
                f"{where}: unknown field {key!r}; expected one of {', '.join(known)}"
            )


def is_number(value: Any) -> bool:
    """Whether a TOML value is an integer or a float (TOML's booleans are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


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


def _timeouts(entry: Mapping[str, Any], where: str) -> Timeouts:
    given = {}
    for field, attribute in _TIMEOUTS.items():
        if field in entry:
            value = entry[field]
            if not is_number(value) or not 0 < value < math.inf:
                raise RegistryError(f"{where}: field {field!r}: must be a number of seconds > 0")
            given[attribute] = float(value)
    return Timeouts(**given)


def _retries(entry: Mapping[str, Any], where: str) -> Retries:
    given: dict[str, Any] = {}
    if "max_retries" in entry:
        given["max_retries"] = _whole(entry, "max_retries", 0, where)
    if "max_retry_wait" in entry:
        value = entry["max_retry_wait"]
        if not is_number(value) or not 0 <= value < math.inf:
            raise RegistryError(
                f"{where}: field 'max_retry_wait': must be a number of seconds >= 0"
            )
        given["max_wait"] = float(value)
    return Retries(**given)


def _limits(entry: Mapping[str, Any], where: str) -> tuple[int, int, int | None]:
    """context_window, max_output_tokens and default_max_tokens, each within the one before."""
    context_window = _whole(entry, "context_window", 1, where, DEFAULT_CONTEXT_WINDOW)
    max_output = _whole(entry, "max_output_tokens", 1, where, DEFAULT_MAX_OUTPUT_TOKENS)
    if max_output > context_window:
        raise RegistryError(
            f"{where}: field 'max_output_tokens': {max_output} is more than"
            f" the context_window ({context_window})"
        )
    default_max_tokens = None
    if entry["provider"] == "anthropic":
        default = min(DEFAULT_MAX_TOKENS, max_output)
        default_max_tokens = _whole(entry, "default_max_tokens", 1, where, default)
        if default_max_tokens > max_output:
            raise RegistryError(
                f"{where}: field 'default_max_tokens': {default_max_tokens} is more than"
                f" max_output_tokens ({max_output})"
            )
    elif "default_max_tokens" in entry:
        raise RegistryError(
            f"{where}: field 'default_max_tokens': only for provider 'anthropic', whose API"
            " requires max_tokens"
        )
    return context_window, max_output, default_max_tokens


def _whole(
    entry: Mapping[str, Any], field: str, least: int, where: str, default: int | None = None
) -> int:
    value = entry.get(field, default)
    if isinstance(value, float) and value.is_integer():  # JSON's 2.0 is the integer 2
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise RegistryError(f"{where}: field {field!r}: must be a whole number >= {least}")
    return value
