"""The MCP server: a lifespan holding one HTTP client per vendor, the tools, and the resource templates."""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import httpx2
import pydantic_core
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolResult,
    Completion,
    CompletionArgument,
    GetPromptResult,
    InputRequiredResult,
    PromptReference,
    ResourceTemplateReference,
    TextContent,
    ToolAnnotations,
)
from pydantic import Field

from mcp_server import __version__
from mcp_server.completions import ClientScopeMiddleware, SeenIds
from mcp_server.config import Settings
from mcp_server.errors import InvalidArgument, NotFound, Provider, UpstreamError
from mcp_server.stdio import Wire, stdio_streams
from mcp_server.upstream.clock import SYSTEM_CLOCK, Clock
from mcp_server.upstream.http import cache_status
from mcp_server.upstream.ids import check_id
from mcp_server.upstream.retell import (
    RetellBatchTest,
    RetellBatchTestPage,
    RetellDefinitionPage,
    RetellTestCaseDefinition,
    RetellTestRun,
    RetellTestRunPage,
)
from mcp_server.upstream.tela import TelaRunAll, TelaTestCase, TelaTestCaseList
from mcp_server.upstream.vendors import Upstreams, open_upstreams
from mcp_server.views import ViewsMiddleware, view_resources
from mcp_server.workflow import BATCH_WAIT_CAP_SECONDS, WAIT_CAP_SECONDS, BatchSummary, summarize_batch, wait_for_run

logger = logging.getLogger(__name__)

_Read = TypeVar("_Read", bound=Callable[..., Awaitable[str]])
_Fn = TypeVar("_Fn", bound=Callable[..., Awaitable[CallToolResult]])

SERVER_NAME = "retell-tela"
WEBSITE_URL = "https://pypi.org/project/retell-tela-mcp/"
INSTRUCTIONS = (
    "Read-only access to Retell AI test runs and Tela test cases. "
    "get_test_run takes a Retell test case job ID (ASCII letters, digits, '_' and '-') and answers "
    "'did this run pass, and why not?' via status, result_explanation, the test definition and the transcript. "
    "get_test_case takes a Tela test case UUID and answers 'what does this case send and expect?' via messages, "
    "variables and expectedOutput; include_generations adds the outputs produced for it. "
    "get_batch_test and list_test_runs (paged: pass pagination_key back) cover a Retell batch; "
    "get_test_case_definition shows what a Retell test checks; list_test_cases lists a Tela prompt's cases. "
    "summarize_batch_test answers 'what failed in my batch?' in one call (wait_seconds waits for it first); "
    "wait_for_test_run waits up to 50 s. Start from an agent: list_batch_tests and list_test_case_definitions "
    "take agent_id (or llm_id, conversation_flow_id). "
    "Failures are JSON {error: {code, message, retryable}}; retry only when retryable is true."
)
RUNS_INSTRUCTIONS = (
    " run_batch_test and run_test_cases start runs that cost vendor credits: start one only when the user asks, "
    "and after an error check list_batch_tests or the cases' generations before starting again."
)


class RetellTelaServer(MCPServer[Upstreams]):
    """The SDK's server, with the SPEC's answer to a bad prompt request: an unknown prompt or a missing argument is
    -32602 (invalid params) under every protocol version, where the SDK raises a bare ValueError (code 0, or -32603
    under 2026-07-28) and logs a traceback for what is the client's mistake."""

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Upstreams, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        prompt = next((p for p in await self.list_prompts() if p.name == name), None)
        if prompt is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name!r}.")
        missing = [arg.name for arg in prompt.arguments or [] if arg.required and arg.name not in (arguments or {})]
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"Prompt {name!r} needs argument(s): {', '.join(missing)}.")
        return await super().get_prompt(name, arguments, context)

    async def run_stdio(self, wire: Wire | None) -> None:
        """Serve over this process's stdin and stdout: on `wire` without threads, or (None) on the SDK's threaded
        transport, which is what `run_stdio_async` uses."""
        async with stdio_streams(wire) as (read_stream, write_stream):
            lowlevel = self._lowlevel_server  # what `run_stdio_async` runs, on our streams
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def read_only(title: str) -> ToolAnnotations:
    """The SPEC's annotations for every tool here: reads only, same answer twice, talks to a vendor."""
    return ToolAnnotations(
        title=title, read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
    )


