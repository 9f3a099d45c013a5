"""The tools that answer a question in one call where it takes several vendor requests: a batch's summary and
waiting for a run, comparing two batches (the work itself is in `summaries` and `compare`)."""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import Field

from mcp_server.retell.client import RetellTestRun
from mcp_server.retell.compare import BatchComparison, compare_batches
from mcp_server.retell.summaries import (
    BATCH_WAIT_CAP_SECONDS,
    WAIT_CAP_SECONDS,
    BatchSummary,
    summarize_batch,
    wait_for_run,
)
from mcp_server.tools.base import BatchId, Ctx, JobId, ToolSpec, answer, runtime


async def summarize_batch_test(
    test_case_batch_job_id: BatchId,
    ctx: Ctx,
    wait_seconds: Annotated[
        float, Field(ge=0, le=BATCH_WAIT_CAP_SECONDS, description="First wait this long for it to complete")
    ] = 0,
) -> Annotated[CallToolResult, BatchSummary]:
    """What failed in a Retell batch: Retell's counts, a recount, each failed run's explanation."""
    state = runtime(ctx)
    fetch = summarize_batch(
        state.retell, test_case_batch_job_id, ctx.report_progress, wait_seconds=wait_seconds, clock=state.clock
    )
    return await answer(ctx, "summarize_batch_test", "retell", fetch)


async def wait_for_test_run(
    test_case_job_id: JobId,
    ctx: Ctx,
    timeout_seconds: Annotated[float, Field(gt=0, le=WAIT_CAP_SECONDS, description="Longest wait")] = 45,
    poll_interval_seconds: Annotated[float, Field(ge=1, le=30, description="Time between checks")] = 3,
) -> Annotated[CallToolResult, RetellTestRun]:
    """Wait for a Retell test run to finish; returns it as last seen (maybe still running)."""
    state = runtime(ctx)
    fetch = wait_for_run(
        state.retell, test_case_job_id, timeout_seconds, poll_interval_seconds, ctx.report_progress, state.clock
    )
    return await answer(ctx, "wait_for_test_run", "retell", fetch)


async def compare_batch_tests(
    before_batch_id: str,
    after_batch_id: str,
    ctx: Ctx,
) -> Annotated[CallToolResult, BatchComparison]:
    """What a change fixed and broke: two Retell batches' runs matched by test definition."""
    fetch = compare_batches(runtime(ctx).retell, before_batch_id, after_batch_id, ctx.report_progress)
    return await answer(ctx, "compare_batch_tests", "retell", fetch)


TOOLS = (
    ToolSpec(summarize_batch_test, "Summarize Retell batch test", "retell"),
    ToolSpec(wait_for_test_run, "Wait for Retell test run", "retell"),
    ToolSpec(compare_batch_tests, "Compare Retell batch tests", "retell"),
)
