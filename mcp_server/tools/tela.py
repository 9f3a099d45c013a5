"""Tela's tools: test cases, and running a prompt version's cases (level `runs`)."""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import Field

from mcp_server.tools.base import Ctx, ToolSpec, answer, runtime
from mcp_server.upstream.tela import TelaRunAll, TelaTestCase, TelaTestCaseList


async def get_test_case(
    id: Annotated[str, Field(description="Tela test case UUID")],
    ctx: Ctx,
    include_generations: Annotated[bool, Field(description="Also return its generations")] = False,
) -> Annotated[CallToolResult, TelaTestCase]:
    """Get a Tela test case: messages, variables, expectedOutput, answers."""
    fetch = runtime(ctx).tela.get_test_case(id, include_generations=include_generations)
    return await answer(ctx, "get_test_case", "tela", fetch)


async def list_test_cases(
    prompt_id: Annotated[str, Field(description="Tela prompt UUID")],
    ctx: Ctx,
    include_generations: Annotated[bool, Field(description="Also return generations")] = False,
    prompt_version_ids: Annotated[list[str] | None, Field(description="Only these prompt version UUIDs")] = None,
) -> Annotated[CallToolResult, TelaTestCaseList]:
    """List a Tela prompt's test cases, as items."""
    fetch = runtime(ctx).tela.list_test_cases(
        prompt_id, include_generations=include_generations, prompt_version_ids=prompt_version_ids
    )
    return await answer(ctx, "list_test_cases", "tela", fetch)


async def run_test_cases(
    prompt_version_id: Annotated[str, Field(description="Tela prompt version UUID")],
    ctx: Ctx,
    test_case_ids: Annotated[list[str] | None, Field(description="Tela test case UUIDs; all if omitted")] = None,
) -> Annotated[CallToolResult, TelaRunAll]:
    """Run a Tela prompt version's test cases. Costs Tela quota. Cases already running are skipped (an
    empty executionId: nothing started). Never retried once it may have started."""
    fetch = runtime(ctx).tela.run_test_cases(prompt_version_id, test_case_ids)
    return await answer(ctx, "run_test_cases", "tela", fetch)


TOOLS = (
    ToolSpec(get_test_case, "Get Tela test case", "tela"),
    ToolSpec(list_test_cases, "List Tela test cases", "tela"),
    ToolSpec(run_test_cases, "Run Tela test cases", "tela", "runs"),
)
