"""A process-wide budget of vendor body bytes in flight, so concurrent large answers wait their turn instead of
multiplying the server's memory.

A body holds the bytes it has read so far (decoded), from its first piece until it has been parsed; each piece is
counted as it arrives, so a slow body holds what it has, not the most it might reach (a body whose exact size is
known may take it all before reading). Every body says up front the most it can hold (its limit, or its exact
size), and the rules are:

- A piece is granted when, afterwards, the bodies holding bytes could still all finish one after another inside
  the budget, each growing to its most (the banker's rule). So the held bytes never pass the limit, and bodies
  that have started never wait on each other for good: one of them can always go on, and finishing frees its
  bytes. (Granting whatever fits would let two half-read bodies fill the budget and each wait for the other.)
  The price: with unknown sizes, bodies wait while what the others hold leaves no room for the largest to reach
  its most (with the defaults, 10 MiB bodies in 16 MiB: the rest share 6 MiB), not only when the budget is full.
- Pieces are granted first come, first served, except that a body already being read may go ahead of waiting
  ones when its piece keeps that rule: finishing started bodies is what frees the budget. A new body never goes
  ahead of one that is waiting, so a large body is not starved by a stream of small ones.
- A body whose most is more than the whole budget counts as needing all of it: it may start beside bodies that
  can finish first, but it grows past the limit only while it is the one body holding bytes (the one case the
  limit is passed), and bodies that come meanwhile wait until it is done.
- A body that gives up (cancelled while waiting, or done) frees everything it held, and its place in the queue.
- A tool call's last body (`Answer`) goes on holding its bytes after it has been parsed, until the answer has
  been written to the client: the parsed objects and the SDK's serialisation of them live that long.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import anyio


@dataclass(eq=False)
class Body:
    """One body's share of the budget: `held` bytes now, `most` at most (its limit, or its exact size)."""

    budget: ByteBudget
    most: int
    held: int = 0
    kept: bool = False  # by an `Answer`, which frees it later

    async def take(self, size: int) -> None:
        """Hold `size` more bytes, waiting (see the module's rules) until they may be held."""
        await self.budget._take(self, size)

    async def cover(self, total: int) -> None:
        """Hold `total` bytes in all, or `most` if that is less: what it holds already, and the rest taken."""
        await self.take(min(total, self.most) - self.held)


@dataclass(eq=False)
class _Request:
    body: Body
    size: int
    granted: anyio.Event = field(default_factory=anyio.Event)


class ByteBudget:
    """Bytes held by bodies being read and parsed, across all calls; see the module docstring for the rules."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0
        self._bodies: set[Body] = set()  # those holding bytes
        self._waiting: deque[_Request] = deque()

    @asynccontextmanager
    async def body(self, most: int) -> AsyncIterator[Body]:
        """A body about to be read, that will hold at most `most` bytes; all it held is freed on leaving."""
        body = Body(self, most)
        try:
            yield body
        finally:
            if not body.kept:
                self._leave(body)

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """`size` bytes held at once, for as long as the block runs."""
        async with self.body(size) as body:
            await body.take(size)
            yield

    async def _take(self, body: Body, size: int) -> None:
        if size <= 0:
            return
        if (body.held > 0 or not self._waiting) and self._allows(body, size):
            self._grant(body, size)
            return
        request = _Request(body, size)
        self._waiting.append(request)
        try:
            await request.granted.wait()
        except BaseException:  # cancelled (a client gave up, a deadline passed) while waiting
            if not request.granted.is_set():
                self._waiting.remove(request)
                self._serve()  # it may have been holding up those behind it
            raise  # what it was granted (if just now) is freed with the rest of the body, by `body()`

    def _allows(self, body: Body, size: int) -> bool:
        """Whether `body` may hold `size` more bytes now: alone, or within the limit with every body still able to
        finish one after another (each taking what it may still need from what is free, then freeing all)."""
        if self.held == body.held:
            return True
        if self.held + size > self.limit:
            return False
        after = {b: b.held for b in self._bodies}
        after[body] = body.held + size
        free = self.limit - self.held - size
        # Whoever needs least goes first: finishing only ever frees bytes, so if it cannot go, nobody after it can.
        for needed, held in sorted((max(0, min(b.most, self.limit) - held), held) for b, held in after.items()):
            if needed > free:
                return False
            free += held
        return True

    def _grant(self, body: Body, size: int) -> None:
        body.held += size
        self.held += size
        self.peak = max(self.peak, self.held)
        if body.held:
            self._bodies.add(body)

    def _leave(self, body: Body) -> None:
        self.held -= body.held
        body.held = 0
        self._bodies.discard(body)
        self._serve()

    def _serve(self) -> None:
        """Grant what the rules allow, in order: a body already holding bytes may pass a request that must wait;
        a new body may not."""
        blocked = False
        for request in list(self._waiting):
            started = request.body.held > 0
            if (started or not blocked) and self._allows(request.body, request.size):
                self._waiting.remove(request)
                self._grant(request.body, request.size)
                request.granted.set()
            else:
                blocked = True


class Answer:
    """The body one tool call's answer was parsed from, kept in the byte budget past its parse until the answer has
    been written to the client (or the call has ended without one). Only the call's last body is kept: a call that
    reads another (the next page, the next poll, the engine after the run) has moved on from the one before, which
    is freed as the new one starts, so a call never waits for room that it holds itself."""

    def __init__(self) -> None:
        self._kept: Body | None = None

    def __bool__(self) -> bool:
        return self._kept is not None

    def keep(self, body: Body) -> None:
        self.release()
        body.kept = True
        self._kept = body

    def release(self) -> None:
        if self._kept is not None:
            self._kept.budget._leave(self._kept)
            self._kept = None


# The answer the current tool call is building, when a server middleware opened one: a ContextVar because the SDK
# calls the tool, and the tool the request path several calls down, with no way to pass it along.
current_answer: ContextVar[Answer | None] = ContextVar("current_answer", default=None)
