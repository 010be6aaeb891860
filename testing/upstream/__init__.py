"""OpenAI-compatible upstreams on real sockets, for tests that want the real provider path.

- `ScriptedUpstream` (`start_scripted_upstream(nursery)`): plays the scripts of
  `conversation_service.testing.scripted` (chunks, pacing, errors before and after the first
  token, rate limits, silence, malformed streams); `registry_file` registers it as a model.
- `start_fake_openai(nursery, handler)`: the raw server under it, answering byte by byte as
  a handler writes (`Exchange`); stock handlers: `streaming_reply`, `error_reply`, `in_turn`;
  Anthropic's Messages API in `anthropic` (`messages_reply`, `messages_error`, ...).
- `load`: a fast mock for load tests and benchmarks (`python -m
  conversation_service.testing.upstream.load --port 0`), replies chosen by a directive in
  the message.
"""

from conversation_service.testing.upstream.openai import (
    UPSTREAM_MODEL_ID,
    UPSTREAM_MODEL_NAME,
    ScriptedUpstream,
    chunk,
    error_reply,
    in_turn,
    play,
    registry_file,
    start_scripted_upstream,
    streaming_reply,
    usage_chunk,
)
from conversation_service.testing.upstream.server import (
    Exchange,
    FakeOpenAIServer,
    Handler,
    ReceivedRequest,
    start_fake_openai,
)

__all__ = [
    "UPSTREAM_MODEL_ID",
    "UPSTREAM_MODEL_NAME",
    "Exchange",
    "FakeOpenAIServer",
    "Handler",
    "ReceivedRequest",
    "ScriptedUpstream",
    "chunk",
    "error_reply",
    "in_turn",
    "play",
    "registry_file",
    "start_fake_openai",
    "start_scripted_upstream",
    "streaming_reply",
    "usage_chunk",
]
