"""Tela's tools: test cases, and running a prompt version's cases (level `runs`)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver.resolve import Resolve
from mcp_types import CallToolResult
from pydantic import Field

from mcp_server.tela.client import (
    TelaPromptVersion,
    TelaPromptVersionList,
    TelaRunAll,
    TelaTestCase,
    TelaTestCaseList,
)
from mcp_server.tools.base import Ctx, ToolSpec, answer, runtime
from mcp_server.tools.writes import Confirm, Prepared, confirming, prepare, written
from mcp_server.upstream.ids import check_id, check_ids


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


def _prepare_cases_run(prompt_version_id: str, test_case_ids: list[str] | None) -> tuple[dict[str, Any], str]:
    version = check_id(prompt_version_id, argument="prompt_version_id", provider="tela")
    body: dict[str, Any] = {"promptVersionId": version}
    if test_case_ids is not None:  # left out, every case of the prompt runs
        body["testCaseIds"] = check_ids(test_case_ids, argument="test_case_ids", provider="tela")
    count = len(body.get("testCaseIds", []))
    cases = f"{count} Tela test case{'s' if count != 1 else ''}" if count else "every Tela test case"
    return body, f"Run {cases} of prompt version {version}? Runs count towards your Tela quota."


async def prepare_cases_run(
    ctx: Ctx, prompt_version_id: str, test_case_ids: list[str] | None
) -> Prepared[dict[str, Any]]:
    async def checks() -> tuple[dict[str, Any], str]:
        return _prepare_cases_run(prompt_version_id, test_case_ids)

    return await prepare(checks())


confirm_cases_run = confirming(prepare_cases_run)


async def run_test_cases(
    prompt_version_id: Annotated[str, Field(description="Tela prompt version UUID")],
    ctx: Ctx,
    prepared: Annotated[Prepared[dict[str, Any]], Resolve(prepare_cases_run)],
    confirmation: Annotated[ElicitationResult[Confirm], Resolve(confirm_cases_run)],
    test_case_ids: Annotated[list[str] | None, Field(description="Tela test case UUIDs; all if omitted")] = None,
) -> Annotated[CallToolResult, TelaRunAll]:
    """Run a Tela prompt version's test cases. Costs Tela quota. Cases already running are skipped (an
    empty executionId: nothing started). Never retried once it may have started."""
    tela = runtime(ctx).tela
    return await written(ctx, "run_test_cases", "tela", prepared, confirmation, tela.run_test_cases)


TOOLS = (
    ToolSpec(get_test_case, "Get Tela test case", "tela"),
    ToolSpec(list_test_cases, "List Tela test cases", "tela"),
    ToolSpec(get_prompt_version, "Get Tela prompt version", "tela"),
    ToolSpec(list_prompt_versions, "List Tela prompt versions", "tela"),
    ToolSpec(run_test_cases, "Run Tela test cases", "tela", "runs"),
)
