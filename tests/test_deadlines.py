"""Every call ends inside its documented bound, whatever the vendor does: proved on virtual time.

These tests run the real server and client on trio with `trio.testing.MockClock(autojump_threshold=0)`: time moves
only when every task is waiting, and then jumps straight to the next deadline or wake-up. A vendor that hangs for an
hour costs microseconds, yet the server's timeouts (`anyio.fail_after`), sleeps and deadlines all see the hour pass,
because they all read the event loop's clock. Nothing here is patched: the server runs with its default clock.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp_types import CallToolResult

from mcp_server.server import build_server
from mcp_server.upstream.http import CALL_BUDGET_SECONDS
from tests.conftest import RETELL_RUN, TOOL_NAMES, FakeVendors, error_of, json_response, make_settings

trio_testing = pytest.importorskip("trio.testing", reason="virtual time comes from trio's MockClock")

# What a client allows a call before giving up (Claude Desktop, the MCP Inspector): every bound sits inside it.
CLIENT_LIMIT_SECONDS = 60.0

BATCH = {"test_case_batch_job_id": "tcbj_1", "status": "complete", "pass_count": 1, "total_count": 1}

EVERY_TOOL_ARGUMENTS: dict[str, dict[str, Any]] = {
    "get_test_run": {"test_case_job_id": "tcj_1"},
    "get_test_case": {"id": "550e8400-e29b-41d4-a716-446655440000", "include_generations": True},
    "get_batch_test": {"test_case_batch_job_id": "tcbj_1"},
    "list_test_runs": {"test_case_batch_job_id": "tcbj_1"},
    "get_test_case_definition": {"test_case_definition_id": "tcd_1"},
    "list_test_cases": {"prompt_id": "550e8400-e29b-41d4-a716-446655440001"},
    "summarize_batch_test": {"test_case_batch_job_id": "tcbj_1", "wait_seconds": 40},
    "wait_for_test_run": {"test_case_job_id": "tcj_1", "timeout_seconds": 50},
    "list_batch_tests": {"agent_id": "agent_1"},
    "list_test_case_definitions": {"agent_id": "agent_1"},
    "get_response_engine": {"test_case_job_id": "tcj_1"},
    "list_agent_versions": {"agent_id": "agent_1"},
    "compare_batch_tests": {"before_batch_id": "tcbj_1", "after_batch_id": "tcbj_2"},
    "get_prompt_version": {"id": "550e8400-e29b-41d4-a716-446655440002"},
    "list_prompt_versions": {"prompt_id": "550e8400-e29b-41d4-a716-446655440001"},
    "list_calls": {"agent_id": "agent_1"},
    "get_call": {"call_id": "call_1"},
    "draft_test_from_call": {"call_id": "call_1"},
    "list_completion_runs": {"prompt_id": "550e8400-e29b-41d4-a716-446655440001", "limit": 50},
    "get_completion_run": {"id": "run_1"},
    "draft_test_case_from_run": {"run_id": "run_1"},
}


def on_virtual_time(
    vendors: FakeVendors, calls: Callable[[Client], Awaitable[Any]], settings: dict[str, str] | None = None
) -> Any:
    """Run `calls` against the real server on trio's virtual clock; returns what `calls` returns."""

    async def main() -> Any:
        server = build_server(make_settings(**(settings or {})), transport=vendors.transport())
        async with Client(server) as client:
            return await calls(client)

    clock = trio_testing.MockClock(autojump_threshold=0)
    return anyio.run(main, backend="trio", backend_options={"clock": clock})


