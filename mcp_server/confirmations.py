"""One yes, one write: each write confirmation answered through protocol 2026-07-28's round trip is used once.

There the question comes back as a sealed `requestState` plus the client's answer. The SDK's boundary
(`mcp/server/request_state.py`) checks the seal, the expiry and the binding to the tool and its arguments, but not
whether the same sealed state was sent before, so one accepted answer could be sent again and rerun the write. The
plaintext behind the seal is the same for every question about the same write; the sealed token is not (a fresh
nonce each time), so the token is what identifies one confirmation. `NoteSealedState` reads it off the wire before
the boundary replaces it, and the write claims it once, atomically, in a `UsedConfirmations` store: this process's
memory, or Redis (`request_state_store`) where replicas share `request_state_key` and so take each other's answers.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from mcp_server.upstream.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("mcp_server.confirmations")

# The SDK's boundary takes a state sealed up to this far in its own clock's future (its `_FUTURE_SKEW`): a claim
# outlives the state's lifetime by as much, so a replica whose clock lags the one that sealed it still finds the
# claim for as long as it would accept the state.
CLOCK_SKEW_SECONDS = 60.0
# A store that does not answer within this time counts as unreachable: the write is refused, never sent unchecked.
STORE_TIMEOUT_SECONDS = 5.0
REDIS_PREFIX = "retell-tela-mcp:used-confirmation:"


class StoreUnreachable(Exception):
    """Raised when the store of used confirmations cannot say whether one was used: the write must not be sent."""


class UsedConfirmations(Protocol):
    async def claim(self, sealed: str) -> bool:
        """Mark the confirmation whose sealed state has digest `sealed` as used: True the first time, False after.
        Raises `StoreUnreachable` when the store cannot answer."""
        ...


class UsedInMemory:
    """This process's used confirmations, each kept `lifetime` seconds (all alike, so they expire in the order they
    were claimed), the longest a sealed state is accepted."""

    def __init__(self, lifetime: float = 600.0 + CLOCK_SKEW_SECONDS, clock: Clock = SYSTEM_CLOCK) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._used: OrderedDict[str, float] = OrderedDict()  # digest -> when it may be forgotten

    async def claim(self, sealed: str) -> bool:
        now = self._clock.now()
        while self._used and next(iter(self._used.values())) <= now:
            self._used.popitem(last=False)
        if sealed in self._used:
            return False
        self._used[sealed] = now + self._lifetime
        return True


class UsedInRedis:
    """Used confirmations shared by replicas: `SET key NX PX lifetime`, which only the first of any number of
    concurrent claims, on any replica, wins."""

    def __init__(self, client: Redis, lifetime: float) -> None:
        self._client = client
        self._lifetime_ms = int(lifetime * 1000)

    async def claim(self, sealed: str) -> bool:
        try:
            first = await self._client.set(REDIS_PREFIX + sealed, b"1", nx=True, px=self._lifetime_ms)
        except Exception as error:  # whatever fails, the write is refused: nothing may let it through unchecked
            logger.warning("request_state_store cannot be reached (%s: %s): write refused", type(error).__name__, error)
            raise StoreUnreachable from None
        return bool(first)


@asynccontextmanager
async def open_used_confirmations(
    url: str | None, lifetime: float, *, memory: UsedInMemory, shown: str = ""
) -> AsyncIterator[UsedConfirmations]:
    """The store for a server's life: `memory` without a Redis URL, else one Redis client (no connection is made
    until the first claim, so start-up never waits for Redis), closed on exit. `shown` is the URL as logs may show
    it (no password)."""
    if url is None:
        yield memory
        return
    # Imported here: redis costs start-up ~0.3 s, and only replicas sharing confirmations use it.
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = Redis.from_url(
        url,
        socket_timeout=STORE_TIMEOUT_SECONDS,
        socket_connect_timeout=STORE_TIMEOUT_SECONDS,
        # No resend: a SET whose answer was lost may have claimed the confirmation, and a resend would then call the
        # one real use a second one. The write is refused instead, and the user can be asked again.
        retry=Retry(NoBackoff(), 0),
    )
    logger.info("write confirmations are used once across replicas: kept in Redis at %s", shown)
    try:
        yield UsedInRedis(client, lifetime)
    finally:
        await client.aclose()


def digest(sealed_state: str) -> str:
    return hashlib.sha256(sealed_state.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(kw_only=True)
class SealedRound(ServerRequestContext[Any, Any]):
    """A tools/call round that came with a sealed `requestState`: `sealed` is the digest of that state as it was
    sent (the SDK's boundary hands the tool the plaintext instead, and copies this context with `replace`, so the
    digest travels on to the tool with the request itself)."""

    sealed: str


class NoteSealedState:
    """Server middleware, placed before the SDK's request-state boundary (the only place the sealed form is seen):
    a tools/call carrying a `requestState` goes on as a `SealedRound`. What the boundary then refuses never reaches
    a tool, so only a state the server sealed can be claimed."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        state = (ctx.params or {}).get("requestState") if ctx.method == "tools/call" else None
        if not isinstance(state, str):
            return await call_next(ctx)
        copied = {field.name: getattr(ctx, field.name) for field in fields(ctx) if field.init}
        return await call_next(SealedRound(**copied, sealed=digest(state)))


def sealed_digest(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The digest of the sealed state this tools/call round came with, or None (none came, or nothing noted it)."""
    return ctx.sealed if isinstance(ctx, SealedRound) else None
