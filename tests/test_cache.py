"""Caching that is safe by default, and request coalescing: tested through the server and on the cache itself."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest

from mcp_server.upstream.cache import ResponseCache
from tests.conftest import CASE_ID, JOB_ID, RETELL_RUN, TELA_CASE, FakeVendors, connect, error_of, json_response
from tests.conftest import make_settings as settings_with

pytestmark = pytest.mark.anyio


def run_with(status: str) -> Any:
    return lambda request: json_response(200, {**RETELL_RUN, "status": status})


async def read_twice(vendors: FakeVendors, tool: str = "get_test_run", **env: str) -> list[Any]:
    arguments = {"test_case_job_id": JOB_ID} if tool == "get_test_run" else {"id": CASE_ID}
    async with connect(vendors, settings_with(**env)) as client:
        return [await client.call_tool(tool, arguments) for _ in range(2)]


@pytest.mark.parametrize("status", ["pass", "fail", "error"])
async def test_finished_run_is_served_from_memory(vendors: FakeVendors, status: str) -> None:
    """A run that passed, failed or errored is final: the second read makes no request and returns the same."""
    vendors.retell = run_with(status)
    first, second = await read_twice(vendors)
    assert first.structured_content == second.structured_content == {**RETELL_RUN, "status": status}
    assert second.content[0].text == first.content[0].text
    assert len(vendors.requests) == 1


@pytest.mark.parametrize("status", ["pending", "in_progress", "some_future_status", ["pass"], {"phase": "pass"}, None])
async def test_unfinished_run_is_fetched_every_time(vendors: FakeVendors, status: object) -> None:
    """A run that may still change (or whose status is not a known final string) is not cached by default."""
    vendors.retell = run_with(status)
    await read_twice(vendors)
    assert len(vendors.requests) == 2


async def test_unfinished_runs_are_cached_when_the_user_sets_a_ttl(vendors: FakeVendors) -> None:
    """`cache_ttl_unfinished_seconds` opts in to caching runs still in progress."""
    vendors.retell = run_with("in_progress")
    await read_twice(vendors, RETELL_TELA_MCP_CACHE_TTL="600")  # the finished-run TTL alone does not cover them
    assert len(vendors.requests) == 2
    vendors.requests.clear()
    async with connect(vendors, settings_with({"cache_ttl_unfinished_seconds": 30})) as client:
        for _ in range(2):
            await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert len(vendors.requests) == 1


async def test_tela_cases_are_not_cached_unless_asked(vendors: FakeVendors) -> None:
    """Test cases are edited by people: fetched every time by default, cached with cache_ttl_tela_seconds."""
    await read_twice(vendors, "get_test_case")
    assert len(vendors.requests) == 2
    vendors.requests.clear()
    async with connect(vendors, settings_with({"cache_ttl_tela_seconds": 60})) as client:
        results = [await client.call_tool("get_test_case", {"id": CASE_ID}) for _ in range(2)]
        with_generations = await client.call_tool("get_test_case", {"id": CASE_ID, "include_generations": True})
    assert results[0].structured_content == results[1].structured_content == TELA_CASE
    assert with_generations.is_error is False
    assert [r.url.params.get("includeGenerations") for r in vendors.requests] == [None, "true"]  # separate entries


async def test_ttl_zero_turns_caching_off(vendors: FakeVendors) -> None:
    """`cache_ttl_seconds: 0` (here RETELL_TELA_MCP_CACHE_TTL=0) fetches even finished runs every time."""
    vendors.retell = run_with("pass")
    await read_twice(vendors, RETELL_TELA_MCP_CACHE_TTL="0")
    assert len(vendors.requests) == 2


@pytest.mark.parametrize(
    "failure", [json_response(404, {"message": "Not Found"}), json_response(500, {}), httpx2.Response(200, text="x")]
)
async def test_an_error_is_never_cached(vendors: FakeVendors, failure: httpx2.Response) -> None:
    """After a failed read, the next read asks the vendor again and gets the real answer."""
    answers = iter([failure, json_response(200, RETELL_RUN)])
    vendors.retell = lambda request: next(answers)
    first, second = await read_twice(vendors, RETELL_TELA_MCP_MAX_RETRIES="0")
    assert first.is_error is True and error_of(first)["code"]
    assert second.structured_content == RETELL_RUN


async def test_concurrent_identical_calls_share_one_request(vendors: FakeVendors) -> None:
    """Ten identical calls at once make one upstream request, even with caching off; all get the answer."""
    release = anyio.Event()

    async def slow(request: httpx2.Request) -> httpx2.Response:
        await release.wait()
        return json_response(200, {**RETELL_RUN, "status": "in_progress"})

    vendors.retell = slow
    results: list[Any] = []
    async with connect(vendors, settings_with(RETELL_TELA_MCP_CACHE_TTL="0")) as client:

        async def call() -> None:
            results.append(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(call)
            while not vendors.requests:
                await anyio.sleep(0.01)
            await anyio.sleep(0.05)
            release.set()
        other = await client.call_tool("get_test_run", {"test_case_job_id": "other_job"})
    assert len(results) == 10 and all(r.structured_content["status"] == "in_progress" for r in results)
    assert len(vendors.requests) == 2  # one shared request, then the different ID
    assert other.is_error is False


async def test_shared_request_error_reaches_every_caller_once(vendors: FakeVendors) -> None:
    """An error on a shared request is every waiter's answer; it is fetched once and not cached."""
    release = anyio.Event()

    async def slow_404(request: httpx2.Request) -> httpx2.Response:
        await release.wait()
        return json_response(404, {"message": "Not Found"})

    vendors.retell = slow_404
    codes: list[str] = []
    async with connect(vendors) as client:

        async def call() -> None:
            codes.append(error_of(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))["code"])

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(call)
            while not vendors.requests:
                await anyio.sleep(0.01)
            await anyio.sleep(0.05)
            release.set()
    assert codes == ["not_found"] * 5
    assert len(vendors.requests) == 1


