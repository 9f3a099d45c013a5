"""The MCP server assembled: the toolsets and levels the settings allow, the middleware, and the lifespan that
holds one HTTP client per vendor. The tools, prompts and resources themselves live in their own modules."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.server.context import ServerMiddleware
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    Completion,
    CompletionArgument,
    GetPromptResult,
    InputRequiredResult,
    PromptReference,
    ResourceTemplateReference,
)

from mcp_server import __version__
from mcp_server.answers import AnswerLifetime
from mcp_server.completions import ClientScopeMiddleware, SeenIds
from mcp_server.config import Settings, shown_store_url
from mcp_server.confirmations import CLOCK_SKEW_SECONDS, NoteSealedState, UsedInMemory, open_used_confirmations
from mcp_server.errors import PROVIDER_NAMES, Provider
from mcp_server.prompts import PROMPTS
from mcp_server.resources import TEMPLATES
from mcp_server.stdio import Wire, stdio_streams
from mcp_server.tools import TOOLS
from mcp_server.tools.base import Runtime
from mcp_server.tools.writes import WriteArguments
from mcp_server.upstream.clock import SYSTEM_CLOCK, Clock
from mcp_server.upstream.vendors import open_upstreams
from mcp_server.views import ViewsMiddleware, view_resources

SERVER_NAME = "retell-tela"
WEBSITE_URL = "https://pypi.org/project/retell-tela-mcp/"
# What the model is told about each toolset, once per session: the tools' descriptions say the rest.
INSTRUCTIONS: dict[Provider, str] = {
    "retell": (
        "Retell: get_test_run takes a test case job ID (ASCII letters, digits, '_' and '-') and answers 'did this "
        "run pass, and why not?' via status, result_explanation, the test definition and the transcript. "
        "get_batch_test and list_test_runs (paged: pass pagination_key back) cover a batch; "
        "get_test_case_definition shows what a test checks. summarize_batch_test answers 'what failed in my "
        "batch?' in one call (wait_seconds waits for it first); wait_for_test_run waits up to 50 s. Start from an "
        "agent: list_batch_tests and list_test_case_definitions take agent_id (or llm_id, conversation_flow_id)."
    ),
    "tela": (
        "Tela: get_test_case takes a test case UUID and answers 'what does this case send and expect?' via "
        "messages, variables and expectedOutput; include_generations adds the outputs produced for it. "
        "list_test_cases lists a prompt's cases."
    ),
}
# One sentence per vendor about its production calls or runs, where the calls toolset is served.
CALLS_INSTRUCTIONS: dict[Provider, str] = {
    "retell": "list_calls finds an agent's production calls (successful=false: what went wrong); get_call reads one, "
    "draft_test_from_call turns it into a test.",
    "tela": "list_completion_runs finds a prompt's production completions; get_completion_run reads one, "
    "draft_test_case_from_run turns it into a test case.",
}
ERRORS_INSTRUCTIONS = "Failures are JSON {error: {code, message, retryable}}; retry only when retryable is true."
# Where each vendor's run tool is, and where to look after an error before starting it again.
RUNS: dict[Provider, tuple[str, str]] = {
    "retell": ("run_batch_test", "list_batch_tests"),
    "tela": ("run_test_cases", "the cases' generations"),
}
TOOLSET_NAMES: dict[Provider, str] = {"retell": "Retell AI test runs", "tela": "Tela test cases"}


def instructions(vendors: set[Provider], *, runs: bool, calls: bool = False) -> str:
    """The server's instructions for the toolsets served (in a stable order) and the levels allowed."""
    served = [vendor for vendor in INSTRUCTIONS if vendor in vendors]
    parts = [f"Read-only access to {' and '.join(TOOLSET_NAMES[v] for v in served)}.", *map(INSTRUCTIONS.get, served)]
    if calls:
        parts += [CALLS_INSTRUCTIONS.get(vendor) for vendor in served]
    parts.append(ERRORS_INSTRUCTIONS)
    if runs:
        tools, checks = (" and ".join(RUNS[vendor][i] for vendor in served) for i in (0, 1))
        parts.append(
            f"{tools} start runs that cost vendor credits: start one only when the user asks, and after an error "
            f"check {checks} before starting again."
        )
    return " ".join(part for part in parts if part)


