"""Models an organisation registers for itself at runtime (admin role).

The entry is validated like a registry file's, its base URL must be public (unless the
operator allows private addresses), its key is stored encrypted and never returned. The
catalog offers the model to that organisation alone; on restart every stored model is
offered again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from conversation_service.adapters.llm.catalog import RegistryCatalog
from conversation_service.adapters.llm.registry_entry import RegistryError, parse_model_entry
from conversation_service.adapters.llm.url_guard import UnsafeModelURL, check_public_url
from conversation_service.adapters.secret_box import SecretBox, SecretKeyError
from conversation_service.domain.access import Action, authorize
from conversation_service.domain.errors import InvalidField, ModelNotFound
from conversation_service.domain.model import Principal
from conversation_service.ports.clock import Clock, IdGenerator
from conversation_service.ports.language_model import ModelInfo
from conversation_service.ports.storage import OrgModelStore, StorageUnavailable, StoredModel

log = logging.getLogger(__name__)

_FIELD = re.compile(r"field '([a-z_]+)'")
_MAX_KEY_CHARS = 4096


class OrgModels:
    def __init__(
        self,
        *,
        store: OrgModelStore,
        catalog: RegistryCatalog,
        box: SecretBox,
        clock: Clock,
        ids: IdGenerator,
        allow_private: bool = False,
        announce: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        # Tells the other instances that the organisations' models changed (they reload).
        self._announce = announce
        self._catalog = catalog
        self._box = box
        self._clock = clock
        self._ids = ids
        self._allow_private = allow_private

    async def load_all(self) -> int:
        """Offer every stored model again (at start); returns how many."""
        return await self._offer(await self._store.list_org_models())

    async def reload(self) -> None:
        """Offer what another instance registered, withdraw what it removed."""
        stored = await self._store.list_org_models()
        kept = {(model.org_id, model.id) for model in stored}
        for org_id, model_id in self._catalog.org_model_ids() - kept:
            self._catalog.remove_org_model(org_id, model_id)
        offered = self._catalog.org_model_ids()
        await self._offer([m for m in stored if (m.org_id, m.id) not in offered])

    async def _offer(self, models: Sequence[StoredModel]) -> int:
        loaded = 0
        for stored in models:
            try:
                key = (
                    None
                    if stored.encrypted_api_key is None
                    else self._box.open(stored.encrypted_api_key)
                )
                model = parse_model_entry(json.loads(stored.entry), f"org model {stored.id}")
                self._catalog.add_org_model(stored.org_id, model, key)
            except (SecretKeyError, RegistryError, InvalidField) as error:
                # One unusable model must not keep the service (and the others) down.
                log.error("org model %s of org %s not offered: %s", stored.id, stored.org_id, error)
                continue
            loaded += 1
        return loaded

    async def register(self, who: Principal, org_id: UUID, body: dict[str, Any]) -> ModelInfo:
        """Validate, check the URL, store (key sealed) and offer a model to `org_id`."""
        authorize(who, org_id, Action.ADMINISTER)
        entry = dict(body)
        key = entry.pop("api_key", None)
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= _MAX_KEY_CHARS):
            raise InvalidField("api_key", f"must be a string of 1 to {_MAX_KEY_CHARS} characters")
        if "id" in entry:
            raise InvalidField("id", "is given by the service")
        entry["id"] = str(self._ids.new_id())
        try:
            model = parse_model_entry(entry, "body")
        except RegistryError as error:
            found = _FIELD.search(str(error))
            reason = str(error).split(": ", 2)[-1]
            raise InvalidField(found.group(1) if found else "body", reason) from None
        try:
            await check_public_url(model.base_url, allow_private=self._allow_private)
        except UnsafeModelURL as error:
            raise InvalidField("base_url", str(error)) from None
        info = self._catalog.add_org_model(org_id, model, key)
        stored = StoredModel(
            id=model.id,
            org_id=org_id,
            entry=json.dumps(entry),
            encrypted_api_key=None if key is None else self._box.seal(key),
            created_at=self._clock.now(),
        )
        try:
            await self._store.add_org_model(stored)
        except BaseException:
            self._catalog.remove_org_model(org_id, model.id)
            raise
        await self._tell_others()
        return info

    async def remove(self, who: Principal, org_id: UUID, model_id: UUID) -> None:
        authorize(who, org_id, Action.ADMINISTER)
        if not await self._store.delete_org_model(org_id, model_id):
            raise ModelNotFound(model_id)
        self._catalog.remove_org_model(org_id, model_id)
        await self._tell_others()

    async def _tell_others(self) -> None:
        if self._announce is not None:
            try:
                await self._announce()
            except StorageUnavailable as error:  # they reload on their own every little while
                log.warning("could not tell the other instances about a model: %s", error)