async def test_one_caller_giving_up_does_not_fail_the_others(vendors: FakeVendors) -> None:
    """A caller that times out leaves the shared request running for the caller still waiting."""
    release = anyio.Event()

    async def slow(request: httpx2.Request) -> httpx2.Response:
        await release.wait()
        return json_response(200, RETELL_RUN)

    vendors.retell = slow
    async with connect(vendors) as client:
        patient: list[Any] = []

        async def wait_patiently() -> None:
            patient.append(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_patiently)
            while not vendors.requests:
                await anyio.sleep(0.01)
            with anyio.move_on_after(0.2):  # the impatient caller gives up
                await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
            release.set()
    assert patient[0].structured_content == RETELL_RUN
    assert len(vendors.requests) == 1


def test_cache_expires_entries_after_their_ttl() -> None:
    """An entry is served until its TTL passes, then never again."""
    now = [0.0]
    cache = ResponseCache(max_entries=10, max_bytes=1000, clock=lambda: now[0])
    cache.put("a", b'{"v":1}', ttl=5)
    now[0] = 4.9
    assert cache.get("a") == b'{"v":1}'
    now[0] = 5.0
    assert cache.get("a") is None and len(cache) == 0 and cache.size == 0


def test_cache_is_bounded_by_entries_and_bytes_evicting_least_recently_used() -> None:
    """Over either bound, the least recently used entries go first; an object over the byte budget is not kept."""
    cache = ResponseCache(max_entries=3, max_bytes=100, clock=lambda: 0.0)
    for key in "abc":
        cache.put(key, b"x" * 10, ttl=60)
    cache.get("a")  # a is now the most recently used
    cache.put("d", b"x" * 10, ttl=60)
    assert [k for k in "abcd" if cache.get(k)] == ["a", "c", "d"]
    cache.put("big", b"x" * 85, ttl=60)  # pushes the total over 100 bytes
    assert cache.size <= 100 and cache.get("big") is not None
    cache.put("huge", b"x" * 101, ttl=60)
    assert cache.get("huge") is None
    cache.put("zero", b"x", ttl=0)
    assert cache.get("zero") is None


