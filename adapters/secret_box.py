"""Encryption of secrets at rest (organisations' model keys), with Fernet.

Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography` package) authenticates what it
decrypts, so a tampered or foreign ciphertext is refused, not misread. The key comes from
the server's configuration: CONVERSATION_SERVICE_SECRET_KEY, or a key file made on first
start (mode 0600) beside the database.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretKeyError(ValueError):
    """The configured secret key is unusable, or does not open what was stored with another."""


class SecretBox:
    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as e:
            raise SecretKeyError(
                "the secret key must be 32 url-safe base64-encoded bytes (Fernet.generate_key())"
            ) from e

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken as e:
            raise SecretKeyError(
                "a stored secret cannot be decrypted with the configured secret key"
            ) from e


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`, made (readable by its owner only) when there is none yet."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key + b"\n")
    return key
