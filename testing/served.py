"""`conversation-service serve` as a real process on a free port, as an operator runs it.

`serve(data_dir)` starts it and waits for its ready line; on an empty database its first
start makes an organisation and an admin token, which `Served` reads from what it printed.
`served(data_dir)` is the same as a context manager that stops it (SIGTERM) on the way out.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from conversation_service.client import AsyncClient, Client

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
    """A running server: its URL, what it printed, and its first start's org and token."""

    process: subprocess.Popen[str]
    base_url: str
    output: list[str]
    org_id: str | None = None
    token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The admin token's Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **options: Any) -> Client:
        """The Python client of this server, acting with its first start's admin token."""
        assert self.token and self.org_id, "the database was not empty: no token printed"
        return Client(self.base_url, token=self.token, org_id=self.org_id, **options)

    def async_client(self, **options: Any) -> AsyncClient:
        assert self.token and self.org_id, "the database was not empty: no token printed"
        return AsyncClient(self.base_url, token=self.token, org_id=self.org_id, **options)

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


@contextmanager
def served(
    data_dir: Path, *extra: str, timeout: float = 30, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """`serve(...)`, stopped by SIGTERM on the way out; it must exit 0 within 30 s."""
    running = serve(data_dir, *extra, timeout=timeout, env=env)
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"the server exited {code}:\n" + "".join(running.output)


def _pump(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
