"""Answers that take several vendor calls: a batch's summary (after waiting for it, if asked), and waiting for a run."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.errors import BadUpstreamResponse, InvalidArgument
from mcp_server.upstream.ids import check_token
from mcp_server.upstream.retell import FINAL_STATUSES, RetellClient
from mcp_server.upstream.schema import lean_schema

Progress = Callable[[float, float | None, str], Awaitable[None]]

PAGE_SIZE = 1000  # Retell's documented maximum for list-test-runs
MAX_PAGES = 200  # 200,000 runs: far past any real batch, and a stop for a vendor that pages forever
PAGING_STOP_SECONDS = 50.0  # no new page is asked for after this, so the call ends before the usual 60 s limit
FAILED_SHOWN = 25  # failed runs listed in full; the rest are counted, so a 5,000-run batch stays a small answer
EXPLANATION_LIMIT = 500  # characters of each result_explanation kept (get_test_run has the whole run)
WAIT_CAP_SECONDS = 50.0  # keeps a run wait under the usual 60 s client limit
BATCH_WAIT_CAP_SECONDS = 40.0  # a batch wait leaves ~10 s for paging through its runs
BATCH_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Clock:
    """Time as a dependency: tests pass a clock whose sleep returns at once, so waits cost no real time."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep


SYSTEM_CLOCK = Clock()


class FailedRun(BaseModel):
    model_config = ConfigDict(json_schema_extra=lean_schema)

    test_case_job_id: Any = None
    name: Any = Field(None, description="the test's name, from its definition snapshot")
    status: Any = None
    result_explanation: Any = Field(None, description=f"clipped to {EXPLANATION_LIMIT} characters")


class BatchSummary(BaseModel):
    """What a batch test came to: Retell's own counts, a recount of its runs, and the failed runs explained."""

    model_config = ConfigDict(json_schema_extra=lean_schema)

    test_case_batch_job_id: str
    status: Any = Field(None, description="Retell's: in_progress or complete")
    pass_count: Any = Field(None, description="Retell's count")
    fail_count: Any = Field(None, description="Retell's count")
    error_count: Any = Field(None, description="Retell's count")
    total_count: Any = Field(None, description="Retell's count")
    total_runs: int = Field(description="runs recounted from the listing")
    counts: dict[str, int] = Field(description="recounted runs per status")
    complete: bool = Field(description="false when the recount may not be the batch's final, whole outcome")
    incomplete_reason: str | None = None
    failed: list[FailedRun] = Field(description=f"the first {FAILED_SHOWN} runs whose status is fail or error")
    failed_not_shown: int = Field(description="further fail/error runs left out of `failed`")
    pages: int


def _count(batch: dict[str, Any], key: str) -> int | None:
    """One of Retell's counts, when it is one (the vendor's object is not validated: JSON's true is no count)."""
    value = batch.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _finished(batch: dict[str, Any]) -> tuple[float, float | None]:
    """(finished runs, total) from a batch object's counts, for progress; total None when Retell gives none."""
    finished = sum(_count(batch, key) or 0 for key in ("pass_count", "fail_count", "error_count"))
    return finished, _count(batch, "total_count") or None


async def wait_for_batch(
    retell: RetellClient, batch_id: str, wait_seconds: float, progress: Progress, clock: Clock
) -> dict[str, Any]:
    """The batch, polled until it is `complete` or `wait_seconds` have passed (a last poll near the end)."""
    deadline = clock.now() + min(wait_seconds, BATCH_WAIT_CAP_SECONDS)
    polls = 0
    while True:
        batch = await retell.get_batch_test(batch_id)
        polls += 1
        finished, total = _finished(batch)
        status = batch.get("status")
        await progress(finished, total, f"poll {polls}: batch {status}, {finished:g} of {total or '?'} runs finished")
        left = deadline - clock.now()
        if status == "complete" or left <= 0:
            return batch
        await clock.sleep(min(BATCH_POLL_SECONDS, left))


