"""OpenAPI links: where the ids in a response go next.

They tell readers how the operations chain, and drive schemathesis' stateful tests
(create a conversation, a session in it on echo, stream to it, read the reply again, ...).
"""

from __future__ import annotations

from typing import Any

from conversation_service.entrypoints.http import openapi_responses as r
from conversation_service.entrypoints.http.openapi_schemas import ECHO_MODEL_ID


def _link(operation_id: str, description: str, **values: Any) -> dict[str, Any]:
    """A link passing `org_id` on, and `values`: query parameters, or a body under `body`."""
    body = values.pop("body", None)
    link: dict[str, Any] = {
        "operationId": operation_id,
        "description": description,
        "parameters": {"org_id": "$request.query.org_id", **values},
    }
    if body is not None:
        link["requestBody"] = body
    return link


def created_conversation() -> dict[str, Any]:
    """createConversation's 201."""
    the_id = "$response.body#/id"
    links = {
        "GetWithSessions": _link(
            "getConversationWithSessions", "The new conversation.", conversation_id=the_id
        ),
        "ListMessages": _link("listMessages", "Its messages.", conversation_id=the_id),
        "CreateSession": _link(
            "createSession",
            "A chat session in it, on the built-in echo model.",
            body={"conversation_id": the_id, "model_id": ECHO_MODEL_ID},
        ),
    }
    return {**r.json_response("Created.", "Conversation"), "links": links}


def created_session() -> dict[str, Any]:
    """createSession's 201."""
    session = {"chat_session_id": "$response.body#/id"}
    links = {
        "StreamChat": _link("streamChat", "Send it a message.", body=session),
        "Cancel": _link("cancelReply", "Cancel its reply.", body=session),
        "Complete": _link("completeSession", "Close it.", body=session),
        "GetConversation": _link(
            "getConversationWithSessions",
            "Its conversation.",
            conversation_id="$response.body#/conversation_id",
        ),
        "ListMessages": _link(
            "listMessages",
            "Its conversation's messages.",
            conversation_id="$response.body#/conversation_id",
        ),
    }
    return {**r.json_response("Created, active.", "ChatSession"), "links": links}


def message_page() -> dict[str, Any]:
    """listMessages' 200; its second message is the reply to the first, once one streamed."""
    reply, question = "$response.body#/messages/1", "$response.body#/messages/0"
    links = {
        "FollowReply": _link(
            "reattachStream",
            "Follow the first reply again.",
            chat_session_id=f"{reply}/chat_session_id",
            message_id=f"{reply}/id",
        ),
        "Regenerate": _link(
            "regenerateReply",
            "Answer the first question again.",
            body={"chat_session_id": f"{reply}/chat_session_id", "message_id": f"{reply}/id"},
        ),
        "Edit": _link(
            "editMessage",
            "Ask the first question another way.",
            body={
                "chat_session_id": f"{question}/chat_session_id",
                "message_id": f"{question}/id",
                "content": "Put another way?",
            },
        ),
        "SelectBranch": _link(
            "selectBranch",
            "Go back to the first reply's branch.",
            body={"chat_session_id": f"{reply}/chat_session_id", "message_id": f"{reply}/id"},
        ),
        "ListBranch": _link(
            "listMessages",
            "The first reply's branch.",
            conversation_id=f"{reply}/conversation_id",
            leaf_id=f"{reply}/id",
        ),
    }
    return {**r.json_response("A page.", "MessagePage"), "links": links}
