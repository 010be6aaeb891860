"""Encryption of secrets at rest (organisations' model keys), with Fernet.

Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography` package) authenticates what it
decrypts, so a tampered or foreign ciphertext is refused, not misread. The key comes from
the server's configuration: CONVERSATION_SERVICE_SECRET_KEY, or a key file made on first
start (mode 0600) beside the database.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

# `cryptography` is imported when a secret is first sealed or opened: a server whose
# organisations registered no keys never needs it, and it is 6-7 MiB of its memory.


class SecretKeyError(ValueError):
    """The configured secret key is unusable, or does not open what was stored with another."""


class SecretBox:
    def __init__(self, key: str | bytes) -> None:
        # What Fernet's constructor checks, checked at once without importing it.
        try:
            raw = base64.urlsafe_b64decode(key)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise SecretKeyError(
                "the secret key must be 32 url-safe base64-encoded bytes (Fernet.generate_key())"
            )
        self._key = key
        self._made: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._made is None:
            from cryptography.fernet import Fernet

            self._made = Fernet(self._key)
        return self._made

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

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
    key = base64.urlsafe_b64encode(os.urandom(32))  # as Fernet.generate_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key + b"\n")
    return key
