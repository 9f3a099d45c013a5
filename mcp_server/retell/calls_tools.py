"""Retell's production-call tools (the `calls` toolset): find an agent's calls, read one, and draft a test from it.
All three read; the shaping is in `calls`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp_types import CallToolResult
from pydantic import Field

from mcp_server.retell import calls
from mcp_server.retell.calls import RetellCall, RetellCallPage, RetellDraftedTest
from mcp_server.tools.base import Ctx, PaginationKey, ToolSpec, answer, runtime


def _string_or_integer(schema: dict[str, Any]) -> None:
    """An instant's schema as one `type` list, not an `anyOf` of three branches: the same meaning in fewer bytes for
    every conversation (leaving it out already means none)."""
    schema.pop("anyOf", None)
    schema.pop("default", None)
    schema["type"] = ["string", "integer"]


Since = Annotated[str | int | None, Field(description="ISO 8601 or epoch ms", json_schema_extra=_string_or_integer)]
Until = Annotated[str | int | None, Field(json_schema_extra=_string_or_integer)]


async def list_calls(
    agent_id: str,
    ctx: Ctx,
    version: list[int] | None = None,
    since: Since = None,
    until: Until = None,
    successful: bool | None = None,
    sentiment: Annotated[list[str] | None, Field(description="Negative, Positive, Neutral, Unknown")] = None,
    disconnection_reason: list[str] | None = None,
    call_type: Literal["web_call", "phone_call"] | None = None,
    limit: Annotated[int, Field(description="at most 50")] = calls.DEFAULT_LIMIT,
    pagination_key: PaginationKey = None,
) -> Annotated[CallToolResult, RetellCallPage]:
    """A Retell agent's production calls, newest first: outcome, sentiment, summary. successful=false finds what went
    wrong."""

    async def fetch() -> dict[str, object]:
        body = calls.list_calls_body(
            agent_id,
            version=version,
            since=since,
            until=until,
            successful=successful,
            sentiment=sentiment,
            disconnection_reason=disconnection_reason,
            call_type=call_type,
            limit=limit,
            pagination_key=pagination_key,
        )
        return await calls.list_calls(runtime(ctx).retell, body)

    return await answer(ctx, "list_calls", "retell", fetch())


async def get_call(call_id: str, ctx: Ctx) -> Annotated[CallToolResult, RetellCall]:
    """A Retell call: turns in order with tool calls, analysis, latency. PII-scrubbed where Retell has it; no links;
    numbers as last 4 digits."""
    state = runtime(ctx)
    return await answer(ctx, "get_call", "retell", calls.get_call(state.retell, call_id, state.call_transcripts))


async def draft_test_from_call(call_id: str, ctx: Ctx) -> Annotated[CallToolResult, RetellDraftedTest]:
    """Draft a test definition from a Retell call, as save_test_case_definition's arguments; write its metrics. Run
    it on the call's version: expect it to fail first."""
    state = runtime(ctx)
    fetch = calls.draft_test_from_call(state.retell, call_id, state.call_transcripts)
    return await answer(ctx, "draft_test_from_call", "retell", fetch)


TOOLS = (
    ToolSpec(list_calls, "List Retell calls", "retell", calls=True),
    ToolSpec(get_call, "Get Retell call", "retell", calls=True),
    ToolSpec(draft_test_from_call, "Draft Retell test from call", "retell", calls=True),
)
