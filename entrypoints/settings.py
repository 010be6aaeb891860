"""Configuration: command-line flags over environment variables over defaults."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

ENV_PREFIX = "CONVERSATION_SERVICE_"


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the composition root needs to build the service."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str | None = None  # overrides data_dir when set
    models: Path | None = None  # None: the bundled registry
    echo_delay_ms: int | None = None  # None: as the registry says
    rate_limit: str = "600/minute"  # per token
    max_streams_per_org: int = 32
    max_queued_per_session: int = 8
    actor_idle_timeout: float = 60.0
    shutdown_grace: float = 10.0
    send_timeout: float = 30.0  # a client that accepts no bytes for this long is dropped
    max_body_bytes: int = 256 * 1024
    max_title_chars: int = 500
    max_message_chars: int = 100_000


# flag/env name -> (attribute, parser)
FIELDS: dict[str, tuple[str, type]] = {
    "host": ("host", str),
    "port": ("port", int),
    "data_dir": ("data_dir", Path),
    "database_url": ("database_url", str),
    "models": ("models", Path),
    "echo_delay_ms": ("echo_delay_ms", int),
    "rate_limit": ("rate_limit", str),
    "max_streams_per_org": ("max_streams_per_org", int),
    "max_queued_per_session": ("max_queued_per_session", int),
    "actor_idle_timeout": ("actor_idle_timeout", float),
    "shutdown_grace": ("shutdown_grace", float),
    "send_timeout": ("send_timeout", float),
    "max_body_bytes": ("max_body_bytes", int),
    "max_title_chars": ("max_title_chars", int),
    "max_message_chars": ("max_message_chars", int),
}


class SettingsError(ValueError):
    """A flag or environment variable has a value that cannot be used."""


def load_settings(flags: dict[str, object], environ: dict[str, str] | None = None) -> Settings:
    """Settings from `flags` (None = not given), then CONVERSATION_SERVICE_* variables."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, object] = {}
    for name, (attribute, parse) in FIELDS.items():
        flag = flags.get(name)
        if flag is not None:
            values[attribute] = flag
            continue
        env_name = ENV_PREFIX + name.upper()
        raw = environ.get(env_name)
        if raw is None or raw == "":
            continue
        try:
            values[attribute] = parse(raw)
        except ValueError:
            raise SettingsError(f"{env_name}={raw!r} is not a valid {parse.__name__}") from None
    settings = Settings(**values)  # type: ignore[arg-type]
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if not 0 <= settings.port <= 65535:
        raise SettingsError(f"port {settings.port} is out of range 0-65535")
    for name in (
        "max_streams_per_org",
        "max_queued_per_session",
        "max_body_bytes",
        "max_title_chars",
        "max_message_chars",
    ):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name} must be at least 1")
    if (
        settings.shutdown_grace < 0
        or settings.actor_idle_timeout <= 0
        or settings.send_timeout <= 0
    ):
        raise SettingsError("shutdown_grace must be >= 0, actor_idle_timeout and send_timeout > 0")
