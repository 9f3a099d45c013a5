"""Tela's completion-run tools (the `calls` toolset): real customers' requests to a prompt, listed small, read whole,
and drafted into a test case (`runs.py`)."""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import Field

from mcp_server.completions import TELA_RUN_FIELDS
from mcp_server.tela import runs
from mcp_server.tela.client import TelaCompletionRun
from mcp_server.tela.runs import CompletionRunPage, DraftedTestCase, Status
from mcp_server.tools.base import Ctx, ToolSpec, answer, runtime


async def list_completion_runs(
    ctx: Ctx,
    prompt_id: str | None = None,
    prompt_version_id: str | None = None,
    prompt_application_id: str | None = None,
    status: Status | None = None,
    limit: Annotated[int, Field(ge=1, le=50)] = 20,
) -> Annotated[CallToolResult, CompletionRunPage]:
    """List Tela completion runs (production requests), newest first, each small. status filters Tela's page."""
    fetch = runs.list_runs(
        runtime(ctx).tela,
        prompt_id=prompt_id,
        prompt_version_id=prompt_version_id,
        prompt_application_id=prompt_application_id,
        status=status,
        limit=limit,
    )
    return await answer(ctx, "list_completion_runs", "tela", fetch, ids=TELA_RUN_FIELDS)


async def get_completion_run(id: str, ctx: Ctx) -> Annotated[CallToolResult, TelaCompletionRun]:
    """Get a Tela completion run whole: inputs, output, usage."""
    return await answer(
        ctx, "get_completion_run", "tela", runtime(ctx).tela.get_completion_run(id), ids=TELA_RUN_FIELDS
    )


async def draft_test_case_from_run(run_id: str, ctx: Ctx) -> Annotated[CallToolResult, DraftedTestCase]:
    """Draft a Tela test case from a completion run, as save_test_case's arguments; you write expected_output."""
    return await answer(ctx, "draft_test_case_from_run", "tela", runs.draft_case(runtime(ctx).tela, run_id))


TOOLS = (
    ToolSpec(list_completion_runs, "List Tela completion runs", "tela", calls=True),
    ToolSpec(get_completion_run, "Get Tela completion run", "tela", calls=True),
    ToolSpec(draft_test_case_from_run, "Draft Tela test case from a run", "tela", calls=True),
)
