"""Organisations and tokens: issuing them (CLI, first start) and verifying bearer tokens."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import timedelta
from uuid import UUID

import attrs
import trio

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

    def __init__(
        self,
        *,
        store: AccessStore,
        clock: Clock,
        ids: IdGenerator,
        on_revoke: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._on_revoke = on_revoke  # a verifier in this process forgets what it knew

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
        self._on_revoke()
        return revoked


class TokenNotFound(NotFound):
    """No token with that id."""

    def __init__(self, token_id: UUID) -> None:
        super().__init__(f"token {token_id} not found")


class TokenVerifier:
    """Turns an `Authorization` header into a Principal, or raises Unauthenticated.

    A token found valid is remembered for `recheck_after` seconds (and never past its
    expiry), so a busy client costs one lookup every few seconds instead of one a request;
    a token revoked meanwhile is refused within that time. Tokens not found are not
    remembered. At most `max_remembered` tokens are, the least recently used leaving first.
    """

    def __init__(
        self,
        store: AccessStore,
        clock: Clock,
        *,
        recheck_after: float = 5.0,
        max_remembered: int = 10_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._recheck_after = recheck_after
        self._max_remembered = max_remembered
        # token hash -> (the token, the monotonic time to look it up again)
        self._remembered: OrderedDict[str, tuple[TokenInfo, float]] = OrderedDict()

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
        found = await self._find(hash_token(token))
        if found is None:
            raise Unauthenticated("invalid token")
        return Principal(token_id=found.id, org_id=found.org_id, role=found.role)

    def forget(self) -> None:
        """Look every token up again on its next use (after a revocation in this process)."""
        self._remembered.clear()

    async def _find(self, token_hash: str) -> TokenInfo | None:
        now, at = trio.current_time(), self._clock.now()
        remembered = self._remembered.get(token_hash)
        if remembered is not None:
            token, recheck_at = remembered
            if now < recheck_at and (token.expires_at is None or at < token.expires_at):
                self._remembered.move_to_end(token_hash)
                return token
            del self._remembered[token_hash]
        found = await self._store.find_token(token_hash, at)
        if found is not None and self._recheck_after > 0:
            self._remembered[token_hash] = (found, now + self._recheck_after)
            while len(self._remembered) > self._max_remembered:
                self._remembered.popitem(last=False)
        return found