async def timed(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[CallToolResult, float]:
    started = anyio.current_time()
    result = await client.call_tool(tool, arguments)
    return result, anyio.current_time() - started


async def hang(request: httpx2.Request) -> httpx2.Response:
    await anyio.sleep(3600)
    raise AssertionError("unreachable")


def test_every_tool_ends_inside_the_call_budget_when_the_vendor_never_answers(vendors: FakeVendors) -> None:
    """A vendor that accepts every request and never answers: each tool, one-request or many, ends inside the
    50 s call budget with a timeout error, however many requests, retries and polls it would make."""
    assert EVERY_TOOL_ARGUMENTS.keys() == set(TOOL_NAMES)
    vendors.retell = vendors.tela = hang

    async def calls(client: Client) -> dict[str, tuple[CallToolResult, float]]:
        return {tool: await timed(client, tool, arguments) for tool, arguments in EVERY_TOOL_ARGUMENTS.items()}

    for tool, (result, elapsed) in on_virtual_time(vendors, calls).items():
        assert elapsed <= CALL_BUDGET_SECONDS + 0.01, (tool, elapsed)
        assert error_of(result)["code"] == "timeout", tool
    assert CALL_BUDGET_SECONDS < CLIENT_LIMIT_SECONDS


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("list_batch_tests", {"agent_id": "a_1"}),
        ("get_response_engine", {"agent_id": "a_1"}),
        ("get_response_engine", {"test_case_job_id": "tcj_1"}),
    ],
)
def test_a_slow_vendor_cannot_stretch_a_multi_request_tool_past_its_budget(
    vendors: FakeVendors, tool: str, arguments: dict[str, Any]
) -> None:
    """Every request answered after 29 s (just under the 30 s timeout): a tool making two requests (an agent or a
    run, then its batch tests or its engine) gives the second only the 21 s left, so the call ends at 50 s, not 58."""
    engine = {"type": "retell-llm", "llm_id": "llm_1"}

    async def slow(request: httpx2.Request) -> httpx2.Response:
        await anyio.sleep(29)
        if request.url.path.startswith("/get-agent/"):
            return json_response(200, {"response_engine": engine})
        if request.url.path.startswith("/get-test-run/"):
            return json_response(200, {**RETELL_RUN, "test_case_definition_snapshot": {"response_engine": engine}})
        return json_response(200, {"items": [], "has_more": False})

    vendors.retell = slow
    result, elapsed = on_virtual_time(vendors, lambda client: timed(client, tool, arguments))
    assert error_of(result)["code"] == "timeout"
    assert "in the time this call had left" in error_of(result)["message"]
    assert elapsed <= CALL_BUDGET_SECONDS + 0.01
    assert len(vendors.requests) == 2


def test_a_comparison_of_two_endless_slow_listings_is_partial_and_in_time(vendors: FakeVendors) -> None:
    """Both batches page for ever, 7 s a page, read at the same time: the comparison ends inside the budget with
    what both had read, marked incomplete, each batch's pages counted."""

    async def endless(request: httpx2.Request) -> httpx2.Response:
        await anyio.sleep(7)
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, {**BATCH, "test_case_batch_job_id": request.url.path.rsplit("/", 1)[1]})
        number = int(request.url.params.get("pagination_key", "p0")[1:])
        item = {**RETELL_RUN, "test_case_definition_id": f"tcd_{number}"}
        return json_response(200, {"items": [item], "has_more": True, "pagination_key": f"p{number + 1}"})

    vendors.retell = endless
    arguments = {"before_batch_id": "tcbj_1", "after_batch_id": "tcbj_2"}
    result, elapsed = on_virtual_time(vendors, lambda client: timed(client, "compare_batch_tests", arguments))
    assert result.is_error is False and result.structured_content is not None
    answer = result.structured_content
    assert answer["complete"] is False and "did not arrive in the time this call had" in answer["incomplete_reason"]
    assert answer["before"]["pages"] == answer["after"]["pages"] == 6  # 7 s for the batch, then 6 pages of 7 s
    assert elapsed <= CALL_BUDGET_SECONDS + 0.01


def test_a_wait_whose_fourth_poll_hangs_ends_at_its_timeout_with_the_run_as_last_seen(vendors: FakeVendors) -> None:
    """wait_for_test_run(timeout_seconds=5, poll every 1 s) whose 4th poll never returns: the answer comes at 5 s
    (it took 53 s before), and it is the run as last seen, still in progress: a result, not an error."""
    polls = 0

    async def runs(request: httpx2.Request) -> httpx2.Response:
        nonlocal polls
        polls += 1
        if polls >= 4:
            await anyio.sleep(3600)
        return json_response(200, {**RETELL_RUN, "status": "in_progress"})

    vendors.retell = runs
    arguments = {"test_case_job_id": "tcj_1", "timeout_seconds": 5, "poll_interval_seconds": 1}
    result, elapsed = on_virtual_time(vendors, lambda client: timed(client, "wait_for_test_run", arguments))
    assert result.is_error is False and result.structured_content["status"] == "in_progress"
    assert polls == 4
    assert 4.9 <= elapsed <= 5.01


@pytest.mark.parametrize("timeout", [5, 50])
def test_a_wait_never_outlives_its_timeout_however_slow_each_poll(vendors: FakeVendors, timeout: float) -> None:
    """Each poll takes 20 s (under the 30 s request timeout): the wait still ends by its own timeout_seconds."""

    async def slow(request: httpx2.Request) -> httpx2.Response:
        await anyio.sleep(20)
        return json_response(200, {**RETELL_RUN, "status": "in_progress"})

    vendors.retell = slow
    arguments = {"test_case_job_id": "tcj_1", "timeout_seconds": timeout, "poll_interval_seconds": 1}
    result, elapsed = on_virtual_time(vendors, lambda client: timed(client, "wait_for_test_run", arguments))
    assert elapsed <= timeout + 0.01
    if timeout == 5:  # not even one poll fits: the run was never seen
        assert error_of(result)["code"] == "timeout"
    else:
        assert result.structured_content["status"] == "in_progress"


