"""What every write shares: the user's confirmation, the checks that send nothing, and one INFO line per write.

A write tool declares two resolver parameters (the SDK's `Resolve`, `mcp/server/mcpserver/resolve.py`): `prepared`,
which checks the arguments and makes the reads the question needs (and may already find that nothing can be sent),
and `confirmation`, which asks the user, in one sentence naming what will be sent and what it costs, where the client
can be asked (form elicitation) and `confirm_writes` is on. The SDK asks through `elicitation/create` under
handshake-era protocols and through the input-required round trip under 2026-07-28, where the resolvers run again on
each round: they only read. The tool body sends the write only after an accepted answer, used once (`refusal`); where
the client declared no elicitation the opt-in is the consent, and where the server cannot know whether it could be
asked (stateless HTTP, a handshake-era client) the write is `unconfirmed`. `WriteArguments` refuses what does not fit
a write's arguments exactly, before the tool runs.
"""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import CallToolResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, ConfigDict

from mcp_server.confirmations import StoreUnreachable, sealed_digest
from mcp_server.errors import PROVIDER_NAMES, Declined, InvalidArgument, Provider, Unconfirmed, UpstreamError
from mcp_server.text import quoted
from mcp_server.tools.base import Ctx, answer, error_result, log_call, runtime
from mcp_server.upstream.http import all_finite

logger = logging.getLogger("mcp_server.tools")

Plan = TypeVar("Plan")

# The first protocol whose questions ride the input-required round trip (the SDK pins the same, privately).
INPUT_REQUIRED_VERSION = "2026-07-28"

# Any text a write sends: prompts may be long, names and titles short. Neither may hold a character of these Unicode
# categories: controls (Cc: U+0000-U+001F, U+007F-U+009F, U+0085 among them), format characters (Cf: zero-width
# ones, U+202A-U+202E bidi overrides, U+FEFF ...), line and paragraph separators (Zl U+2028, Zp U+2029), and lone
# surrogates (Cs), which no vendor can store. In a prompt, newlines and tabs are text.
MAX_TEXT_CHARS = 100_000
MAX_NAME_CHARS = 256
FORBIDDEN_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "a lone surrogate",
}
PROMPT_WHITESPACE = "\n\t"


class Confirm(BaseModel):
    """Nothing to fill in: accepting the question is the confirmation."""

    model_config = ConfigDict(title="Confirm")


# What a write tool's `confirmation` resolver answers: accepted, declined or cancelled.
Confirmation = ElicitationResult[Confirm]


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
    one, and the client can be asked; else the prepared write itself, as an accepted answer (which `written`
    refuses where the server cannot know whether the client could have been asked)."""
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


def can_be_asked(ctx: Ctx) -> bool | None:
    """Whether the client declared form elicitation (a bare `elicitation: {}` predates modes and means form), as
    the SDK itself decides before it sends a question; None where the server cannot know: over stateless HTTP a
    handshake-era client declared its capabilities in an `initialize` that was answered and forgotten."""
    if not runtime(ctx).handshake_is_remembered and not asks_by_round_trip(ctx):
        return None
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def asks_by_round_trip(ctx: Ctx) -> bool:
    """Whether this request's protocol asks through the input-required round trip (2026-07-28 and later, where each
    request carries the client's capabilities), as the SDK decides it."""
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION)


async def written(
    ctx: Ctx,
    tool: str,
    provider: Provider,
    prepared: Prepared[Plan],
    confirmation: ElicitationResult[Any],
    send: Callable[[Plan], Awaitable[dict[str, Any]]],
) -> CallToolResult:
    """The write, once prepared and confirmed: the error found while preparing, or why it must not be sent (see
    `refusal`; nothing sent), else what `send` answers."""
    if prepared.error is not None:
        log_call(tool, provider, prepared.error.code, prepared.error.status, time.perf_counter(), write=True)
        return error_result(prepared.error)
    assert prepared.plan is not None  # `prepare` makes a plan or an error
    refused = await refusal(ctx, provider, confirmation)
    if refused is not None:
        log_call(tool, provider, refused.code, None, time.perf_counter(), write=True)
        return error_result(refused)
    return await answer(ctx, tool, provider, send(prepared.plan), write=True)