def test_a_newer_answer_that_cannot_be_kept_evicts_the_older_one() -> None:
    """Nothing older than the newest answer is served: a put with no TTL, or too big to keep, drops the old entry."""
    cache = ResponseCache(max_entries=10, max_bytes=100, clock=lambda: 0.0)
    cache.put("run", b"old", ttl=60)
    cache.put("run", b"new", ttl=0)
    assert cache.get("run") is None and cache.size == 0
    cache.put("run", b"old", ttl=60)
    cache.put("run", b"x" * 101, ttl=60)
    assert cache.get("run") is None and cache.size == 0


async def test_a_fresh_read_that_is_not_cacheable_evicts_the_cached_run(vendors: FakeVendors) -> None:
    """A run cached as passed, then read fresh (a wait polls fresh) and found re-run, in progress (not cacheable by
    default): the next plain read goes to Retell instead of serving the stale pass."""
    statuses = iter(["pass", "in_progress", "in_progress"])
    vendors.retell = lambda request: json_response(200, {**RETELL_RUN, "status": next(statuses)})
    async with connect(vendors) as client:
        await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})  # cached: a finished run
        polled = await client.call_tool("wait_for_test_run", {"test_case_job_id": JOB_ID, "timeout_seconds": 0.1})
        again = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert polled.structured_content is not None and polled.structured_content["status"] == "in_progress"
    assert again.structured_content is not None and again.structured_content["status"] == "in_progress"
    assert len(vendors.requests) == 3


async def test_the_cache_holds_compact_json_and_counts_its_bytes(vendors: FakeVendors) -> None:
    """What the cache's byte budget counts is the compact JSON it holds: an indented 20 KB vendor body is kept as
    its compact text (spaces gone), and a hit gives a fresh object equal to the vendor's, not a shared one."""
    big = {**RETELL_RUN, "transcript_snapshot": {"transcript": [{"role": "agent", "content": "x" * 50}] * 200}}
    body = json.dumps(big, indent=4).encode()
    vendors.retell = lambda request: httpx2.Response(200, content=body, headers={"content-type": "application/json"})
    compact = json.dumps(big, separators=(",", ":")).encode()
    # room for exactly one compact copy: the indented body would not fit, two copies would not either
    settings = settings_with({"cache_max_bytes": len(compact) + 10})
    async with connect(vendors, settings) as client:
        first = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
        second = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert len(body) > len(compact) + 10
    assert first.structured_content == second.structured_content == big
    assert len(vendors.requests) == 1


async def test_cache_bounds_hold_for_both_vendors_together(vendors: FakeVendors) -> None:
    """cache_max_entries bounds the whole process: with room for one entry, a Tela case evicts a Retell run."""
    settings = settings_with({"cache_max_entries": 1, "cache_ttl_tela_seconds": 60})
    async with connect(vendors, settings) as client:
        await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})  # cached (a finished run)
        await client.call_tool("get_test_case", {"id": CASE_ID})  # cached, evicting the run
        await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})  # fetched again
    assert [r.url.host for r in vendors.requests] == ["api.retellai.com", "api.tela.com", "api.retellai.com"]


async def test_a_cancelled_leader_aborts_its_request_and_its_waiter_asks_again(vendors: FakeVendors) -> None:
    """The caller whose request others joined gives up: its request is aborted at once (the vendor sees the
    hang-up), and the caller that was waiting on it makes its own request and gets the run."""
    aborted = anyio.Event()
    calls = 0

    async def vendor(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            try:
                await anyio.sleep(30)
            except BaseException:
                aborted.set()
                raise
        return json_response(200, RETELL_RUN)

    vendors.retell = vendor
    waiter: list[Any] = []
    async with connect(vendors) as client, anyio.create_task_group() as tg:
        leader = anyio.CancelScope()

        async def lead() -> None:
            with leader:
                await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})

        async def wait() -> None:
            waiter.append(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))

        tg.start_soon(lead)
        while not vendors.requests:
            await anyio.sleep(0.01)
        tg.start_soon(wait)
        await anyio.sleep(0.05)  # the waiter has joined the leader's request
        assert calls == 1
        leader.cancel()
    assert aborted.is_set()
    assert waiter[0].structured_content == RETELL_RUN
    assert calls == 2
