"""README.md stays true: its embedding example runs as printed."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_embedding_example_streams_a_reply_without_http(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # away from the source tree: the installed package
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split(" ", 1) for line in result.stdout.splitlines()]
    assert lines[0][0] == "start" and lines[-1][0] == "end" and lines[-1][1].startswith("stop")
    text = "".join(ast.literal_eval(rest) for kind, rest in lines if kind == "content")
    assert text == "Echo: hi there"


def test_readme_commands_are_the_ones_ci_runs() -> None:
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = ".venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    assert test_command in text and test_command in ci
    assert ".venv/bin/pip install . && .venv/bin/conversation-service serve" in text
