"""The API's operations (`routes.py`), for the OpenAPI document: one entry per route."""

from __future__ import annotations

from typing import Any

from conversation_service.entrypoints.http import openapi_links as links
from conversation_service.entrypoints.http import openapi_responses as r
from conversation_service.entrypoints.http.openapi_schemas import ref
from conversation_service.entrypoints.http.routes import HttpSettings

API = "/api/conversation"
# Every status an authenticated route can answer with before its own logic runs.
GUARDED = (400, 401, 403, 429, 500, 503)


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    params: tuple[str, ...] = (),
    body: str | None = None,
    public: bool = False,
    description: str | None = None,
) -> dict[str, Any]:
    """An operation; unless `public`, it takes a Bearer token and `org_id`.

    One with a body is a POST that takes an Idempotency-Key (`idempotency.py`).
    """
    names = params if public else ("OrgId", *params)
    if body is not None:
        names = (*names, "IdempotencyKey")
        responses = {**r.errors(409), **responses}  # the key's first request is in flight
    found: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in names],
        "responses": responses,
    }
    if description:
        found["description"] = description
    if body is not None:
        found["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(body)}},
        }
    if public:
        found["security"] = []
    return found


def api_paths(settings: HttpSettings) -> dict[str, Any]:
    stream = r.stream_response(settings)
    ok = r.json_response
    return {
        f"{API}/create": {
            "post": operation(
                "createConversation",
                "Create a conversation",
                "conversations",
                {"201": links.created_conversation(), **r.errors(*GUARDED, 413)},
                body="CreateConversation",
            )
        },
        f"{API}/list": {
            "get": operation(
                "listConversations",
                "List conversations, newest activity first",
                "conversations",
                {"200": ok("A page.", "ConversationPage"), **r.errors(*GUARDED)},
                params=("ListLimit", "Offset", "IsArchived"),
            )
        },
        f"{API}/search": {
            "get": operation(
                "searchConversations",
                "Search conversations by their titles and messages, best first",
                "conversations",
                {"200": ok("A page of results.", "SearchPage"), **r.errors(*GUARDED)},
                params=("SearchQuery", "SearchLimit", "Offset", "IsArchived"),
                description="A conversation matches when its title, or one of its messages "
                "(not a reply still being written), holds every term. Those whose title "
                "matches come first, then the most relevant (the best of their matching "
                "messages), then the newest activity. Each result lists its matching "
                "messages and a snippet with the matches marked. Only this organisation's "
                "conversations are searched; 400 naming `q` for a query with no word in it.",
            )
        },
        f"{API}/get_with_sessions": {
            "get": operation(
                "getConversationWithSessions",
                "A conversation with its chat sessions (each with its live status)",
                "conversations",
                {"200": ok("Found.", "ConversationWithSessions"), **r.errors(*GUARDED, 404)},
                params=("ConversationId",),
            )
        },
        f"{API}/messages": {
            "get": operation(
                "listMessages",
                "A conversation's messages, oldest first: each session's current branch",
                "conversations",
                {"200": links.message_page(), **r.errors(*GUARDED, 404)},
                params=("ConversationId", "LeafId", "MessagesLimit", "Offset"),
                description="Each chat session's current branch (down to its `head_id`), "
                "merged in the order the messages were added: every message when nobody "
                "regenerated or edited. Each message says how many alternatives its place has "
                "(`sibling_count`) and which it is (`sibling_index`); `leaf_id` shows another "
                "branch of its session instead. 404: no such conversation, or `leaf_id` is no "
                "message of it.",
            )
        },
        f"{API}/create_session": {
            "post": operation(
                "createSession",
                "Create a chat session on a model",
                "sessions",
                {"201": links.created_session(), **r.errors(*GUARDED, 404, 413)},
                body="CreateSession",
                description="404: no such conversation or model in this organisation.",
            )
        },
        f"{API}/stream_chat": {
            "post": operation(
                "streamChat",
                "Send a message and stream the reply",
                "streaming",
                {"200": stream, **r.errors(*GUARDED, 404, 409, 413)},
                body="StreamChat",
                description="Everything that can be checked is checked before the first "
                "event, and answered as a JSON error. The user message is stored before "
                "`start`; a client that disconnects does not stop the reply. 409: the session "
                "is completed, or busy with `multitask: reject`.",
            )
        },
        f"{API}/regenerate": {
            "post": operation(
                "regenerateReply",
                "Regenerate a reply: another answer to the same question, streamed",
                "streaming",
                {"200": stream, **r.errors(*GUARDED, 404, 409, 413)},
                body="RegenerateReply",
                description="Streamed, checked and retried exactly as streamChat (the same "
                "events; `start` names the user message answered again). The first reply is "
                "kept beside the new one, which ends the session's current branch. 400 "
                "(`message_id`): not a reply; 404: not a message of this session; 409: the "
                "session is completed or busy (`multitask: reject`), the reply is not on the "
                "current branch (`not_on_current_branch`), or there is none "
                "(`nothing_to_regenerate`).",
            )
        },
        f"{API}/edit": {
            "post": operation(
                "editMessage",
                "Edit a user message: a new version beside it, answered and streamed",
                "streaming",
                {"200": stream, **r.errors(*GUARDED, 404, 409, 413)},
                body="EditMessage",
                description="Streamed, checked and retried exactly as streamChat. The new "
                "version follows what the edited message followed; the first and its replies "
                "stay on their own branch. 400 (`message_id`): not a user message; 404: not a "
                "message of this session; 409: the session is completed or busy, or the message "
                "is not on the current branch (`not_on_current_branch`).",
            )
        },
        f"{API}/select_branch": {
            "post": operation(
                "selectBranch",
                "Choose a session's current branch",
                "sessions",
                {
                    "200": ok("The session, its `head_id` moved.", "ChatSession"),
                    **r.errors(*GUARDED, 404, 409, 413),
                },  # fmt: skip
                body="SelectBranch",
                description="The branch through the message, down its newest children, "
                "becomes the current one: the session's next message follows it, and "
                "`messages` shows it. 404: not a message of this session; 409 "
                "(`session_busy`): the session is replying or has messages waiting.",
            )
        },
        f"{API}/stream": {
            "get": operation(
                "reattachStream",
                "Follow a reply again, running or finished",
                "streaming",
                {
                    "200": stream,
                    "204": {
                        "description": "The reply is over and `Last-Event-ID` (or `after`) "
                        "is its last event: nothing follows.",
                        "headers": r.response_headers(rate=True),
                    },
                    **r.errors(*GUARDED, 404),
                },
                params=("ChatSessionId", "MessageId", "After", "LastEventId"),
                description="The reply's events after `Last-Event-ID` (or `after`); a "
                "finished reply is replayed from storage, its remaining text as one `content`. "
                "400: an id beyond the `end` of a finished reply.",
            )
        },
        f"{API}/cancel": {
            "post": operation(
                "cancelReply",
                "Stop a running or queued reply",
                "sessions",
                {
                    "200": ok("Stopped, or nothing was running (`cancelled`).", "Cancelled"),
                    **r.errors(*GUARDED, 404, 413),
                },
                body="CancelReply",
                description="What was written is kept, stored as `cancelled`.",
            )
        },
        f"{API}/complete_session": {
            "post": operation(
                "completeSession",
                "Close a chat session for good",
                "sessions",
                {"200": ok("Completed.", "ChatSession"), **r.errors(*GUARDED, 404, 409, 413)},
                body="CompleteSession",
                description="A reply it is writing is stopped first (stored `cancelled`) and "
                "messages waiting their turn are dropped; completing twice is harmless.",
            )
        },
        "/api/models": {
            "get": operation(
                "listModels",
                "The models a chat session can use",
                "models",
                {"200": ok("This organisation's models.", "ModelList"), **r.errors(*GUARDED)},
            ),
            "post": operation(
                "registerModel",
                "Register a model for this organisation (admin)",
                "models",
                {"201": ok("Registered.", "Model"), **r.errors(*GUARDED, 409, 413)},
                body="RegisterModel",
                description="503: this server does not manage organisation models.",
            ),
        },
        "/api/models/{model_id}": {
            "delete": operation(
                "removeModel",
                "Remove a model this organisation registered (admin)",
                "models",
                {"204": r.empty_response("Removed."), **r.errors(*GUARDED, 404)},
                params=("ModelIdPath",),
            )
        },
        "/api/usage": {
            "get": operation(
                "getUsage",
                "Replies and tokens per model over a period",
                "models",
                {"200": ok("The report.", "UsageReport"), **r.errors(*GUARDED)},
                params=("From", "To"),
                description="400 when `from` is not before `to`.",
            )
        },
        "/healthz": {
            "get": operation(
                "healthz",
                "Liveness",
                "service",
                {"200": ok("Alive.", "Health", rate=None), **r.errors(500, 503)},
                public=True,
            )
        },
    }
