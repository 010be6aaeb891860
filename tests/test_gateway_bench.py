"""bench/gateway_bench.py: its mock upstream speaks what the `openai` provider reads, and a
tiny run of the bench prints every figure (the real service, upstream and load generator)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from conversation_service.adapters.llm.http1 import UpstreamClient
from conversation_service.adapters.llm.openai_chat import OpenAIChatModel
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.domain.context import PromptMessage
from conversation_service.testing.upstream.load import (
    directive,
    reply_text,
    start_mock_upstream,
)

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize(("chunks", "delay_ms"), [(50, 0), (7, 5)])
async def test_the_openai_provider_reads_a_mock_reply_whole(chunks, delay_ms):
    pieces: list[str] = []

    async def emit(text: str) -> None:
        pieces.append(text)

    async with trio.open_nursery() as nursery, UpstreamClient() as client:
        upstream, port = await start_mock_upstream(nursery)
        model = OpenAIChatModel(
            client,
            base_url=f"http://127.0.0.1:{port}/v1",
            upstream_model="mock",
            timeouts=Timeouts(connect=2, first_token=2, idle=2, total=10),
            retries=Retries(max_retries=0),
        )
        prompt = [
            PromptMessage(role="user", content=f"earlier {directive(1, 0, 200)}"),
            PromptMessage(role="assistant", content="an earlier reply"),
            PromptMessage(role="user", content=f"hello {directive(chunks, delay_ms)}"),
        ]
        for _ in range(2):
            pieces.clear()
            result = await model.generate(prompt, emit)
            assert "".join(pieces) == reply_text(chunks)
            assert len(pieces) == chunks
            assert result.finish_reason == "stop"
            assert result.usage is not None and not result.usage.estimated
            assert result.usage.completion_tokens == chunks
        assert upstream.requests == 2
        nursery.cancel_scope.cancel()


async def test_the_mock_upstream_keeps_connections_alive_for_clients_that_read_to_the_end():
    async with trio.open_nursery() as nursery, httpx.AsyncClient() as client:
        upstream, port = await start_mock_upstream(nursery)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for chunks, delay_ms in ((3, 0), (4, 2), (3, 0)):
            body = {"messages": [{"role": "user", "content": directive(chunks, delay_ms)}]}
            answer = await client.post(url, json=body)
            assert answer.headers["content-type"] == "text/event-stream"
            data = [line for line in answer.text.split("\n") if line.startswith("data: ")]
            assert data[-1] == "data: [DONE]"
            assert len(data) == 1 + chunks + 3  # role, content, finish, usage, [DONE]
        stats = (await client.get(f"http://127.0.0.1:{port}/stats")).json()
        assert stats == {"requests": 3, "connections": 1}
        nursery.cancel_scope.cancel()


def test_a_tiny_run_prints_every_figure():
    command = [
        sys.executable, str(BENCH / "gateway_bench.py"), "--quick", "--ttfc-streams", "5",
        "--seconds", "0.5", "--warmup", "0.1", "--clients", "2", "--long-chunks", "20",
        "--open-levels", "4,8", "--open-chunks", "10", "--ramp", "0.1", "--history", "4",
        "--long-history", "30", "--context-window", "2048",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr

    assert "protocol check, direct: a 50-chunk reply arrived whole" in out
    assert "protocol check, service: a 50-chunk reply arrived whole" in out
    assert re.search(r"service RSS idle: \d+\.\d MiB just started", out)
    assert out.count("\n(1) time to first content") == 2
    assert out.count("\n(2) completed replies/s") == 2
    assert "\n(3) content chunks/s" in out
    assert "\n(4) open streams held" in out
    assert "\n(5) service RSS" in out
    assert "the start events report" in out and "trimmed: yes" in out
    for figure in ("(1)", "(2)", "(3)"):
        for block in out.split(f"\n{figure}")[1:]:
            assert re.search(r"\n    direct : .*CPU ", block), block
            assert re.search(r"\n    service: .*CPU ", block), block
    for n in (4, 8):
        assert re.search(rf"direct  N=\s+{n}: held", out), out
        assert re.search(rf"service N=\s+{n}: (held|FAILED)", out), out
    assert "ERRORS" not in out, out

    table = out[out.index("figure ") :]
    for row in (
        "time to first content p50, overhead, 4 msgs",
        "time to first content p50, overhead, 30 msgs",
        "completed replies/s, 2 concurrent, 4 msgs",
        "completed replies/s, 2 concurrent, 30 msgs",
        "content chunks/s (20-chunk replies)",
        "open streams held",
        "service RSS idle",
        "service RSS at 300 open streams",
    ):
        assert re.search(rf"\n{re.escape(row)}[^|\n]*\| .+ \| .+ \| .+ \| (yes|no|-)", table), row
