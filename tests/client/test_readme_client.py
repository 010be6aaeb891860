"""README.md's client examples run as printed, against a real served instance."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conversation_service.testing.served import Served

README = Path(__file__).resolve().parents[2] / "README.md"


def client_examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [block for block in blocks if "conversation_service.client" in block]


def run_example(code: str, served: Served, cwd: Path) -> list[str]:
    assert served.token and served.org_id
    env = {
        **os.environ,
        "CONVERSATION_SERVICE_URL": served.base_url,
        "CONVERSATION_SERVICE_TOKEN": served.token,
        "CONVERSATION_SERVICE_ORG": served.org_id,
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,  # away from the source tree: the installed package
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_readme_has_a_sync_and_an_async_client_example() -> None:
    sync, async_ = client_examples()
    assert "Client(" in sync and "AsyncClient(" in async_


def test_the_sync_example_streams_a_reply_and_lists_the_messages(
    served: Served, tmp_path: Path
) -> None:
    sync, _ = client_examples()
    question = "Can you explain how vector databases work?"
    lines = run_example(sync, served, tmp_path)
    assert lines[0] == "Echo: " + question
    finish, tokens = lines[1].split()
    assert finish == "stop" and int(tokens) > 0
    assert lines[2:] == [f"user completed {question}", f"assistant completed Echo: {question}"]


@pytest.mark.parametrize("loop", ["trio", "asyncio"])
def test_the_async_example_runs_on_trio_and_asyncio(
    served: Served, tmp_path: Path, loop: str
) -> None:
    _, async_ = client_examples()
    if loop == "asyncio":
        assert async_.rstrip().endswith("trio.run(main)")
        async_ = (
            async_.rstrip().removesuffix("trio.run(main)") + "import asyncio\nasyncio.run(main())"
        )
    lines = run_example(async_, served, tmp_path)
    assert lines[0] == "Echo: hi there" and "Async" in lines[1:]
