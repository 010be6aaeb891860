"""The gateway benchmark (issue 10): the service's `openai` provider in front of a mock
OpenAI-compatible upstream, against the same upstream called directly, alternating in one run.

Three processes besides this one, all on loopback:

- the mock upstream (the testing kit's `upstream.load`: raw trio sockets, HTTP/1.1
  keep-alive, chunks of `chat.completion.chunk` SSE, a usage chunk, `data: [DONE]`; count
  and pace asked for in the message);
- the service (`python -m conversation_service.entrypoints.cli serve`, a temp data dir, a
  registry whose one model is `openai` at the mock, its own limits raised out of the way);
- the load generator (bench/gateway_load.py: trio and raw sockets, not httpx, which would be
  the limit; its CPU is printed for every phase, with the service's and the upstream's, from
  /proc/<pid>/stat over the measured window).

Each figure is measured directly against the upstream, then through the service:

1. time to first content, one stream at a time (p50, p95; the service's also as overhead,
   and its time to the `start` event);
2. completed replies/s, `--clients` clients streaming back to back, no upstream delay;
3. content chunks/s through one process: as 2, with `--long-chunks` chunk replies;
4. open streams held: N streams of 200 chunks 20 ms apart opened over `--ramp` seconds, each
   on its own connection; held when p95 time to first content <= 1 s and nothing failed.
   Every N up to 300 is tried, a larger one when the one before held and its loopback
   sockets (2 a connection; the service's streams take 2 connections) fit `--max-sockets`
   (1,200: so 500 direct but not 1,000 unless raised);
5. the service's RSS idle (1 s after it started; also with the bench's sessions made) and
   at its largest during the 300-stream phase.

1 and 2 run on sessions with 20 earlier messages (fresh sessions for each phase; replies add
two messages each, so the printed prompt range shows how far a phase moved them) and with
300 (trimmed to the model's context window: the `start` events' trimmed_messages is checked).
3 uses 20-message sessions, 4 new sessions without history. The direct requests carry the
same number of earlier messages as the service would send. Service lines also say how many
connections the service opened to the upstream for its replies.

    .venv/bin/python bench/gateway_bench.py            # the full run, about 3 minutes
    .venv/bin/python bench/gateway_bench.py --quick    # a smoke run, about 30 s
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
MODEL_ID = "6d6f636b-0000-4000-8000-000000000001"
BOUND = 85.0  # a process over this share of one core is taken as its phase's limit (a "!")


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert found, field
    return int(found.group(1)) / 1024


def read_until(process: subprocess.Popen[str], pattern: str, seconds: float = 60) -> str:
    """What `process` printed up to a line matching `pattern`."""
    assert process.stdout is not None
    text, deadline = "", time.monotonic() + seconds
    while not re.search(pattern, text):
        line = process.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise RuntimeError(f"no {pattern!r} from {process.args!r}; it said: {text}")
        text += line
    return text


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        tmp: Path,
        *,
        service_prefix: tuple[str, ...] = (),
        start_seconds: float = 60,
    ) -> None:
        """`service_prefix`: a command the service runs under (e.g. valgrind), which may
        slow its start up to `start_seconds`."""
        self.args, self.tmp = args, tmp
        self.service_prefix, self.start_seconds = service_prefix, start_seconds
        self.processes: list[subprocess.Popen[str]] = []
        self.table: list[tuple[str, str, str, str, bool | None]] = []
        self.others: list[float] = []  # other processes' CPU share in each measured window

    # -- processes ------------------------------------------------------------------------

    def spawn(self, command: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
        process = subprocess.Popen(command, text=True, env=env, **kwargs)
        self.processes.append(process)
        return process

    def start(self) -> None:
        args = self.args
        self.upstream = self.spawn(
            [sys.executable, "-m", "conversation_service.testing.upstream.load", "--port", "0"],
            stdout=subprocess.PIPE,
        )
        url = re.search(r"on (http://\S+)", read_until(self.upstream, "mock upstream on"))
        assert url
        registry = self.tmp / "registry.toml"
        registry.write_text(
            f'[[models]]\nid = "{MODEL_ID}"\nname = "mock"\nprovider = "openai"\n'
            f'base_url = "{url.group(1)}"\nupstream_model = "mock"\n'
            f"context_window = {args.context_window}\n"
        )
        self.log = open(self.tmp / "service.log", "w")  # closed in stop()
        self.service = self.spawn(
            [
                *self.service_prefix,
                sys.executable, "-m", "conversation_service.entrypoints.cli", "serve",
                "--port", "0", "--data-dir", str(self.tmp / "data"), "--models", str(registry),
                "--rate-limit", "100000000/minute", "--max-streams-per-org", "100000",
            ],
            stdout=subprocess.PIPE, stderr=self.log,
            env={"CONVERSATION_SERVICE_MAX_REPLIES_PER_ORG": "100000"},
        )  # fmt: skip
        text = read_until(self.service, "ready on", self.start_seconds)
        found = re.search(
            r"org_id: (\S+)\s+token:\s+(\S+).*ready on http://[^:]+:(\d+)", text, re.S
        )
        assert found, text
        org, token, port = found.groups()
        self.generator = self.spawn(
            [sys.executable, str(BENCH / "gateway_load.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        self.upstream_port = int(url.group(1).rsplit(":", 1)[1].split("/")[0])
        config = {
            "upstream_port": self.upstream_port,
            "service_port": int(port),
            "org": org,
            "token": token,
            "model_id": MODEL_ID,
            "context_window": args.context_window,
            "pids": {"service": self.service.pid, "upstream": self.upstream.pid},
        }
        self.send(config)

    def send(self, line: dict[str, Any]) -> None:
        assert self.generator.stdin is not None
        self.generator.stdin.write(json.dumps(line) + "\n")
        self.generator.stdin.flush()

    def run(self, op: str, **command: Any) -> dict[str, Any]:
        """One command of the load generator, and its result."""
        self.send({"op": op, **command})
        assert self.generator.stdout is not None
        line = self.generator.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator stopped during {op}")
        result = json.loads(line)
        if "failed" in result:
            raise RuntimeError(f"{op} failed in the load generator: {result['failed']}")
        return result

    def measure(self, op: str, kind: str, **command: Any) -> dict[str, Any]:
        """A measuring command; for the service's, what the upstream saw meanwhile."""
        before = self.upstream_stats() if kind == "service" else None
        result = self.run(op, kind=kind, **command)
        if before is not None:
            after = self.upstream_stats()
            result["upstream_seen"] = {k: after[k] - before[k] for k in after}
        return result

    def upstream_stats(self) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.upstream_port}/stats"
        with urllib.request.urlopen(url, timeout=10) as answer:
            stats: dict[str, int] = json.loads(answer.read())
        return stats

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if hasattr(self, "log"):
            self.log.close()

    # -- printing -------------------------------------------------------------------------

    def usage(self, result: dict[str, Any], kind: str) -> str:
        """CPU of the processes in a phase, flagging the one that was its limit."""
        pct = result["cpu_pct"]
        if result["wall"] < 0.5:  # /proc counts CPU in 10 ms ticks
            return "CPU - (too short a window to tell)"
        names = ["service", "upstream", "generator"] if kind == "service" else ["upstream"]
        names += [] if kind == "service" else ["generator"]
        parts = [
            f"{name} {pct[name]:3.0f}%" + ("!" if pct[name] >= BOUND else "") for name in names
        ]
        text = "CPU " + ", ".join(parts) + f", other processes {pct['others']:3.0f}%"
        self.others.append(pct["others"])
        if kind == "service":
            text += f"; service RSS {memory_mib(self.service.pid):.0f} MiB"
        seen = result.get("upstream_seen")
        if seen:
            text += f"; upstream: {seen['requests']} replies, {seen['connections']} new connections"
        return text

    @staticmethod
    def context(result: dict[str, Any]) -> str:
        if "context" not in result:
            return ""
        (c0, c1), (t0, t1) = result["context"], result["trimmed"]
        return f"; prompt {c0}-{c1} messages, {t0}-{t1} trimmed"

    @staticmethod
    def errors(result: dict[str, Any]) -> str:
        errors = result.get("errors") or {}
        return f"; ERRORS {errors}" if errors else ""

    def row(self, figure: str, direct: str, service: str, goal: str, met: bool | None) -> None:
        self.table.append((figure, direct, service, goal, met))

    # -- the figures ----------------------------------------------------------------------

    def populate(self, sessions: list[str], history: int) -> None:
        made = self.run("history", sessions=sessions, messages=history)
        print(f"  {len(sessions)} sessions given {history} earlier messages each: "
              f"{made['replies']} replies in {made['seconds']:.1f} s{self.context(made)}"
              f"{self.errors(made)}")  # fmt: skip

    def ttfc(self, history: int, sessions: list[str]) -> None:
        a = self.args
        print(f"\n(1) time to first content, one stream at a time, {a.ttfc_streams} streams of "
              f"{a.chunks} chunks, {history} earlier messages")  # fmt: skip
        common = {"count": a.ttfc_streams, "chunks": a.chunks, "history": history}
        direct = self.measure("ttfc", "direct", **common)
        d = direct["ttfc"]
        print(f"    direct : p50 {d['p50'] * 1e3:7.2f} ms  p95 {d['p95'] * 1e3:7.2f} ms"
              f"{' ' * 27}{self.usage(direct, 'direct')}{self.errors(direct)}")  # fmt: skip
        served = self.measure("ttfc", "service", sessions=sessions, **common)
        s = served["ttfc"]
        over50, over95 = (s["p50"] - d["p50"]) * 1e3, (s["p95"] - d["p95"]) * 1e3
        print(f"    service: p50 {s['p50'] * 1e3:7.2f} ms  p95 {s['p95'] * 1e3:7.2f} ms  "
              f"overhead p50 {over50:+7.2f} ms p95 {over95:+7.2f} ms  "
              f"{self.usage(served, 'service')}{self.context(served)}"
              f"{self.errors(served)}")  # fmt: skip
        if served["to_start"]["n"]:
            print(f"             of which to the `start` event: p50 "
                  f"{served['to_start']['p50'] * 1e3:.2f} ms, p95 "
                  f"{served['to_start']['p95'] * 1e3:.2f} ms")  # fmt: skip
        if history > a.history:
            trimmed = served.get("trimmed", [0, 0])[0]
            print(f"    the start events report {trimmed}+ messages trimmed: "
                  f"{'yes' if trimmed > 0 else 'NO: the history fits the window'}")  # fmt: skip
        self.row(
            f"time to first content p50, overhead, {history} msgs",
            f"{d['p50'] * 1e3:.2f} ms",
            f"{over50:+.1f} ms",
            "<= +3 ms",
            over50 <= 3 and not served["errors"],
        )

    def throughput(self, what: str, chunks: int, history: int, sessions: list[str]) -> float:
        a = self.args
        print(f"\n{what}: {a.clients} clients back to back for {a.seconds:g} s, "
              f"{chunks}-chunk replies, no upstream delay, {len(sessions)} sessions of "
              f"{history} earlier messages")  # fmt: skip
        common = {"clients": a.clients, "seconds": a.seconds, "warmup": a.warmup}
        common |= {"chunks": chunks, "history": history}
        figures = []
        for kind in ("direct", "service"):
            extra = {"sessions": sessions} if kind == "service" else {}
            result = self.measure("throughput", kind, **common, **extra)
            figures.append(result)
            cost = ""
            if kind == "service" and result["replies_per_s"]:
                per_reply = result["cpu"]["service"] / (result["replies_per_s"] * a.seconds)
                per_chunk = result["cpu"]["service"] / (result["events_per_s"] * a.seconds)
                cost = f" ({per_reply * 1e3:.1f} ms CPU a reply, {per_chunk * 1e6:.0f} us a chunk)"
            print(f"    {kind:7}: {result['replies_per_s']:8,.0f} replies/s "
                  f"{result['events_per_s']:9,.0f} content chunks/s{cost}   "
                  f"{self.usage(result, kind)}{self.context(result)}"
                  f"{self.errors(result)}")  # fmt: skip
        direct, served = figures
        bound = " (generator-bound)" if direct["cpu_pct"]["generator"] >= BOUND else ""
        ok = not served["errors"]
        if chunks == a.chunks:
            self.row(
                f"completed replies/s, {a.clients} concurrent, {history} msgs",
                f"{direct['replies_per_s']:,.0f}{bound}",
                f"{served['replies_per_s']:,.0f}",
                ">= 300",
                served["replies_per_s"] >= 300 and ok,
            )
        else:
            self.row(
                f"content chunks/s ({chunks}-chunk replies)",
                f"{direct['events_per_s']:,.0f}{bound}",
                f"{served['events_per_s']:,.0f}",
                ">= 20,000",
                served["events_per_s"] >= 20_000 and ok,
            )
        return served["replies_per_s"]

    def open_streams(self, sessions: list[str]) -> float | None:
        """Figure 4; the service's RSS while 300 streams were open, if it got that far.

        Every N up to the goal (300) is tried; a larger one only when the one before held.
        """
        a = self.args
        print(f"\n(4) open streams held: N streams of {a.open_chunks} chunks {a.open_delay_ms} "
              f"ms apart, opened over {a.ramp:g} s; held = p95 first content <= 1 s, "
              "0 errors")  # fmt: skip
        goal = min(300, max(a.open_levels))
        held: dict[str, int | None] = {"direct": None, "service": None}
        failed = {"direct": False, "service": False}
        rss_300 = None
        for n in a.open_levels:
            for kind in ("direct", "service"):
                sockets = 2 * n * (2 if kind == "service" else 1)  # 2 per loopback connection
                if failed[kind] and n > goal:
                    print(f"    {kind:7} N={n:5}: not tried, a smaller N did not hold")
                    continue
                if sockets > a.max_sockets:
                    print(f"    {kind:7} N={n:5}: skipped, it needs {sockets} sockets "
                          f"(over --max-sockets {a.max_sockets})")  # fmt: skip
                    continue
                extra = {"sessions": sessions[:n]} if kind == "service" else {}
                result = self.measure(
                    "open", kind, n=n, chunks=a.open_chunks, delay_ms=a.open_delay_ms,
                    ramp=a.ramp, **extra,
                )  # fmt: skip
                t = result["ttfc"]
                ok = result["held"]
                if ok and not failed[kind]:
                    held[kind] = n
                failed[kind] = failed[kind] or not ok
                p95 = f"p95 {t['p95'] * 1e3:7.1f} ms" if t["n"] else "no stream started"
                memory = ""
                if kind == "service":
                    memory = f", RSS max {result['service_rss_max']:.0f} MiB"
                    if n == 300:
                        rss_300 = result["service_rss_max"]
                print(f"    {kind:7} N={n:5}: {'held' if ok else 'FAILED':6} {p95}, "
                      f"{result['error_count']} errors, in {result['wall']:.1f} s   "
                      f"{self.usage(result, kind)}{memory}{self.errors(result)}")  # fmt: skip
        shown = {
            kind: f"{n:,}" if n is not None else f"< {a.open_levels[0]}" for kind, n in held.items()
        }
        self.row(
            "open streams held (largest N)",
            shown["direct"],
            shown["service"],
            f">= {goal}",
            (held["service"] or 0) >= goal,
        )
        return rss_300

    def main(self) -> None:
        a = self.args
        began = time.monotonic()
        self.start()
        time.sleep(1)
        rss_fresh = memory_mib(self.service.pid)
        print(f"gateway bench: mock upstream pid {self.upstream.pid}, service pid "
              f"{self.service.pid}, load generator pid {self.generator.pid} (trio, raw sockets); "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        for kind in ("direct", "service"):
            session = self.run("sessions", count=1)["sessions"][0] if kind == "service" else None
            check = self.run("verify", kind=kind, chunks=a.chunks, session=session)
            print(f"protocol check, {kind}: a {a.chunks}-chunk reply arrived "
                  f"{'whole' if check['whole'] else 'BROKEN: ' + repr(check)[:300]}")  # fmt: skip
            if not check["whole"]:
                raise SystemExit(1)
        # Every session up front, then the idle memory, then their histories.
        spc = a.sessions_per_client
        fresh = {
            name: self.run("sessions", count=a.clients * (1 if name == "D" else spc))["sessions"]
            for name in "ABCD"
        }
        most = max([n for n in a.open_levels if 4 * n <= a.max_sockets] or [0])
        open_sessions = self.run("sessions", count=most)["sessions"]
        time.sleep(1)
        rss_idle = memory_mib(self.service.pid)
        count = sum(map(len, fresh.values())) + most + 1
        print(f"service RSS idle: {rss_fresh:.1f} MiB just started, {rss_idle:.1f} MiB with "
              f"{count} sessions made (before any load)")  # fmt: skip
        print("\nsessions with history (through the service, the mock answering at once):")
        for name, history in (("A", a.history), ("B", a.history), ("C", a.history)):
            self.populate(fresh[name], history)
        long = fresh["D"]
        self.populate(long, a.long_history)

        self.ttfc(a.history, fresh["A"])
        self.throughput("(2) completed replies/s", a.chunks, a.history, fresh["B"])
        self.ttfc(a.long_history, long)
        self.throughput("(2) completed replies/s", a.chunks, a.long_history, long)
        self.throughput("(3) content chunks/s", a.long_chunks, a.history, fresh["C"])
        rss_300 = self.open_streams(open_sessions)

        print(f"\n(5) service RSS: idle {rss_idle:.1f} MiB ({rss_fresh:.1f} just started), "
              "during the 300-stream phase "
              f"{'-' if rss_300 is None else f'{rss_300:.1f} MiB'}, "
              f"peak (VmHWM) {memory_mib(self.service.pid, 'VmHWM'):.1f} MiB")  # fmt: skip
        self.row("service RSS idle (just started)", "-", f"{rss_fresh:.0f} MiB", "<= 80 MiB",
                 rss_fresh <= 80)  # fmt: skip
        self.row(
            "service RSS at 300 open streams",
            "-",
            "-" if rss_300 is None else f"{rss_300:.0f} MiB",
            "<= 200 MiB",
            None if rss_300 is None else rss_300 <= 200,
        )
        self.print_table()
        others = sorted(self.others) or [0.0]
        print(f"\n(run took {time.monotonic() - began:.0f} s. Other processes on the machine "
              f"took {others[0]:.0f}-{others[-1]:.0f}% of a CPU (median "
              f"{others[len(others) // 2]:.0f}%) of the {100 * (os.cpu_count() or 1)}% there "
              "is during the measured phases: on a shared machine every figure is "
              "noisy)")  # fmt: skip

    def print_table(self) -> None:
        header = ("figure", "direct", "service", "goal", "met?")
        rows = [
            (f, d, s, g, "-" if m is None else "yes" if m else "no") for f, d, s, g, m in self.table
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
        print()
        for r in [header, tuple("-" * w for w in widths), *rows]:
            print(" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="a smoke run: small numbers everywhere")
    add("--ttfc-streams", type=int, help="sequential streams for (1) (200; quick 20)")
    add("--seconds", type=float, help="measured seconds of each (2)/(3) phase (10; quick 1.5)")
    add("--warmup", type=float, help="seconds before (2)/(3) count (1; quick 0.3)")
    add("--clients", type=int, help="concurrent clients of (2)/(3) (16; quick 4)")
    add("--chunks", type=int, default=50, help="chunks of a reply in (1) and (2)")
    add("--long-chunks", type=int, help="chunks of a reply in (3) (500; quick 100)")
    add("--open-levels", help="N tried in (4), comma-separated (100,300,500,1000; quick 20,50)")
    add("--open-chunks", type=int, default=200, help="chunks of a reply in (4)")
    add("--open-delay-ms", type=int, default=20, help="upstream delay between chunks in (4)")
    add("--ramp", type=float, help="seconds over which (4) opens its streams (1; quick 0.5)")
    add("--max-sockets", type=int, default=1200, help="loopback sockets (4) may hold at once")
    add("--history", type=int, default=20, help="earlier messages of a realistic session")
    add("--sessions-per-client", type=int, default=1,
        help="realistic sessions a client of (2)/(3) takes turns on (fewer messages added to "
        "each as a phase runs; the long sessions stay one a client)")  # fmt: skip
    add("--long-history", type=int, help="earlier messages of a long session (300; quick 60)")
    add("--context-window", type=int, help="tokens of the bench model (8192; quick 3072)")
    args = parser.parse_args(argv)
    full = {"ttfc_streams": 200, "seconds": 10.0, "warmup": 1.0, "clients": 16, "long_chunks": 500,
            "open_levels": "100,300,500,1000", "ramp": 1.0, "long_history": 300,
            "context_window": 8192}  # fmt: skip
    quick = {"ttfc_streams": 20, "seconds": 1.5, "warmup": 0.3, "clients": 4, "long_chunks": 100,
             "open_levels": "20,50", "open_chunks": 50, "ramp": 0.5, "long_history": 60,
             "context_window": 3072}  # fmt: skip
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) in (None, parser.get_default(name)):
            setattr(args, name, value)
    args.open_levels = sorted(int(n) for n in str(args.open_levels).split(","))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    bench = Bench(args, tmp)
    try:
        bench.main()
    except BaseException:
        bench.stop()
        log = tmp / "service.log"
        if log.exists():  # what the service said, before its folder goes
            tail = log.read_text(errors="replace").splitlines()[-30:]
            print("the service's last log lines:", *tail, sep="\n  ", file=sys.stderr)
        raise
    finally:
        bench.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