async def summarize_batch(
    retell: RetellClient, batch_id: str, progress: Progress, *, wait_seconds: float = 0.0, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """Read the batch (waiting for it first if asked), then every page of its runs, keeping only what explains
    the failures: memory grows with the failed runs shown, not with the batch's transcripts."""
    started = clock.now()
    if wait_seconds > 0:
        batch = await wait_for_batch(retell, batch_id, wait_seconds, progress, clock)
    else:
        batch = await retell.get_batch_test(batch_id)
    counts: Counter[str] = Counter()
    failed: list[FailedRun] = []
    failed_total = 0
    key: str | None = None
    seen_keys: set[str] = set()
    pages = 0
    stopped: str | None = None
    while True:
        page = await retell.list_test_runs(batch_id, limit=PAGE_SIZE, pagination_key=key)
        items = page.get("items")
        if not isinstance(items, list):
            raise BadUpstreamResponse(
                f"Retell's page {pages + 1} of batch test '{batch_id}' has no items list.",
                provider="retell",
                status=200,
            )
        pages += 1
        for run in items:
            status = _status(run)
            counts[status] += 1
            if status in ("fail", "error"):
                failed_total += 1
                if len(failed) < FAILED_SHOWN:
                    failed.append(_failed_run(run, status))
        has_more, next_key = page.get("has_more"), page.get("pagination_key")
        del page, items  # a page can hold 1,000 transcripts: none is kept past this point
        await progress(pages, None, f"read page {pages}: {sum(counts.values())} runs so far")
        if has_more is not True:
            break
        if not isinstance(next_key, str) or not next_key or next_key in seen_keys:
            stopped = f"paging stopped after {pages} pages: Retell said more follow but gave no new pagination_key"
            break
        try:
            check_token(next_key, argument="pagination_key", provider="retell")
        except InvalidArgument:
            # Retell's own key, not the user's argument: a vendor fault, reported as one.
            raise BadUpstreamResponse(
                f"Retell's page {pages} of batch test '{batch_id}' has a pagination_key that cannot be sent back "
                "safely (not printable ASCII, or over 1,024 characters).",
                provider="retell",
                status=200,
            ) from None
        if pages >= MAX_PAGES or clock.now() - started >= PAGING_STOP_SECONDS:
            stopped = f"paging stopped after {pages} pages to answer in time; list_test_runs reads the rest"
            break
        seen_keys.add(next_key)
        key = next_key
    total_runs = sum(counts.values())
    reasons = [stopped] if stopped else []
    total_count = _count(batch, "total_count")
    if total_count is not None and total_runs != total_count:
        reasons.append(f"recounted {total_runs} runs but Retell counts {total_count}")
    if batch.get("status") != "complete":
        reasons.append(f"the batch is {batch.get('status')}, so its runs may still change")
    summary = BatchSummary(
        test_case_batch_job_id=batch_id,
        status=batch.get("status"),
        pass_count=batch.get("pass_count"),
        fail_count=batch.get("fail_count"),
        error_count=batch.get("error_count"),
        total_count=batch.get("total_count"),
        total_runs=total_runs,
        counts=dict(counts),
        complete=not reasons,
        incomplete_reason="; ".join(reasons) or None,
        failed=failed,
        failed_not_shown=failed_total - len(failed),
        pages=pages,
    )
    return summary.model_dump(mode="json")


def _status(run: object) -> str:
    status = run.get("status") if isinstance(run, dict) else None
    return status if isinstance(status, str) else "unknown"


def _failed_run(run: dict[str, Any], status: str) -> FailedRun:
    snapshot = run.get("test_case_definition_snapshot")
    explanation = run.get("result_explanation")
    if isinstance(explanation, str) and len(explanation) > EXPLANATION_LIMIT:
        explanation = explanation[: EXPLANATION_LIMIT - 1] + "…"
    return FailedRun(
        test_case_job_id=run.get("test_case_job_id"),
        name=snapshot.get("name") if isinstance(snapshot, dict) else None,
        status=status,
        result_explanation=explanation,
    )


async def wait_for_run(
    retell: RetellClient,
    job_id: str,
    timeout_seconds: float,
    poll_interval_seconds: float,
    progress: Progress,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Poll until the run is pass, fail or error, or until the time is up; return the run as last seen."""
    timeout = min(timeout_seconds, WAIT_CAP_SECONDS)
    started = clock.now()
    polls = 0
    while True:
        run = await retell.get_test_run(job_id, fresh=True)
        polls += 1
        elapsed = clock.now() - started
        status = run.get("status")
        await progress(min(elapsed, timeout), timeout, f"poll {polls}: status {status}")
        if isinstance(status, str) and status in FINAL_STATUSES:
            return run
        if elapsed + poll_interval_seconds > timeout:
            return run  # still running: not an error, the caller can wait again
        await clock.sleep(poll_interval_seconds)
