"""The example project under examples/ (an app embedding the library, tested with the testing
kit's plugin, scripted model and strategies) passes its own test suite, run as its own
project: its pyproject.toml, its rootdir, the kit's plugin loaded from the installed package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("project", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_the_example_project_passes_its_tests(project: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLES / project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout
