"""What the verifier runs against: a deployment's URL, the organisations it may act in, the
model its sessions use, and the limits its OpenAPI document states."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import httpx

from conversation_service.domain.rules import InputLimits
from conversation_service.testing.verify.api import Api, Tenant
from conversation_service.testing.verify.model import ModelUnderTest

ECHO_NAME = "echo"


class TargetError(Exception):
    """The deployment cannot be verified as asked (unreachable, token refused, no model)."""


@attrs.define
class Target:
    """A deployment under verification; counts the examples run and the requests
    they made.

    With `fresh_tenants`, each example gets organisations of its own (made by the caller)
    and the model checks that each sees exactly its own conversations; without, the
    given ones are shared with earlier examples (and anyone else), and only this run's
    conversations are checked, in their order among the rest.
    """

    http: httpx.Client
    tenants: Sequence[Tenant]
    model: ModelUnderTest
    limits: InputLimits
    fresh_tenants: Callable[[], Sequence[Tenant]] | None = None
    examples: int = 0
    requests: int = 0

    @property
    def exclusive(self) -> bool:
        return self.fresh_tenants is not None

    def tenants_for_example(self) -> Sequence[Tenant]:
        self.examples += 1
        return self.fresh_tenants() if self.fresh_tenants else self.tenants


def connect(
    http: httpx.Client,
    tenants: Sequence[Tenant],
    *,
    model: str = ECHO_NAME,
    fresh_tenants: Callable[[], Sequence[Tenant]] | None = None,
) -> Target:
    """The target at `http`'s base URL, its model (by name or id) and limits looked up."""
    if not tenants:
        raise TargetError("no organisation to act in")
    api = Api(http, tenants[0])
    try:
        listed = api.call("GET", "/api/models")
        document = http.get("/openapi.json")
    except httpx.HTTPError as error:
        raise TargetError(f"cannot reach {http.base_url}: {error}") from error
    if listed.status_code in (401, 403):
        raise TargetError(f"the token was refused for that org ({listed.status_code})")
    if listed.status_code != 200:
        raise TargetError(f"GET /api/models answered {listed.status_code}: {listed.text[:200]}")
    models = listed.json()["models"]
    found = [m for m in models if model in (m["name"], m["id"])]
    if not found:
        names = ", ".join(m["name"] for m in models)
        raise TargetError(f"no model {model!r} in that organisation (it has: {names})")
    chosen = found[0]
    return Target(
        http=http,
        tenants=tenants,
        model=ModelUnderTest(
            id=chosen["id"],
            name=chosen["name"],
            max_output_tokens=chosen["max_output_tokens"],
            echo=chosen["provider"] == ECHO_NAME,
        ),
        limits=limits_of(document.json() if document.status_code == 200 else {}),
        fresh_tenants=fresh_tenants,
    )


def limits_of(document: dict[str, Any]) -> InputLimits:
    """The text limits a deployment's OpenAPI document states (the defaults if it does not)."""
    schemas = document.get("components", {}).get("schemas", {})
    default = InputLimits()

    def most(schema: str, field: str, fallback: int) -> int:
        found = schemas.get(schema, {}).get("properties", {}).get(field, {}).get("maxLength")
        return found if isinstance(found, int) else fallback

    return InputLimits(
        max_title_chars=most("CreateConversation", "title", default.max_title_chars),
        max_message_chars=most("StreamChat", "message", default.max_message_chars),
        max_system_prompt_chars=most(
            "CreateSession", "system_prompt", default.max_system_prompt_chars
        ),
    )
