"""A Python client for the Conversation Service's HTTP API, sync (`Client`) and async
(`AsyncClient`, on trio or asyncio).

Standalone: it speaks HTTP only (httpx, httpx-sse) and imports none of the service's layers,
so a program that only calls a running service needs nothing else of it.

    with Client("http://127.0.0.1:8000", token=TOKEN, org_id=ORG) as client:
        conversation = client.create_conversation("Hello")
        session = client.create_session(conversation.id, ECHO_MODEL_ID)
        with client.stream_chat(session.id, "hi there") as stream:
            for text in stream.text_stream:
                print(text, end="")
            print(stream.final_message().usage)
"""

from conversation_service.client.async_client import AsyncClient, AsyncPager
from conversation_service.client.async_stream import AsyncChatStream
from conversation_service.client.errors import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConversationServiceError,
    IdempotencyKeyInFlightError,
    InternalServerError,
    ModelUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ReplyFailedError,
    ResponseFormatError,
    SessionBusyError,
    SessionCompletedError,
    StreamError,
    UnavailableError,
)
from conversation_service.client.events import (
    ContentEvent,
    EndEvent,
    ErrorEvent,
    Reply,
    StartEvent,
    StreamEvent,
)
from conversation_service.client.retries import RetryPolicy
from conversation_service.client.sync_client import Client, Pager
from conversation_service.client.sync_stream import ChatStream
from conversation_service.client.types import (
    ChatSession,
    ContextScope,
    Conversation,
    ConversationWithSessions,
    GenerationParams,
    Latency,
    Message,
    MessageStatus,
    Model,
    ModelUsage,
    Multitask,
    Page,
    ReplyFailure,
    Role,
    SearchResult,
    SessionStatus,
    Snippet,
    SnippetPart,
    Usage,
    UsageReport,
    UsageTotal,
)

# The built-in `echo` model's fixed id (README, "Models"): a development stand-in.
ECHO_MODEL_ID = "6563686f-0000-4000-8000-000000000000"

__all__ = [
    "ECHO_MODEL_ID",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AsyncChatStream",
    "AsyncClient",
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "ChatSession",
    "ChatStream",
    "Client",
    "ConflictError",
    "ContentEvent",
    "ContextScope",
    "Conversation",
    "ConversationServiceError",
    "ConversationWithSessions",
    "EndEvent",
    "ErrorEvent",
    "GenerationParams",
    "IdempotencyKeyInFlightError",
    "InternalServerError",
    "Latency",
    "Message",
    "MessageStatus",
    "Model",
    "ModelUnavailableError",
    "ModelUsage",
    "Multitask",
    "NotFoundError",
    "Page",
    "Pager",
    "PermissionDeniedError",
    "RateLimitedError",
    "Reply",
    "ReplyFailedError",
    "ReplyFailure",
    "ResponseFormatError",
    "RetryPolicy",
    "Role",
    "SearchResult",
    "SessionBusyError",
    "SessionCompletedError",
    "SessionStatus",
    "Snippet",
    "SnippetPart",
    "StartEvent",
    "StreamError",
    "StreamEvent",
    "UnavailableError",
    "Usage",
    "UsageReport",
    "UsageTotal",
]
