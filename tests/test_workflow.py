"""The batch and listing tools, include_transcript, and their resources (issue 6, first part)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import (
    CASE_ID,
    JOB_ID,
    RETELL_KEY,
    RETELL_RUN,
    TELA_CASE,
    FakeClock,
    FakeVendors,
    connect,
    error_of,
    json_response,
    make_settings,
)

pytestmark = pytest.mark.anyio

BATCH = {"test_case_batch_job_id": "tcbj_1", "status": "complete", "pass_count": 3, "fail_count": 1}
PAGE = {"items": [RETELL_RUN], "has_more": True, "pagination_key": "tcj_2f8a9c"}
DEFINITION = {"test_case_definition_id": "tcd_77", "name": "refund", "metrics": ["offers refund"], "new": None}


async def call(vendors: FakeVendors, tool: str, arguments: dict[str, Any]) -> Any:
    async with connect(vendors) as client:
        return await client.call_tool(tool, arguments)


@pytest.mark.parametrize(
    ("tool", "arguments", "url", "body"),
    [
        ("get_batch_test", {"test_case_batch_job_id": "tcbj_1"},
         "https://api.retellai.com/get-batch-test/tcbj_1", BATCH),
        ("list_test_runs", {"test_case_batch_job_id": "tcbj_1"},
         "https://api.retellai.com/v2/list-test-runs/tcbj_1?limit=50", PAGE),
        ("list_test_runs", {"test_case_batch_job_id": "tcbj_1", "limit": 3, "pagination_key": "tcj_2f8a9c"},
         "https://api.retellai.com/v2/list-test-runs/tcbj_1?limit=3&pagination_key=tcj_2f8a9c", PAGE),
        ("get_test_case_definition", {"test_case_definition_id": "tcd_77"},
         "https://api.retellai.com/get-test-case-definition/tcd_77", DEFINITION),
    ],
)  # fmt: skip
async def test_retell_tools_forward_to_their_endpoint_and_return_the_object(
    vendors: FakeVendors, tool: str, arguments: dict[str, Any], url: str, body: dict[str, Any]
) -> None:
    """Each Retell tool makes one authenticated GET to its own endpoint and returns Retell's object unchanged."""
    vendors.retell = lambda request: json_response(200, body)
    result = await call(vendors, tool, arguments)
    assert result.structured_content == body and json.loads(result.content[0].text) == body
    (request,) = vendors.requests
    assert str(request.url) == url and request.headers["authorization"] == f"Bearer {RETELL_KEY}"


async def test_list_test_cases_wraps_tela_array_as_items(vendors: FakeVendors) -> None:
    """Tela answers a bare array for a prompt's cases; the tool returns it as {items: [...]}, unchanged inside."""
    cases = [TELA_CASE, {**TELA_CASE, "id": "550e8400-e29b-41d4-a716-446655440009", "extra": [1]}]
    vendors.tela = lambda request: json_response(200, cases)
    result = await call(vendors, "list_test_cases", {"prompt_id": CASE_ID, "include_generations": True})
    assert result.structured_content == {"items": cases}
    (request,) = vendors.requests
    assert str(request.url) == f"https://api.tela.com/test-case?promptId={CASE_ID}&includeGenerations=true"


async def test_list_test_cases_refuses_an_object_where_an_array_belongs(vendors: FakeVendors) -> None:
    """If Tela ever answers an object for the list, that is a bad upstream response, not a silent reshape."""
    vendors.tela = lambda request: json_response(200, {"items": []})
    error = error_of(await call(vendors, "list_test_cases", {"prompt_id": CASE_ID}))
    assert error["code"] == "bad_upstream_response" and "JSON object instead of an array" in error["message"]


