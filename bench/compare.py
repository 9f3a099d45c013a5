"""Before and after, timed: `compare_batch_tests` of two 5,000-run batches against one `summarize_batch_test` of one
such batch, side by side in one run, against a loopback vendor that answers each page of runs in 100 ms.

    .venv/bin/python bench/compare.py [--rounds 5]

Reading both batches' pages at once should keep the comparison near one summary (the target: at most 1.3x); read
one after the other, it would take twice as long. Prints each call's median wall time and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

HERE = Path(__file__).resolve().parent


async def measure(port: int, rounds: int) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETELL", "TELA"))}
    env |= {"RETELL_API_KEY": "key_bench_0123456789", "RETELL_BASE_URL": f"http://127.0.0.1:{port}"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=env, cwd=str(HERE.parent))
    calls = {
        "summarize_batch_test": {"test_case_batch_job_id": "bench-before"},
        "compare_batch_tests": {"before_batch_id": "bench-before", "after_batch_id": "bench-after"},
    }
    times: dict[str, list[float]] = {tool: [] for tool in calls}
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull), mode="legacy") as client:
            for _ in range(rounds):
                for tool, arguments in calls.items():  # alternating, so both see the same machine
                    started = time.perf_counter()
                    result = await client.call_tool(tool, arguments)
                    times[tool].append(time.perf_counter() - started)
                    assert not result.is_error and result.structured_content, result.content
                    assert result.structured_content["complete"] is True, result.structured_content.get(
                        "incomplete_reason"
                    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    vendor = subprocess.Popen([sys.executable, str(HERE / "fake_vendor.py")], stdout=subprocess.PIPE, text=True)
    assert vendor.stdout is not None
    try:
        times = anyio.run(measure, int(vendor.stdout.readline()), args.rounds)
    finally:
        vendor.kill()
        vendor.wait()
    medians = {tool: statistics.median(samples) for tool, samples in times.items()}
    for tool, median in medians.items():
        print(f"{tool:<22} median {median:.2f} s over {args.rounds} rounds")
    ratio = medians["compare_batch_tests"] / medians["summarize_batch_test"]
    print(f"compare / summarize: {ratio:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
