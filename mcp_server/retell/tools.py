"""Retell's tools: test runs, batches, definitions, and starting a batch (level `runs`)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver.resolve import Resolve
from mcp_types import CallToolResult
from pydantic import Field

from mcp_server.retell.client import (
    Engine,
    RetellAgentVersionPage,
    RetellBatchTest,
    RetellBatchTestPage,
    RetellClient,
    RetellDefinitionPage,
    RetellResponseEngine,
    RetellTestCaseDefinition,
    RetellTestRun,
    RetellTestRunPage,
    choose_engine,
)
from mcp_server.tools.base import (
    AgentId,
    BatchId,
    Ctx,
    FlowId,
    JobId,
    Limit,
    LlmId,
    PaginationKey,
    ToolSpec,
    Version,
    WriteVersion,
    answer,
    runtime,
)
from mcp_server.tools.writes import Confirm, Prepared, confirming, prepare, written
from mcp_server.upstream.ids import check_ids


async def get_test_run(
    test_case_job_id: JobId,
    ctx: Ctx,
    include_transcript: Annotated[bool, Field(description="false: leave transcript_snapshot out")] = True,
) -> Annotated[CallToolResult, RetellTestRun]:
    """Get a Retell test run: status, result_explanation, definition, transcript."""
    fetch = runtime(ctx).retell.get_test_run(test_case_job_id)
    return await answer(ctx, "get_test_run", "retell", fetch if include_transcript else _without_transcript(fetch))


async def _without_transcript(fetch: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """The run without `transcript_snapshot` (a copy: the cached object stays whole)."""
    run = await fetch
    return {key: value for key, value in run.items() if key != "transcript_snapshot"}


async def get_batch_test(test_case_batch_job_id: BatchId, ctx: Ctx) -> Annotated[CallToolResult, RetellBatchTest]:
    """Get a Retell batch test: status and pass/fail/error counts."""
    fetch = runtime(ctx).retell.get_batch_test(test_case_batch_job_id)
    return await answer(ctx, "get_batch_test", "retell", fetch)


async def list_test_runs(
    test_case_batch_job_id: BatchId, ctx: Ctx, limit: Limit = 50, pagination_key: PaginationKey = None
) -> Annotated[CallToolResult, RetellTestRunPage]:
    """List one page of a Retell batch test's runs."""
    fetch = runtime(ctx).retell.list_test_runs(test_case_batch_job_id, limit=limit, pagination_key=pagination_key)
    return await answer(ctx, "list_test_runs", "retell", fetch)


async def get_test_case_definition(
    test_case_definition_id: str, ctx: Ctx
) -> Annotated[CallToolResult, RetellTestCaseDefinition]:
    """Get a Retell test case definition: caller prompt, metrics, tool mocks."""
    fetch = runtime(ctx).retell.get_test_case_definition(test_case_definition_id)
    return await answer(ctx, "get_test_case_definition", "retell", fetch)


async def list_batch_tests(
    ctx: Ctx,
    agent_id: AgentId = None,
    llm_id: LlmId = None,
    conversation_flow_id: FlowId = None,
    version: Version = None,
    limit: Limit = 50,
    pagination_key: PaginationKey = None,
) -> Annotated[CallToolResult, RetellBatchTestPage]:
    """List batch tests of a Retell agent, LLM or flow (give exactly one ID)."""
    fetch = runtime(ctx).retell.list_batch_tests(
        agent_id, llm_id, conversation_flow_id, version=version, limit=limit, pagination_key=pagination_key
    )
    return await answer(ctx, "list_batch_tests", "retell", fetch)


async def list_test_case_definitions(
    ctx: Ctx,
    agent_id: AgentId = None,
    llm_id: LlmId = None,
    conversation_flow_id: FlowId = None,
    limit: Limit = 50,
    pagination_key: PaginationKey = None,
) -> Annotated[CallToolResult, RetellDefinitionPage]:
    """List the test case definitions of a Retell agent, LLM or flow (give exactly one ID)."""
    fetch = runtime(ctx).retell.list_test_case_definitions(
        agent_id, llm_id, conversation_flow_id, limit=limit, pagination_key=pagination_key
    )
    return await answer(ctx, "list_test_case_definitions", "retell", fetch)