def starts_runs(title: str) -> ToolAnnotations:
    """The SPEC's annotations for a tool that starts runs: changes state at the vendor, never idempotent."""
    return ToolAnnotations(
        title=title, read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    )


def compact_json(value: object) -> str:
    """JSON without spaces or indentation (it is read by models, and every token counts), UTF-8 not \\u-escaped.
    pydantic-core's serializer writes the same text as `json.dumps(separators=(",", ":"))`, five times faster."""
    return pydantic_core.to_json(value).decode()


async def _answer(tool: str, provider: Provider, fetch: Awaitable[dict[str, Any]], seen: SeenIds) -> CallToolResult:
    """Run one upstream fetch and shape it as the contract says: the object, or an error result; log one line.
    The IDs in a successful answer are remembered for this session's argument completions."""
    started = time.perf_counter()
    try:
        obj = await fetch
    except UpstreamError as error:
        _log_call(tool, provider, error.code, error.status, started)
        return CallToolResult(content=[TextContent(type="text", text=compact_json(error.payload()))], is_error=True)
    _log_call(tool, provider, "ok", 200, started)
    seen.note(provider, obj)
    return CallToolResult(content=[TextContent(type="text", text=compact_json(obj))], structured_content=obj)


def _log_call(tool: str, provider: Provider, outcome: str, status: int | None, started: float) -> None:
    """One INFO line per tool call: what, where, how it ended, how long. Never a key, never a body."""
    event = {
        "tool": tool,
        "vendor": provider,
        "outcome": outcome,
        "status": status,
        "ms": round(_ms(started), 1),
        "cache": cache_status.get(),
    }
    logger.info(" ".join(f"{k}={v}" for k, v in event.items()), extra={"event": event})


def _prompt_id(value: str, argument: str, provider: Provider) -> str:
    """A prompt's ID, checked like a tool's, so a prompt never tells the model to fetch something malformed."""
    try:
        return check_id(value, argument=argument, provider=provider)
    except InvalidArgument as error:
        raise MCPError(code=INVALID_PARAMS, message=error.message) from None


