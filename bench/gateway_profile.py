"""Where the service's time goes under the gateway benchmark's load: py-spy on the service.

Starts the same three processes as gateway_bench.py, gives `--clients` sessions
`--history` earlier messages, then records the service with py-spy (pip install py-spy)
while the clients stream `--chunks`-chunk replies back to back (or, with `--ttfc`, one
stream at a time) and prints the functions that took the most time, inclusive and own.

    .venv/bin/python bench/gateway_profile.py --seconds 15 --clients 16
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from gateway_bench import Bench, parse_args


def _frame(entry: str) -> str:
    name, _, where = entry.partition(" (")
    return f"{name} {where.split(':')[0].rsplit('/', 1)[-1]}"


def summarise(raw: Path, top: int) -> None:
    """The heaviest functions of a py-spy raw (collapsed stacks) file."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    for title, counter in (("inclusive", inclusive), ("own", own)):
        print(f"\n{title} (share of {total} samples)")
        for frame, count in counter.most_common(top):
            print(f"  {count * 100 / total:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--ttfc", action="store_true", help="one stream at a time")
    parser.add_argument(
        "--open", type=int, default=0, help="N paced streams (20 ms apart) held at once"
    )
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--keep", type=Path, help="copy py-spy's raw output here")
    mine = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-profile-"))
    bench = Bench(parse_args(["--quick"]), tmp)
    try:
        bench.start()
        sessions = bench.run("sessions", count=mine.clients)["sessions"]
        bench.run("history", sessions=sessions, messages=mine.history)
        raw = tmp / "profile.txt"
        # Not --nonblocking: py-spy pauses the service for each sample, which slows it a
        # little, but a sample taken while it runs gets torn stacks (a third of them were).
        spy_command = [
            str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(bench.service.pid),
            "--duration", str(int(mine.seconds)), "--format", "raw", "--rate", "250",
            "--output", str(raw),
        ]  # fmt: skip
        spy = threading.Thread(
            target=subprocess.run, args=(spy_command,), kwargs={"capture_output": True}
        )
        spy.start()
        if mine.open:
            more = bench.run("sessions", count=max(0, mine.open - mine.clients))["sessions"]
            result = bench.run(
                "open", kind="service", sessions=(sessions + more)[: mine.open], n=mine.open,
                chunks=int(mine.seconds * 50), delay_ms=20, ramp=1.0,
            )  # fmt: skip
            print(f"{mine.open} open streams: p95 first content "
                  f"{result['ttfc']['p95'] * 1e3:.0f} ms, {result['errors']} errors")  # fmt: skip
        elif mine.ttfc:
            count = int(mine.seconds * 40)
            result = bench.run("ttfc", kind="service", sessions=sessions, count=count,
                               chunks=mine.chunks, history=mine.history)  # fmt: skip
            print(f"time to first content p50 {result['ttfc']['p50'] * 1e3:.2f} ms")
        else:
            result = bench.run(
                "throughput", kind="service", sessions=sessions, clients=mine.clients,
                seconds=mine.seconds, warmup=0.5, chunks=mine.chunks, history=mine.history,
            )  # fmt: skip
            print(f"{result['replies_per_s']:.0f} replies/s, "
                  f"{result['events_per_s']:.0f} content chunks/s")  # fmt: skip
        spy.join()
        summarise(raw, mine.top)
        if mine.keep:
            shutil.copy(raw, mine.keep)
    finally:
        bench.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