async def get_response_engine(
    ctx: Ctx,
    test_case_job_id: str | None = None,
    test_case_batch_job_id: str | None = None,
    agent_id: AgentId = None,
    llm_id: LlmId = None,
    conversation_flow_id: FlowId = None,
    version: Annotated[int | None, Field(ge=0, description="not with a run or batch; latest if omitted")] = None,
) -> Annotated[CallToolResult, RetellResponseEngine]:
    """The Retell LLM or flow (prompts, states, nodes) a test ran, at the version it ran. Give exactly one ID."""
    fetch = runtime(ctx).retell.get_response_engine(
        test_case_job_id=test_case_job_id,
        test_case_batch_job_id=test_case_batch_job_id,
        agent_id=agent_id,
        llm_id=llm_id,
        conversation_flow_id=conversation_flow_id,
        version=version,
    )
    return await answer(ctx, "get_response_engine", "retell", fetch)


async def list_agent_versions(
    agent_id: str,
    ctx: Ctx,
    limit: Limit = 50,
    pagination_key: PaginationKey = None,
) -> Annotated[CallToolResult, RetellAgentVersionPage]:
    """List a Retell agent's versions, newest first: which are published, their bases and titles."""
    fetch = runtime(ctx).retell.list_agent_versions(agent_id, limit=limit, pagination_key=pagination_key)
    return await answer(ctx, "list_agent_versions", "retell", fetch)


@dataclass(frozen=True)
class BatchRun:
    """A checked batch test to start: the definitions, the engine they run against, at `version` (None: latest)."""

    definitions: list[str]
    engine: Engine
    version: int | None


async def _prepare_batch_run(
    retell: RetellClient,
    definitions: list[str],
    choice: tuple[str | None, str | None, str | None],
    version: int | None,
) -> tuple[BatchRun, str]:
    chosen = choose_engine(*choice)
    checked = check_ids(definitions, argument="test_case_definition_ids", provider="retell")
    engine = await retell.resolve(chosen, retell.deadline())
    whose = f"agent {chosen.agent_id} ({engine})" if chosen.agent_id else str(engine)
    at = f"version {version}" if version is not None else "its latest version"
    tests = f"{len(checked)} Retell test{'s' if len(checked) != 1 else ''}"
    return BatchRun(checked, engine, version), f"Start {tests} on {whose}, {at}? Runs cost Retell credits."


async def prepare_batch_run(
    ctx: Ctx,
    test_case_definition_ids: list[str],
    agent_id: str | None,
    llm_id: str | None,
    conversation_flow_id: str | None,
    version: int | None,
) -> Prepared[BatchRun]:
    choice = (agent_id, llm_id, conversation_flow_id)
    return await prepare(_prepare_batch_run(runtime(ctx).retell, test_case_definition_ids, choice, version))


confirm_batch_run = confirming(prepare_batch_run)


async def run_batch_test(
    test_case_definition_ids: list[str],
    ctx: Ctx,
    prepared: Annotated[Prepared[BatchRun], Resolve(prepare_batch_run)],
    confirmation: Annotated[ElicitationResult[Confirm], Resolve(confirm_batch_run)],
    agent_id: AgentId = None,
    llm_id: LlmId = None,
    conversation_flow_id: FlowId = None,
    version: WriteVersion = None,
) -> Annotated[CallToolResult, RetellBatchTest]:
    """Start a Retell batch test of these definitions against an agent, LLM or flow (give exactly one ID).
    Costs Retell credits. Never retried once it may have started: after an error, check list_batch_tests."""
    retell = runtime(ctx).retell

    async def send(run: BatchRun) -> dict[str, Any]:
        return await retell.create_batch_test(run.definitions, run.engine, run.version, deadline=retell.deadline())

    return await written(ctx, "run_batch_test", "retell", prepared, confirmation, send)


TOOLS = (
    ToolSpec(get_test_run, "Get Retell test run", "retell"),
    ToolSpec(get_batch_test, "Get Retell batch test", "retell"),
    ToolSpec(list_test_runs, "List Retell test runs", "retell"),
    ToolSpec(get_test_case_definition, "Get Retell test case definition", "retell"),
    ToolSpec(list_batch_tests, "List Retell batch tests", "retell"),
    ToolSpec(list_test_case_definitions, "List Retell test case definitions", "retell"),
    ToolSpec(get_response_engine, "Get Retell engine under test", "retell"),
    ToolSpec(list_agent_versions, "List Retell agent versions", "retell"),
    ToolSpec(run_batch_test, "Run Retell batch test", "retell", "runs"),
)