class RetellTelaServer(MCPServer[Runtime]):
    """The SDK's server, with the SPEC's answer to a bad prompt request: an unknown prompt or a missing argument is
    -32602 (invalid params) under every protocol version, where the SDK raises a bare ValueError (code 0, or -32603
    under 2026-07-28) and logs a traceback for what is the client's mistake. `answers` keeps each answer's bytes
    in the byte budget until its response is written."""

    answers: AnswerLifetime

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Runtime, Any] | None = None
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
        async with stdio_streams(wire, self.answers) as (read_stream, write_stream):
            lowlevel = self._lowlevel_server  # what `run_stdio_async` runs, on our streams
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def build_server(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    clock: Clock = SYSTEM_CLOCK,
    single_client: bool = False,
    stateless: bool = False,
) -> RetellTelaServer:
    """A ready server: the tools, prompts and resource templates of the vendors in `settings.toolsets`, at the
    levels the settings allow. `transport` replaces the network for both vendors (tests, `--demo`); `clock` is the
    time retries, waits and deadlines count on (tests pass one whose sleep returns at once); `single_client` says
    the process serves one client only (stdio), so completions may offer it everything shown, whatever the
    protocol; `stateless` that it serves stateless HTTP, where a handshake-era client's `initialize` is not
    remembered."""
    seen = SeenIds()
    # A write's confirmation round trip (2026-07-28) comes back sealed; replicas sharing a key accept each other's.
    # Without one the SDK's own choice: a key of this process's own.
    sealing = (
        RequestStateSecurity(keys=[settings.request_state_key.get_secret_value()])
        if settings.request_state_key is not None
        else RequestStateSecurity.ephemeral()
    )
    # A used confirmation is remembered as long as its sealed state could still be accepted (on any replica).
    remembered = sealing.ttl + CLOCK_SKEW_SECONDS
    used_here = UsedInMemory(remembered, clock)  # the server's, not a connection's: one per process
    store = settings.request_state_store.get_secret_value() if settings.request_state_store is not None else None

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        async with (
            open_upstreams(settings, transport=transport, clock=clock) as upstreams,
            open_used_confirmations(
                store, remembered, memory=used_here, shown=shown_store_url(store) if store else ""
            ) as confirmations,
        ):
            yield Runtime(
                upstreams.retell,
                upstreams.tela,
                seen,
                clock,
                settings.confirm_writes,
                confirmations=confirmations,
                handshake_is_remembered=not stateless,
                call_transcripts=settings.call_transcripts,
            )

    vendors = {provider for provider in PROVIDER_NAMES if provider in settings.toolsets}

    def served(vendor: Provider, calls: bool) -> bool:
        """Whether a tool, prompt or template of `vendor` is listed: its vendor's toolset, and `calls` for those
        that read production calls or completion runs."""
        return vendor in vendors and (not calls or "calls" in settings.toolsets)

    answers = AnswerLifetime()
    levels = {"read", *(["runs"] if settings.allow_runs else []), *(["edits"] if settings.allow_edits else [])}
    tools = [spec for spec in TOOLS if served(spec.vendor, spec.calls) and spec.level in levels]
    built = {spec.name: spec.build() for spec in tools}
    takes = {name: frozenset(tool.parameters.get("properties", {})) for name, tool in built.items()}
    writes = WriteArguments({spec.name: (spec.vendor, takes[spec.name]) for spec in tools if spec.level != "read"})
    middleware: list[ServerMiddleware[Any]] = [ClientScopeMiddleware(single_client=single_client), answers, writes]
    if settings.oauth_issuer is not None:
        from mcp_server.auth import ScopeMiddleware  # here: the JOSE library costs start-up ~50 ms to import

        middleware.insert(0, ScopeMiddleware())  # outermost: what each token may see and do, first
    if settings.app_views:
        middleware.append(ViewsMiddleware(stateless=stateless))
    server = RetellTelaServer(
        SERVER_NAME,
        version=__version__,
        instructions=instructions(vendors, runs=settings.allow_runs, calls="calls" in settings.toolsets),
        website_url=WEBSITE_URL,
        lifespan=lifespan,
        log_level=settings.log_level,
        middleware=middleware,
        request_state_security=sealing,
        tools=list(built.values()),
    )
    server.answers = answers
    # Just outside the SDK's request-state boundary, the one place a round's sealed state is seen as sent.
    boundary = next(i for i, layer in enumerate(server.middleware) if isinstance(layer, RequestStateBoundary))
    server.middleware.insert(boundary, NoteSealedState())
    if settings.app_views and "retell" in vendors:
        for resource in view_resources():
            server.add_resource(resource)
    for prompt in PROMPTS:
        if served(prompt.vendor, prompt.calls) and levels.issuperset(prompt.levels):
            server.prompt(name=prompt.fn.__name__, title=prompt.title)(prompt.fn)
    for template in TEMPLATES:
        if served(template.vendor, template.calls):
            server.resource(
                template.uri,
                name=template.title.lower().replace(" ", "_"),
                title=template.title,
                description=f"A {template.title}, as {template.same_as} returns it.",
                mime_type="application/json",
            )(template.fn)

    async def complete(
        ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: Any
    ) -> Completion:
        """Offer the IDs this session has already seen for the argument's kind, matching what is typed so far."""
        return seen.complete(ref, argument.name, argument.value)

    server.completion()(complete)  # type: ignore[no-untyped-call]  # the SDK's decorator factory is unannotated
    return server
