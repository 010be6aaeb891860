"""Moved to the testing kit (`conversation_service.testing.upstream`); this name stays for
tests written before it. Import from the kit."""

from conversation_service.testing.upstream import (
    Exchange,
    FakeOpenAIServer,
    Handler,
    ReceivedRequest,
    chunk,
    error_reply,
    in_turn,
    start_fake_openai,
    streaming_reply,
    usage_chunk,
)

__all__ = [
    "Exchange",
    "FakeOpenAIServer",
    "Handler",
    "ReceivedRequest",
    "chunk",
    "error_reply",
    "in_turn",
    "start_fake_openai",
    "streaming_reply",
    "usage_chunk",
]
