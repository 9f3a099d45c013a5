"""Answers that take several vendor calls: a batch's summary (after waiting for it, if asked), and waiting for a run."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_server.errors import BadUpstreamResponse, InvalidArgument, UpstreamTimeout
from mcp_server.retell.client import FINAL_STATUSES, RetellClient
from mcp_server.text import clip
from mcp_server.upstream.clock import SYSTEM_CLOCK, Clock
from mcp_server.upstream.ids import check_token
from mcp_server.upstream.schema import lean_schema

Progress = Callable[[float, float | None, str], Awaitable[None]]

PAGE_SIZE = 1000  # Retell's documented maximum for list-test-runs
MAX_PAGES = 200  # 200,000 runs: far past any real batch, and a stop for a vendor that pages forever
FAILED_SHOWN = 25  # failed runs listed in full; the rest are counted, so a 5,000-run batch stays a small answer
EXPLANATION_LIMIT = 500  # characters of each result_explanation kept (get_test_run has the whole run)
STATUSES_KEPT = 16  # distinct run statuses counted by name; any further ones are counted as "other"
WAIT_CAP_SECONDS = 50.0  # keeps a run wait under the usual 60 s client limit
BATCH_WAIT_CAP_SECONDS = 40.0  # a batch wait leaves ~10 s for paging through its runs
BATCH_POLL_SECONDS = 5.0
MIN_POLL_GAP_SECONDS = 0.5  # a poll sooner than this after the last would see nothing new
LAST_POLL_SECONDS = 2.0  # a wait's last poll is made this long (or a tenth of the wait) before its end, to be answered


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


def count_of(batch: dict[str, Any], key: str) -> int | None:
    """One of Retell's counts, when it is one (the vendor's object is not validated: JSON's true is no count)."""
    value = batch.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _finished(batch: dict[str, Any]) -> tuple[float, float | None]:
    """(finished runs, total) from a batch object's counts, for progress; total None when Retell gives none."""
    finished = sum(count_of(batch, key) or 0 for key in ("pass_count", "fail_count", "error_count"))
    return finished, count_of(batch, "total_count") or None


async def _poll_until(
    poll: Callable[[], Awaitable[dict[str, Any]]],
    done: Callable[[dict[str, Any]], bool],
    interval: float,
    end: float,
    clock: Clock,
) -> dict[str, Any]:
    """Poll until `done`, or until `end` (on `clock`); the object as last seen. The last poll is made a little
    before `end`, whatever the interval, so it has time to be answered. A poll that does not arrive in the time
    left ends the wait with what the previous one saw; only the first must succeed."""
    margin = min(LAST_POLL_SECONDS, (end - clock.now()) / 10)
    seen: dict[str, Any] | None = None
    while True:
        try:
            seen = await poll()
        except UpstreamTimeout:
            if seen is None:
                raise
            return seen
        pause = min(interval, end - margin - clock.now())
        if done(seen) or pause < MIN_POLL_GAP_SECONDS:
            return seen
        await clock.sleep(pause)


async def wait_for_batch(
    retell: RetellClient, batch_id: str, wait_seconds: float, progress: Progress, deadline: float, clock: Clock
) -> dict[str, Any]:
    """The batch, polled every 5 s until it is `complete` or `wait_seconds` have passed."""
    end = min(clock.now() + min(wait_seconds, BATCH_WAIT_CAP_SECONDS), deadline)
    polls = 0

    async def poll() -> dict[str, Any]:
        nonlocal polls
        batch = await retell.get_batch_test(batch_id, deadline=deadline)
        polls += 1
        finished, total = _finished(batch)
        status = clip(batch.get("status"))
        await progress(finished, total, f"poll {polls}: batch {status}, {finished:g} of {total or '?'} runs finished")
        return batch

    return await _poll_until(poll, lambda batch: batch.get("status") == "complete", BATCH_POLL_SECONDS, end, clock)


