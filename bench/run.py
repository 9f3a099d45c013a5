"""Benchmark: this server against the SDK floor and a Node peer, measured side by side in one run.

    .venv/bin/python bench/run.py [--rounds 3] [--calls 200]

A fourth server, `noop_server.py`, returns the run from memory and does nothing else: the ceiling for any cache.
Each round starts every server afresh over stdio with the official MCP Python client, in rotating order, and
measures: cold start (spawn to `tools/list` answered), per-call p50/p99 on distinct IDs, p50 of repeated reads of
one finished run, wall time of 200 concurrent calls against a vendor that takes 100 ms each, the server's RSS
idle and after load, and its threads after load. Medians over the rounds are printed with the ratios project/floor
and project/peer.
The peer is `@abhaybabbar/retellai-mcp-server` from npm (its `get_call` tool), run when Node is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

HERE = Path(__file__).resolve().parent
PEER_PACKAGE = "@abhaybabbar/retellai-mcp-server@1.0.2"
PEER_DIR = Path.home() / ".cache" / "retell-tela-mcp" / "bench-peer"
CONCURRENT = 200


@dataclass
class Contender:
    name: str
    command: list[str]
    tool: str
    argument: str
    marker: str  # a piece of the server's command line, to find its process for RSS
    samples: dict[str, list[float]] = field(default_factory=dict)

    def record(self, metric: str, value: float | None) -> None:
        if value is not None:
            self.samples.setdefault(metric, []).append(value)


def install_peer() -> str | None:
    """Path of the peer's entry script, installing it from npm once; None without Node."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    entry = PEER_DIR / "node_modules" / "@abhaybabbar" / "retellai-mcp-server" / "build" / "index.js"
    if not entry.exists():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(PEER_DIR), PEER_PACKAGE],
            check=True,
            capture_output=True,
        )
    return str(entry)


def rss_kib(marker: str, field: str = "VmRSS") -> float | None:
    """Resident memory (or another /proc status `field`, such as the peak `VmHWM` or `Threads`) of our child
    process whose command line contains `marker`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and marker in cmdline:
            for line in status.splitlines():
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    return None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def measure(contender: Contender, env: dict[str, str], calls: int, round_no: int, concurrent: int) -> None:
    params = StdioServerParameters(command=contender.command[0], args=contender.command[1:], env=env, cwd=str(HERE))
    tool, argument = contender.tool, contender.argument
    with open(os.devnull, "w") as devnull:
        started = time.perf_counter()
        async with Client(stdio_client(params, errlog=devnull), mode="legacy") as client:
            await client.list_tools()
            contender.record("cold start (ms)", (time.perf_counter() - started) * 1000)
            contender.record("RSS idle (MiB)", (rss_kib(contender.marker) or 0) / 1024 or None)

            async def one(item: str) -> float:
                t0 = time.perf_counter()
                result = await client.call_tool(tool, {argument: item})
                assert not result.is_error, result.content
                return (time.perf_counter() - t0) * 1000

            await one(f"warm-{round_no}")
            distinct = [await one(f"run-{round_no}-{i}") for i in range(calls)]
            contender.record("per-call p50 (ms)", statistics.median(distinct))
            contender.record("per-call p99 (ms)", percentile(distinct, 0.99))
            repeated = [await one("finished-run") for _ in range(calls)]
            contender.record("repeat read p50 (ms)", statistics.median(repeated))

            t0 = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(concurrent):
                    tg.start_soon(one, f"slow-{round_no}-{i}")
            contender.record(f"{concurrent} concurrent, 100 ms vendor (ms)", (time.perf_counter() - t0) * 1000)
            contender.record("RSS after load (MiB)", (rss_kib(contender.marker) or 0) / 1024 or None)
            # The SDK's stdio transport reads and writes through worker threads; ours runs on the event loop alone.
            contender.record("threads after load", rss_kib(contender.marker, "Threads"))


async def main_async(rounds: int, calls: int, with_peer: bool = True, concurrent: int = CONCURRENT) -> list[Contender]:
    vendor = subprocess.Popen([sys.executable, str(HERE / "fake_vendor.py")], stdout=subprocess.PIPE, text=True)
    assert vendor.stdout is not None
    port = int(vendor.stdout.readline())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETELL", "TELA"))}
    env |= {"RETELL_API_KEY": "key_bench_0123456789", "RETELL_BASE_URL": f"http://127.0.0.1:{port}"}
    contenders = [
        Contender("project", [sys.executable, "-m", "mcp_server"], "get_test_run", "test_case_job_id", "mcp_server"),
        Contender("floor", [sys.executable, str(HERE / "floor_server.py")], "get_test_run", "test_case_job_id",
                  "floor_server.py"),
        Contender("no-op", [sys.executable, str(HERE / "noop_server.py")], "get_test_run", "test_case_job_id",
                  "noop_server.py"),
    ]  # fmt: skip
    peer = install_peer() if with_peer else None
    if peer is not None:
        contenders.append(Contender("peer", ["node", peer], "get_call", "callId", "retellai-mcp-server"))
    elif with_peer:
        sys.stderr.write("Node.js not found: the peer is left out\n")
    try:
        for round_no in range(rounds):
            order = contenders[round_no % len(contenders) :] + contenders[: round_no % len(contenders)]
            for contender in order:
                sys.stderr.write(f"round {round_no + 1}/{rounds}: {contender.name}\n")
                await measure(contender, env, calls, round_no, concurrent)
    finally:
        vendor.kill()
        vendor.wait()
    return contenders


def report(contenders: list[Contender]) -> str:
    by_name = {c.name: c for c in contenders}
    names = [c.name for c in contenders]
    ratios = [f"project/{n}" for n in names if n not in ("project", "no-op")]
    lines = ["| metric | " + " | ".join(names + ratios) + " |", "|---" * (1 + len(names) + len(ratios)) + "|"]
    for metric in by_name["project"].samples:
        medians = {n: statistics.median(by_name[n].samples[metric]) for n in names if metric in by_name[n].samples}
        cells = [f"{medians[n]:.1f}" if n in medians else "—" for n in names]
        cells += [
            f"{medians['project'] / medians[n]:.2f}" if n in medians else "—"
            for n in names
            if n not in ("project", "no-op")
        ]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200, help="sequential calls per latency sample")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument("--no-peer", action="store_true", help="leave out the Node peer")
    parser.add_argument("--concurrent", type=int, default=CONCURRENT, help="calls in the concurrent burst")
    args = parser.parse_args()
    contenders = anyio.run(main_async, args.rounds, args.calls, not args.no_peer, args.concurrent)
    sys.stdout.write(report(contenders) + "\n")
    if args.json:
        args.json.write_text(json.dumps({c.name: c.samples for c in contenders}, indent=2))


if __name__ == "__main__":
    main()