async def _without_transcript(fetch: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """The run without `transcript_snapshot` (a copy: the cached object stays whole)."""
    run = await fetch
    return {key: value for key, value in run.items() if key != "transcript_snapshot"}


async def _read(fetch: Awaitable[dict[str, Any]]) -> str:
    """A resource read: the object as compact JSON, or a JSON-RPC error in the same words as the tool's."""
    try:
        return compact_json(await fetch)
    except (NotFound, InvalidArgument) as error:
        raise ResourceNotFoundError(error.message) from None
    except UpstreamError as error:
        raise ResourceError(error.message) from None


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def lean_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema without what only costs the model tokens: the SDK's auto-generated titles (the
    argument model's name, each argument's name re-spelt), and for an optional `X | None = None` argument the
    `null` branch and `default: null` (leaving the argument out means the same)."""
    lean = {key: value for key, value in schema.items() if key != "title"}
    properties: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        prop = {key: value for key, value in prop.items() if key != "title"}
        branches = prop.get("anyOf")
        if prop.get("default", ...) is None and isinstance(branches, list) and {"type": "null"} in branches:
            others = [branch for branch in branches if branch != {"type": "null"}]
            if len(others) == 1:
                rest = {key: value for key, value in prop.items() if key not in ("anyOf", "default")}
                prop = {**others[0], **rest}
        properties[name] = prop
    if properties:
        lean["properties"] = properties
    return lean


# Arguments several tools share, described once.
AgentId = Annotated[str | None, Field(description="Retell agent ID (its LLM or flow is looked up)")]
LlmId = Annotated[str | None, Field(description="Retell LLM ID")]
FlowId = Annotated[str | None, Field(description="Retell conversation flow ID")]
Version = Annotated[int | None, Field(ge=0, description="LLM or flow version; latest if omitted")]
Limit = Annotated[int, Field(ge=1, le=1000, description="Items per page")]
PaginationKey = Annotated[str | None, Field(description="From the previous page")]
BatchId = Annotated[str, Field(description="Retell test case batch job ID")]
JobId = Annotated[str, Field(description="Retell test case job ID")]


def build_server(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    clock: Clock = SYSTEM_CLOCK,
    single_client: bool = False,
    stateless: bool = False,
) -> RetellTelaServer:
    """A ready server. `transport` replaces the network for both vendors (tests, `--demo`); `clock` is the time
    retries, waits and deadlines count on (tests pass one whose sleep returns at once); `single_client` says the
    process serves one client only (stdio), so completions may offer it everything shown, whatever the protocol;
    `stateless` that it serves stateless HTTP, where a handshake-era client's `initialize` is not remembered."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Upstreams]) -> AsyncIterator[Upstreams]:
        async with open_upstreams(settings, transport=transport, clock=clock) as upstreams:
            yield upstreams

    seen = SeenIds()
    tools: list[Tool] = []

    def tool(title: str, annotations: ToolAnnotations) -> Callable[[_Fn], _Fn]:
        """Register a tool (tools/list keeps this order) with a lean input schema."""

        def register(fn: _Fn) -> _Fn:
            # One line however the docstring wraps: indentation would be tokens the model pays for.
            description = " ".join((fn.__doc__ or "").split())
            made = Tool.from_function(fn, title=title, description=description, annotations=annotations)
            made.parameters = lean_input_schema(made.parameters)
            tools.append(made)
            return fn

        return register

    async def answer(tool: str, provider: Provider, fetch: Awaitable[dict[str, Any]]) -> CallToolResult:
        return await _answer(tool, provider, fetch, seen)

    def upstreams(ctx: Context[Upstreams, Any]) -> Upstreams:
        return ctx.request_context.lifespan_context

    @tool("Get Retell test run", read_only("Get Retell test run"))
    async def get_test_run(
        test_case_job_id: JobId,
        ctx: Context[Upstreams, Any],
        include_transcript: Annotated[bool, Field(description="false: leave transcript_snapshot out")] = True,
    ) -> Annotated[CallToolResult, RetellTestRun]:
        """Get a Retell test run: status, result_explanation, definition, transcript."""
        fetch = upstreams(ctx).retell.get_test_run(test_case_job_id)
        return await answer("get_test_run", "retell", fetch if include_transcript else _without_transcript(fetch))

    @tool("Get Tela test case", read_only("Get Tela test case"))
    async def get_test_case(
        id: Annotated[str, Field(description="Tela test case UUID")],
        ctx: Context[Upstreams, Any],
        include_generations: Annotated[bool, Field(description="Also return its generations")] = False,
    ) -> Annotated[CallToolResult, TelaTestCase]:
        """Get a Tela test case: messages, variables, expectedOutput, answers."""
        fetch = upstreams(ctx).tela.get_test_case(id, include_generations=include_generations)
        return await answer("get_test_case", "tela", fetch)

    @tool("Get Retell batch test", read_only("Get Retell batch test"))
    async def get_batch_test(
        test_case_batch_job_id: BatchId, ctx: Context[Upstreams, Any]
    ) -> Annotated[CallToolResult, RetellBatchTest]:
        """Get a Retell batch test: status and pass/fail/error counts."""
        fetch = upstreams(ctx).retell.get_batch_test(test_case_batch_job_id)
        return await answer("get_batch_test", "retell", fetch)

    @tool("List Retell test runs", read_only("List Retell test runs"))
    async def list_test_runs(
        test_case_batch_job_id: BatchId,
        ctx: Context[Upstreams, Any],
        limit: Limit = 50,
        pagination_key: PaginationKey = None,
    ) -> Annotated[CallToolResult, RetellTestRunPage]:
        """List one page of a Retell batch test's runs."""
        fetch = upstreams(ctx).retell.list_test_runs(test_case_batch_job_id, limit=limit, pagination_key=pagination_key)
        return await answer("list_test_runs", "retell", fetch)

    @tool("Get Retell test case definition", read_only("Get Retell test case definition"))
    async def get_test_case_definition(
        test_case_definition_id: Annotated[str, Field(description="Retell test case definition ID")],
        ctx: Context[Upstreams, Any],
    ) -> Annotated[CallToolResult, RetellTestCaseDefinition]:
        """Get a Retell test case definition: caller prompt, metrics, tool mocks."""
        fetch = upstreams(ctx).retell.get_test_case_definition(test_case_definition_id)
        return await answer("get_test_case_definition", "retell", fetch)

    @tool("List Tela test cases", read_only("List Tela test cases"))
    async def list_test_cases(
        prompt_id: Annotated[str, Field(description="Tela prompt UUID")],
        ctx: Context[Upstreams, Any],
        include_generations: Annotated[bool, Field(description="Also return generations")] = False,
        prompt_version_ids: Annotated[list[str] | None, Field(description="Only these prompt version UUIDs")] = None,
    ) -> Annotated[CallToolResult, TelaTestCaseList]:
        """List a Tela prompt's test cases, as items."""
        fetch = upstreams(ctx).tela.list_test_cases(
            prompt_id, include_generations=include_generations, prompt_version_ids=prompt_version_ids
        )
        return await answer("list_test_cases", "tela", fetch)

    @tool("Summarize Retell batch test", read_only("Summarize Retell batch test"))
    async def summarize_batch_test(
        test_case_batch_job_id: BatchId,
        ctx: Context[Upstreams, Any],
        wait_seconds: Annotated[
            float, Field(ge=0, le=BATCH_WAIT_CAP_SECONDS, description="First wait this long for it to complete")
        ] = 0,
    ) -> Annotated[CallToolResult, BatchSummary]:
        """What failed in a Retell batch: Retell's counts, a recount, each failed run's explanation."""
        retell = upstreams(ctx).retell
        fetch = summarize_batch(
            retell, test_case_batch_job_id, ctx.report_progress, wait_seconds=wait_seconds, clock=clock
        )
        return await answer("summarize_batch_test", "retell", fetch)

    @tool("Wait for Retell test run", read_only("Wait for Retell test run"))
    async def wait_for_test_run(
        test_case_job_id: JobId,
        ctx: Context[Upstreams, Any],
        timeout_seconds: Annotated[float, Field(gt=0, le=WAIT_CAP_SECONDS, description="Longest wait")] = 45,
        poll_interval_seconds: Annotated[float, Field(ge=1, le=30, description="Time between checks")] = 3,
    ) -> Annotated[CallToolResult, RetellTestRun]:
        """Wait for a Retell test run to finish; returns it as last seen (maybe still running)."""
        retell = upstreams(ctx).retell
        fetch = wait_for_run(
            retell, test_case_job_id, timeout_seconds, poll_interval_seconds, ctx.report_progress, clock
        )
        return await answer("wait_for_test_run", "retell", fetch)

    @tool("List Retell batch tests", read_only("List Retell batch tests"))
    async def list_batch_tests(
        ctx: Context[Upstreams, Any],
        agent_id: AgentId = None,
        llm_id: LlmId = None,
        conversation_flow_id: FlowId = None,
        version: Version = None,
        limit: Limit = 50,
        pagination_key: PaginationKey = None,
    ) -> Annotated[CallToolResult, RetellBatchTestPage]:
        """List batch tests of a Retell agent, LLM or flow (exactly one ID)."""
        fetch = upstreams(ctx).retell.list_batch_tests(
            agent_id, llm_id, conversation_flow_id, version=version, limit=limit, pagination_key=pagination_key
        )
        return await answer("list_batch_tests", "retell", fetch)

    @tool("List Retell test case definitions", read_only("List Retell test case definitions"))
    async def list_test_case_definitions(
        ctx: Context[Upstreams, Any],
        agent_id: AgentId = None,
        llm_id: LlmId = None,
        conversation_flow_id: FlowId = None,
        limit: Limit = 50,
        pagination_key: PaginationKey = None,
    ) -> Annotated[CallToolResult, RetellDefinitionPage]:
        """List the test case definitions of a Retell agent, LLM or flow (exactly one ID)."""
        fetch = upstreams(ctx).retell.list_test_case_definitions(
            agent_id, llm_id, conversation_flow_id, limit=limit, pagination_key=pagination_key
        )
        return await answer("list_test_case_definitions", "retell", fetch)

    if settings.allow_runs:

        @tool("Run Retell batch test", starts_runs("Run Retell batch test"))
        async def run_batch_test(
            test_case_definition_ids: Annotated[list[str], Field(description="Retell test case definition IDs")],
            ctx: Context[Upstreams, Any],
            agent_id: AgentId = None,
            llm_id: LlmId = None,
            conversation_flow_id: FlowId = None,
            version: Version = None,
        ) -> Annotated[CallToolResult, RetellBatchTest]:
            """Start a Retell batch test of these definitions against an agent, LLM or flow (exactly one ID).
            Costs Retell credits. Never retried once it may have started: after an error, check list_batch_tests."""
            fetch = upstreams(ctx).retell.create_batch_test(
                test_case_definition_ids, agent_id, llm_id, conversation_flow_id, version=version
            )
            return await answer("run_batch_test", "retell", fetch)

        @tool("Run Tela test cases", starts_runs("Run Tela test cases"))
        async def run_test_cases(
            prompt_version_id: Annotated[str, Field(description="Tela prompt version UUID")],
            ctx: Context[Upstreams, Any],
            test_case_ids: Annotated[
                list[str] | None, Field(description="Tela test case UUIDs; all if omitted")
            ] = None,
        ) -> Annotated[CallToolResult, TelaRunAll]:
            """Run a Tela prompt version's test cases. Costs Tela quota. Cases already running are skipped (an
            empty executionId: nothing started). Never retried once it may have started."""
            fetch = upstreams(ctx).tela.run_test_cases(prompt_version_id, test_case_ids)
            return await answer("run_test_cases", "tela", fetch)

    server = RetellTelaServer(
        SERVER_NAME,
        version=__version__,
        instructions=INSTRUCTIONS + (RUNS_INSTRUCTIONS if settings.allow_runs else ""),
        website_url=WEBSITE_URL,
        lifespan=lifespan,
        log_level=settings.log_level,
        middleware=[ClientScopeMiddleware(single_client=single_client)]
        + ([ViewsMiddleware(stateless=stateless)] if settings.app_views else []),
        tools=tools,
    )
    if settings.app_views:
        for resource in view_resources():
            server.add_resource(resource)

    async def complete(
        ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: Any
    ) -> Completion:
        """Offer the IDs this session has already seen for the argument's kind, matching what is typed so far."""
        return seen.complete(ref, argument.name, argument.value)

    server.completion()(complete)  # type: ignore[no-untyped-call]  # the SDK's decorator factory is unannotated

    @server.prompt(name="diagnose_test_run", title="Diagnose a Retell test run")
    async def diagnose_test_run(test_case_job_id: str) -> str:
        """Explain why a Retell test run failed, metric by metric, from its transcript."""
        job_id = _prompt_id(test_case_job_id, "test_case_job_id", "retell")
        return (
            f"Fetch Retell test run {job_id} with get_test_run. If it is still pending or in_progress, call "
            "wait_for_test_run first. Then explain the outcome: for each metric in "
            "test_case_definition_snapshot.metrics, say whether it was met and quote the transcript turns that show "
            "it; quote result_explanation; and if the run failed or errored, name the most likely cause in the "
            "agent's behaviour or prompt and suggest one concrete change to fix it."
        )

    @server.prompt(name="review_test_case", title="Review a Tela test case")
    async def review_test_case(id: str) -> str:
        """Compare a Tela test case's expectedOutput with its latest generation."""
        case_id = _prompt_id(id, "id", "tela")
        return (
            f"Fetch Tela test case {case_id} with get_test_case and include_generations true. Compare its "
            "expectedOutput with its latest generation (the last in generations, or the newest by createdAt): say "
            "whether the generation meets the expectation, list the concrete differences, and suggest how to change "
            "the prompt or the expectation. If there are no generations, say so and review the messages and "
            "variables instead."
        )

    def json_template(uri: str, title: str, same_as: str) -> Callable[[_Read], _Read]:
        """A resource template whose contents are the same JSON as the tool `same_as`."""
        return server.resource(
            uri,
            name=title.lower().replace(" ", "_"),
            title=title,
            description=f"A {title}, as {same_as} returns it.",
            mime_type="application/json",
        )

    @json_template("retell://test-runs/{test_case_job_id}", "Retell test run", "get_test_run")
    async def test_run_resource(test_case_job_id: str, ctx: Context[Upstreams, Any]) -> str:
        return await _read(upstreams(ctx).retell.get_test_run(test_case_job_id))

    @json_template("tela://test-cases/{id}", "Tela test case", "get_test_case (without generations)")
    async def test_case_resource(id: str, ctx: Context[Upstreams, Any]) -> str:
        return await _read(upstreams(ctx).tela.get_test_case(id))

    @json_template("retell://batch-tests/{test_case_batch_job_id}", "Retell batch test", "get_batch_test")
    async def batch_test_resource(test_case_batch_job_id: str, ctx: Context[Upstreams, Any]) -> str:
        return await _read(upstreams(ctx).retell.get_batch_test(test_case_batch_job_id))

    @json_template(
        "retell://test-case-definitions/{test_case_definition_id}",
        "Retell test case definition",
        "get_test_case_definition",
    )
    async def definition_resource(test_case_definition_id: str, ctx: Context[Upstreams, Any]) -> str:
        return await _read(upstreams(ctx).retell.get_test_case_definition(test_case_definition_id))

    return server
