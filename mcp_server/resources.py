"""The resource templates: the same JSON as the matching tool, read by URI. A read that fails is a JSON-RPC error in
the tool's words (not found: the SDK's ResourceNotFoundError)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from mcp_server.errors import InvalidArgument, NotFound, Provider, UpstreamError
from mcp_server.retell.calls import get_call
from mcp_server.tools.base import Ctx, compact_json, runtime


async def _read(fetch: Awaitable[dict[str, Any]]) -> str:
    try:
        return compact_json(await fetch)
    except (NotFound, InvalidArgument) as error:
        raise ResourceNotFoundError(error.message) from None
    except UpstreamError as error:
        raise ResourceError(error.message) from None


async def test_run(test_case_job_id: str, ctx: Ctx) -> str:
    return await _read(runtime(ctx).retell.get_test_run(test_case_job_id))


async def batch_test(test_case_batch_job_id: str, ctx: Ctx) -> str:
    return await _read(runtime(ctx).retell.get_batch_test(test_case_batch_job_id))


async def test_case_definition(test_case_definition_id: str, ctx: Ctx) -> str:
    return await _read(runtime(ctx).retell.get_test_case_definition(test_case_definition_id))


async def call(call_id: str, ctx: Ctx) -> str:
    state = runtime(ctx)
    return await _read(get_call(state.retell, call_id, state.call_transcripts))


async def test_case(id: str, ctx: Ctx) -> str:
    return await _read(runtime(ctx).tela.get_test_case(id))


@dataclass(frozen=True)
class TemplateSpec:
    """A resource template whose contents are the same JSON as the tool `same_as` (`calls`: of the `calls` toolset)."""

    uri: str
    fn: Callable[..., Awaitable[str]]
    title: str
    same_as: str
    vendor: Provider
    calls: bool = False


TEMPLATES = (
    TemplateSpec("retell://test-runs/{test_case_job_id}", test_run, "Retell test run", "get_test_run", "retell"),
    TemplateSpec("tela://test-cases/{id}", test_case, "Tela test case", "get_test_case (without generations)", "tela"),
    TemplateSpec(
        "retell://batch-tests/{test_case_batch_job_id}", batch_test, "Retell batch test", "get_batch_test", "retell"
    ),
    TemplateSpec(
        "retell://test-case-definitions/{test_case_definition_id}",
        test_case_definition,
        "Retell test case definition",
        "get_test_case_definition",
        "retell",
    ),
    TemplateSpec("retell://calls/{call_id}", call, "Retell call", "get_call", "retell", calls=True),
)
