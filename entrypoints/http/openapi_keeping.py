"""The OpenAPI document's part for conversations people keep: update, delete, feedback,
export and import (routes_keeping.py, routes_transfer.py), and the export file's lines."""

from __future__ import annotations

from typing import Any

from conversation_service.domain.feedback import Rating
from conversation_service.domain.model import ContextScope, MessageRole, MessageStatus
from conversation_service.domain.session_machine import SessionState
from conversation_service.entrypoints.http import openapi_responses as r
from conversation_service.entrypoints.http.json_schema import TIMESTAMP
from conversation_service.entrypoints.http.openapi_paths import API, GUARDED, operation
from conversation_service.entrypoints.http.openapi_schemas import (
    COUNT,
    UUID,
    Schema,
    nullable,
    obj,
    ref,
)
from conversation_service.entrypoints.http.routes import HttpSettings
from conversation_service.entrypoints.http.transfer_lines import FORMAT, MEDIA_TYPE, VERSION

# The smallest file an import takes: a header and an end line (it imports nothing).
EMPTY_EXPORT = (
    f'{{"type":"header","format":"{FORMAT}","version":{VERSION},'
    '"exported_at":"2026-11-26T06:10:00.000000Z",'
    '"org_id":"5a7e8f91-2b3c-4d5e-8f70-8a9b0c1d2e3f","conversation_id":null}\n'
    '{"type":"end","conversations":0,"sessions":0,"messages":0}\n'
)

EXPORT = (
    f"JSON Lines (`{MEDIA_TYPE}`): a `header` line, then each conversation with its sessions and "
    "then its messages (each with its feedback), in the order they were stored, then an `end` "
    "line counting them. Conversations come oldest first. Each line is an ExportLine. The "
    "file is streamed as it is read: a file without its `end` line was cut short (the server "
    "failed part way, or the connection dropped), and an import refuses it."
)

IMPORT = (
    "Recreates the conversations of an export file (GET export, from this server or another) "
    "in this organisation: every line is checked first, then all of it is stored, or none. "
    "Ids are kept unless taken (by this organisation or another one of this server): then "
    "the object gets a new id, and every line naming it follows. Timestamps, statuses, usage "
    "and feedback are kept; a reply that was still being written when it was exported is "
    "stored `incomplete` (`interrupted`), as after a restart. Admin tokens only: an import "
    "writes usage and history no member can. 400 names the line and field at fault, "
    "`lines[<line number, from 1>].<field>`. The body is at most {max_import_bytes} bytes "
    "and must arrive within {timeout:g} s; it is held in memory while it is checked and stored, "
    "and storing it holds the database for its one transaction (10 to 20 s per 100,000 "
    "messages on the README's 2-core machine)."
)


def keeping_paths(settings: HttpSettings) -> dict[str, Any]:
    ok = r.json_response
    export = operation(
        "exportConversations",
        "Export one conversation, or the whole organisation, as JSON Lines",
        "conversations",
        {
            "200": {
                "description": EXPORT,
                "headers": r.response_headers(rate=True, extra=("Cache-Control",)),
                "content": {MEDIA_TYPE: {"schema": ref("ExportLine")}},
            },
            **r.errors(*GUARDED, 404),
        },
        params=("ExportConversationId",),
        description="Without `conversation_id`, every conversation of the organisation. An "
        "export holds one of the organisation's stream slots while it streams (429 when none "
        "is free).",
    )
    imported = operation(
        "importConversations",
        "Import an export file into this organisation (admin)",
        "conversations",
        {
            "201": ok("Imported: what was stored.", "ImportReport"),
            **r.errors(*GUARDED, 409),
            "413": {
                "description": f"The file is over {settings.max_import_bytes} bytes.",
                "headers": r.response_headers(rate=False),
                "content": {"application/json": {"schema": ref("Error")}},
            },
        },
        params=("IdempotencyKey",),
        description=IMPORT.format(
            max_import_bytes=settings.max_import_bytes, timeout=settings.import_body_timeout
        ),
    )
    imported["requestBody"] = {
        "required": True,
        "content": {
            MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "description": "An export file: one ExportLine per line.",
                    "examples": [EMPTY_EXPORT],
                }
            }
        },
    }
    return {
        f"{API}/update": {
            "post": operation(
                "updateConversation",
                "Rename a conversation, or (un)archive it",
                "conversations",
                {"200": ok("Changed.", "Conversation"), **r.errors(*GUARDED, 404, 413)},
                body="UpdateConversation",
                description="A title set here is the conversation's for good: no generated "
                "title replaces it, even one being written as this arrives.",
            )
        },
        f"{API}/delete": {
            "post": operation(
                "deleteConversation",
                "Delete a conversation and everything in it, for good",
                "conversations",
                {"200": ok("Deleted.", "ConversationDeleted"), **r.errors(*GUARDED, 404, 413)},
                body="DeleteConversation",
                description="Replies running in it are cancelled first (their streams end "
                "with `cancelled`, their models' requests are closed), its sessions take no "
                "more messages, and then its sessions, messages and feedback are deleted, with "
                "the kept Idempotency-Key answers that name them. Every later call naming it, "
                "its sessions or its messages is a 404.",
            )
        },
        f"{API}/feedback": {
            "post": operation(
                "giveFeedback",
                "Rate an assistant reply, up or down, with an optional comment",
                "conversations",
                {
                    "200": ok("Kept (replacing any earlier).", "Feedback"),
                    **r.errors(*GUARDED, 404, 413),
                },
                body="GiveFeedback",
                description="The rating shows in the message's `feedback` (GET messages) "
                "and is counted per model in GET /api/usage.",
            )
        },
        f"{API}/clear_feedback": {
            "post": operation(
                "clearFeedback",
                "Remove the feedback on a reply",
                "conversations",
                {"200": ok("Done.", "FeedbackCleared"), **r.errors(*GUARDED, 404, 413)},
                body="ClearFeedback",
            )
        },
        f"{API}/export": {"get": export},
        f"{API}/import": {"post": imported},
    }