async def refusal(ctx: Ctx, provider: Provider, confirmation: ElicitationResult[Any]) -> UpstreamError | None:
    """Why a prepared write must not be sent, if it must not: the user said no (`declined`); nobody was asked where
    the server cannot know whether the client could have been (`unconfirmed`); or the answer came back through the
    round trip, whose sealed state could be sent again, and was already used (`declined`) or cannot be proven
    unused (`unconfirmed`). An answer to `elicitation/create` belongs to its one call and is never claimed."""
    vendor = PROVIDER_NAMES[provider]
    if not isinstance(confirmation, AcceptedElicitation):
        return Declined(
            f"The user {'declined' if confirmation.action == 'decline' else 'cancelled'} it, so nothing was sent to "
            f"{vendor}. Ask before trying again.",
            provider=provider,
        )
    if not isinstance(confirmation.data, Confirm):  # nobody was asked
        if runtime(ctx).confirm_writes and can_be_asked(ctx) is None:
            return Unconfirmed(
                f"Nothing was sent to {vendor}: over stateless HTTP this server cannot tell whether a client on "
                f"protocol {ctx.protocol_version} can be asked to confirm a write. Connect with protocol 2026-07-28 "
                "or to a stateful instance (served without --stateless), or set confirm_writes to false.",
                provider=provider,
            )
        return None
    if not asks_by_round_trip(ctx):
        return None
    sealed = sealed_digest(ctx.request_context)
    if sealed is None:  # the round trip cannot give an answer without its sealed state: something dropped it
        return Unconfirmed(
            f"Nothing was sent to {vendor}: this confirmation came without the sealed state that proves it unused. "
            "Call the tool again so the user is asked anew.",
            provider=provider,
        )
    try:
        first_use = await runtime(ctx).confirmations.claim(sealed)
    except StoreUnreachable:
        return Unconfirmed(
            f"Nothing was sent to {vendor}: the store of used confirmations (request_state_store) cannot be reached, "
            "so this confirmation cannot be proven unused. Try again once it answers; the user is asked again.",
            provider=provider,
        )
    if not first_use:
        return Declined(
            f"Nothing was sent to {vendor}: this confirmation was already used, and each one sends one write. "
            "Call the tool again if the user wants another.",
            provider=provider,
        )
    return None


def log_write(what: str, **ids: object) -> None:
    """The one INFO line of a write: what was sent, by ID and field name (never a key or a prompt's text)."""
    logger.info("%s: %s", what, " ".join(f"{key}={value}" for key, value in ids.items() if value is not None))


def check_text(
    value: str, argument: str, provider: Provider, *, limit: int = MAX_TEXT_CHARS, empty: bool = True
) -> str:
    """A prompt or other long text: at most `limit` characters, none of the forbidden categories but newlines and
    tabs; with `empty` False, not empty or only whitespace (a change to nothing would blank what is there)."""
    if len(value) > limit:
        raise InvalidArgument(
            f"{argument} has {len(value):,} characters; at most {limit:,} are sent. Nothing was sent.",
            provider=provider,
        )
    if not empty and not value.strip():
        raise InvalidArgument(
            f"{argument} is empty, which would blank the text that is there. Nothing was sent.", provider=provider
        )
    bad = forbidden_char(value, allowed=PROMPT_WHITESPACE)
    if bad is not None:
        raise InvalidArgument(
            f"{argument} holds {_named(bad)}; only text, newlines and tabs are sent. Nothing was sent.",
            provider=provider,
        )
    return value


