"""Each vendor's connection pool, against a real HTTP/1.1 vendor on 127.0.0.1: connections are kept and reused,
one the vendor closed while idle is noticed before it is used, and `vendor_max_connections` caps them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx2
import pytest
from mcp import Client

from mcp_server.server import build_server
from mcp_server.upstream.pool import SocketOnce, VendorPool
from tests.conftest import RETELL_RUN, make_settings

pytestmark = pytest.mark.anyio


@dataclass
class KeepAliveVendor:
    """Answers every GET with a run over HTTP/1.1 keep-alive; `slow` paths take 0.2 s; with `close_idle`, it
    closes each connection 50 ms after answering on it, as servers do with idle connections."""

    close_idle: bool = False
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                if "slow" in path:
                    await asyncio.sleep(0.2)
                body = json.dumps({**RETELL_RUN, "test_case_job_id": path.rsplit("/", 1)[1]}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
                writer.write(b"content-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                if self.close_idle:
                    await asyncio.sleep(0.05)
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@asynccontextmanager
async def served(vendor: KeepAliveVendor, flags: dict[str, int] | None = None) -> AsyncIterator[Client]:
    server = await asyncio.start_server(vendor.handle, "127.0.0.1", 0)
    vendor.port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{vendor.port}"
    settings = make_settings(flags, RETELL_BASE_URL=url, RETELL_TELA_MCP_MAX_RETRIES="0")
    try:
        async with Client(build_server(settings)) as client:  # no transport given: the real pool
            yield client
    finally:
        server.close()


async def call(client: Client, job_id: str) -> None:
    result = await client.call_tool("get_test_run", {"test_case_job_id": job_id})
    assert result.is_error is False, result.content


async def test_connections_are_kept_and_reused() -> None:
    """Five calls one after another travel on one connection."""
    vendor = KeepAliveVendor()
    async with served(vendor) as client:
        for n in range(5):
            await call(client, f"job_{n}")
    assert vendor.connections == 1


async def test_a_connection_the_vendor_closed_while_idle_is_not_used_again() -> None:
    """The vendor closes each connection soon after answering: the next call notices (the idle socket reads as
    closed) and opens a new one instead of failing on the dead one, with no retry to hide a failure."""
    vendor = KeepAliveVendor(close_idle=True)
    async with served(vendor) as client:
        for n in range(4):
            await call(client, f"job_{n}")
            await anyio.sleep(0.15)
    assert vendor.connections == 4


async def test_vendor_max_connections_caps_the_connections_a_burst_opens() -> None:
    """Ten concurrent slow calls with `vendor_max_connections` 3: never more than 3 connections to the vendor,
    and every call is answered."""
    vendor = KeepAliveVendor()
    async with served(vendor, {"vendor_max_connections": 3}) as client, anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(call, client, f"slow_{n}")
    assert vendor.most_open == 3 and vendor.connections == 3


async def test_the_environments_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """With HTTP_PROXY set, requests go through the proxy, as httpx does for a client that makes its own pool (the
    vendor's address here is closed: only the proxy can answer)."""
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n", 1)[0])
        body = json.dumps(RETELL_RUN).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    settings = make_settings(RETELL_BASE_URL="http://localhost:9", RETELL_TELA_MCP_MAX_RETRIES="0")
    try:
        async with Client(build_server(settings)) as client:
            await call(client, RETELL_RUN["test_case_job_id"])
    finally:
        server.close()
    assert seen == [f"GET http://localhost:9/get-test-run/{RETELL_RUN['test_case_job_id']} HTTP/1.1".encode()]


async def test_the_pool_runs_on_streams_that_look_their_socket_up_once() -> None:
    """`VendorPool` puts httpcore2's pool, with our network backend, where httpx2's transport keeps its own (the one
    private attribute we rely on): if httpx2 moved it, this fails rather than the optimisation silently lapsing."""
    vendor = KeepAliveVendor()
    server = await asyncio.start_server(vendor.handle, "127.0.0.1", 0)
    pool = VendorPool(httpx2.create_ssl_context(), httpx2.Limits(max_connections=2))
    try:
        async with httpx2.AsyncClient(transport=pool) as client:
            response = await client.get(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/get-test-run/1")
            assert response.status_code == 200
            connections = pool._pool.connections  # the pool httpx2's request path used
            assert [type(c._connection._network_stream) for c in connections] == [SocketOnce]
    finally:
        server.close()
