"""Memory under large answers: the server's RSS when big vendor bodies arrive at once, and what stays afterwards.

    .venv/bin/python bench/memory.py [--case concurrent|cached] [--repo PATH]

Each case starts the real server afresh over stdio (as an MCP client launches it) against the benchmark's loopback
vendor (`fake_vendor.py`), whose `big-` runs are ~9.6 MiB of many small keys, the costliest shape once parsed:
- `single`: one big run alone, the yardstick;
- `concurrent`: four different big runs asked for at the same time;
- `cached`: eight different finished big runs, one after the other, with the default 64 MiB cache.
It prints the server process's RSS idle, its peak (the kernel's high-water mark) and after, in MiB, and how far four
at once rise over idle against one alone. `--repo` runs another checkout's server (side by side with this one:
`git worktree add /tmp/other <commit>`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from run import rss_kib  # bench/run.py, beside this script

HERE = Path(__file__).resolve().parent
CASES = ("single", "concurrent", "cached")
MARKER = "mcp_server"


def server_status(field: str) -> float:
    """A `VmRSS`/`VmHWM` figure (MiB) of the server process we started."""
    kib = rss_kib(MARKER, field)
    if kib is None:
        raise RuntimeError("server process not found")
    return kib / 1024


async def measure(case: str, repo: Path, port: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETELL", "TELA"))}
    env |= {"RETELL_API_KEY": "key_bench_0123456789", "RETELL_BASE_URL": f"http://127.0.0.1:{port}"}
    env["PYTHONPATH"] = str(repo)
    params = StdioServerParameters(command=sys.executable, args=["-m", MARKER], env=env, cwd=str(repo))
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull), mode="legacy") as client:
            await client.list_tools()
            idle = server_status("VmRSS")

            async def one(job_id: str) -> None:
                result = await client.call_tool("get_test_run", {"test_case_job_id": job_id})
                assert not result.is_error, result.content

            if case == "single":
                await one("big-0")
            elif case == "concurrent":
                async with anyio.create_task_group() as tg:
                    for n in range(4):
                        tg.start_soon(one, f"big-{n}")
            else:
                for n in range(8):
                    await one(f"big-{n}")
            await anyio.sleep(0.5)
            return {"idle": idle, "peak": server_status("VmHWM"), "after": server_status("VmRSS")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=CASES, action="append")
    parser.add_argument("--repo", type=Path, default=HERE.parent)
    args = parser.parse_args()
    vendor = subprocess.Popen([sys.executable, str(HERE / "fake_vendor.py")], stdout=subprocess.PIPE, text=True)
    assert vendor.stdout is not None
    port = int(vendor.stdout.readline())
    rises: dict[str, float] = {}
    try:
        for case in args.case or CASES:
            figures = anyio.run(measure, case, args.repo.resolve(), port)
            rises[case] = figures["peak"] - figures["idle"]
            print(f"{case:<10} server RSS MiB: idle {figures['idle']:.0f}, peak {figures['peak']:.0f}, "
                  f"after {figures['after']:.0f}")  # fmt: skip
        if "single" in rises and "concurrent" in rises:
            print(f"four at once rise {rises['concurrent'] / rises['single']:.2f}x as far over idle as one alone")
    finally:
        vendor.kill()
        vendor.wait()


if __name__ == "__main__":
    main()
