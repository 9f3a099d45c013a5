"""What every tool shares: how it is declared (`ToolSpec`), what it runs with (`Runtime`), and how its answer is
shaped and logged (`answer`). The tools themselves live beside this module, one module per concern."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pydantic_core
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from mcp_server.completions import SeenIds
from mcp_server.confirmations import UsedConfirmations, UsedInMemory
from mcp_server.errors import Provider, UpstreamError
from mcp_server.retell.client import RetellClient
from mcp_server.tela.client import TelaClient
from mcp_server.upstream.clock import Clock
from mcp_server.upstream.http import cache_status

logger = logging.getLogger("mcp_server.tools")

# Who may use a tool: everyone (reads), or only where a setting opts in (SPEC: tools that change anything).
Level = Literal["read", "runs", "edits"]
LEVELS: tuple[Level, ...] = ("read", "runs", "edits")


@dataclass(frozen=True)
class Runtime:
    """What the server's lifespan holds for its tools: each vendor's client, the IDs each client has been shown
    (for completions), the clock that waits and deadlines count on, whether writes ask the user first, where the
    confirmations already used are noted, and whether what a handshake-era client declared is remembered (not over
    stateless HTTP, where its `initialize` reached another request), and which transcript of a call is shown."""

    retell: RetellClient
    tela: TelaClient
    seen: SeenIds
    clock: Clock
    confirm_writes: bool = True
    confirmations: UsedConfirmations = field(default_factory=UsedInMemory)
    handshake_is_remembered: bool = True
    call_transcripts: Literal["scrubbed", "full"] = "scrubbed"


Ctx = Context[Runtime, Any]
ToolFn = Callable[..., Awaitable[CallToolResult]]


def runtime(ctx: Ctx) -> Runtime:
    return ctx.request_context.lifespan_context


@dataclass(frozen=True)
class ToolSpec:
    """A tool as its module declares it: the function (its docstring is the description), its title, its vendor
    (the toolset it belongs to), its level, and whether it reads production calls or completion runs (listed only
    with the `calls` toolset too)."""

    fn: ToolFn
    title: str
    vendor: Provider
    level: Level = "read"
    calls: bool = False

    @property
    def name(self) -> str:
        return self.fn.__name__

    def build(self) -> Tool:
        """The SDK's tool, described in one line (indentation would be tokens the model pays for) and with a lean
        input schema."""
        description = " ".join((self.fn.__doc__ or "").split())
        made = Tool.from_function(self.fn, title=self.title, description=description, annotations=self.annotations)
        made.parameters = lean_input_schema(made.parameters)
        return made

    @property
    def annotations(self) -> ToolAnnotations:
        """The SPEC's annotations: a read changes nothing and answers the same twice; anything else changes state at
        the vendor and is never idempotent. Every tool talks to a vendor."""
        reads = self.level == "read"
        return ToolAnnotations(
            title=self.title,
            read_only_hint=reads,
            destructive_hint=False,
            idempotent_hint=reads,
            open_world_hint=True,
        )


def lean_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema without what only costs the model tokens: the SDK's auto-generated titles (the
    argument model's name, each argument's name re-spelt), and for an optional `X | None = None` argument the
    `null` branch and `default: null` (leaving the argument out means the same); the same inside the definitions
    of nested arguments (`$defs`), whose descriptions are put on one line."""
    lean = {key: value for key, value in schema.items() if key != "title"}
    if isinstance(lean.get("description"), str):
        lean["description"] = " ".join(lean["description"].split())
    properties = {name: _lean_property(prop) for name, prop in schema.get("properties", {}).items()}
    if properties:
        lean["properties"] = properties
    if "$defs" in schema:
        lean["$defs"] = {name: lean_input_schema(definition) for name, definition in schema["$defs"].items()}
    return lean


