"""Organisations and tokens: issuing them (CLI, first start) and verifying bearer tokens."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import attrs

from conversation_service.domain.access import hash_token, looks_like_token, make_token
from conversation_service.domain.errors import NotFound, OrgNotFound, Unauthenticated
from conversation_service.domain.model import AccessRole, Org, Principal
from conversation_service.ports.clock import Clock, IdGenerator
from conversation_service.ports.storage import AccessStore, TokenInfo


@attrs.frozen(kw_only=True)
class IssuedToken:
    """A token as handed out once: the text is never stored, only its hash."""

    token: str
    principal: Principal


class AccessAdmin:
    """Creates organisations and tokens."""

    def __init__(self, *, store: AccessStore, clock: Clock, ids: IdGenerator) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids

    async def create_org(self, name: str) -> Org:
        name = name.strip()
        if not name:
            raise ValueError("the organisation name must not be empty")
        org = Org(id=self._ids.new_id(), name=name, created_at=self._clock.now())
        await self._store.add_org(org)
        return org

    async def create_token(
        self,
        org_id: UUID,
        role: AccessRole = AccessRole.MEMBER,
        *,
        expires_in: timedelta | None = None,
    ) -> IssuedToken:
        org = await self._store.get_org(org_id)
        if org is None:
            raise OrgNotFound(org_id)
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValueError("a token's lifetime must be positive")
        token = make_token(secrets.token_urlsafe(32))
        token_id = self._ids.new_id()
        now = self._clock.now()
        await self._store.add_token(
            token_id=token_id,
            org_id=org.id,
            role=role,
            token_hash=hash_token(token),
            at=now,
            expires_at=None if expires_in is None else now + expires_in,
        )
        return IssuedToken(
            token=token, principal=Principal(token_id=token_id, org_id=org.id, role=role)
        )

    async def list_tokens(self, org_id: UUID) -> Sequence[TokenInfo]:
        if await self._store.get_org(org_id) is None:
            raise OrgNotFound(org_id)
        return await self._store.list_tokens(org_id)

    async def revoke_token(self, token_id: UUID) -> TokenInfo:
        revoked = await self._store.revoke_token(token_id, self._clock.now())
        if revoked is None:
            raise TokenNotFound(token_id)
        return revoked


class TokenNotFound(NotFound):
    """No token with that id."""

    def __init__(self, token_id: UUID) -> None:
        super().__init__(f"token {token_id} not found")


class TokenVerifier:
    """Turns an `Authorization` header into a Principal, or raises Unauthenticated.

    Every request looks its token up afresh, so a revoked or expired token fails at once.
    """

    def __init__(self, store: AccessStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def verify_header(self, header: str | None) -> Principal:
        if not header:
            raise Unauthenticated(
                "missing Authorization header; send 'Authorization: Bearer <token>'"
            )
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("malformed Authorization header; expected 'Bearer <token>'")
        if not looks_like_token(token):
            raise Unauthenticated("invalid token")
        # Looked up by SHA-256: the index compares hashes, never the secret, so the time a
        # lookup takes says nothing about how much of a guessed token was right.
        principal = await self._store.find_token(hash_token(token), self._clock.now())
        if principal is None:
            raise Unauthenticated("invalid token")
        return principal
