"""Each vendor's connection pool: httpx's own, capped by a setting, and spared a costly check that httpcore makes
on every idle connection for every request. Imported at a vendor's first request (`http.vendor_pool`): httpcore2
takes ~60 ms to import, which start-up does not need."""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2


class VendorPool(httpx2.AsyncHTTPTransport):
    """httpx's transport with its pool built on `SocketOnce` streams, within `limits`."""

    def __init__(self, ssl_context: ssl.SSLContext, limits: httpx2.Limits) -> None:
        super().__init__(verify=ssl_context, limits=limits)
        # The same pool httpx2 builds (its `_pool`, which its request path uses), given our network backend:
        # httpx2 takes no backend of its own, and httpcore2's pool does, publicly.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=SocketOnceBackend(),
        )


class SocketOnceBackend(httpcore2.AsyncNetworkBackend):
    """anyio's backend (httpcore's own on asyncio and trio), handing out `SocketOnce` streams."""

    def __init__(self) -> None:
        self._backend = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return SocketOnce(await self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return SocketOnce(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class SocketOnce(httpcore2.AsyncNetworkStream):
    """A connection's stream that looks its socket up once. Whenever a request joins or leaves the pool, httpcore
    asks every idle connection whether its socket is readable (the vendor closed it); anyio answers each time by
    building a dict of every socket attribute, a `getpeername` system call included. In a burst of 200 calls that
    was 11 % of the server's CPU (cProfile, `bench/run.py`'s burst); now it is one `poll` per idle connection."""

    def __init__(self, stream: httpcore2.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = stream.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return SocketOnce(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return readable(self._socket)
        if info == "socket":
            return self._socket
        return self._stream.get_extra_info(info)


def readable(sock: socket.socket | None) -> bool:
    """Whether reading `sock` would not block: for an idle connection, that the vendor closed it (or sent what it
    should not have). A socket that is gone counts as readable, so its connection is dropped."""
    if sock is None or sock.fileno() < 0:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])  # Windows has no poll
