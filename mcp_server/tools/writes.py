"""What every write shares: the user's confirmation, the checks that send nothing, and one INFO line per write.

A write tool declares two resolver parameters (the SDK's `Resolve`, `mcp/server/mcpserver/resolve.py`): `prepared`,
which checks the arguments and makes the reads the question needs (and may already find that nothing can be sent),
and `confirmation`, which asks the user, in one sentence naming what will be sent and what it costs, where the client
can be asked (form elicitation) and `confirm_writes` is on. The SDK asks through `elicitation/create` under
handshake-era protocols and through the input-required round trip under 2026-07-28, where the resolvers run again on
each round: they only read. The tool body sends the write only after an accepted answer (or where nobody can be
asked: the opt-in is then the consent).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict

from mcp_server.errors import PROVIDER_NAMES, Declined, InvalidArgument, Provider, UpstreamError
from mcp_server.tools.base import Ctx, answer, error_result, log_call, runtime

logger = logging.getLogger("mcp_server.tools")

Plan = TypeVar("Plan")

# Any text a write sends: prompts may be long, names and titles short; neither may hold control characters
# (newlines and tabs are text in a prompt, and nothing else below U+0020 is).
MAX_TEXT_CHARS = 100_000
MAX_NAME_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f]")


class Confirm(BaseModel):
    """Nothing to fill in: accepting the question is the confirmation."""

    model_config = ConfigDict(title="Confirm")


@dataclass(frozen=True)
class Prepared(Generic[Plan]):
    """What a write will send, worked out and checked before anyone is asked: the plan and the question naming
    it, or the error that means nothing will be sent."""

    plan: Plan | None = None
    question: str = ""
    error: UpstreamError | None = None


async def prepare(work: Awaitable[tuple[Plan, str]]) -> Prepared[Plan]:
    """A resolver's checks and reads, with their contract error kept as data (a resolver that raised would reach
    the client as the SDK's own error text, not the contract's)."""
    try:
        plan, question = await work
    except UpstreamError as error:
        return Prepared(error=error)
    return Prepared(plan, question)


def ask(prepared: Prepared[Any], ctx: Ctx) -> Elicit[Confirm] | Prepared[Any]:
    """The confirmation resolver's answer: a question only when there is something to send, the setting asks for
    one, and the client can be asked; else the prepared write itself, as an accepted answer."""
    if prepared.error is not None or not runtime(ctx).confirm_writes or not can_be_asked(ctx):
        return prepared
    return Elicit(prepared.question, Confirm)


def confirming(prepare_fn: Callable[..., Awaitable[Prepared[Any]]]) -> Callable[..., Awaitable[Any]]:
    """The confirmation resolver of a write whose `prepared` comes from the resolver `prepare_fn`: it asks (see
    `ask`) once the write is prepared. An `async def` on purpose: the SDK runs a plain `def` resolver in a worker
    thread. Its name is distinct per write, so its answers ride the request state under a key of its own."""

    async def confirm(prepared: Prepared[Any], ctx: Ctx) -> Elicit[Confirm] | Prepared[Any]:
        return ask(prepared, ctx)

    # Set rather than written: the annotation names the very resolver this confirmation waits for.
    confirm.__annotations__ = {
        "prepared": Annotated[Prepared[Any], Resolve(prepare_fn)],
        "ctx": Ctx,
        "return": Elicit[Confirm] | Prepared[Any],
    }
    confirm.__name__ = confirm.__qualname__ = f"confirm_{prepare_fn.__name__}"
    return confirm


def can_be_asked(ctx: Ctx) -> bool:
    """Whether the client declared form elicitation (a bare `elicitation: {}` predates modes and means form), as
    the SDK itself decides before it sends a question."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


async def written(
    ctx: Ctx,
    tool: str,
    provider: Provider,
    prepared: Prepared[Plan],
    confirmation: ElicitationResult[Any],
    send: Callable[[Plan], Awaitable[dict[str, Any]]],
) -> CallToolResult:
    """The write, once prepared and confirmed: the error found while preparing, `declined` when the user said no
    (nothing sent), else what `send` answers."""
    if prepared.error is not None:
        log_call(tool, provider, prepared.error.code, prepared.error.status, time.perf_counter(), write=True)
        return error_result(prepared.error)
    assert prepared.plan is not None  # `prepare` makes a plan or an error
    if not isinstance(confirmation, AcceptedElicitation):
        declined = Declined(
            f"The user {'declined' if confirmation.action == 'decline' else 'cancelled'} it, so nothing was sent to "
            f"{PROVIDER_NAMES[provider]}. Ask before trying again.",
            provider=provider,
        )
        log_call(tool, provider, declined.code, None, time.perf_counter(), write=True)
        return error_result(declined)
    return await answer(ctx, tool, provider, send(prepared.plan), write=True)


def log_write(what: str, **ids: object) -> None:
    """The one INFO line of a write: what was sent, by ID and field name (never a key or a prompt's text)."""
    logger.info("%s: %s", what, " ".join(f"{key}={value}" for key, value in ids.items() if value is not None))


def check_text(value: str, argument: str, provider: Provider, *, limit: int = MAX_TEXT_CHARS) -> str:
    """A prompt or other long text: at most `limit` characters, no control characters but newlines and tabs."""
    if len(value) > limit:
        raise InvalidArgument(
            f"{argument} has {len(value):,} characters; at most {limit:,} are sent. Nothing was sent.",
            provider=provider,
        )
    if _CONTROL.search(value):
        raise InvalidArgument(
            f"{argument} holds a control character; only text, newlines and tabs are sent. Nothing was sent.",
            provider=provider,
        )
    return value


def check_name(value: str, argument: str, provider: Provider) -> str:
    """A name or title: 1 to 256 characters on one line, no control characters."""
    if not value.strip() or len(value) > MAX_NAME_CHARS or _CONTROL_OR_BREAK.search(value):
        raise InvalidArgument(
            f"{argument} must be 1-{MAX_NAME_CHARS} characters on one line, without control characters. "
            "Nothing was sent.",
            provider=provider,
        )
    return value


class WriteArguments:
    """A server middleware: arguments to a write tool that do not fit its input schema are `invalid_argument`,
    in the contract's JSON, like every other bad input to a write (the SDK answers them with its own text)."""

    def __init__(self, tools: dict[str, Provider]) -> None:
        self._tools = tools  # write tool -> its vendor

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        name = (ctx.params or {}).get("name") if ctx.method == "tools/call" else None
        provider = self._tools.get(name) if isinstance(name, str) else None
        # The SDK hands the result on as its model or as the model's wire dict (an input-required round is neither).
        failed = (
            result.is_error
            if isinstance(result, CallToolResult)
            else isinstance(result, dict) and result.get("isError")
        )
        if provider is None or not failed:
            return result
        shaped = result if isinstance(result, CallToolResult) else CallToolResult.model_validate(result)
        text = next((block.text for block in shaped.content if block.type == "text"), "")
        if _is_contract_error(text):
            return result
        problem = text.removeprefix(f"Error executing tool {name}: ").strip().splitlines()
        detail = f" ({problem[0][:300]})" if problem else ""
        error = InvalidArgument(
            f"The arguments do not fit {name}'s input schema{detail}. Nothing was sent.", provider=provider
        )
        return error_result(error)


def _is_contract_error(text: str) -> bool:
    try:
        document = json.loads(text)
    except ValueError:
        return False
    return isinstance(document, dict) and list(document) == ["error"]
