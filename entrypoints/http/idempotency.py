"""Idempotency-Key on the POST routes, with Stripe's semantics.

The first request with a key runs and its answer is kept (24 h at least); a retry with the
same key and the same request gets that answer again, marked `Idempotent-Replayed: true`;
the same key with a different request is a 400; a retry while the first is still being
handled is a 409. Keys are scoped to the organisation and the token. Only successful
answers are kept: a request that failed may be retried with its key. For stream_chat the
kept answer is the reply itself: a retry re-attaches to the same reply (from Last-Event-ID
if given) and no second user message is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import attrs
import trio
from quart import Response, jsonify, request

from conversation_service.domain.errors import Conflict, InvalidField
from conversation_service.domain.model import Principal
from conversation_service.entrypoints.http.inputs import request_body
from conversation_service.ports.clock import Clock
from conversation_service.ports.storage import IdempotencyStore

HEADER = "Idempotency-Key"


class KeyInFlight(Conflict):
    """A request with this Idempotency-Key is still being handled."""

    code = "idempotency_key_in_flight"


@attrs.frozen(kw_only=True)
class Answer:
    """What a handler produced: the response, and what to keep for a replay."""

    response: Response
    stream: dict[str, Any] | None = None  # a streamed reply: kept as what to re-attach to

    @classmethod
    def json(cls, body: dict[str, Any], status: int = 200) -> Answer:
        """A JSON answer, kept byte for byte."""
        response = jsonify(body)
        response.status_code = status
        return cls(response=response)


class Idempotency:
    def __init__(self, store: IdempotencyStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def run(
        self,
        who: Principal,
        org_id: UUID,
        handle: Callable[[], Awaitable[Answer]],
        replay_stream: Callable[[dict[str, Any]], Awaitable[Response]],
    ) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return (await handle()).response
        if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
            raise InvalidField(HEADER, "must be 1 to 255 printable ASCII characters")
        scope = f"{org_id}/{who.token_id}"
        fingerprint = await _fingerprint()
        kept = await self._store.claim_key(scope, key, fingerprint, self._clock.now())
        if kept is not None:
            if kept.fingerprint != fingerprint:
                raise InvalidField(HEADER, "was already used with a different request")
            if not kept.done:
                raise KeyInFlight("a request with this Idempotency-Key is still in flight")
            body = json.loads(kept.body or "null")
            if isinstance(body, dict) and "stream" in body:
                response = await replay_stream(body["stream"])
            else:
                response = Response(kept.body, status=kept.status, content_type="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            answer = await handle()
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self._store.release_key(scope, key)
            raise
        # The request has done its work: a cancellation now must not leave its key in flight.
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            kept_answer = await _kept(answer)
            await self._store.finish_key(scope, key, answer.response.status_code, kept_answer)
        return answer.response


async def _kept(answer: Answer) -> str:
    if answer.stream is not None:
        return json.dumps({"stream": answer.stream})
    return await answer.response.get_data(as_text=True)  # a retry gets these exact bytes


async def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0" + request.path.encode() + b"\0")
    digest.update(json.dumps(sorted(request.args.items(multi=True))).encode())
    digest.update(b"\0" + await request_body())
    return digest.hexdigest()
