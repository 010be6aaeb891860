"""bench/search_bench.py: a tiny run prints every figure the README quotes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "search_bench.py"


def test_a_tiny_run_prints_every_figure() -> None:
    command = [sys.executable, str(BENCH), "--messages", "400", "--rounds", "1", "--writes", "100"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"index build \(the search migration: 900 messages, 40 titles\)", out), out
    assert re.search(r"writes without the index: 100 messages .* messages/s", out), out
    assert re.search(r"writes with the index: +100 messages .* messages/s", out), out
    assert re.search(r"^ +all +[\d.]+ +[\d.]+ +[\d.]+$", out, re.M), out
    for kind in ("rare word", "very common word", "phrase", "prefix", "archived only"):
        assert re.search(rf"^ +{kind} +[\d.]+", out, re.M), kind
