"""Instructions the service runs for one reply, counted by valgrind's callgrind: the gateway
benchmark's reply, as a figure a shared machine does not move.

gateway_bench.py times the service; on a machine shared with others its figures move by a
fifth from one run to the next, more than most single changes are worth. Instructions do not
move: two runs of this script agree to within a few tenths of a percent. So a change is
measured here (before and after), and gateway_bench.py says what the service does in time.

The same processes as gateway_bench.py (the mock upstream, the load generator), with the
service run under callgrind, instrumentation off until the measured window:

1. sessions with `--history` earlier messages, a few warm-up replies (not counted);
2. `--replies` replies one at a time (one client on one keep-alive connection);
3. `--clients` clients streaming back to back for `--seconds`.

Counted: user-space instructions of every thread of the service (the event loop's, SQLite's
and the log writer's), not the kernel's (system calls, loopback TCP). Under callgrind the
service runs some 50 times slower than it does, so the concurrent phase's replies overlap
differently from a real run; the one-at-a-time figure is the steadier of the two.
Needs valgrind (Debian: apt-get install valgrind).

    .venv/bin/python bench/gateway_instructions.py      # about a minute and a half
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway_bench import Bench, parse_args


def instructions(files: list[Path]) -> dict[int, int]:
    """Instructions per thread (1 is the main thread) from callgrind's dumps."""
    counts: dict[int, int] = {}
    for file in files:
        thread, total = 1, 0
        for line in file.read_text().splitlines():
            if line.startswith("thread: "):
                thread = int(line.split()[1])
            elif line.startswith("totals: "):
                total = int(line.split()[1])
        counts[thread] = counts.get(thread, 0) + total
    return counts


def measured(bench: Bench, out: Path, phase: str, **command: object) -> dict[str, Any]:
    """Run one load-generator phase with the service's instrumentation on: its result, with
    the instructions each thread ran under "instructions"."""
    pid = str(bench.service.pid)
    control = shutil.which("callgrind_control") or "callgrind_control"
    subprocess.run([control, "-i", "on", pid], check=True, capture_output=True)
    subprocess.run([control, "-z", pid], check=True, capture_output=True)
    result = bench.run(phase, **command)
    subprocess.run([control, "-i", "off", pid], check=True, capture_output=True)
    if result.get("errors"):
        raise RuntimeError(f"{phase} had errors: {result['errors']}")
    before = set(out.parent.glob(out.name + "*"))
    subprocess.run([control, "-d", pid], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while not set(out.parent.glob(out.name + "*")) - before:
        if time.monotonic() > deadline:
            raise RuntimeError("callgrind wrote no dump")
        time.sleep(0.2)
    time.sleep(1)  # every thread's dump written whole
    dumps = sorted(set(out.parent.glob(out.name + "*")) - before)
    kept = [dump.rename(dump.with_name(f"{dump.name}.{phase}")) for dump in dumps]
    return {**result, "instructions": instructions(kept)}


def line(title: str, replies: int, counts: dict[int, int]) -> str:
    total = sum(counts.values())
    main = counts.get(1, 0)
    return (
        f"{title:<28} {replies:5d} replies  {total / replies / 1e6:6.2f} M instructions a reply"
        f"  (event loop's thread {main / replies / 1e6:.2f} M, others "
        f"{(total - main) / replies / 1e6:.2f} M)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=20, help="earlier messages a session has")
    parser.add_argument("--chunks", type=int, default=50, help="content chunks a reply has")
    parser.add_argument("--replies", type=int, default=100, help="replies one at a time")
    parser.add_argument("--clients", type=int, default=4, help="0: no concurrent phase")
    parser.add_argument("--seconds", type=float, default=15, help="the concurrent phase's length")
    mine = parser.parse_args()
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    tmp = Path(tempfile.mkdtemp(prefix="gateway-instructions-"))
    out = tmp / "callgrind.out"
    prefix = (
        valgrind, "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
        f"--callgrind-out-file={out}",
    )  # fmt: skip
    bench = Bench(parse_args(["--quick"]), tmp, service_prefix=prefix, start_seconds=600)
    began = time.monotonic()
    try:
        bench.start()
        sessions = bench.run("sessions", count=max(mine.clients, 4))["sessions"]
        bench.run("history", sessions=sessions, messages=mine.history)
        common = {"kind": "service", "sessions": sessions, "chunks": mine.chunks}
        bench.run("ttfc", count=10, history=mine.history, **common)  # warm-up, not counted
        print(
            f"the service under callgrind: sessions of {mine.history} earlier messages, "
            f"{mine.chunks}-chunk replies from the mock upstream"
        )
        result = measured(
            bench, out, "ttfc", count=mine.replies, history=mine.history, warmup=0, **common
        )
        print(line("one stream at a time:", mine.replies, result["instructions"]), flush=True)
        if mine.clients:
            result = measured(
                bench, out, "throughput", clients=mine.clients, seconds=mine.seconds,
                warmup=0, history=mine.history, **{**common, "sessions": sessions[: mine.clients]},
            )  # fmt: skip
            replies = round(result["replies_per_s"] * result["seconds"])
            print(line(f"{mine.clients} clients back to back:", replies, result["instructions"]))
    finally:
        bench.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"(run took {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
