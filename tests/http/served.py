"""Run `conversation-service serve` as a real process, as a user would."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs

COMMAND = [sys.executable, "-m", "conversation_service.entrypoints.cli"]


def cli(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


@attrs.define
class Served:
    process: subprocess.Popen[str]
    base_url: str
    output: list[str]
    org_id: str | None = None
    token: str | None = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def serve(
    data_dir: Path,
    *extra: str,
    timeout: float = 30,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
) -> Served:
    """Start the server on a free port and wait for its ready line (`env`: extra variables;
    `log_file`: where its log lines, on stderr, go; else nowhere)."""
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    with open(log_file or os.devnull, "w") as log:  # the process has its own copy
        process = subprocess.Popen(
            [*COMMAND, "serve", "--port", "0", "--data-dir", str(data_dir), *extra],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    # select() cannot see lines already pulled into the pipe's buffer: read in a thread.
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        output.append(line)
        found = re.search(r"ready on (http://\S+)", line)
        if found:
            served = Served(process=process, base_url=found.group(1), output=output)
            text = "".join(output)
            org = re.search(r"org_id: (\S+)", text)
            token = re.search(r"token:\s+(\S+)", text)
            served.org_id = org.group(1) if org else None
            served.token = token.group(1) if token else None
            return served
    process.kill()
    raise AssertionError("server did not become ready:\n" + "".join(output))


def _pump(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