def check_name(value: str, argument: str, provider: Provider) -> str:
    """A name or title: 1 to 256 characters on one line, none of the forbidden categories."""
    bad = forbidden_char(value)
    if not value.strip() or len(value) > MAX_NAME_CHARS or bad is not None:
        held = f" (it holds {_named(bad)})" if bad is not None else ""
        raise InvalidArgument(
            f"{argument} must be 1-{MAX_NAME_CHARS} characters on one line, without control or format "
            f"characters{held}. Nothing was sent.",
            provider=provider,
        )
    return value


def forbidden_char(text: str, *, allowed: str = "") -> str | None:
    """The first character of `text` in a forbidden category, but those in `allowed`; None when there is none.
    `str.isprintable` (C speed) is false for every one of them, so only text it flags is read a character at a
    time."""
    plain = text
    for char in allowed:
        plain = plain.replace(char, "")
    if plain.isprintable():
        return None
    return next((char for char in plain if unicodedata.category(char) in FORBIDDEN_CATEGORIES), None)


def _named(char: str) -> str:
    return f"U+{ord(char):04X}, {FORBIDDEN_CATEGORIES[unicodedata.category(char)]}"


class WriteArguments:
    """A server middleware: arguments to a write tool that do not fit its input schema are `invalid_argument`,
    in the contract's JSON, like every other bad input to a write (the SDK answers them with its own text). An
    argument the tool does not take, or a NaN or Infinity anywhere (Python's JSON reads them; no vendor's does), is
    refused before the tool runs: the SDK would drop the one and send the other."""

    def __init__(self, tools: dict[str, tuple[Provider, frozenset[str]]]) -> None:
        self._tools = tools  # write tool -> its vendor and the arguments it takes

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        name = (ctx.params or {}).get("name") if ctx.method == "tools/call" else None
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            return await call_next(ctx)
        provider, known = tool
        arguments = (ctx.params or {}).get("arguments")
        refused = _refused_arguments(name, arguments if isinstance(arguments, dict) else {}, known, provider)
        if refused is not None:
            return error_result(refused)
        result = await call_next(ctx)
        # The SDK hands the result on as its model or as the model's wire dict (an input-required round is neither).
        failed = (
            result.is_error
            if isinstance(result, CallToolResult)
            else isinstance(result, dict) and result.get("isError")
        )
        if not failed:
            return result
        shaped = result if isinstance(result, CallToolResult) else CallToolResult.model_validate(result)
        text = next((block.text for block in shaped.content if block.type == "text"), "")
        if _is_contract_error(text):
            return result
        detail = _schema_problems(text.removeprefix(f"Error executing tool {name}: "))
        error = InvalidArgument(
            f"The arguments do not fit {name}'s input schema{detail}. Nothing was sent.", provider=provider
        )
        return error_result(error)


def _schema_problems(text: str) -> str:
    """pydantic's validation text as one line, " (where: what; ...)", without the input values it quotes (they may
    be a prompt's text) or its links; the first line alone when it has another shape."""
    lines = text.strip().splitlines()
    problems = [
        f"{where.strip()}: {what.strip().partition(' [')[0]}"
        for where, what in zip(lines[1::3], lines[2::3], strict=False)
        if where and not where.startswith(" ") and what.startswith("  ")
    ]
    shown = "; ".join(problems) if problems else (lines[0] if lines else "")
    return f" ({shown[:300]})" if shown else ""


def _refused_arguments(
    tool: object, arguments: dict[str, Any], known: frozenset[str], provider: Provider
) -> InvalidArgument | None:
    unknown = sorted(set(arguments) - known)
    if unknown:
        return InvalidArgument(
            f"{tool} takes no argument {quoted(unknown[0], 60)} (it takes: {', '.join(sorted(known))}). "
            "Nothing was sent.",
            provider=provider,
        )
    if not all_finite(arguments):
        return InvalidArgument(
            f"The arguments to {tool} hold NaN or Infinity, which is not JSON. Nothing was sent.", provider=provider
        )
    return None


def _is_contract_error(text: str) -> bool:
    try:
        document = json.loads(text)
    except ValueError:
        return False
    return isinstance(document, dict) and list(document) == ["error"]