@pytest.mark.parametrize(
    ("tool", "arguments", "words"),
    [
        ("get_batch_test", {"test_case_batch_job_id": "../x"}, "test_case_batch_job_id must be"),
        ("list_test_runs", {"test_case_batch_job_id": "a/b"}, "test_case_batch_job_id must be"),
        ("list_test_runs", {"test_case_batch_job_id": "ok", "pagination_key": "a b"}, "pagination_key must be"),
        ("list_test_runs", {"test_case_batch_job_id": "ok", "pagination_key": "k\x00"}, "pagination_key must be"),
        ("list_test_runs", {"test_case_batch_job_id": "ok", "pagination_key": "é"}, "pagination_key must be"),
        ("list_test_runs", {"test_case_batch_job_id": "ok", "pagination_key": "x" * 1025}, "pagination_key must be"),
        ("get_test_case_definition", {"test_case_definition_id": "%2e%2e"}, "test_case_definition_id must be"),
        ("list_test_cases", {"prompt_id": "not-a-uuid"}, "prompt_id must be a UUID"),
    ],
)
async def test_bad_arguments_never_reach_the_network(
    vendors: FakeVendors, tool: str, arguments: dict[str, Any], words: str
) -> None:
    """IDs and pagination keys are checked before any request; the error names the argument."""
    error = error_of(await call(vendors, tool, arguments))
    assert error["code"] == "invalid_argument" and words in error["message"]
    assert vendors.requests == []


@pytest.mark.parametrize("limit", [0, 1001, -5])
async def test_limit_outside_1_to_1000_is_rejected_by_the_schema(vendors: FakeVendors, limit: int) -> None:
    """`limit` is bounded in the input schema, so a bad one is refused before the tool runs."""
    result = await call(vendors, "list_test_runs", {"test_case_batch_job_id": "tcbj_1", "limit": limit})
    assert result.is_error is True and "limit" in result.content[0].text
    assert vendors.requests == []


async def test_include_transcript_false_leaves_the_field_out_and_the_cache_whole(vendors: FakeVendors) -> None:
    """Without the transcript the key is absent (not null); a later full read still has it (cache not mutated)."""
    async with connect(vendors) as client:
        short = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID, "include_transcript": False})
        full = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert short.structured_content == {k: v for k, v in RETELL_RUN.items() if k != "transcript_snapshot"}
    assert "transcript_snapshot" not in json.loads(short.content[0].text)
    assert full.structured_content == RETELL_RUN
    assert len(vendors.requests) == 1  # the finished run came from the cache the second time


async def test_batch_and_definition_resources_read_like_their_tools(vendors: FakeVendors) -> None:
    """The two new URI templates give the same JSON as get_batch_test and get_test_case_definition."""

    def route(request: httpx2.Request) -> httpx2.Response:
        return json_response(200, BATCH if "batch" in request.url.path else DEFINITION)

    vendors.retell = route
    async with connect(vendors) as client:
        batch = await client.read_resource("retell://batch-tests/tcbj_1")
        definition = await client.read_resource("retell://test-case-definitions/tcd_77")
    assert json.loads(batch.contents[0].text) == BATCH  # type: ignore[union-attr]
    assert json.loads(definition.contents[0].text) == DEFINITION  # type: ignore[union-attr]


def run_of(job: str, status: str, name: str = "t") -> dict[str, Any]:
    return {**RETELL_RUN, "test_case_job_id": job, "status": status, "result_explanation": f"why {job}",
            "test_case_definition_snapshot": {"name": name}}  # fmt: skip


