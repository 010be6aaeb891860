"""The store contract's access side: tokens, idempotency keys and organisations' own models."""

from __future__ import annotations

from typing import Any

from conversation_service.domain.model import AccessRole
from conversation_service.ports.storage import IdempotentResult, StoredModel
from conversation_service.testing.store_contract.base import ContractBase, Store


class AccessContract(ContractBase):
    """Organisations, tokens, idempotency keys and organisations' own models."""

    async def test_find_token_gives_the_principal(self, store: Store, values: Any) -> None:
        org = values.org()
        await store.add_org(org)
        admin, viewer = values.org().id, values.org().id  # fresh ids for the tokens
        await store.add_token(
            token_id=admin,
            org_id=org.id,
            role=AccessRole.ADMIN,
            token_hash="a" * 64,
            at=values.at(1),
        )
        await store.add_token(
            token_id=viewer,
            org_id=org.id,
            role=AccessRole.VIEWER,
            token_hash="b" * 64,
            at=values.at(1),
        )

        found = await store.find_token("a" * 64, values.at(2))
        assert (found.id, found.org_id, found.role, found.expires_at) == (
            admin,
            org.id,
            AccessRole.ADMIN,
            None,
        )
        found = await store.find_token("b" * 64, values.at(2))
        assert (found.id, found.org_id, found.role) == (viewer, org.id, AccessRole.VIEWER)
        assert await store.find_token("c" * 64, values.at(2)) is None

    async def test_expired_and_revoked_tokens_are_not_found_but_listed(
        self, store: Store, values: Any
    ) -> None:
        org, other = values.org(), values.org()
        await store.add_org(org)
        await store.add_org(other)
        lasting, brief, theirs = values.org().id, values.org().id, values.org().id
        await store.add_token(
            token_id=lasting,
            org_id=org.id,
            role=AccessRole.MEMBER,
            token_hash="a" * 64,
            at=values.at(1),
        )
        await store.add_token(
            token_id=brief,
            org_id=org.id,
            role=AccessRole.MEMBER,
            token_hash="b" * 64,
            at=values.at(2),
            expires_at=values.at(10),
        )
        await store.add_token(
            token_id=theirs,
            org_id=other.id,
            role=AccessRole.ADMIN,
            token_hash="c" * 64,
            at=values.at(3),
        )
        assert await store.find_token("b" * 64, values.at(9)) is not None
        assert await store.find_token("b" * 64, values.at(10)) is None  # expiry is exclusive

        revoked = await store.revoke_token(lasting, values.at(20))
        assert revoked is not None and revoked.revoked_at == values.at(20)
        again = await store.revoke_token(lasting, values.at(30))
        assert again is not None and again.revoked_at == values.at(20)  # the first time stays
        assert await store.find_token("a" * 64, values.at(21)) is None
        assert await store.revoke_token(values.org().id, values.at(30)) is None

        listed = await store.list_tokens(org.id)
        assert [(t.id, t.role, t.expires_at, t.revoked_at) for t in listed] == [
            (lasting, AccessRole.MEMBER, None, values.at(20)),
            (brief, AccessRole.MEMBER, values.at(10), None),
        ]
        assert [t.id for t in await store.list_tokens(other.id)] == [theirs]

    async def test_an_idempotency_key_is_claimed_once_then_kept_or_released(
        self, store: Store, values: Any
    ) -> None:
        assert await store.claim_key("org/token", "k", "fp-1", values.at(1)) is None
        assert await store.claim_key("org/token", "k", "fp-2", values.at(2)) == IdempotentResult(
            fingerprint="fp-1", done=False
        )
        assert await store.claim_key("org/other-token", "k", "fp-2", values.at(2)) is None
        await store.finish_key("org/token", "k", 201, '{"id": 1}')
        assert await store.claim_key("org/token", "k", "fp-1", values.at(3)) == IdempotentResult(
            fingerprint="fp-1", done=True, status=201, body='{"id": 1}'
        )
        await store.release_key("org/other-token", "k")
        assert await store.claim_key("org/other-token", "k", "fp-3", values.at(4)) is None

    async def test_old_and_unfinished_keys_are_forgotten(self, store: Store, values: Any) -> None:
        for key, at in (("old", 1), ("new", 10), ("running", 10)):
            await store.claim_key("s", key, "fp", values.at(at))
        await store.finish_key("s", "old", 200, "{}")
        await store.finish_key("s", "new", 200, "{}")
        await store.forget_keys(before=values.at(5), unfinished=True)
        assert await store.claim_key("s", "old", "fp", values.at(11)) is None  # gone: claimed anew
        assert await store.claim_key("s", "running", "fp", values.at(11)) is None
        kept = await store.claim_key("s", "new", "fp", values.at(11))
        assert kept is not None and kept.done

    async def test_org_models_are_kept_listed_and_deleted_per_org(
        self, store: Store, values: Any
    ) -> None:
        org, other = values.org(), values.org()
        await store.add_org(org)
        await store.add_org(other)
        first = StoredModel(id=values.org().id, org_id=org.id, entry='{"name": "a"}',
                            encrypted_api_key="sealed", created_at=values.at(1))  # fmt: skip
        second = StoredModel(id=values.org().id, org_id=other.id, entry='{"name": "b"}',
                             encrypted_api_key=None, created_at=values.at(2))  # fmt: skip
        await store.add_org_model(first)
        await store.add_org_model(second)
        assert list(await store.list_org_models()) == [first, second]
        assert await store.delete_org_model(other.id, first.id) is False  # not that org's
        assert await store.delete_org_model(org.id, first.id) is True
        assert await store.delete_org_model(org.id, first.id) is False
        assert list(await store.list_org_models()) == [second]
