"""Tela's tools: test cases, and running a prompt version's cases (level `runs`)."""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import Field

from mcp_server.tools.base import Ctx, ToolSpec, answer, runtime
from mcp_server.upstream.tela import (
    TelaPromptVersion,
    TelaPromptVersionList,
    TelaRunAll,
    TelaTestCase,
    TelaTestCaseList,
)


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


async def get_prompt_version(
    id: Annotated[str, Field(description="Tela prompt version UUID")], ctx: Ctx
) -> Annotated[CallToolResult, TelaPromptVersion]:
    """Get a Tela prompt version under test: content, messages, variables, model configuration."""
    return await answer(ctx, "get_prompt_version", "tela", runtime(ctx).tela.get_prompt_version(id))


async def list_prompt_versions(
    prompt_id: Annotated[str, Field(description="Tela prompt UUID")],
    ctx: Ctx,
    limit: Annotated[int, Field(ge=1, le=100, description="Versions per page")] = 20,
    offset: Annotated[int, Field(ge=0, description="Versions to skip")] = 0,
) -> Annotated[CallToolResult, TelaPromptVersionList]:
    """List a Tela prompt's versions, newest first: which is draft, which promoted."""
    fetch = runtime(ctx).tela.list_prompt_versions(prompt_id, limit=limit, offset=offset)
    return await answer(ctx, "list_prompt_versions", "tela", fetch)


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
    ToolSpec(get_prompt_version, "Get Tela prompt version", "tela"),
    ToolSpec(list_prompt_versions, "List Tela prompt versions", "tela"),
    ToolSpec(run_test_cases, "Run Tela test cases", "tela", "runs"),
)