async def test_summarize_follows_three_pages_with_progress_and_keeps_no_transcripts(vendors: FakeVendors) -> None:
    """Three pages are read by pagination_key, one progress notification each; the summary has counts and the
    failed and errored runs' names and explanations, and no transcript."""
    pages = {
        None: {"items": [run_of("a", "pass"), run_of("b", "fail", "refund")], "has_more": True,
               "pagination_key": "k1"},
        "k1": {"items": [run_of("c", "error", "greeting"), run_of("d", "pass")], "has_more": True,
               "pagination_key": "k2"},
        "k2": {"items": [run_of("e", "in_progress")], "has_more": False, "pagination_key": None},
    }  # fmt: skip

    def route(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, BATCH)
        return json_response(200, pages[request.url.params.get("pagination_key")])

    vendors.retell = route
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with connect(vendors) as client:
        result = await client.call_tool(
            "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"}, progress_callback=on_progress
        )
    summary = result.structured_content
    assert summary is not None and result.is_error is False
    assert summary["total_runs"] == 5 and summary["pages"] == 3 and summary["status"] == "complete"
    assert summary["counts"] == {"pass": 2, "fail": 1, "error": 1, "in_progress": 1}
    assert summary["failed"] == [
        {"test_case_job_id": "b", "name": "refund", "status": "fail", "result_explanation": "why b"},
        {"test_case_job_id": "c", "name": "greeting", "status": "error", "result_explanation": "why c"},
    ]
    assert "transcript" not in result.content[0].text
    assert [value for value, _ in progress] == [1, 2, 3]
    assert [r.url.params.get("pagination_key") for r in vendors.requests[1:]] == [None, "k1", "k2"]