def export_conversation_parameter() -> Schema:
    return {
        "name": "conversation_id",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "schema": UUID,
        "description": "The conversation to export; absent (or empty): every one of the "
        "organisation.",
    }


def _enum(kind: Any) -> Schema:
    return {"type": "string", "enum": [member.value for member in kind]}


def _line(kind: str, properties: dict[str, Schema], description: str) -> Schema:
    return obj({"type": {"const": kind}, **properties}, description=description)


def export_lines() -> dict[str, Schema]:
    """The schema of each kind of line of an export file."""
    text = {"type": "string"}
    moment = TIMESTAMP
    header = _line(
        "header",
        {
            "format": {"const": FORMAT},
            "version": {"const": VERSION},
            "exported_at": moment,
            "org_id": UUID,
            "conversation_id": nullable(UUID),
        },
        "The first line: what the file is, and where it was exported from.",
    )
    conversation = _line(
        "conversation",
        {
            "id": UUID,
            "title": nullable(text),
            "is_archived": {"type": "boolean"},
            "created_at": moment,
            "updated_at": moment,
        },
        "A conversation; its sessions and messages follow it.",
    )
    number: Schema = {"type": ["number", "null"]}
    integer: Schema = {"type": ["integer", "null"], "minimum": 0}
    session = _line(
        "session",
        {
            "id": UUID,
            "conversation_id": UUID,
            "model_id": UUID,
            "status": _enum(SessionState),
            "system_prompt": nullable(text),
            "params": obj(
                {
                    "temperature": number,
                    "max_tokens": integer,
                    "top_p": number,
                }
            ),
            "context": _enum(ContextScope),
            "head_id": nullable(UUID),
            "created_at": moment,
            "updated_at": moment,
        },
        "A chat session of the conversation before it. `head_id`: the last message of its "
        "current branch (one of its messages, after it in the file); null before its first.",
    )
    message = _line(
        "message",
        {
            "id": UUID,
            "conversation_id": UUID,
            "chat_session_id": UUID,
            "parent_id": nullable(UUID),
            "role": _enum(MessageRole),
            "content": text,
            "status": _enum(MessageStatus),
            "model_id": nullable(UUID),
            "finish_reason": nullable(text),
            "usage": nullable(
                obj(
                    {
                        "prompt_tokens": COUNT,
                        "completion_tokens": COUNT,
                        "estimated": {"type": "boolean"},
                    }
                )
            ),
            "error": nullable(obj({"code": text, "message": text})),
            "latency": nullable(
                obj(
                    {
                        "first_token_ms": integer,
                        "total_ms": COUNT,
                    }
                )
            ),
            "created_at": moment,
            "updated_at": moment,
            "feedback": nullable(
                obj(
                    {
                        "rating": _enum(Rating),
                        "comment": nullable(text),
                        "created_at": moment,
                        "updated_at": moment,
                    }
                )
            ),
        },
        "A message of a session before it, with the feedback on it. `parent_id`: the message "
        "it follows in its session (before it in the file); messages with the same parent are "
        "the alternatives at that place (regenerated replies, edited questions).",
    )
    end = _line(
        "end",
        {"conversations": COUNT, "sessions": COUNT, "messages": COUNT},
        "The last line: how many of each the file holds.",
    )
    return {
        "ExportLine": {
            "oneOf": [
                ref(name)
                for name in (
                    "ExportHeader",
                    "ExportConversation",
                    "ExportSession",
                    "ExportMessage",
                    "ExportEnd",
                )
            ],
            "description": "One line of an export file (JSON Lines), by its `type`.",
        },
        "ExportHeader": header,
        "ExportConversation": conversation,
        "ExportSession": session,
        "ExportMessage": message,
        "ExportEnd": end,
    }
