"""The process-wide budget of body bytes in flight: concurrent large answers take turns instead of piling up."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp_types import CallToolResult

from mcp_server.upstream.budget import ByteBudget
from tests.conftest import RETELL_RUN, FakeVendors, connect, json_response, make_settings
from tests.test_deadlines import on_virtual_time, timed

pytestmark = pytest.mark.anyio


def streamed_run(job_id: str, active: list[int], peak: list[int]) -> httpx2.Response:
    """A ~40 KB run sent in 4 chunks with a pause between, counting how many such bodies are being read at once."""
    body = json.dumps({**RETELL_RUN, "test_case_job_id": job_id, "padding": "x" * 40_000}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        try:
            for start in range(0, len(body), len(body) // 4 + 1):
                await anyio.sleep(0.01)
                yield body[start : start + len(body) // 4 + 1]
        finally:
            active[0] -= 1

    headers = {"content-type": "application/json", "content-length": str(len(body))}
    return httpx2.Response(200, stream=_Stream(chunks()), headers=headers)


class _Stream(httpx2.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            yield chunk


@pytest.mark.parametrize(("budget", "most_at_once"), [(64 * 1024, 1), (16 * 1024 * 1024, 4)])
async def test_concurrent_large_answers_take_turns_within_the_byte_budget(
    vendors: FakeVendors, budget: int, most_at_once: int
) -> None:
    """Four concurrent ~40 KB answers with a 64 KiB budget are read one at a time (two would not fit), and every
    call still succeeds; with the default 16 MiB all four are read at once."""
    active, peak = [0], [0]
    vendors.retell = lambda request: streamed_run(request.url.path.rsplit("/", 1)[-1], active, peak)
    results = []
    async with connect(vendors, make_settings({"max_inflight_bytes": budget})) as client:

        async def one(n: int) -> None:
            results.append(await client.call_tool("get_test_run", {"test_case_job_id": f"tcj_{n}"}))

        async with anyio.create_task_group() as tg:
            for n in range(4):
                tg.start_soon(one, n)
    assert [r.is_error for r in results] == [False] * 4
    assert peak[0] == most_at_once


async def test_a_reservation_cancelled_while_waiting_frees_its_place() -> None:
    """A caller that gives up while waiting for the budget leaves it as it found it: those behind it go ahead."""
    budget = ByteBudget(100)
    order: list[str] = []

    async def reserve(name: str, size: int, release: anyio.Event) -> None:
        async with budget.hold(size):
            order.append(name)
            await release.wait()

    first_done, last_done = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(reserve, "first", 80, first_done)
        await anyio.sleep(0.01)
        impatient = anyio.CancelScope()
        tg.start_soon(_cancellable, budget, impatient)
        await anyio.sleep(0.01)
        tg.start_soon(reserve, "small", 20, last_done)  # fits beside the first, but queues behind the impatient one
        await anyio.sleep(0.01)
        assert order == ["first"]
        impatient.cancel()
        await anyio.sleep(0.01)
        assert order == ["first", "small"] and budget.held == 100
        first_done.set()
        last_done.set()
    assert budget.held == 0 and budget.peak == 100


async def _cancellable(budget: ByteBudget, scope: anyio.CancelScope) -> None:
    with scope:
        async with budget.hold(50):
            raise AssertionError("granted past the budget")


async def test_a_body_larger_than_the_budget_goes_past_the_limit_only_alone() -> None:
    """The one case the limit is passed: a body whose most is over the whole budget counts as needing all of it.
    It may start beside others that can finish first, but it goes past the limit only once no other body holds
    anything, and bodies that come meanwhile wait until it is done."""
    budget = ByteBudget(100)
    order: list[str] = []

    past, release = anyio.Event(), anyio.Event()

    async def big() -> None:
        async with budget.body(1000) as body:
            await body.take(10)
            order.append("big started")
            await body.take(990)
            order.append("big past the limit")
            past.set()
            await release.wait()
        order.append("big done")

    with anyio.fail_after(2):  # a regression would hang here, not pass
        async with anyio.create_task_group() as tg:
            async with budget.hold(50):
                tg.start_soon(big)
                await anyio.wait_all_tasks_blocked()
                assert order == ["big started"] and budget.held == 60  # not alone: it waits for the rest
            await past.wait()
            assert budget.held == 1000
            tg.start_soon(_new, budget, "small", 10, order)
            await anyio.wait_all_tasks_blocked()
            assert order == ["big started", "big past the limit"]  # small waits for it to be done
            release.set()
    assert order == ["big started", "big past the limit", "big done", "small"]
    assert budget.held == 0 and budget.peak == 1000


async def test_a_body_holds_what_it_has_read_and_grows_piece_by_piece() -> None:
    """A body of unknown size (most 80 of 100) holds only the pieces it has taken, so a second body fits beside it
    while it is read; each frees exactly what it held."""
    budget = ByteBudget(100)
    async with budget.body(80) as first:
        await first.take(5)
        assert budget.held == 5
        async with budget.body(80) as second:
            await second.take(5)
            await first.take(30)
            assert (first.held, second.held, budget.held) == (35, 5, 40)
        assert budget.held == 35
        await first.cover(1000)  # never more than its most
        assert first.held == 80
    assert budget.held == 0


async def test_two_half_read_bodies_never_wait_on_each_other() -> None:
    """Two bodies of up to 80 bytes each, read in 10-byte pieces in turn, in a 100-byte budget. Granting whatever
    fits would let each hold 50 and wait for the other forever; here a piece that would leave neither able to
    finish waits instead, the other body finishes, and then it does. The limit holds throughout."""
    budget = ByteBudget(100)
    log: list[tuple[str, int]] = []

    async def read(name: str) -> None:
        async with budget.body(80) as body:
            for _ in range(8):
                await body.take(10)
                assert budget.held <= 100
                log.append((name, body.held))
                await anyio.sleep(0)  # the other body reads between our pieces

    with anyio.fail_after(2):  # a deadlock would hang here, not pass
        async with anyio.create_task_group() as tg:
            tg.start_soon(read, "a")
            tg.start_soon(read, "b")
    assert [held for name, held in log if name == "a"] == [10, 20, 30, 40, 50, 60, 70, 80]
    assert [held for name, held in log if name == "b"] == [10, 20, 30, 40, 50, 60, 70, 80]
    assert budget.peak <= 100 and budget.held == 0


@pytest.mark.parametrize("seed", range(20))
async def test_many_bodies_of_random_sizes_all_finish_within_the_limit(seed: int) -> None:
    """Twelve bodies with random limits, random true sizes and random piece sizes, read at once in a 1,000-byte
    budget, some given up half-way: every one ends, the budget never holds more than its limit, and it ends
    holding nothing."""
    rng = random.Random(seed)
    budget = ByteBudget(1000)
    finished = 0

    async def read(most: int, size: int, give_up: bool) -> None:
        nonlocal finished
        with anyio.CancelScope() as scope:
            async with budget.body(most) as body:
                while body.held < size:
                    await body.take(min(rng.randint(1, 120), size - body.held))
                    assert budget.held <= budget.limit
                    if give_up and body.held > size // 2:
                        scope.cancel()
                    await anyio.sleep(0)
        finished += 1

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            for _ in range(12):
                most = rng.randint(1, 1000)
                tg.start_soon(read, most, rng.randint(1, most), rng.random() < 0.2)
    assert finished == 12 and budget.held == 0 and budget.peak <= 1000


async def test_a_body_being_read_goes_ahead_of_a_new_one_but_new_ones_keep_their_order() -> None:
    """New bodies are served first come, first served: a small one does not pass a big one waiting, even when room
    for it alone frees up. A body already holding bytes may take its next piece past them both, since finishing
    it is what frees the budget."""
    budget = ByteBudget(100)
    order: list[str] = []
    with anyio.fail_after(2):  # a regression would hang here, not pass
        async with anyio.create_task_group() as tg, budget.body(60) as reading:
            async with budget.body(10) as other:
                await other.take(10)
                await reading.take(30)
                tg.start_soon(_new, budget, "big", 80, order)
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(_new, budget, "small", 5, order)
                await anyio.wait_all_tasks_blocked()
            await anyio.wait_all_tasks_blocked()  # 10 bytes freed: room for the small one, not the big one first
            assert order == [] and budget.held == 30
            await reading.take(30)  # goes ahead of both
            assert order == [] and budget.held == 60
    assert order == ["big", "small"] and budget.held == 0


async def test_a_body_cancelled_while_waiting_for_its_next_piece_frees_what_it_held() -> None:
    """A half-read body that gives up while waiting for room (its client left, its deadline passed) frees the
    bytes it held and its place in the queue: the new body waiting behind it goes on."""
    budget = ByteBudget(100)
    order: list[str] = []
    with anyio.fail_after(2):  # a regression would hang here, not pass
        async with anyio.create_task_group() as tg, budget.body(70) as first:
            await first.take(60)
            scope = anyio.CancelScope()

            async def impatient() -> None:
                with scope:
                    async with budget.body(100) as body:
                        await body.take(20)  # the first can still finish in what is left, then this one
                        order.append("impatient has 20")
                        await body.take(40)  # over the limit: it waits
                        raise AssertionError("granted past the budget")

            tg.start_soon(impatient)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(_new, budget, "new", 30, order)
            await anyio.wait_all_tasks_blocked()
            assert order == ["impatient has 20"] and budget.held == 80
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            assert order == ["impatient has 20", "new"] and budget.held == 60
            await first.take(10)
            assert budget.held == 70
    assert budget.held == 0 and budget.peak == 90


async def _new(budget: ByteBudget, name: str, size: int, order: list[str]) -> None:
    async with budget.hold(size):
        order.append(name)


def gzip_answer(body: object, *, pause: float = 0.0) -> httpx2.Response:
    """A gzip-compressed JSON 200 as it comes off a socket (decoded only as it is read, no Content-Length of the
    decoded size), sent in two halves `pause` seconds apart."""
    compressed = gzip.compress(json.dumps(body).encode())
    half = len(compressed) // 2

    async def chunks() -> AsyncIterator[bytes]:
        yield compressed[:half]
        await anyio.sleep(pause)
        yield compressed[half:]

    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    return httpx2.Response(200, stream=_Stream(chunks()), headers=headers)


SLOW_SECONDS = 3.7


def slow_and_fast(request: httpx2.Request) -> httpx2.Response:
    """Retell: run `tcj_slow` is a 2 KB gzip answer that takes 3.7 s to arrive; every other answer is gzip, at once."""
    if request.method == "POST":
        return gzip_answer({"test_case_batch_job_id": "tcbj_new", "status": "in_progress"})
    job_id = request.url.path.rsplit("/", 1)[-1]
    run = {**RETELL_RUN, "test_case_job_id": job_id, "result_explanation": "x" * 2000}
    return gzip_answer(run, pause=SLOW_SECONDS if job_id == "tcj_slow" else 0.0)


def test_one_slow_compressed_answer_does_not_hold_up_the_others(vendors: FakeVendors) -> None:
    """While a 2 KB gzip answer takes 3.7 s to arrive, three other gzip answers (read at the same time, on virtual
    time) are each answered at once, before it: a body without a declared size holds the bytes it has read, not
    the 10 MiB it might reach. A run POST whose gzip 200 comes meanwhile is answered at once too (its wait for the
    budget counted against its timeout, and a timeout there says the run may have started)."""
    vendors.retell = slow_and_fast
    finished: list[str] = []

    async def calls(client: Client) -> dict[str, tuple[CallToolResult, float]]:
        outcomes: dict[str, tuple[CallToolResult, float]] = {}

        async def call(name: str, tool: str, arguments: dict[str, Any]) -> None:
            outcomes[name] = await timed(client, tool, arguments)
            finished.append(name)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "slow", "get_test_run", {"test_case_job_id": "tcj_slow"})
            await anyio.sleep(0.1)  # its first half has arrived and is being held
            for n in range(3):
                tg.start_soon(call, f"fast_{n}", "get_test_run", {"test_case_job_id": f"tcj_fast_{n}"})
            tg.start_soon(call, "run", "run_batch_test", {"test_case_definition_ids": ["tcd_1"], "llm_id": "llm_1"})
        return outcomes

    outcomes = on_virtual_time(vendors, calls, {"RETELL_TELA_MCP_ALLOW_RUNS": "true"})
    assert all(result.is_error is False for result, _ in outcomes.values()), outcomes
    assert outcomes["run"][0].structured_content == {"test_case_batch_job_id": "tcbj_new", "status": "in_progress"}
    assert SLOW_SECONDS <= outcomes["slow"][1] <= SLOW_SECONDS + 0.01
    assert max(outcomes[name][1] for name in finished if name != "slow") <= 0.001
    assert finished[-1] == "slow"


async def test_a_call_that_reads_page_after_page_never_waits_for_room_it_holds_itself(vendors: FakeVendors) -> None:
    """An answer's body stays in the byte budget until its response is written, but only the call's last body: a
    summary reading five 40 KB pages under a 64 KiB budget gets through all of them (were every page it read kept
    until the end, its third page would wait for ever on the first two)."""
    run = {**RETELL_RUN, "result_explanation": "x" * 39_000}

    def pages(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, {"test_case_batch_job_id": "tcbj_1", "status": "complete", "total_count": 5})
        number = int(request.url.params.get("pagination_key", "p0")[1:])
        more = number < 4
        page = {"items": [run], "has_more": more, "pagination_key": f"p{number + 1}" if more else None}
        return json_response(200, page)

    vendors.retell = pages
    settings = make_settings({"max_inflight_bytes": 64 * 1024, "timeout_seconds": 2})
    with anyio.fail_after(20):
        async with connect(vendors, settings) as client:
            result = await client.call_tool("summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})
    assert result.structured_content is not None and result.structured_content["total_runs"] == 5
    assert result.structured_content["complete"] is True