async def test_summarize_stops_when_the_vendor_repeats_a_pagination_key(vendors: FakeVendors) -> None:
    """A vendor that hands back the same key forever cannot make the summary loop."""

    def route(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, BATCH)
        return json_response(200, {"items": [run_of("x", "pass")], "has_more": True, "pagination_key": "same"})

    vendors.retell = route
    result = await call(vendors, "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})
    assert result.structured_content is not None and result.structured_content["pages"] == 2
    assert len(vendors.requests) == 3


async def test_wait_polls_until_the_run_is_final_with_progress(vendors: FakeVendors) -> None:
    """in_progress, in_progress, pass: three fresh polls (even with unfinished runs cacheable), three progress
    notifications, and the finished run returned."""
    statuses = iter(["in_progress", "in_progress", "pass"])
    vendors.retell = lambda request: json_response(200, {**RETELL_RUN, "status": next(statuses)})
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    settings = make_settings({"cache_ttl_unfinished_seconds": 600})
    async with connect(vendors, settings) as client:
        result = await client.call_tool(
            "wait_for_test_run",
            {"test_case_job_id": JOB_ID, "poll_interval_seconds": 1, "timeout_seconds": 10},
            progress_callback=on_progress,
        )
    assert result.structured_content is not None and result.structured_content["status"] == "pass"
    assert len(vendors.requests) == 3
    assert progress == ["poll 1: status in_progress", "poll 2: status in_progress", "poll 3: status pass"]


async def test_wait_that_runs_out_of_time_returns_the_run_still_running(vendors: FakeVendors) -> None:
    """When time is up the run comes back as last seen (in_progress), not as an error; the last poll is made near
    the end of the wait (a tenth of it, at most 2 s, before), not an interval before it."""
    vendors.retell = lambda request: json_response(200, {**RETELL_RUN, "status": "in_progress"})
    clock = FakeClock()
    async with connect(vendors, clock=clock) as client:
        result = await client.call_tool(
            "wait_for_test_run", {"test_case_job_id": JOB_ID, "timeout_seconds": 45, "poll_interval_seconds": 30}
        )
    assert result.is_error is False and result.structured_content["status"] == "in_progress"
    assert clock.slept == [30.0, 13.0]  # polls at 0, 30 and 43 of the 45 s
    assert len(vendors.requests) == 3


async def test_cancelling_a_wait_stops_polling_at_once(vendors: FakeVendors) -> None:
    """A client that gives up on a wait leaves no polling behind: no request after the cancellation."""
    vendors.retell = lambda request: json_response(200, {**RETELL_RUN, "status": "in_progress"})
    async with connect(vendors) as client:
        with anyio.move_on_after(0.5):
            await client.call_tool("wait_for_test_run", {"test_case_job_id": JOB_ID, "poll_interval_seconds": 1})
        polls = len(vendors.requests)
        await anyio.sleep(1.1)  # past the next poll, had polling gone on
        assert len(vendors.requests) == polls == 1


@pytest.mark.parametrize("arguments", [{"timeout_seconds": 51}, {"poll_interval_seconds": 0.5}])
async def test_wait_limits_keep_a_call_under_the_client_limit(vendors: FakeVendors, arguments: dict[str, Any]) -> None:
    """timeout_seconds is capped at 50 and polling is no faster than once a second, by the input schema."""
    result = await call(vendors, "wait_for_test_run", {"test_case_job_id": JOB_ID, **arguments})
    assert result.is_error is True and vendors.requests == []


async def test_wait_reports_a_vendor_error_as_the_contract_says(vendors: FakeVendors) -> None:
    """A run that does not exist ends the wait with not_found."""
    vendors.retell = lambda request: json_response(404, {"message": "Not Found"})
    error = error_of(await call(vendors, "wait_for_test_run", {"test_case_job_id": JOB_ID}))
    assert error["code"] == "not_found"


async def test_prompts_are_listed_with_their_arguments(vendors: FakeVendors) -> None:
    """prompts/list offers diagnose_test_run(test_case_job_id), compare_batches(before_batch_id, after_batch_id) and
    review_test_case(id), each argument required."""
    async with connect(vendors) as client:
        prompts = (await client.list_prompts()).prompts
    assert [(p.name, [(a.name, a.required) for a in p.arguments or []]) for p in prompts] == [
        ("diagnose_test_run", [("test_case_job_id", True)]),
        ("compare_batches", [("before_batch_id", True), ("after_batch_id", True)]),
        ("review_test_case", [("id", True)]),
        ("test_from_call", [("call_id", True)]),
        ("test_from_completion_run", [("run_id", True)]),
    ]
    assert all(p.title and p.description for p in prompts)


async def test_prompts_tell_the_model_which_tools_to_use_on_which_object(vendors: FakeVendors) -> None:
    """Each prompt is one user message naming the object and the tools that fetch it; nothing is fetched yet."""
    async with connect(vendors) as client:
        diagnose = await client.get_prompt("diagnose_test_run", {"test_case_job_id": JOB_ID})
        review = await client.get_prompt("review_test_case", {"id": CASE_ID})
    (message,) = diagnose.messages
    assert message.role == "user" and message.content.type == "text"
    assert JOB_ID in message.content.text and "get_test_run" in message.content.text
    assert "metrics" in message.content.text and "wait_for_test_run" in message.content.text
    assert f"get_response_engine test_case_job_id={JOB_ID}" in message.content.text
    assert "state_prompt" in message.content.text and "exact edit" in message.content.text
    (message,) = review.messages
    assert CASE_ID in message.content.text and "include_generations" in message.content.text
    assert "expectedOutput" in message.content.text and "get_prompt_version" in message.content.text
    async with connect(vendors) as client:
        compare = await client.get_prompt("compare_batches", {"before_batch_id": "tcbj_a", "after_batch_id": "tcbj_b"})
        with pytest.raises(MCPError) as refused:
            await client.get_prompt("compare_batches", {"before_batch_id": "tcbj_a", "after_batch_id": "../b"})
    (message,) = compare.messages
    assert "compare_batch_tests before_batch_id=tcbj_a after_batch_id=tcbj_b" in message.content.text
    assert all(word in message.content.text for word in ("fixed", "regressed", "still_failing"))
    assert refused.value.error.code == -32602 and vendors.requests == []
    assert vendors.requests == []


async def test_prompt_with_a_malformed_id_is_refused(vendors: FakeVendors) -> None:
    """A prompt argument gets the same ID check as a tool's, as an invalid-params error."""
    from mcp import MCPError

    async with connect(vendors) as client:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("review_test_case", {"id": "../../etc"})
    assert caught.value.error.code == -32602 and "UUID" in caught.value.error.message


def batch_of(status: str, passed: int, failed: int, errored: int = 0, total: int | None = None) -> dict[str, Any]:
    return {"test_case_batch_job_id": "tcbj_1", "status": status, "pass_count": passed, "fail_count": failed,
            "error_count": errored, "total_count": passed + failed + errored if total is None else total}  # fmt: skip


def single_page(runs: list[dict[str, Any]], **page: Any) -> dict[str, Any]:
    return {"items": runs, "has_more": False, "pagination_key": None, **page}


def batch_vendor(batches: Any, pages: Any) -> Any:
    """Retell answering get-batch-test from `batches` (one per call, the last repeated) and list-test-runs pages."""
    batch_answers = iter(batches)
    last: list[dict[str, Any]] = []

    def route(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            last[:] = [next(batch_answers, last[0] if last else None)]
            return json_response(200, last[0])
        return json_response(200, pages(request) if callable(pages) else pages)

    return route


async def test_summary_puts_retells_counts_beside_its_recount_and_asks_for_1000_runs(vendors: FakeVendors) -> None:
    """Retell's own status and counts are reported unchanged next to the recount; when they agree and the batch
    is complete the summary says complete; runs are read 1,000 per page (Retell's maximum)."""
    runs = [run_of("a", "pass"), run_of("b", "fail", "refund"), run_of("c", "error", "greet")]
    vendors.retell = batch_vendor([batch_of("complete", 1, 1, 1)], single_page(runs))
    summary = (await call(vendors, "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})).structured_content
    assert summary is not None
    assert {k: summary[k] for k in ("status", "pass_count", "fail_count", "error_count", "total_count")} == {
        "status": "complete", "pass_count": 1, "fail_count": 1, "error_count": 1, "total_count": 3}  # fmt: skip
    assert summary["total_runs"] == 3 and summary["counts"] == {"pass": 1, "fail": 1, "error": 1}
    assert summary["complete"] is True and summary["incomplete_reason"] is None
    assert vendors.requests[1].url.params["limit"] == "1000"


@pytest.mark.parametrize(
    ("batch", "page", "reason"),
    [
        (batch_of("complete", 5, 1), single_page([run_of("a", "pass")]), "recounted 1 runs but Retell counts 6"),
        (batch_of("in_progress", 0, 0, total=1), single_page([run_of("a", "pending")]), "the batch is in_progress"),
        (batch_of("complete", 1, 0), single_page([run_of("a", "pass")], has_more=True), "gave no new pagination_key"),
    ],
)
async def test_summary_says_plainly_when_it_is_not_the_whole_outcome(
    vendors: FakeVendors, batch: dict[str, Any], page: dict[str, Any], reason: str
) -> None:
    """A recount short of Retell's total_count, a batch still running, or paging cut short: complete is false,
    and incomplete_reason says why."""
    vendors.retell = batch_vendor([batch], page)
    summary = (await call(vendors, "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})).structured_content
    assert summary is not None and summary["complete"] is False and reason in summary["incomplete_reason"]


async def test_a_5000_run_batch_summarizes_in_a_small_answer(vendors: FakeVendors) -> None:
    """Five pages of 1,000 runs with transcripts, 300 of them failed: 25 failed runs are listed, the other 275
    counted in failed_not_shown, each explanation clipped, and the whole answer stays a few kilobytes."""
    long_why = "x" * 2000

    def page(request: httpx2.Request) -> dict[str, Any]:
        number = int(request.url.params.get("pagination_key", "p0")[1:])
        runs = [{**run_of(f"r{number}_{i}", "fail" if i < 60 else "pass"), "result_explanation": long_why}
                for i in range(1000)]  # fmt: skip
        more = number < 4
        return {"items": runs, "has_more": more, "pagination_key": f"p{number + 1}" if more else None}

    vendors.retell = batch_vendor([batch_of("complete", 4700, 300)], page)
    result = await call(vendors, "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})
    summary = result.structured_content
    assert summary is not None and summary["complete"] is True and summary["pages"] == 5
    assert summary["counts"] == {"fail": 300, "pass": 4700}
    assert len(summary["failed"]) == 25 and summary["failed_not_shown"] == 275
    assert all(len(run["result_explanation"]) == 500 for run in summary["failed"])
    assert len(result.content[0].text) < 16_000


async def test_wait_seconds_polls_the_batch_until_complete_with_progress(vendors: FakeVendors) -> None:
    """wait_seconds polls get-batch-test (5 s apart, on the injected clock) until complete, with one progress
    notification per poll counting finished runs of the total, then summarizes."""
    batches = [
        batch_of("in_progress", 0, 0, total=2),
        batch_of("in_progress", 1, 0, total=2),
        batch_of("complete", 1, 1),
    ]
    vendors.retell = batch_vendor(batches, single_page([run_of("a", "pass"), run_of("b", "fail")]))
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    clock = FakeClock()
    async with connect(vendors, clock=clock) as client:
        result = await client.call_tool(
            "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1", "wait_seconds": 30},
            progress_callback=on_progress,
        )  # fmt: skip
    assert result.structured_content is not None and result.structured_content["complete"] is True
    assert [(value, total) for value, total, _ in progress[:3]] == [(0, 2), (1, 2), (2, 2)]
    assert progress[2][2] == "poll 3: batch complete, 2 of 2 runs finished"
    assert clock.slept == [5.0, 5.0]
    assert [r.url.path for r in vendors.requests].count("/get-batch-test/tcbj_1") == 3


async def test_a_batch_still_running_when_the_wait_ends_is_a_result(vendors: FakeVendors) -> None:
    """Time up with the batch in progress: the summary as it stands, complete false, not an error; the last poll
    comes at the end of the wait, not an interval before it."""
    vendors.retell = batch_vendor([batch_of("in_progress", 0, 0, total=1)], single_page([run_of("a", "pending")]))
    clock = FakeClock()
    async with connect(vendors, clock=clock) as client:
        result = await client.call_tool(
            "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1", "wait_seconds": 12}
        )
    assert result.is_error is False and result.structured_content is not None
    assert result.structured_content["status"] == "in_progress" and result.structured_content["complete"] is False
    assert clock.slept == [5.0, 5.0, pytest.approx(0.8)]  # polls at 0, 5, 10 and 10.8: 1.2 s (a tenth) before 12


@pytest.mark.parametrize("wait", [-1, 41])
async def test_wait_seconds_is_bounded_by_the_schema(vendors: FakeVendors, wait: float) -> None:
    """At most 40 s of waiting, so the summary that follows still ends under the usual 60 s client limit."""
    result = await call(vendors, "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1", "wait_seconds": wait})
    assert result.is_error is True and vendors.requests == []


async def test_summary_memory_does_not_grow_with_the_pages_of_transcripts(vendors: FakeVendors) -> None:
    """Each page of 1,000 runs (with ~2 KB transcripts) is counted and dropped: the peak memory while summarizing
    eight pages is about that of two, where keeping the runs would make it four times as high."""
    import tracemalloc

    transcript = {"transcript": [{"role": "agent", "content": "x" * 2000}]}

    def pages(count: int) -> Any:
        def page(request: httpx2.Request) -> dict[str, Any]:
            number = int(request.url.params.get("pagination_key", "p0")[1:])
            runs = [{**run_of(f"r{number}_{i}", "pass"), "transcript_snapshot": transcript} for i in range(1000)]
            more = number < count - 1
            return {"items": runs, "has_more": more, "pagination_key": f"p{number + 1}" if more else None}

        return page

    peaks = []
    for count in (2, 8):
        vendors.retell = batch_vendor([batch_of("complete", 1000 * count, 0)], pages(count))
        tracemalloc.start()
        result = await call(vendors, "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert result.structured_content is not None and result.structured_content["total_runs"] == 1000 * count
    assert peaks[1] < 1.5 * peaks[0], peaks