def test_a_summary_of_an_endless_slow_listing_is_partial_and_in_time(vendors: FakeVendors) -> None:
    """Retell pages forever, 1,000 runs a page, each page taking 7 s: the summary ends inside the 50 s budget with
    the pages it read, complete false and the reason; the pages themselves are never held."""

    async def endless(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, {**BATCH, "total_count": 10**6})
        await anyio.sleep(7)
        number = int(request.url.params.get("pagination_key", "k0")[1:])
        runs = [{"test_case_job_id": f"r{number}_{i}", "status": "pass"} for i in range(1000)]
        return json_response(200, {"items": runs, "has_more": True, "pagination_key": f"k{number + 1}"})

    vendors.retell = endless
    arguments = {"test_case_batch_job_id": "tcbj_1"}
    result, elapsed = on_virtual_time(vendors, lambda client: timed(client, "summarize_batch_test", arguments))
    summary = result.structured_content
    assert result.is_error is False and summary is not None
    assert elapsed <= CALL_BUDGET_SECONDS + 0.01
    assert summary["complete"] is False and summary["pages"] == 7 and summary["total_runs"] == 7000
    assert "did not arrive in the time this call had" in summary["incomplete_reason"]


def test_a_summary_that_waits_then_pages_shares_one_deadline(vendors: FakeVendors) -> None:
    """A 40 s wait on a batch that never completes, then pages that take 6 s each: the wait leaves the paging only
    what is left of the one 50 s deadline, and the call still answers (partial) inside it."""

    async def vendor(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            await anyio.sleep(1)
            return json_response(200, {**BATCH, "status": "in_progress"})
        await anyio.sleep(6)
        return json_response(200, {"items": [{"status": "pass"}], "has_more": True, "pagination_key": "k"})

    vendors.retell = vendor
    arguments = {"test_case_batch_job_id": "tcbj_1", "wait_seconds": 40}
    result, elapsed = on_virtual_time(vendors, lambda client: timed(client, "summarize_batch_test", arguments))
    assert result.is_error is False and result.structured_content["complete"] is False
    assert 40 <= elapsed <= CALL_BUDGET_SECONDS + 0.01


def test_retries_that_would_overrun_the_budget_answer_with_the_vendors_wait(vendors: FakeVendors) -> None:
    """A 503 asking for 20 s before each retry: the retries that fit are made, the call ends inside its budget, and
    the error says when to come back."""
    vendors.retell = lambda request: json_response(503, {"message": "busy"}, {"Retry-After": "20"})
    result, elapsed = on_virtual_time(
        vendors,
        lambda client: timed(client, "get_test_run", {"test_case_job_id": "tcj_1"}),
        {"RETELL_TELA_MCP_MAX_RETRIES": "5"},
    )
    error = error_of(result)
    assert error["code"] == "upstream_error" and error["retry_after_seconds"] == 20
    assert len(vendors.requests) == 3  # at 0, 20 and 40 s: a fourth at 60 s would pass the 50 s budget
    assert elapsed <= CALL_BUDGET_SECONDS


def test_a_short_wait_that_joins_a_hanging_request_leaves_at_its_own_deadline(vendors: FakeVendors) -> None:
    """A 5 s wait whose poll joins an identical get_test_run already in flight (and hanging) does not inherit that
    request's 50 s: it gives up at 5 s, and the other call is not disturbed."""
    vendors.retell = hang

    async def calls(client: Client) -> tuple[tuple[CallToolResult, float], tuple[CallToolResult, float]]:
        outcomes: dict[str, tuple[CallToolResult, float]] = {}

        async def read() -> None:
            outcomes["read"] = await timed(client, "get_test_run", {"test_case_job_id": "tcj_1"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(0.1)
            arguments = {"test_case_job_id": "tcj_1", "timeout_seconds": 5}
            outcomes["wait"] = await timed(client, "wait_for_test_run", arguments)
        return outcomes["wait"], outcomes["read"]

    (wait, wait_took), (read, read_took) = on_virtual_time(vendors, calls)
    assert error_of(wait)["code"] == "timeout" and wait_took <= 5.01
    assert error_of(read)["code"] == "timeout" and read_took <= CALL_BUDGET_SECONDS + 0.01
    assert len(vendors.requests) == 2  # the read's two attempts (30 s, then the 20 s left); the wait asked nothing


def test_a_summary_stays_small_whatever_the_vendor_puts_in_its_runs(vendors: FakeVendors) -> None:
    """300 runs with 10 KB names, IDs and explanations, a new status per run, a 1 MB batch status: the summary
    repeats only clipped strings, counts at most 16 statuses by name, and stays under 32 KB."""
    runs = [
        {
            "test_case_job_id": "j" * 10_000,
            "status": f"weird_{i}" if i % 2 else "fail",
            "test_case_definition_snapshot": {"name": "n" * 10_000},
            "result_explanation": "e" * 10_000,
        }
        for i in range(300)
    ]

    def vendor(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, {**BATCH, "status": "s" * 1_000_000, "pass_count": {"x": "y" * 100_000}})
        return json_response(200, {"items": runs, "has_more": False})

    vendors.retell = vendor
    result, _ = on_virtual_time(
        vendors, lambda client: timed(client, "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})
    )
    text = result.content[0].text
    assert result.is_error is False and len(text.encode()) < 32 * 1024
    summary = json.loads(text)
    assert (
        summary["total_runs"] == 300 and len(summary["counts"]) == 17 and summary["counts"]["other"] == 300 - 150 - 15
    )
    assert summary["counts"]["fail"] == 150 and summary["failed_not_shown"] == 125
    assert summary["pass_count"] is None


async def _slow_run(request: httpx2.Request) -> httpx2.Response:
    await anyio.sleep(3)
    return json_response(200, {**RETELL_RUN, "status": "in_progress"})


@pytest.mark.parametrize("readers", [1, 3])
def test_a_read_that_joins_a_shorter_wait_is_answered_when_the_wait_runs_out(
    vendors: FakeVendors, readers: int
) -> None:
    """wait_for_test_run(timeout_seconds=2) polls a run Retell takes 3 s to answer; get_test_run of the same run
    joins that poll 0.3 s in. The poll ends at 2 s because the wait's time is up, which is not the read's answer:
    the read (50 s) asks again and gets the run 3 s later, at 5 s. One request for the wait, one more for all the
    readers together (the first to ask again leads, the others join it): never one per caller."""
    vendors.retell = _slow_run

    async def calls(client: Client) -> tuple[tuple[CallToolResult, float], list[tuple[CallToolResult, float]]]:
        waits: list[tuple[CallToolResult, float]] = []
        reads: list[tuple[CallToolResult, float]] = []

        async def wait() -> None:
            waits.append(await timed(client, "wait_for_test_run", {"test_case_job_id": "tcj_1", "timeout_seconds": 2}))

        async def read() -> None:
            reads.append(await timed(client, "get_test_run", {"test_case_job_id": "tcj_1"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.3)
            for _ in range(readers):
                tg.start_soon(read)
        return waits[0], reads

    (wait, wait_took), reads = on_virtual_time(vendors, calls)
    assert error_of(wait)["code"] == "timeout" and 1.99 <= wait_took <= 2.01
    assert len(reads) == readers
    for read, took in reads:
        assert read.is_error is False, read.content[0].text
        assert read.structured_content is not None and read.structured_content["status"] == "in_progress"
        assert 4.69 <= took <= 4.71  # from 0.3 s to 5 s: 1.7 s on the wait's request, then 3 s on its own
    assert len(vendors.requests) == 2


def test_a_timeout_that_is_the_vendors_own_is_shared_not_asked_again(vendors: FakeVendors) -> None:
    """The other side of that rule: a read joins a wait's poll, Retell never answers, and the poll times out at
    timeout_seconds (1 s), long before the wait's own deadline. That timeout is the vendor's answer, the same
    for everyone: the read gets it at once, and nobody asks again (one request)."""
    vendors.retell = hang

    async def calls(client: Client) -> tuple[tuple[CallToolResult, float], tuple[CallToolResult, float]]:
        outcomes: dict[str, tuple[CallToolResult, float]] = {}

        async def wait() -> None:
            arguments = {"test_case_job_id": "tcj_1", "timeout_seconds": 5}
            outcomes["wait"] = await timed(client, "wait_for_test_run", arguments)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.3)
            outcomes["read"] = await timed(client, "get_test_run", {"test_case_job_id": "tcj_1"})
        return outcomes["wait"], outcomes["read"]

    settings = {"RETELL_TELA_MCP_TIMEOUT": "1", "RETELL_TELA_MCP_MAX_RETRIES": "0"}
    (wait, wait_took), (read, read_took) = on_virtual_time(vendors, calls, settings)
    assert error_of(wait)["code"] == "timeout" and 0.99 <= wait_took <= 1.01
    assert error_of(read)["code"] == "timeout" and "within 1 s" in error_of(read)["message"]
    assert 0.69 <= read_took <= 0.71
    assert len(vendors.requests) == 1
