"""The benchmark still runs end to end (a smoke test: it checks the report's shape, never its times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CALLS_TOOL_NAMES, TOOL_NAMES, FakeVendors, connect

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_runs_and_reports_every_metric_with_ratios() -> None:
    """One tiny round of bench/run.py prints a row per metric with project, floor, no-op and the ratio; the
    project served the whole run on one thread (its stdio transport) where the SDK floor needs worker threads."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--rounds",
            "1",
            "--calls",
            "3",
            "--no-peer",
            "--concurrent",
            "10",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in rows[0]] == ["metric", "project", "floor", "no-op", "project/floor"]
    metrics = [row[0].strip() for row in rows[1:]]
    assert metrics == [
        "cold start (ms)",
        "RSS idle (MiB)",
        "per-call p50 (ms)",
        "per-call p99 (ms)",
        "repeat read p50 (ms)",
        "10 concurrent, 100 ms vendor (ms)",
        "RSS after load (MiB)",
        "threads after load",
    ]
    assert all(float(row[4]) > 0 for row in rows[1:] if row[4].strip() != "—")
    threads = {name: float(cell) for name, cell in zip(("project", "floor"), rows[-1][1:3], strict=True)}
    assert threads["project"] == 1  # the thread-free stdio transport: the event loop alone, under load too
    assert threads["floor"] > 1  # the SDK's transport: worker threads for stdin and stdout


@pytest.mark.anyio
async def test_starting_a_session_makes_no_request(vendors: FakeVendors) -> None:
    """Opening the lifespan (both vendors' clients) and listing tools touches no network."""
    async with connect(vendors) as client:
        await client.list_tools()
        await client.list_resource_templates()
    assert vendors.requests == []


def test_start_up_loads_no_connection_pool() -> None:
    """Building the server and opening its lifespan's vendor clients imports no httpcore2 and loads no TLS trust
    store (~90 ms of a ~600 ms cold start, measured): both wait for a vendor's first request."""
    script = """
import sys, anyio
from mcp_server.config import load_settings
from mcp_server.server import build_server
from mcp_server.upstream.vendors import open_upstreams
settings = load_settings({}, env={"RETELL_API_KEY": "key_0123456789abcdef", "TELA_API_KEY": "tela_0123456789abcdef"})
build_server(settings)
async def lifespan():
    async with open_upstreams(settings):
        print(sorted(name for name in sys.modules if name.startswith(("httpcore", "truststore"))))
anyio.run(lifespan)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.anyio
async def test_the_model_visible_tool_lists_fit_their_byte_budgets() -> None:
    """What a model is shown of the tools (names, descriptions, input schemas), in bytes: every read tool of both
    vendors at most 8,000, Retell's alone 5,800, Tela's alone 2,400, the calls toolset included; without it, exactly
    the read tools that have no calls in them (bench/tokens.py prints bytes and tokens of them all)."""
    sys.path.insert(0, str(ROOT))
    from bench.tokens import BUDGETS, model_visible_surfaces

    surfaces = await model_visible_surfaces()
    measured = {name: len(surfaces[name][1].encode()) for name in BUDGETS}
    assert all(measured[name] <= budget for name, budget in BUDGETS.items()), measured
    without_calls = [tool["name"] for tool in json.loads(surfaces["reads, without calls"][1])]
    assert without_calls == [name for name in TOOL_NAMES if name not in CALLS_TOOL_NAMES]