def _lean_property(prop: dict[str, Any]) -> dict[str, Any]:
    prop = {key: value for key, value in prop.items() if key != "title"}
    branches = prop.get("anyOf")
    if prop.get("default", ...) is None and isinstance(branches, list) and {"type": "null"} in branches:
        others = [branch for branch in branches if branch != {"type": "null"}]
        if len(others) == 1:
            rest = {key: value for key, value in prop.items() if key not in ("anyOf", "default")}
            prop = {**others[0], **rest}
    return prop


def compact_json(value: object) -> str:
    """JSON without spaces or indentation (it is read by models, and every token counts), UTF-8 not \\u-escaped.
    pydantic-core's serializer writes the same text as `json.dumps(separators=(",", ":"))`, five times faster."""
    return pydantic_core.to_json(value).decode()


def error_result(error: UpstreamError) -> CallToolResult:
    """The contract's error: an error result whose one text block is the error's JSON."""
    return CallToolResult(content=[TextContent(type="text", text=compact_json(error.payload()))], is_error=True)


async def answer(
    ctx: Ctx,
    tool: str,
    provider: Provider,
    fetch: Awaitable[dict[str, Any]],
    *,
    write: bool = False,
    ids: dict[str, str] | None = None,
) -> CallToolResult:
    """Run one tool's vendor work and shape it as the contract says: the object, or an error result; log one
    line. The IDs in a successful answer are remembered for this client's argument completions (`ids`: which field
    holds which kind of ID, where the vendor's usual names would mislead)."""
    started = time.perf_counter()
    try:
        obj = await fetch
    except UpstreamError as error:
        log_call(tool, provider, error.code, error.status, started, write=write)
        return error_result(error)
    log_call(tool, provider, "ok", 200, started, write=write)
    runtime(ctx).seen.note(provider, obj, ids)
    return CallToolResult(content=[TextContent(type="text", text=compact_json(obj))], structured_content=obj)


def log_call(
    tool: str, provider: Provider, outcome: str, status: int | None, started: float, *, write: bool = False
) -> None:
    """One INFO line per tool call: what, where, how it ended, how long; and who asked (an OAuth token's `sub` and
    `client_id`) for a write, or for any call when logging at DEBUG. Never a key, a token, or a body."""
    event: dict[str, object] = {
        "tool": tool,
        "vendor": provider,
        "outcome": outcome,
        "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 1),
        "cache": cache_status.get(),
    }
    if write or logger.isEnabledFor(logging.DEBUG):
        who = caller()
        if who is not None:
            event["caller"] = who
    logger.info(" ".join(f"{k}={v}" for k, v in event.items()), extra={"event": event})


def caller() -> str | None:
    """Who sent the request being served, as `sub=... client_id=...` (client_id when the token names one); None
    when the request carries no OAuth token (stdio, the static token, OAuth off). Never any part of the token."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    return None if token is None else describe(token.subject, token.client_id or None)


def describe(subject: str | None, client_id: str | None) -> str:
    """`sub=... client_id=...` for a log line: values as the issuer signed them, with anything that could break a
    line or forge a field (whitespace, control characters, non-ASCII) escaped, and clipped."""
    parts = [f"{name}={_shown(value)}" for name, value in (("sub", subject), ("client_id", client_id)) if value]
    return " ".join(parts) or "sub=(none)"


def _shown(value: str) -> str:
    shown = value.encode("unicode_escape").decode("ascii").replace(" ", "\\x20")
    return shown if len(shown) <= 128 else shown[:125] + "..."


# Arguments several tools share. An ID's name says what it is: describing it again would cost every conversation
# tokens and tell the model nothing.
AgentId = str | None
LlmId = str | None
FlowId = str | None
Version = Annotated[int | None, Field(ge=0, description="latest if omitted")]
# A write's version is a JSON integer, nothing that merely reads as one ("1", true, 1.0): a write sends exactly what
# was asked for.
WriteVersion = Annotated[int | None, Field(ge=0, strict=True, description="latest if omitted")]
Limit = Annotated[int, Field(ge=1, le=1000)]
PaginationKey = Annotated[str | None, Field(description="from the previous page")]
BatchId = str
JobId = str
