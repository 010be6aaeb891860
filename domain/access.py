"""Tokens and what each role may do."""

from __future__ import annotations

import enum
import hashlib

from conversation_service.domain.errors import Forbidden
from conversation_service.domain.model import AccessRole, Principal

TOKEN_PREFIX = "cs_"


class Action(enum.Enum):
    """What a request does, for the role check."""

    READ = "read"
    WRITE = "write"
    ADMINISTER = "administer"


_ALLOWED: dict[AccessRole, frozenset[Action]] = {
    AccessRole.ADMIN: frozenset(Action),
    AccessRole.MEMBER: frozenset({Action.READ, Action.WRITE}),
    AccessRole.VIEWER: frozenset({Action.READ}),
}


def make_token(secret: str) -> str:
    """The token text handed to a client, from random url-safe `secret` text."""
    return TOKEN_PREFIX + secret


def looks_like_token(text: str) -> bool:
    """Cheap shape check, so garbage never reaches storage."""
    return text.startswith(TOKEN_PREFIX) and 20 <= len(text) <= 200 and text.isascii()


def hash_token(token: str) -> str:
    """The only form of a token that is stored: its SHA-256, in hex.

    Tokens carry 256 random bits, so a fast unsalted hash is enough; nothing guessable is hashed.
    """
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def authorize(principal: Principal, org_id: object, action: Action) -> None:
    """Forbidden unless the principal belongs to `org_id` and its role allows `action`."""
    if principal.org_id != org_id:
        raise Forbidden("this token does not belong to the organisation in org_id")
    if action not in _ALLOWED[principal.role]:
        raise Forbidden(f"role {principal.role.value} may not {action.value}")
