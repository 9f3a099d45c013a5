"""The benchmark still runs end to end (a smoke test: it checks the report's shape, never its times)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FakeVendors, connect

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_runs_and_reports_every_metric_with_ratios() -> None:
    """One tiny round of bench/run.py prints a row per metric with project, floor, no-op and the ratio."""
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
    ]
    assert all(float(row[4]) > 0 for row in rows[1:] if row[4].strip() != "—")


@pytest.mark.anyio
async def test_starting_a_session_makes_no_request(vendors: FakeVendors) -> None:
    """Opening the lifespan (both vendors' clients) and listing tools touches no network."""
    async with connect(vendors) as client:
        await client.list_tools()
        await client.list_resource_templates()
    assert vendors.requests == []