class _Tally:
    """What a summary keeps while paging: counts by status and the first failed runs, never a page."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failed: list[FailedRun] = []
        self.failed_total = 0

    def add(self, run: object) -> None:
        status = run_status(run)
        if status not in self.counts and len(self.counts) >= STATUSES_KEPT:
            status = "other"  # a vendor inventing a status per run cannot grow the answer
        self.counts[status] += 1
        if status in ("fail", "error"):
            self.failed_total += 1
            if len(self.failed) < FAILED_SHOWN:
                assert isinstance(run, dict)
                self.failed.append(_failed_run(run, status))


class RunPages:
    """Every page of a batch's runs, 1,000 at a time, within a deadline: iterate `read()` for each page's runs (the
    page itself is dropped as soon as the next is asked for). When the deadline or the page limit comes first, or
    Retell gives no usable next key, reading stops and `stopped` says why; `pages` counts what was read."""

    def __init__(self, retell: RetellClient, batch_id: str, deadline: float) -> None:
        self._retell = retell
        self.batch_id = batch_id
        self._deadline = deadline
        self.pages = 0
        self.stopped: str | None = None

    async def read(self) -> AsyncIterator[list[Any]]:
        key: str | None = None
        seen_keys: set[str] = set()
        batch_id = self.batch_id
        while True:
            try:
                page = await self._retell.list_test_runs(
                    batch_id, limit=PAGE_SIZE, pagination_key=key, deadline=self._deadline
                )
            except UpstreamTimeout:
                self.stopped = (
                    f"Retell's page {self.pages + 1} of batch '{batch_id}' did not arrive in the time this call had; "
                    "list_test_runs reads it"
                )
                return
            items = page.get("items")
            if not isinstance(items, list):
                raise BadUpstreamResponse(
                    f"Retell's page {self.pages + 1} of batch test '{batch_id}' has no items list.",
                    provider="retell",
                    status=200,
                )
            self.pages += 1
            has_more, next_key = page.get("has_more"), page.get("pagination_key")
            del page  # a page can hold 1,000 transcripts: none is kept past the caller's look at it
            yield items
            del items
            if has_more is not True:
                return
            if not isinstance(next_key, str) or not next_key or next_key in seen_keys:
                self.stopped = (
                    f"paging batch '{batch_id}' stopped after {self.pages} pages: Retell said more follow but gave no "
                    "new pagination_key"
                )
                return
            try:
                check_token(next_key, argument="pagination_key", provider="retell")
            except InvalidArgument:
                # Retell's own key, not the user's argument: a vendor fault, reported as one.
                raise BadUpstreamResponse(
                    f"Retell's page {self.pages} of batch test '{batch_id}' has a pagination_key that cannot be sent "
                    "back safely (not printable ASCII, or over 1,024 characters).",
                    provider="retell",
                    status=200,
                ) from None
            if self.pages >= MAX_PAGES:
                self.stopped = (
                    f"paging batch '{batch_id}' stopped after {self.pages} pages; list_test_runs reads the rest"
                )
                return
            seen_keys.add(next_key)
            key = next_key


async def summarize_batch(
    retell: RetellClient, batch_id: str, progress: Progress, *, wait_seconds: float = 0.0, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """Read the batch (waiting for it first if asked), then every page of its runs, keeping only what explains
    the failures: memory grows with the failed runs shown, not with the batch's transcripts. One deadline covers
    the whole call; when it (or the page limit) comes first, the answer is what was read, marked incomplete."""
    deadline = retell.deadline()
    if wait_seconds > 0:
        batch = await wait_for_batch(retell, batch_id, wait_seconds, progress, deadline, clock)
    else:
        batch = await retell.get_batch_test(batch_id, deadline=deadline)
    tally = _Tally()
    pages = RunPages(retell, batch_id, deadline)
    async for items in pages.read():
        for run in items:
            tally.add(run)
        del items
        await progress(pages.pages, None, f"read page {pages.pages}: {tally.counts.total()} runs so far")
    return _summary(batch_id, batch, tally, pages.pages, pages.stopped)


def _summary(batch_id: str, batch: dict[str, Any], tally: _Tally, pages: int, stopped: str | None) -> dict[str, Any]:
    total_runs = tally.counts.total()
    reasons = [stopped] if stopped else []
    total_count = count_of(batch, "total_count")
    if total_count is not None and total_runs != total_count:
        reasons.append(f"recounted {total_runs} runs but Retell counts {total_count}")
    status = clip(batch.get("status"))
    if status != "complete":
        reasons.append(f"the batch is {status}, so its runs may still change")
    summary = BatchSummary(
        test_case_batch_job_id=batch_id,
        status=status,
        pass_count=count_of(batch, "pass_count"),
        fail_count=count_of(batch, "fail_count"),
        error_count=count_of(batch, "error_count"),
        total_count=total_count,
        total_runs=total_runs,
        counts=dict(tally.counts),
        complete=not reasons,
        incomplete_reason="; ".join(reasons) or None,
        failed=tally.failed,
        failed_not_shown=tally.failed_total - len(tally.failed),
        pages=pages,
    )
    return summary.model_dump(mode="json")


def run_status(run: object) -> str:
    status = clip(run.get("status"), 40) if isinstance(run, dict) else None
    return status if status is not None else "unknown"


def _failed_run(run: dict[str, Any], status: str) -> FailedRun:
    snapshot = run.get("test_case_definition_snapshot")
    return FailedRun(
        test_case_job_id=clip(run.get("test_case_job_id")),
        name=clip(snapshot.get("name")) if isinstance(snapshot, dict) else None,
        status=status,
        result_explanation=clip(run.get("result_explanation"), EXPLANATION_LIMIT),
    )


async def wait_for_run(
    retell: RetellClient,
    job_id: str,
    timeout_seconds: float,
    poll_interval_seconds: float,
    progress: Progress,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Poll until the run is pass, fail or error, or until `timeout_seconds` (at most 50) are up, which is also
    the deadline of every poll; return the run as last seen (still running is an answer, not an error)."""
    started = clock.now()
    timeout = min(timeout_seconds, WAIT_CAP_SECONDS)
    deadline = started + timeout
    polls = 0

    async def poll() -> dict[str, Any]:
        nonlocal polls
        run = await retell.get_test_run(job_id, fresh=True, deadline=deadline)
        polls += 1
        await progress(min(clock.now() - started, timeout), timeout, f"poll {polls}: status {clip(run.get('status'))}")
        return run

    def finished(run: dict[str, Any]) -> bool:
        status = run.get("status")
        return isinstance(status, str) and status in FINAL_STATUSES

    return await _poll_until(poll, finished, poll_interval_seconds, deadline, clock)
