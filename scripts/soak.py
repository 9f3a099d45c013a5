"""Soak test: thousands of calls at high concurrency through one stdio session, against a faulty loopback vendor.

Run by hand (not by CI):  .venv/bin/python scripts/soak.py [--calls 3000] [--concurrency 25]

The mix: successes, 404s, 5xx and 429 that recover on retry, invalid JSON, and bodies cut off mid-way. Every
answer is checked against what that ID must produce, including that a success carries its own ID (no cross-talk
between concurrent calls). Prints calls answered / sent, wrong answers, retries, server RSS and latency.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.faults import fault_vendor  # noqa: E402 - the repository root must be importable first
from tests.test_faults import server_rss_kib  # noqa: E402

MIX = [  # (id kind, share, expected outcome)
    ("ok", 0.60, "ok"),
    ("status-404", 0.15, "not_found"),
    ("recover", 0.10, "ok"),
    ("flaky429", 0.05, "ok"),
    ("invalidjson", 0.05, "bad_upstream_response"),
    ("midbody", 0.05, "unreachable"),
]


def plan(calls: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    kinds = rng.choices(MIX, weights=[share for _, share, _ in MIX], k=calls)
    return [(kind if kind == "status-404" else f"{kind}-{i}", expected) for i, (kind, _, expected) in enumerate(kinds)]


async def soak(calls: int, concurrency: int, seed: int) -> dict[str, object]:
    work = plan(calls, seed)
    latencies: list[float] = []
    wrong: list[tuple[str, str, str]] = []
    answered = 0
    with fault_vendor() as vendor, tempfile.TemporaryFile("w+") as errlog:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RETELL", "TELA"))}
        env |= {"RETELL_API_KEY": "key_soak_0123456789", "RETELL_BASE_URL": vendor.url}
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=env)
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await client.call_tool("get_test_run", {"test_case_job_id": "ok-warmup"})
            rss_before = server_rss_kib()
            queue = iter(work)
            started = time.perf_counter()

            async def worker() -> None:
                nonlocal answered
                for job_id, expected in queue:
                    t0 = time.perf_counter()
                    result = await client.call_tool("get_test_run", {"test_case_job_id": job_id})
                    latencies.append(time.perf_counter() - t0)
                    answered += 1
                    if result.is_error:
                        got = json.loads(result.content[0].text)["error"]["code"]
                    else:
                        own = (result.structured_content or {}).get("test_case_job_id") == job_id
                        got = "ok" if own else "ok-but-wrong-object"
                    if got != expected:
                        wrong.append((job_id, expected, got))

            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(worker)
            wall = time.perf_counter() - started
            rss_after = server_rss_kib()
        vendor_requests = sum(vendor.counts.values()) - vendor.counts["ok-warmup"]
        # Each unique ID's extra requests are retries; the one repeated ID (status-404) is never retried, so
        # its calls beyond its requests were answered by sharing a request already in flight.
        retries = sum(n - 1 for job, n in vendor.counts.items() if job not in ("status-404", "ok-warmup"))
        shared = sum(1 for job, _ in work if job == "status-404") - vendor.counts["status-404"]
    latencies.sort()
    return {
        "calls_sent": calls,
        "calls_answered": answered,
        "wrong_answers": len(wrong),
        "wrong_examples": wrong[:5],
        "vendor_requests": vendor_requests,
        "retries": retries,
        "shared_requests": shared,
        "concurrency": concurrency,
        "wall_seconds": round(wall, 2),
        "calls_per_second": round(calls / wall, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_growth_percent": round((rss_after - rss_before) / rss_before * 100, 1)
        if rss_before and rss_after
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report = anyio.run(soak, args.calls, args.concurrency, args.seed)
    width = max(map(len, report))
    for key, value in report.items():
        sys.stdout.write(f"{key:<{width}}  {value}\n")
    ok = report["calls_answered"] == report["calls_sent"] and report["wrong_answers"] == 0
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
