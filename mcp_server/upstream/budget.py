"""A process-wide budget of vendor body bytes in flight, so concurrent large answers wait their turn instead of
multiplying the server's memory."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class ByteBudget:
    """Bytes reserved by bodies being read and parsed; a reservation waits (first come, first served) until it fits.
    A body larger than the whole budget is reserved as the whole budget: it waits to be alone, then proceeds."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0
        self._waiting: deque[tuple[int, anyio.Event]] = deque()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        size = min(size, self.limit)
        await self._acquire(size)
        try:
            yield
        finally:
            self._release(size)

    async def _acquire(self, size: int) -> None:
        if not self._waiting and self.held + size <= self.limit:
            self._take(size)
            return
        turn = (size, anyio.Event())
        self._waiting.append(turn)
        try:
            await turn[1].wait()
        except BaseException:  # cancelled (a client gave up, a deadline passed) while waiting
            if turn[1].is_set():
                self._release(size)  # granted just as it was cancelled: give it back
            else:
                self._waiting.remove(turn)
                self._grant()  # it may have been blocking smaller reservations behind it
            raise

    def _take(self, size: int) -> None:
        self.held += size
        self.peak = max(self.peak, self.held)

    def _release(self, size: int) -> None:
        self.held -= size
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.held + self._waiting[0][0] <= self.limit:
            size, granted = self._waiting.popleft()
            self._take(size)
            granted.set()
