"""Configuration: command-line flags over environment variables over defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
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
    max_replies_per_org: int = 64  # replies running or waiting at once, over all its sessions
    token_recheck_seconds: float = 5.0  # a token found valid is looked up again after this
    lease_timeout: float = 15.0  # on PostgreSQL: an instance unseen this long is gone
    flush_interval: float | None = None  # a streaming reply's text is stored this often;
    # None: 0.5 s alone (SQLite), 0.1 s on PostgreSQL (other instances follow it from there)
    # With more than 16 provider streams open, a stream's next read waits 1 ms for each
    # stream beyond 16, up to this, so that what arrives meanwhile goes on as one write
    # (adapters/llm/http1.py, Gathering); 0: every piece is read and sent as it comes.
    gather_ms: int = 50
    actor_idle_timeout: float = 60.0
    shutdown_grace: float = 10.0
    send_timeout: float = 30.0  # a client that accepts no bytes for this long is dropped
    body_timeout: float = 30.0  # a request body still arriving after this is refused
    keep_alive_timeout: float = 5.0  # idle connections (and slow request heads) are closed
    # Client connections served at once; one more is answered 503 and closed. Each holds a
    # file descriptor: the default stays well under the common limit of 1024 per process.
    max_connections: int = 512
    secret_key: str | None = None  # Fernet key for stored model keys; else a key file
    secret_key_file: Path | None = None  # None: <data_dir>/secret.key, made on first start
    allow_private_model_urls: bool = False  # org models may call loopback/private addresses
    cors_origins: tuple[str, ...] = ()  # e.g. https://app.example.com; none: CORS off
    max_body_bytes: int = 256 * 1024
    max_import_bytes: int = 64 * 1024 * 1024  # an import's JSON Lines file
    import_body_timeout: float = 300.0  # seconds for an import's file to arrive
    max_title_chars: int = 500
    max_message_chars: int = 100_000
    # GET /metrics: open (None), or only with `Authorization: Bearer <this>`. Not an API token.
    metrics_token: str | None = attrs.field(default=None, repr=False)
    log_format: str = "text"  # or "json": one JSON object per line


def parse_bool(raw: str) -> bool:
    """true/false, yes/no, on/off or 1/0."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


LOG_FORMATS = ("text", "json")


def parse_log_format(raw: str) -> str:
    """text or json."""
    if raw not in LOG_FORMATS:
        raise ValueError(raw)
    return raw


def parse_origins(raw: str) -> tuple[str, ...]:
    """A comma-separated allow list of origins such as https://app.example.com."""
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?", origin):
            raise ValueError(origin)
    return origins


# flag/env name -> (attribute, parser)
FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "host": ("host", str),
    "port": ("port", int),
    "data_dir": ("data_dir", Path),
    "database_url": ("database_url", str),
    "models": ("models", Path),
    "echo_delay_ms": ("echo_delay_ms", int),
    "rate_limit": ("rate_limit", str),
    "max_streams_per_org": ("max_streams_per_org", int),
    "max_queued_per_session": ("max_queued_per_session", int),
    "max_replies_per_org": ("max_replies_per_org", int),
    "token_recheck_seconds": ("token_recheck_seconds", float),
    "lease_timeout": ("lease_timeout", float),
    "flush_interval": ("flush_interval", float),
    "gather_ms": ("gather_ms", int),
    "actor_idle_timeout": ("actor_idle_timeout", float),
    "shutdown_grace": ("shutdown_grace", float),
    "send_timeout": ("send_timeout", float),
    "body_timeout": ("body_timeout", float),
    "keep_alive_timeout": ("keep_alive_timeout", float),
    "max_connections": ("max_connections", int),
    "secret_key": ("secret_key", str),
    "secret_key_file": ("secret_key_file", Path),
    "allow_private_model_urls": ("allow_private_model_urls", parse_bool),
    "cors_origins": ("cors_origins", parse_origins),
    "max_body_bytes": ("max_body_bytes", int),
    "max_import_bytes": ("max_import_bytes", int),
    "import_body_timeout": ("import_body_timeout", float),
    "max_title_chars": ("max_title_chars", int),
    "max_message_chars": ("max_message_chars", int),
    "metrics_token": ("metrics_token", str),
    "log_format": ("log_format", parse_log_format),
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
            kind = getattr(parse, "__name__", "value").removeprefix("parse_")
            raise SettingsError(f"{env_name}={raw!r} is not a valid {kind}") from None
    settings = Settings(**values)  # type: ignore[arg-type]
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if not 0 <= settings.port <= 65535:
        raise SettingsError(f"port {settings.port} is out of range 0-65535")
    for name in (
        "max_streams_per_org",
        "max_queued_per_session",
        "max_replies_per_org",
        "max_connections",
        "max_body_bytes",
        "max_import_bytes",
        "max_title_chars",
        "max_message_chars",
    ):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name} must be at least 1")
    if settings.lease_timeout < 1:
        raise SettingsError("lease_timeout must be at least 1 second")
    if not 0 <= settings.gather_ms <= 1000:
        raise SettingsError("gather_ms must be between 0 and 1000 milliseconds")
    if settings.flush_interval is not None and not 0.01 <= settings.flush_interval <= 60:
        raise SettingsError("flush_interval must be between 0.01 and 60 seconds")
    if settings.token_recheck_seconds < 0:
        raise SettingsError("token_recheck_seconds must be >= 0 (0: look every token up)")
    if settings.import_body_timeout <= 0:
        raise SettingsError("import_body_timeout must be > 0")
    if (
        settings.shutdown_grace < 0
        or settings.actor_idle_timeout <= 0
        or settings.send_timeout <= 0
    ):
        raise SettingsError("shutdown_grace must be >= 0, actor_idle_timeout and send_timeout > 0")
    if settings.log_format not in LOG_FORMATS:
        raise SettingsError(f"log_format must be one of {', '.join(LOG_FORMATS)}")
    token = settings.metrics_token
    if token is not None and not re.fullmatch(r"[!-~]{16,}", token):
        # A Bearer token travels in a header: printable ASCII without spaces. Short ones are
        # more likely a mistake (METRICS_TOKEN=1) than a secret.
        raise SettingsError(
            "metrics_token must be at least 16 printable ASCII characters, no spaces"
        )
