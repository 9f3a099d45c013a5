"""Both vendors opened together: what the server's lifespan (and `check`) hold for the life of the process."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx2

from mcp_server.config import Settings, VendorSettings
from mcp_server.errors import Provider
from mcp_server.redaction import Redactor
from mcp_server.retell.client import RetellClient
from mcp_server.tela.client import TelaClient
from mcp_server.upstream.budget import ByteBudget
from mcp_server.upstream.cache import ResponseCache
from mcp_server.upstream.clock import SYSTEM_CLOCK, Clock
from mcp_server.upstream.http import RequestPolicy, VendorHTTP, open_client


@dataclass(frozen=True)
class Upstreams:
    """What the lifespan yields: one client per vendor, each holding its own shared HTTP connection pool."""

    retell: RetellClient
    tela: TelaClient


@asynccontextmanager
async def open_upstreams(
    settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None, clock: Clock = SYSTEM_CLOCK
) -> AsyncIterator[Upstreams]:
    """Open the vendors' HTTP clients (no network I/O until the first call); close them on exit."""
    policy = RequestPolicy(
        settings.timeout_seconds,
        settings.max_retries,
        settings.max_response_bytes,
        max_connections=settings.vendor_max_connections,
    )
    redact = Redactor(settings.secrets())
    caching = settings.cache_ttl_seconds > 0  # 0 turns every cache off
    # One cache for both vendors, so cache_max_entries and cache_max_bytes bound the whole process.
    cache = ResponseCache(settings.cache_max_entries, settings.cache_max_bytes) if caching else None
    budget = ByteBudget(settings.max_inflight_bytes)  # one for both vendors: it bounds the process
    tls = functools.cache(httpx2.create_ssl_context)  # one trust store for both vendors, loaded at first need
    async with AsyncExitStack() as stack:
        clients: dict[Provider, httpx2.AsyncClient] = {}
        vendors: tuple[tuple[Provider, VendorSettings], ...] = (("retell", settings.retell), ("tela", settings.tela))
        for provider, vendor in vendors:
            if vendor.configured:
                clients[provider] = await stack.enter_async_context(open_client(vendor, policy, transport, tls))
        paths = {
            provider: VendorHTTP(provider, client, policy, redact, cache=cache, clock=clock, budget=budget)
            for provider, client in clients.items()
        }
        yield Upstreams(
            retell=RetellClient(
                paths.get("retell"),
                final_ttl=settings.cache_ttl_seconds,
                unfinished_ttl=settings.cache_ttl_unfinished_seconds if caching else 0.0,
            ),
            tela=TelaClient(paths.get("tela"), ttl=settings.cache_ttl_tela_seconds if caching else 0.0),
        )
