"""Argument completion: the IDs this session has been shown, for every prompt and resource template argument."""

from __future__ import annotations

import httpx2
import pytest
from mcp import Client
from mcp_types import PromptReference, ResourceTemplateReference

from mcp_server.server import build_server
from tests.conftest import CASE_ID, JOB_ID, RETELL_RUN, FakeVendors, json_response, make_settings

pytestmark = pytest.mark.anyio


def connect(vendors: FakeVendors) -> Client:
    """A handshake-era session, as today's clients open: the only kind that has a session to remember IDs in."""
    return Client(build_server(make_settings(), transport=vendors.transport()), mode="legacy")


DIAGNOSE = PromptReference(type="ref/prompt", name="diagnose_test_run")
REVIEW = PromptReference(type="ref/prompt", name="review_test_case")


def template(uri: str) -> ResourceTemplateReference:
    return ResourceTemplateReference(type="ref/resource", uri=uri)


async def test_ids_returned_by_tools_complete_prompt_and_template_arguments(vendors: FakeVendors) -> None:
    """After a run and a case were fetched, their IDs (and the run's definition) complete the matching arguments,
    filtered by what was typed so far."""
    async with connect(vendors) as client:
        assert client.server_capabilities.completions is not None
        empty = await client.complete(DIAGNOSE, {"name": "test_case_job_id", "value": ""})
        await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
        await client.call_tool("get_test_case", {"id": CASE_ID})
        run = await client.complete(DIAGNOSE, {"name": "test_case_job_id", "value": "tcj"})
        other = await client.complete(DIAGNOSE, {"name": "test_case_job_id", "value": "zzz"})
        case = await client.complete(REVIEW, {"name": "id", "value": ""})
        definition = await client.complete(
            template("retell://test-case-definitions/{test_case_definition_id}"),
            {"name": "test_case_definition_id", "value": "t"},
        )
        from_template = await client.complete(template("retell://test-runs/{test_case_job_id}"),
                                              {"name": "test_case_job_id", "value": ""})  # fmt: skip
    assert empty.completion.values == []
    assert run.completion.values == [JOB_ID] and run.completion.total == 1
    assert other.completion.values == []
    assert case.completion.values == [CASE_ID]
    assert definition.completion.values == [RETELL_RUN["test_case_definition_id"]]
    assert from_template.completion.values == [JOB_ID]


async def test_listed_runs_and_batches_complete_too_most_recent_first(vendors: FakeVendors) -> None:
    """The runs in a page of list_test_runs, and the batch itself, become completions; newest first."""

    def route(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, {"test_case_batch_job_id": "tcbj_9", "status": "complete"})
        items = [{**RETELL_RUN, "test_case_job_id": job} for job in ("tcj_a", "tcj_b")]
        return json_response(200, {"items": items, "has_more": False, "pagination_key": None})

    vendors.retell = route
    async with connect(vendors) as client:
        await client.call_tool("get_batch_test", {"test_case_batch_job_id": "tcbj_9"})
        await client.call_tool("list_test_runs", {"test_case_batch_job_id": "tcbj_9"})
        runs = await client.complete(DIAGNOSE, {"name": "test_case_job_id", "value": "tcj_"})
        batches = await client.complete(template("retell://batch-tests/{test_case_batch_job_id}"),
                                        {"name": "test_case_batch_job_id", "value": ""})  # fmt: skip
    assert runs.completion.values == ["tcj_b", "tcj_a"]
    assert batches.completion.values == ["tcbj_9"]


async def test_one_session_never_sees_another_sessions_ids(vendors: FakeVendors) -> None:
    """Two sessions of one server: what the first was shown is not offered to the second."""
    server = build_server(make_settings(), transport=vendors.transport())
    async with Client(server, mode="legacy") as first, Client(server, mode="legacy") as second:
        await first.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
        mine = await first.complete(DIAGNOSE, {"name": "test_case_job_id", "value": ""})
        theirs = await second.complete(DIAGNOSE, {"name": "test_case_job_id", "value": ""})
    assert mine.completion.values == [JOB_ID]
    assert theirs.completion.values == []


async def test_errors_teach_nothing(vendors: FakeVendors) -> None:
    """An ID that failed (not found) is not offered later."""
    vendors.retell = lambda request: json_response(404, {"message": "Not Found"})
    async with connect(vendors) as client:
        await client.call_tool("get_test_run", {"test_case_job_id": "tcj_missing"})
        result = await client.complete(DIAGNOSE, {"name": "test_case_job_id", "value": ""})
    assert result.completion.values == []


async def test_stateless_protocol_requests_share_nothing(vendors: FakeVendors) -> None:
    """Under protocol 2026-07-28 every request stands alone: nothing is remembered, so nothing is offered."""
    async with Client(build_server(make_settings(), transport=vendors.transport())) as client:
        await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
        result = await client.complete(DIAGNOSE, {"name": "test_case_job_id", "value": ""})
        assert client.protocol_version == "2026-07-28"
    assert result.completion.values == []


async def test_a_single_client_server_offers_what_it_showed_under_every_protocol(vendors: FakeVendors) -> None:
    """A stdio server serves one client: under 2026-07-28 too (what current clients negotiate by default), the IDs
    it has returned are offered, though no request carries a session."""
    server = build_server(make_settings(), transport=vendors.transport(), single_client=True)
    async with Client(server) as client:
        assert client.protocol_version == "2026-07-28"
        await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
        result = await client.complete(DIAGNOSE, {"name": "test_case_job_id", "value": ""})
    assert result.completion.values == [JOB_ID]


async def test_completions_over_real_stdio_under_the_default_protocol() -> None:
    """The real process over stdio (what `retell-tela-mcp` is to an MCP client), default protocol: a run it
    returned is offered for the prompt's argument."""
    import sys

    from mcp import StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "--demo"])
    async with Client(stdio_client(params)) as client:
        await client.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_failed"})
        result = await client.complete(DIAGNOSE, {"name": "test_case_job_id", "value": "tcj_demo"})
    assert result.completion.values == ["tcj_demo_failed"]


def test_remembered_ids_are_bounded_in_bytes_and_length() -> None:
    """Many clients shown many long IDs: what is kept never passes MAX_BYTES characters; an ID longer than any
    tool accepts is not kept at all."""
    from mcp_server import completions

    seen = completions.SeenIds()
    run_id = "r" * completions.MAX_ID_LENGTH
    for client in range(completions.MAX_SESSIONS):
        token = completions.current_client.set(f"http:{client}")
        try:
            seen.note("retell", {"items": [{"test_case_job_id": f"{n}{run_id}"[:128]} for n in range(500)]})
            seen.note("retell", {"test_case_job_id": "x" * (completions.MAX_ID_LENGTH + 1)})
        finally:
            completions.current_client.reset(token)
    assert 0 < seen.size <= completions.MAX_BYTES
    token = completions.current_client.set(f"http:{completions.MAX_SESSIONS - 1}")
    try:
        offered = seen.complete(DIAGNOSE, "test_case_job_id", "x")
    finally:
        completions.current_client.reset(token)
    assert offered.values == []
