"""Parameters, headers and responses the API's operations share, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from conversation_service.domain.search import MAX_QUERY_CHARS, MAX_QUERY_WORDS, MIN_PREFIX_CHARS
from conversation_service.entrypoints.http.openapi_events import ID_SCHEME
from conversation_service.entrypoints.http.openapi_schemas import UUID, Schema, ref
from conversation_service.entrypoints.http.routes import HttpSettings

OFFSET_MAX = 2**31  # routes.py
AFTER_MAX = 10**18 - 1  # 18 digits: the longest event id the server parses
MOMENT: Schema = {
    "type": "string",
    "anyOf": [{"format": "date-time"}, {"format": "date"}],
    "description": "An ISO 8601 date-time or date (a date-time without a zone is UTC).",
}


def _query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    if not required:
        description += " Empty is the same as absent."
    parameter: Schema = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }
    if not required:
        # inputs.py reads `?limit=` as no limit given, as HTML forms send unset fields.
        parameter["allowEmptyValue"] = True
    return parameter


def parameters(settings: HttpSettings) -> dict[str, Schema]:
    def limit(default: int, maximum: int) -> Schema:
        return _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
            f"Page size, 1 to {maximum}.",
        )

    return {
        "OrgId": _query(
            "org_id", UUID, "The organisation to act in: the token's own.", required=True
        ),
        "ConversationId": _query("conversation_id", UUID, "The conversation.", required=True),
        "ChatSessionId": _query("chat_session_id", UUID, "The chat session.", required=True),
        "MessageId": _query(
            "message_id",
            UUID,
            "The reply: `message_id` of its `start` event.",
            required=True,
        ),
        "LeafId": _query(
            "leaf_id",
            UUID,
            "Show this message's branch of its chat session, down its newest children, "
            "instead of the session's current branch (other sessions show theirs).",
        ),
        "ListLimit": limit(settings.list_default_limit, settings.list_max_limit),
        "MessagesLimit": limit(settings.messages_default_limit, settings.messages_max_limit),
        "Offset": _query(
            "offset",
            {"type": "integer", "minimum": 0, "maximum": OFFSET_MAX, "default": 0},
            "How many items to skip.",
        ),
        "SearchLimit": limit(settings.search_default_limit, settings.search_max_limit),
        "SearchQuery": _query(
            "q",
            {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_QUERY_CHARS,
                "pattern": "^[^\\u0000]*$",
            },
            'What to search for: words, all of which must match; `"quoted words"` in a '
            "row; `word*` for any word beginning so (at least "
            f"{MIN_PREFIX_CHARS} letters or digits before the `*`; after a phrase, its last "
            "word). A word is a run of letters and digits, compared without case or the "
            "accents of Latin letters; anything else only separates words (no operators). "
            f"400 when it holds no word, more than {MAX_QUERY_WORDS} words, or a NUL.",
            required=True,
        ),
        "IsArchived": _query(
            "is_archived", {"type": "boolean"}, "Only archived (true) or unarchived (false)."
        ),
        "After": _query(
            "after",
            {"type": "integer", "minimum": 0, "maximum": AFTER_MAX},
            "Send the events after this id (absent: all). Last-Event-ID wins if sent.",
        ),
        "From": _query(
            "from",
            MOMENT,
            "Start of the period (inclusive); default: `to` minus 30 days.",
        ),
        "To": _query("to", MOMENT, "End of the period (exclusive); default: now."),
        "ModelIdPath": {
            "name": "model_id",
            "in": "path",
            "required": True,
            "schema": UUID,
            "description": "A model this organisation registered.",
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
            "description": "Makes a retry safe: the same key and request within 24 h get the "
            "first answer again (a stream re-attaches to the same reply); the same key with "
            "another request is 400, and 409 while the first is still being handled.",
        },
        "LastEventId": {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "integer", "minimum": 0, "maximum": AFTER_MAX},
            "description": "The id of the last event received (decimal digits, as the stream "
            "sent it); sent by EventSource on reconnect.",
        },
    }


def _header(schema: Schema, description: str) -> Schema:
    return {"schema": schema, "description": description}


HEADERS: dict[str, Schema] = {
    "X-Request-Id": _header(
        {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
        "The request's id: the client's own X-Request-Id if it fits, else a new one.",
    ),
    "X-RateLimit-Limit": _header(
        {"type": "integer", "minimum": 1}, "Requests this token may make per window."
    ),
    "X-RateLimit-Remaining": _header(
        {"type": "integer", "minimum": 0}, "Requests left in the current window."
    ),
    "X-RateLimit-Reset": _header(
        {"type": "integer", "minimum": 0}, "Seconds until the window frees a request."
    ),
    "WWW-Authenticate": _header(
        {"type": "string", "pattern": "^Bearer( |$)"}, "The scheme to authenticate with."
    ),
    "Retry-After": _header({"type": "integer", "minimum": 1}, "Seconds to wait."),
    "Cache-Control": _header({"const": "no-cache"}, "Streams are never cached."),
    "Location": _header({"type": "string"}, "Where the resource is (a relative URL)."),
    "Content-Security-Policy": _header(
        {"type": "string"}, "The page may load and call this server only."
    ),
    "Idempotent-Replayed": _header(
        {"const": "true"}, "This is the kept answer to an earlier request with the same key."
    ),
}


def response_headers(
    *, rate: bool | None, extra: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> Schema:
    """X-Request-Id always; the rate headers required (True), optional (False) or absent.

    Inline, not $ref: a Reference Object cannot say `required`.
    """
    names = ["X-Request-Id", *extra]
    if rate is not None:
        names += ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
    required = {"X-Request-Id", *extra} | (set(names) if rate else set())
    names += optional
    return {name: {**HEADERS[name], "required": name in required} for name in names}


ERRORS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: (
        "BadRequest",
        "A missing, malformed or unknown field or query parameter, or bad JSON; `field` names it.",
        (),
    ),
    401: ("Unauthorized", "A missing, malformed or unknown token.", ("WWW-Authenticate",)),
    403: (
        "Forbidden",
        "The token belongs to another organisation than `org_id`, or its role may not do this.",
        (),
    ),
    404: ("NotFound", "An id that does not exist in this organisation.", ()),
    409: (
        "Conflict",
        "The session's state does not allow this now, or a request with this "
        "Idempotency-Key is still being handled.",
        (),
    ),
    413: ("PayloadTooLarge", "The body is over {max_body_bytes} bytes.", ()),
    429: (
        "TooManyRequests",
        "Over the token's request rate, the organisation's open streams, or the session's queue.",
        ("Retry-After",),
    ),
    500: ("InternalError", "Unexpected; logged with the request id, no details in the body.", ()),
    503: (
        "Unavailable",
        "Storage is unavailable (`storage_unavailable`), the service is shutting down "
        "(`shutting_down`), or the server holds as many connections as it may "
        "(`too_many_connections`, answered before the request is read).",
        (),
    ),
}


def error_responses(settings: HttpSettings) -> dict[str, Schema]:
    return {
        name: {
            "description": description.format(max_body_bytes=settings.max_body_bytes),
            "headers": response_headers(rate=False, extra=extra),
            "content": {"application/json": {"schema": ref("Error")}},
        }
        for name, description, extra in ERRORS.values()
    }


def errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"} for status in statuses
    }


def json_response(description: str, schema: str, *, rate: bool | None = True) -> Schema:
    optional = ("Idempotent-Replayed",) if rate else ()
    return {
        "description": description,
        "headers": response_headers(rate=rate, optional=optional),
        "content": {"application/json": {"schema": ref(schema)}},
    }


def empty_response(description: str) -> Schema:
    return {"description": description, "headers": response_headers(rate=True)}


def stream_response(settings: HttpSettings) -> Schema:
    return {
        "description": "The reply as Server-Sent Events. "
        + ID_SCHEME.format(keepalive=settings.keepalive_interval),
        "headers": response_headers(
            rate=True, extra=("Cache-Control",), optional=("Idempotent-Replayed",)
        ),
        "content": {"text/event-stream": {"schema": ref("ReplyEvent")}},
    }
