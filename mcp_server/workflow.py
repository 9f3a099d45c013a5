"""Answers that take several vendor calls: a batch's summary, and waiting for a run to finish."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.errors import BadUpstreamResponse
from mcp_server.upstream.retell import FINAL_STATUSES, RetellClient
from mcp_server.upstream.schema import lean_schema

Progress = Callable[[float, float | None, str], Awaitable[None]]

PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 runs: far past any real batch, and a stop for a vendor that pages forever
WAIT_CAP_SECONDS = 50.0  # keeps a wait under the usual 60 s client limit


class FailedRun(BaseModel):
    model_config = ConfigDict(json_schema_extra=lean_schema)

    test_case_job_id: Any = None
    name: Any = Field(None, description="the test's name, from its definition snapshot")
    status: Any = None
    result_explanation: Any = None


class BatchSummary(BaseModel):
    """What a batch test came to: counts by status, and every failed or errored run with its explanation."""

    model_config = ConfigDict(json_schema_extra=lean_schema)

    test_case_batch_job_id: str
    batch_status: Any = Field(None, description="the batch's own status, as Retell reports it")
    total_runs: int
    counts: dict[str, int] = Field(description="runs per status")
    failed: list[FailedRun] = Field(description="runs whose status is fail or error")
    pages: int


async def summarize_batch(retell: RetellClient, batch_id: str, progress: Progress) -> dict[str, Any]:
    """Fetch the batch and every page of its runs; keep only what explains the outcome (no transcripts)."""
    batch = await retell.get_batch_test(batch_id)
    runs: list[dict[str, Any]] = []
    key: str | None = None
    seen_keys: set[str] = set()
    pages = 0
    while True:
        page = await retell.list_test_runs(batch_id, limit=PAGE_SIZE, pagination_key=key)
        items = page.get("items")
        if not isinstance(items, list):
            raise BadUpstreamResponse(
                f"Retell's page {pages + 1} of batch test '{batch_id}' has no items list.",
                provider="retell",
                status=200,
            )
        runs.extend(item for item in items if isinstance(item, dict))
        pages += 1
        await progress(pages, None, f"read page {pages}: {len(runs)} runs so far")
        key = page.get("pagination_key") if page.get("has_more") else None
        if not isinstance(key, str) or not key or key in seen_keys or pages >= MAX_PAGES:
            break
        seen_keys.add(key)
    statuses = [_status(run) for run in runs]
    failed = [
        FailedRun(
            test_case_job_id=run.get("test_case_job_id"),
            name=(run.get("test_case_definition_snapshot") or {}).get("name")
            if isinstance(run.get("test_case_definition_snapshot"), dict)
            else None,
            status=status,
            result_explanation=run.get("result_explanation"),
        )
        for run, status in zip(runs, statuses, strict=True)
        if status in ("fail", "error")
    ]
    summary = BatchSummary(
        test_case_batch_job_id=batch_id,
        batch_status=batch.get("status"),
        total_runs=len(runs),
        counts=dict(Counter(statuses)),
        failed=failed,
        pages=pages,
    )
    return summary.model_dump(mode="json")


def _status(run: dict[str, Any]) -> str:
    status = run.get("status")
    return status if isinstance(status, str) else "unknown"


async def wait_for_run(
    retell: RetellClient, job_id: str, timeout_seconds: float, poll_interval_seconds: float, progress: Progress
) -> dict[str, Any]:
    """Poll until the run is pass, fail or error, or until the time is up; return the run as last seen."""
    timeout = min(timeout_seconds, WAIT_CAP_SECONDS)
    started = time.monotonic()
    polls = 0
    while True:
        run = await retell.get_test_run(job_id, fresh=True)
        polls += 1
        elapsed = time.monotonic() - started
        status = run.get("status")
        await progress(min(elapsed, timeout), timeout, f"poll {polls}: status {status}")
        if isinstance(status, str) and status in FINAL_STATUSES:
            return run
        if elapsed + poll_interval_seconds > timeout:
            return run  # still running: not an error, the caller can wait again
        await anyio.sleep(poll_interval_seconds)
