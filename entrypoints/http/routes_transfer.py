"""Export and import: conversations as a JSON Lines file (transfer_lines.py).

An export streams as it is read, a batch of rows at a time, so the server's memory does not
grow with its size; it holds one of the organisation's stream slots while it runs. An import
is the whole file in one request (at most `max_import_bytes`): every line is checked first,
then everything is stored in one transaction, or nothing.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import trio
from quart import Blueprint, Response

from conversation_service.domain.access import Action, authorize
from conversation_service.entrypoints.http import access_log, views
from conversation_service.entrypoints.http.edge import Edge
from conversation_service.entrypoints.http.idempotency import Answer
from conversation_service.entrypoints.http.inputs import query_uuid, request_body
from conversation_service.entrypoints.http.transfer_lines import (
    MEDIA_TYPE,
    check_file,
    end_line,
    header_line,
    record_lines,
    records_of,
)

EXPORT_PATH = "/api/conversation/export"
IMPORT_PATH = "/api/conversation/import"

log = logging.getLogger(__name__)


def register(api: Blueprint, edge: Edge) -> None:
    service, deps = edge.service, edge.deps

    @api.get(EXPORT_PATH)
    async def export() -> Response:
        who, org_id = await edge.caller("conversation_id")
        conversation_id = query_uuid("conversation_id", required=False)
        exporting = await service.open_export(who, org_id, conversation_id)
        slots = deps.stream_slots
        await slots.acquire(org_id)
        method, path, started, request_id = access_log.stream_logger()
        counts = {"conversations": 0, "sessions": 0, "messages": 0}
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                slots.release(org_id)

        async def body() -> AsyncIterator[bytes]:
            complete = False
            try:
                yield header_line(org_id, conversation_id, datetime.now(UTC))
                async for batch in exporting.batches():
                    yield record_lines(batch, counts)
                yield end_line(counts)
                complete = True
            except Exception:
                # The answer has begun: nothing to send but less. The file lacks its end line,
                # which is how its reader (and an import) tells it was cut short.
                log.exception("request %s: the export failed part way", request_id)
            finally:
                release()
                note = f" conversations={counts['conversations']} messages={counts['messages']}"
                access_log.line(
                    method, path, 200, started, request_id, note + ("" if complete else " cut")
                )

        day = datetime.now(UTC).strftime("%Y%m%d")
        named = f"conversation-{conversation_id}" if conversation_id else f"org-{org_id}"
        response = Response(
            body(),
            status=200,
            headers={
                "Content-Type": MEDIA_TYPE,
                "Content-Disposition": f'attachment; filename="{named}-{day}.jsonl"',
                "Cache-Control": "no-cache",
            },
        )
        response.timeout = None  # a large export streams for minutes
        weakref.finalize(response, release)  # a client gone before the body started
        return response

    @api.post(IMPORT_PATH)
    async def import_conversations() -> Response:
        who, org_id = await edge.caller()
        authorize(who, org_id, Action.ADMINISTER)  # before any line is read

        async def handle() -> Answer:
            body = await request_body()
            # Parsing a large file takes a while: not on the thread that serves requests.
            await trio.to_thread.run_sync(check_file, body, service.limits)
            report = await service.import_records(who, org_id, lambda: records_of(body))
            return Answer.json(views.imported(report), 201)

        return await edge.once(who, org_id, handle)
