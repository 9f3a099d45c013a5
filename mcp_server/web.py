"""Streamable HTTP serving: the SDK's app at /mcp, behind a bearer token, Host/Origin checks and a body limit."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

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
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=stateless,
        max_request_body_size=MAX_BODY_BYTES,
        transport_security=security_settings(host, allowed_hosts, allowed_origins),
        host=host,
    )
    return BearerTokenGate(app, auth_token) if auth_token else app
