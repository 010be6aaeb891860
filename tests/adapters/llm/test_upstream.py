"""What both providers share: retries before the first token, the URL guard, no redirects.

Against real (fake) servers; attempts are counted in the server's request log. Waits are
real but short (base backoff 10 ms); only the Retry-After test waits a whole second.
"""

from __future__ import annotations

import pytest
import trio

from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.adapters.llm.url_guard import UnsafeModelURL
from conversation_service.ports.language_model import ModelFailure
from conversation_service.testing.upstream import (
    Exchange,
    FakeOpenAIServer,
    Handler,
    error_reply,
    in_turn,
    start_fake_openai,
    streaming_reply,
)

from .generation import PROMPT, closed_port, failure, generate
from .providers import OPENAI


async def serve(nursery: trio.Nursery, *handlers: Handler) -> FakeOpenAIServer:
    return await start_fake_openai(nursery, in_turn(*handlers))


# -- retries ----------------------------------------------------------------------------


async def test_a_503_then_a_reply_succeeds_on_the_second_attempt(nursery, client, provider):
    server = await serve(nursery, provider.error(503, "busy"), provider.reply(["Hi"]))

    emitted, _ = await generate(provider.model(client, server.root_url))

    assert emitted == ["Hi"]
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("status", "code", "attempts", "said"),
    [
        (500, "upstream_error", 3, "HTTP 500): it broke (gave up after 3 attempts)"),
        (429, "upstream_rate_limited", 3, "HTTP 429): it broke (gave up after 3 attempts)"),
        (400, "upstream_error", 1, "refused the request (HTTP 400): it broke"),  # never again
    ],
)
async def test_a_failing_status_is_retried_max_retries_times_when_transient(
    nursery, client, provider, status, code, attempts, said
):
    server = await serve(nursery, provider.error(status, "it broke"))

    error = await failure(provider.model(client, server.root_url))

    assert (error.code, len(server.requests)) == (code, attempts)
    assert said in error.message


async def test_max_retries_bounds_the_attempts(nursery, client):
    server = await serve(nursery, error_reply(502))
    model = OPENAI.model(client, server.root_url, retries=Retries(max_retries=4, base=0.01))

    await failure(model)

    assert len(server.requests) == 5


async def test_a_429_then_a_reply_waits_as_retry_after_says(nursery, client):
    rate_limited = error_reply(429, "slow down", headers={"Retry-After": "1"})
    server = await serve(nursery, rate_limited, streaming_reply(["Hi"]))
    start = trio.current_time()

    emitted, _ = await generate(OPENAI.model(client, server.root_url))

    assert emitted == ["Hi"]
    assert len(server.requests) == 2
    assert trio.current_time() - start >= 1.0


async def test_a_retry_after_beyond_max_retry_wait_fails_at_once(nursery, client):
    server = await serve(nursery, error_reply(429, "quota", headers={"Retry-After": "60"}))
    start = trio.current_time()

    error = await failure(OPENAI.model(client, server.root_url))

    assert error.code == "upstream_rate_limited"
    assert "retry after 60s, longer than the 30s" in error.message
    assert len(server.requests) == 1
    assert trio.current_time() - start < 1


async def test_the_total_timeout_covers_retries(nursery, client):
    server = await serve(nursery, error_reply(503, headers={"Retry-After": "0.2"}))
    timeouts = Timeouts(first_token=0.5, total=0.5)
    model = OPENAI.model(client, server.root_url, timeouts=timeouts, retries=Retries(max_retries=9))

    error = await failure(model)

    assert "no time left to retry" in error.message
    assert len(server.requests) == 3  # at about 0, 0.2 and 0.4 s; a 4th would start past 0.5 s


async def test_connection_refused_is_upstream_unavailable_after_retries(client, provider):
    port = await closed_port()

    error = await failure(provider.model(client, f"http://127.0.0.1:{port}"))

    assert error.code == "upstream_unavailable"
    assert "gave up after 3 attempts" in error.message


async def test_a_failure_after_the_first_token_is_not_retried(nursery, client, provider):
    server = await serve(nursery, provider.first_text, provider.reply(["never"]))
    emitted: list[str] = []

    async def emit(text: str) -> None:
        emitted.append(text)

    with trio.fail_after(5), pytest.raises(ModelFailure) as info:
        await provider.model(client, server.root_url).generate(PROMPT, emit)

    assert info.value.code == "upstream_bad_response"
    assert emitted == ["Hel"]
    assert len(server.requests) == 1


async def test_cancelling_during_a_backoff_is_prompt(nursery, client):
    server = await serve(nursery, error_reply(429, headers={"Retry-After": "20"}))
    model = OPENAI.model(client, server.root_url, timeouts=Timeouts(total=60))

    async def emit(text: str) -> None:
        raise AssertionError("nothing is emitted")

    with trio.fail_after(5):
        with trio.move_on_after(0.3) as caller:
            await model.generate(PROMPT, emit)
    assert caller.cancelled_caught
    assert len(server.requests) == 1


# -- redirects and the URL guard ---------------------------------------------------------


async def test_a_redirect_is_an_upstream_error_and_is_not_followed(nursery, client, provider):
    elsewhere = await serve(nursery, provider.reply(["from the redirect target"]))

    async def redirects(exchange: Exchange) -> None:
        location = elsewhere.root_url + exchange.request.path
        await exchange.send_json(302, {}, headers={"Location": location})

    server = await serve(nursery, redirects)

    error = await failure(provider.model(client, server.root_url))

    assert error.code == "upstream_error"
    assert "redirect (HTTP 302)" in error.message
    assert len(server.requests) == 1
    assert elsewhere.requests == []


class RecordingGuard:
    """A URL guard that lets through `allowed` checks, then refuses every one after."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.urls: list[str] = []

    async def __call__(self, url: str) -> None:
        self.urls.append(url)
        if len(self.urls) > self.allowed:
            raise UnsafeModelURL("the model host now resolves to 10.0.0.7 (private)")


async def test_the_guard_checks_the_url_before_every_attempt(nursery, client, provider):
    server = await serve(nursery, provider.error(503, "busy"), provider.reply(["Hi"]))
    guard = RecordingGuard(allowed=2)

    await generate(provider.model(client, server.root_url, guard=guard))

    expected = server.root_url + server.requests[0].path
    assert guard.urls == [expected, expected]


async def test_a_refused_url_is_model_misconfigured_and_nothing_is_sent(nursery, client, provider):
    server = await serve(nursery, provider.reply(["never"]))

    error = await failure(provider.model(client, server.root_url, guard=RecordingGuard(0)))

    assert error.code == "model_misconfigured"
    assert "10.0.0.7 (private)" in error.message
    assert server.requests == []


async def test_a_url_refused_before_a_retry_ends_the_retries(nursery, client, provider):
    # DNS rebinding: the name was public at the first attempt, private at the second.
    server = await serve(nursery, provider.error(503, "busy"), provider.reply(["never"]))

    error = await failure(provider.model(client, server.root_url, guard=RecordingGuard(1)))

    assert error.code == "model_misconfigured"
    assert len(server.requests) == 1
