"""The process-wide budget of body bytes in flight: concurrent large answers take turns instead of piling up."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest

from mcp_server.upstream.budget import ByteBudget
from tests.conftest import RETELL_RUN, FakeVendors, connect, make_settings

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


async def test_a_body_larger_than_the_budget_waits_to_be_alone_then_proceeds() -> None:
    budget = ByteBudget(100)
    async with budget.hold(1000):
        assert budget.held == 100
    assert budget.held == 0
