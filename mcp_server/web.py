"""Streamable HTTP serving: the SDK's app at /mcp, behind a bearer token, Host/Origin checks and a body limit."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from mcp_server import __version__
from mcp_server.config import ConfigError, is_loopback

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
# MCP requests here are a tool name and an ID or two; anything near this size is not a real client.
MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


async def healthz(request: Request) -> Response:
    """For load balancers: the process is up and serving. Needs no token and touches no vendor."""
    return JSONResponse({"status": "ok", "version": __version__})


class BearerTokenGate:
    """ASGI middleware: every HTTP request except the health check must carry `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    def __repr__(self) -> str:
        return "BearerTokenGate(token=[secure])"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != HEALTH_PATH:
            # RFC 7235: the scheme is case-insensitive ("bearer", "BEARER"); the token is compared exactly.
            scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
            supplied = f"Bearer {token.strip()}".encode() if scheme.lower() == "bearer" else b""
            if not hmac.compare_digest(supplied, self._expected):  # constant time: no timing oracle on the token
                response = JSONResponse(
                    {"error": "unauthorized", "message": "Send the server's token as 'Authorization: Bearer <token>'."},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="retell-tela-mcp"'},
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


class StatelessCancellation:
    """ASGI middleware for `--stateless`: lets a POSTed `notifications/cancelled` reach the request it names.

    Stateless, every POST gets a fresh SDK transport, so a cancellation lands where nothing knows the request and
    the vendor request ran to its end. Here each POSTed request in flight runs in a cancel scope kept under
    (client address, credentials, request ID); a cancellation the SDK accepted (202: same checks as any message)
    cancels the one request that key names, and none when two clients' requests share it (a request ID means
    nothing narrower without a session). The cancelled request's response ends empty, as JSON-RPC asks. A client
    that simply closes its stream (2026-07-28's cancellation over HTTP) needs none of this: the SDK stops that
    request itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._inflight: defaultdict[tuple[str, bytes, str], list[anyio.CancelScope]] = defaultdict(list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != MCP_PATH:
            await self._app(scope, receive, send)
            return
        received, body = await _read_body(receive)
        replay = _replaying(received, receive)
        message = _json_object(body) or {}
        method, params = message.get("method"), message.get("params")
        if method and "id" in message:  # a request: cancellable while it runs
            await self._run_cancellable(self._key(scope, message["id"]), scope, replay, send)
        elif method == "notifications/cancelled" and isinstance(params, dict) and "requestId" in params:
            accepted = _Watch(send)
            await self._app(scope, replay, accepted)
            matching = self._inflight.get(self._key(scope, params["requestId"]), [])
            if accepted.status == 202 and len(matching) == 1:
                matching[0].cancel()
        else:  # other notifications, responses, and what the SDK will refuse
            await self._app(scope, replay, send)

    async def _run_cancellable(self, key: tuple[str, bytes, str], scope: Scope, receive: Receive, send: Send) -> None:
        watched = _Watch(send)
        with anyio.CancelScope() as cancel_scope:
            self._inflight[key].append(cancel_scope)
            try:
                await self._app(scope, receive, watched)
            finally:
                self._inflight[key].remove(cancel_scope)
                if not self._inflight[key]:
                    del self._inflight[key]
        if cancel_scope.cancelled_caught and not watched.finished:
            with contextlib.suppress(OSError):  # the client may have gone already
                if watched.status is None:
                    await send({"type": "http.response.start", "status": 204, "headers": []})
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    def _key(scope: Scope, request_id: Any) -> tuple[str, bytes, str]:
        client = scope.get("client") or ("", 0)
        credentials = hashlib.sha256(Headers(scope=scope).get("authorization", "").encode()).digest()
        return client[0], credentials, json.dumps(request_id)  # 7 and "7" are different IDs


class _Watch:
    """An ASGI `send` that notes the response's status and whether its body has ended."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status: int | None = None
        self.finished = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.finished = True
        await self._send(message)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    """The request's messages up to the end of its body (or past the body limit, when it stops: the SDK answers 413)."""
    received: list[Message] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False) or size > MAX_BODY_BYTES:
            break
    body = b"".join(m.get("body", b"") for m in received) if size <= MAX_BODY_BYTES else b""
    return received, body


def _replaying(received: list[Message], receive: Receive) -> Receive:
    pending = list(received)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth: the SDK answers it
        return None
    return message if isinstance(message, dict) else None


_BUSY_BODY = b'{"error":"busy","message":"Too many open connections; try again shortly."}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


def guarded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the two guards it lacks against slow clients.

    - A connection must finish each request's headers within `header_timeout` seconds of opening, or of its
      first byte after the previous response: else it is closed (uvicorn waits forever; its keep-alive timeout
      only covers a connection that sends nothing after a response).
    - Past `max_connections` open connections, a new one gets 503 and is closed at once (uvicorn's own
      `limit_concurrency` answers only once a request's headers are in, which a slow client never sends).
    """

    class GuardedH11(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                open_ = len(self.connections) - 1
                self.logger.warning("refused a connection: %d open, the limit is %d", open_, max_connections)
                # Answer, end our side, and close a moment later: closing at once, with the client's request
                # unread, would reset the connection and could lose the answer.
                self._refused = True
                transport.write(_BUSY)
                transport.write_eof()
                self.loop.call_later(1.0, transport.close)
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            cycle = self.cycle
            if self._header_timer is None and (cycle is None or cycle.response_complete):
                self._arm()
            super().data_received(data)
            if self.cycle is not cycle:  # a request's headers are complete
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            self.logger.debug("closed a connection whose request headers took over %g s", header_timeout)
            self.transport.close()

    return GuardedH11


def security_settings(
    host: str, allowed_hosts: Sequence[str] = (), allowed_origins: Sequence[str] = ()
) -> TransportSecuritySettings:
    """DNS-rebinding protection: only known Host names, and no browser Origin but the ones allowed."""
    hosts = [*LOOPBACK_HOSTS]
    if host not in ("0.0.0.0", "::", ""):
        hosts += [host, f"{host}:*"] if ":" not in host else [f"[{host}]", f"[{host}]:*"]
    for name in allowed_hosts:
        hosts += [name, f"{name}:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[*LOOPBACK_ORIGINS, *allowed_origins],
    )


def build_http_app(
    server: MCPServer[Any],
    *,
    host: str,
    auth_token: str | None,
    stateless: bool = False,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
) -> ASGIApp:
    """The ASGI app to serve. Raises `ConfigError` for a non-loopback bind without a token."""
    if not is_loopback(host) and not auth_token:
        raise ConfigError(
            f"config error: --host {host}: serving beyond this machine needs a token; "
            "set RETELL_TELA_MCP_AUTH_TOKEN (or --auth-token) and send it as 'Authorization: Bearer <token>'"
        )

    server.custom_route(HEALTH_PATH, methods=["GET"])(healthz)
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=stateless,
        max_request_body_size=MAX_BODY_BYTES,
        transport_security=security_settings(host, allowed_hosts, allowed_origins),
        host=host,
    )
    if stateless:
        app = StatelessCancellation(app)
    return BearerTokenGate(app, auth_token) if auth_token else app
