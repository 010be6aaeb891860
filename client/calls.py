"""The API's calls without I/O: what each sends and how its answer reads. The sync and async
clients send the same Calls, so they cannot drift apart.

A POST's Idempotency-Key is made here, once per Call: the retries of one call resend it, so
the server does the work once (README, "Retrying safely").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import attrs
import httpx

from conversation_service.client.decoding import decode
from conversation_service.client.errors import ResponseFormatError
from conversation_service.client.types import (
    ChatSession,
    ContextScope,
    Conversation,
    ConversationWithSessions,
    GenerationParams,
    Message,
    Model,
    Multitask,
    Page,
    SearchResult,
    UsageReport,
)

T = TypeVar("T")
U = TypeVar("U")


@attrs.frozen(kw_only=True)
class Call(Generic[T]):
    """One logical request: what to send, and what its answer means."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, str] = attrs.field(factory=dict)
    body: Any = None
    idempotency_key: str | None = attrs.field()

    @idempotency_key.default
    def _new_key(self) -> str | None:
        return uuid.uuid4().hex if self.method == "POST" else None

    def headers(self, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        return headers


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ResponseFormatError(f"the answer is not JSON: {response.text[:200]!r}") from None


def _one(cls: type[T]) -> Callable[[httpx.Response], T]:
    return lambda response: decode(_json(response), cls)


def _page(key: str, cls: type[T]) -> Callable[[httpx.Response], Page[T]]:
    def read(response: httpx.Response) -> Page[T]:
        body = _json(response)
        try:
            items = tuple(decode(item, cls) for item in body[key])
            return Page(
                items=items,
                limit=int(body["limit"]),
                offset=int(body["offset"]),
                has_more=bool(body["has_more"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ResponseFormatError(f"the answer is not a page of {key}: {body!r}") from None

    return read


def _nothing(response: httpx.Response) -> None:
    return None


def _field(name: str, kind: Callable[[Any], U]) -> Callable[[httpx.Response], U]:
    def read(response: httpx.Response) -> U:
        body = _json(response)
        try:
            return kind(body[name])
        except (KeyError, TypeError, ValueError):
            raise ResponseFormatError(f"the answer has no {name}: {body!r}") from None

    return read


def _models(response: httpx.Response) -> list[Model]:
    body = _json(response)
    listed = body.get("models") if isinstance(body, dict) else None
    if not isinstance(listed, list):
        raise ResponseFormatError(f"the answer is not a list of models: {body!r}")
    return [decode(model, Model) for model in listed]


def list_models() -> Call[list[Model]]:
    return Call(method="GET", path="/api/models", read=_models)


def register_model(entry: Mapping[str, Any]) -> Call[Model]:
    return Call(method="POST", path="/api/models", body=dict(entry), read=_one(Model))


def remove_model(model_id: UUID | str) -> Call[None]:
    return Call(method="DELETE", path=f"/api/models/{model_id}", read=_nothing)


def create_conversation(title: str, is_archived: bool) -> Call[Conversation]:
    body = {"title": title, "is_archived": is_archived}
    return Call(method="POST", path="/api/conversation/create", body=body, read=_one(Conversation))


def list_conversations(
    limit: int, offset: int, is_archived: bool | None
) -> Call[Page[Conversation]]:
    params = {"limit": str(limit), "offset": str(offset)}
    if is_archived is not None:
        params["is_archived"] = "true" if is_archived else "false"
    return Call(
        method="GET",
        path="/api/conversation/list",
        params=params,
        read=_page("conversations", Conversation),
    )


def search(q: str, limit: int, offset: int, is_archived: bool | None) -> Call[Page[SearchResult]]:
    params = {"q": q, "limit": str(limit), "offset": str(offset)}
    if is_archived is not None:
        params["is_archived"] = "true" if is_archived else "false"
    return Call(
        method="GET",
        path="/api/conversation/search",
        params=params,
        read=_page("results", SearchResult),
    )


def get_conversation(conversation_id: UUID | str) -> Call[ConversationWithSessions]:
    return Call(
        method="GET",
        path="/api/conversation/get_with_sessions",
        params={"conversation_id": str(conversation_id)},
        read=_one(ConversationWithSessions),
    )


def list_messages(
    conversation_id: UUID | str, limit: int, offset: int, leaf_id: UUID | str | None = None
) -> Call[Page[Message]]:
    params = {"conversation_id": str(conversation_id), "limit": str(limit), "offset": str(offset)}
    if leaf_id is not None:
        params["leaf_id"] = str(leaf_id)
    return Call(
        method="GET",
        path="/api/conversation/messages",
        params=params,
        read=_page("messages", Message),
    )


def create_session(
    conversation_id: UUID | str,
    model_id: UUID | str,
    system_prompt: str | None,
    params: GenerationParams | None,
    context: ContextScope | str | None,
) -> Call[ChatSession]:
    body: dict[str, Any] = {"conversation_id": str(conversation_id), "model_id": str(model_id)}
    if system_prompt is not None:
        body["system_prompt"] = system_prompt
    if params is not None:
        body["params"] = {k: v for k, v in attrs.asdict(params).items() if v is not None}
    if context is not None:
        body["context"] = str(context)
    return Call(
        method="POST",
        path="/api/conversation/create_session",
        body=body,
        read=_one(ChatSession),
    )


def stream_chat(
    session_id: UUID | str, message: str, multitask: Multitask | str | None
) -> Call[None]:
    """The POST that sends a message; its answer is the reply's stream."""
    body = {"chat_session_id": str(session_id), "message": message}
    if multitask is not None:
        body["multitask"] = str(multitask)
    return Call(method="POST", path="/api/conversation/stream_chat", body=body, read=_nothing)


def regenerate(
    session_id: UUID | str, message_id: UUID | str | None, multitask: Multitask | str | None
) -> Call[None]:
    """The POST that asks for another reply; its answer is the new reply's stream."""
    body = {"chat_session_id": str(session_id)}
    if message_id is not None:
        body["message_id"] = str(message_id)
    if multitask is not None:
        body["multitask"] = str(multitask)
    return Call(method="POST", path="/api/conversation/regenerate", body=body, read=_nothing)


def edit_message(
    session_id: UUID | str, message_id: UUID | str, content: str, multitask: Multitask | str | None
) -> Call[None]:
    """The POST that sends a new version of a user message; its answer is the reply's stream."""
    body = {"chat_session_id": str(session_id), "message_id": str(message_id), "content": content}
    if multitask is not None:
        body["multitask"] = str(multitask)
    return Call(method="POST", path="/api/conversation/edit", body=body, read=_nothing)


def select_branch(session_id: UUID | str, message_id: UUID | str) -> Call[ChatSession]:
    return Call(
        method="POST",
        path="/api/conversation/select_branch",
        body={"chat_session_id": str(session_id), "message_id": str(message_id)},
        read=_one(ChatSession),
    )


def reattach(session_id: UUID | str, message_id: UUID | str) -> Call[None]:
    """The GET that follows a reply again; the resume point goes in Last-Event-ID."""
    return Call(
        method="GET",
        path="/api/conversation/stream",
        params={"chat_session_id": str(session_id), "message_id": str(message_id)},
        read=_nothing,
    )


def cancel(session_id: UUID | str, message_id: UUID | str | None) -> Call[bool]:
    body = {"chat_session_id": str(session_id)}
    if message_id is not None:
        body["message_id"] = str(message_id)
    return Call(
        method="POST", path="/api/conversation/cancel", body=body, read=_field("cancelled", bool)
    )


def complete_session(session_id: UUID | str) -> Call[ChatSession]:
    return Call(
        method="POST",
        path="/api/conversation/complete_session",
        body={"chat_session_id": str(session_id)},
        read=_one(ChatSession),
    )


def usage(start: datetime | None, end: datetime | None) -> Call[UsageReport]:
    params = {}
    if start is not None:
        params["from"] = start.isoformat()
    if end is not None:
        params["to"] = end.isoformat()
    return Call(method="GET", path="/api/usage", params=params, read=_one(UsageReport))


def health() -> Call[str]:
    return Call(method="GET", path="/healthz", read=_field("status", str))
