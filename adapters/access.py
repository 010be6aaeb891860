"""Organisations and tokens: issuing them (CLI, first start) and verifying bearer tokens."""

from __future__ import annotations

import secrets

import attrs

from domain.access import hash_token, looks_like_token, make_token
from domain.errors import OrgNotFound, Unauthenticated
from domain.model import AccessRole, Org, Principal
from ports.clock import Clock, IdGenerator
from ports.storage import AccessStore


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
        self, org_id: object, role: AccessRole = AccessRole.MEMBER
    ) -> IssuedToken:
        org = await self._store.get_org(org_id)  # type: ignore[arg-type]
        if org is None:
            raise OrgNotFound(org_id)
        token = make_token(secrets.token_urlsafe(32))
        token_id = self._ids.new_id()
        await self._store.add_token(
            token_id=token_id,
            org_id=org.id,
            role=role,
            token_hash=hash_token(token),
            at=self._clock.now(),
        )
        return IssuedToken(
            token=token, principal=Principal(token_id=token_id, org_id=org.id, role=role)
        )


class TokenVerifier:
    """Turns an `Authorization` header into a Principal, or raises Unauthenticated."""

    def __init__(self, store: AccessStore) -> None:
        self._store = store

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
        principal = await self._store.find_token(hash_token(token))
        if principal is None:
            raise Unauthenticated("invalid token")
        return principal
