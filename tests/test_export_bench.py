"""bench/export_bench.py: a tiny run fills, exports and imports, and prints every figure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "export_bench.py"


@pytest.mark.slow
def test_a_tiny_run_prints_every_figure() -> None:
    command = [sys.executable, str(BENCH), "--messages", "150,300", "--per-conversation", "40"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    export, imported = result.stdout.split("GET /api/conversation/export")[1].split("POST")
    figures = r"\s+\d+ MiB\s+[\d.]+\s+[\d,]+\s+[\d.]+\s+[\d.]+ MiB\s+[\d.]+ MiB\s+-?[\d.]+ MiB"
    for size in ("150", "300"):
        assert re.search(rf"^\s+{size}{figures}$", export, re.M), result.stdout
        assert re.search(rf"^\s+{size}{figures}$", imported, re.M), result.stdout
