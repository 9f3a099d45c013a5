"""Streamable HTTP serving: the SDK's app at /mcp, behind a bearer token (static, or OAuth access tokens with
per-level scopes), Host/Origin checks, CORS for the browser pages the operator lists, and a body limit; and uvicorn's
access lines without query strings, where a client may have put a token."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections import deque
from collections.abc import Collection, Sequence
from typing import Any

import h11
import pydantic_core
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from mcp_server import __version__
from mcp_server.auth import (
    RETRY_SECONDS,
    SCOPES,
    Grant,
    OAuthResource,
    Refusal,
    access_token,
    bearer_token,
    granted_levels,
    needed_level,
)
from mcp_server.config import ConfigError, is_loopback
from mcp_server.tools.base import describe

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
# MCP requests here are a tool name and an ID or two; anything near this size is not a real client.
MAX_BODY_BYTES = 1024 * 1024
# What a page's requests to /mcp may send and read: Streamable HTTP's session and protocol headers, and the challenge
# that names the metadata (RFC 9728), so a browser client can sign in from a 401.
CORS_ALLOWED_METHODS = "GET, POST, DELETE"
CORS_ALLOWED_HEADERS = "authorization, content-type, accept, mcp-protocol-version, mcp-session-id, last-event-id"
CORS_EXPOSED_HEADERS = "mcp-session-id, mcp-protocol-version, www-authenticate, retry-after"
CORS_MAX_AGE_SECONDS = 600

logger = logging.getLogger(__name__)


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


def _challenge(oauth: OAuthResource, **params: str) -> str:
    """A `WWW-Authenticate: Bearer ...` value (RFC 6750; RFC 9728's `resource_metadata`) with these parameters."""
    params = {"resource_metadata": oauth.metadata_url, **params}
    return "Bearer " + ", ".join(f'{name}="{value}"' for name, value in params.items())


class OAuthGate:
    """ASGI middleware: every HTTP request but the health check and the protected resource metadata must carry an
    access token that `oauth`'s verifier accepts. No token or a bad one: 401 whose `WWW-Authenticate` names the
    metadata and the scopes to ask for; 503 while the issuer's keys cannot be loaded. An accepted token becomes the
    request's user (`scope["user"]`, as the SDK's own auth middleware sets it), which binds a session to it and
    which `get_access_token()` returns inside the server."""

    def __init__(self, app: ASGIApp, oauth: OAuthResource) -> None:
        self._app = app
        self._oauth = oauth
        self._open = {HEALTH_PATH, *oauth.metadata_paths}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with self._oauth.verifier.keys as keys:  # holds the background loads of the keys
                keys.prefetch()
                await self._app(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] in self._open:
            await self._app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope).get("authorization", ""))
        verdict = await self._oauth.verifier.verify(token) if token is not None else None
        if not isinstance(verdict, Grant):
            await self._refuse(verdict)(scope, receive, send)
            return
        scope["user"] = AuthenticatedUser(access_token(verdict))
        scope["auth"] = AuthCredentials(sorted(verdict.scopes))
        await self._app(scope, receive, send)

    def _refuse(self, refusal: Refusal | None) -> Response:
        scopes = " ".join(self._oauth.scopes_supported)
        if refusal is None:
            description = f"Send an access token from {self._oauth.issuer} as 'Authorization: Bearer <token>'."
            headers = {"WWW-Authenticate": _challenge(self._oauth, scope=scopes)}
            return JSONResponse({"error": "unauthorized", "error_description": description}, 401, headers)
        logger.info("refused an access token: %s", refusal.description)
        if refusal.status == 503:
            headers = {"Retry-After": f"{RETRY_SECONDS:.0f}"}  # when the keys are tried again
        else:
            challenge = {"error": refusal.error, "error_description": refusal.description, "scope": scopes}
            headers = {"WWW-Authenticate": _challenge(self._oauth, **challenge)}
        return JSONResponse({"error": refusal.error, "error_description": refusal.description}, refusal.status, headers)


class ScopeGate:
    """ASGI middleware under OAuth, once the body is in: a JSON-RPC request that needs a level the token's scopes
    do not grant (a tool call of a run tool without `retell-tela:runs`, a prompt without `retell-tela:read`) is
    answered 403 `insufficient_scope` naming the scope it needs (RFC 6750), before the SDK sees it, so a client can
    ask its user for more. A body that is not JSON-RPC goes on to the SDK, which says what is wrong with it."""

    def __init__(self, app: ASGIApp, oauth: OAuthResource) -> None:
        self._app = app
        self._oauth = oauth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] != "http" or scope["method"] != "POST" or user is None:
            await self._app(scope, receive, send)
            return
        received, body = await _take_body(receive)  # what BodyFirst already holds: no waiting here
        granted = granted_levels(user.scopes)
        for request in _json_rpc_requests(body):
            needed = needed_level(request.get("method"), request.get("params"))
            if needed is not None and needed not in granted:
                method = request["method"]
                what = f"{method} {request['params']['name']}" if method == "tools/call" else method
                token = user.access_token
                logger.info(
                    "refused %s: the token lacks %s (%s)",
                    what,
                    SCOPES[needed],
                    describe(token.subject, token.client_id),
                )
                await self._insufficient(what, SCOPES[needed])(scope, receive, send)
                return
        await self._app(scope, _replaying(received, receive), send)

    def _insufficient(self, what: str, needed: str) -> Response:
        description = f"{what} needs the scope {needed}."
        challenge = _challenge(self._oauth, error="insufficient_scope", scope=needed, error_description=description)
        body = {"error": "insufficient_scope", "error_description": description, "scope": needed}
        return JSONResponse(body, 403, {"WWW-Authenticate": challenge})


def _json_rpc_requests(body: bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a body, read by the parser the SDK uses; none if it is not JSON."""
    try:
        document = pydantic_core.from_json(body)
    except ValueError:
        return []
    messages = document if isinstance(document, list) else [document]
    return [message for message in messages if isinstance(message, dict)]


class BodyFirst:
    """ASGI middleware: reads each request's body before the SDK sees it, and drops a request whose client goes
    before the body ends (as one cut off by the request timeout does): there is no one left to answer, and the SDK
    would log it as an error with a traceback. Past the size limit it stops reading and hands on what it has, for
    the SDK's 413."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        received, _ = await _take_body(receive)
        if received and received[-1]["type"] == "http.disconnect":
            return  # the client went before its body ended: nobody to answer
        await self._app(scope, _replaying(received, receive), send)


async def _take_body(receive: Receive) -> tuple[deque[Message], bytes]:
    """A request's messages up to the end of its body (or its client's disconnect, or just past the size limit, where
    the SDK answers 413), and the body they carry."""
    received: deque[Message] = deque()
    body = b""
    while True:
        message = await receive()
        received.append(message)
        body += message.get("body", b"")
        if message["type"] != "http.request" or not message.get("more_body", False) or len(body) > MAX_BODY_BYTES:
            return received, body


def _replaying(received: deque[Message], receive: Receive) -> Receive:
    """A `receive` that hands back what was already read, then reads on."""

    async def replay() -> Message:
        return received.popleft() if received else await receive()

    return replay


_BUSY_BODY = b'{"error":"busy","message":"Too many open connections; try again shortly."}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


def guarded_protocol(request_timeout: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the two guards it lacks against slow clients.

    - Each request must arrive whole, headers and body, within `request_timeout` seconds of its start: the
      connection's opening for its first request; for a later one its first byte, or the end of the previous
      response if it was sent (pipelined) before that. Else the connection is closed. The clock stops once the body
      is in, so only the time the client takes to send counts, never the time the answer takes. (uvicorn waits for
      ever; its keep-alive timeout only covers a connection that sends nothing after a response.)
    - Past `max_connections` open connections, a new one gets 503 and is closed at once (uvicorn's own
      `limit_concurrency` answers only once a request's headers are in, which a slow client never sends).
    """

    class GuardedH11(H11Protocol):
        _request_timer: asyncio.TimerHandle | None = None
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
            self._start_clock()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            # IDLE: between requests or inside one's headers (bytes of a request pipelined behind a response still
            # in progress leave h11 in DONE, unread, and are timed from that response's end instead).
            if self.conn.their_state is h11.IDLE:
                self._start_clock()
            super().data_received(data)
            self._stop_clock_once_received()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # A pipelined request is parsed only now; an idle connection (nothing buffered) is uvicorn's keep-alive.
            if self.conn.their_state is h11.SEND_BODY or (
                self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]
            ):
                self._start_clock()
            self._stop_clock_once_received()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_clock()
            super().connection_lost(exc)

        def _start_clock(self) -> None:
            if self._request_timer is None:  # a request's clock starts once, at its start
                self._request_timer = self.loop.call_later(request_timeout, self._request_too_slow)

        def _stop_clock_once_received(self) -> None:
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # the body is in (or the connection is over)
                self._stop_clock()

        def _stop_clock(self) -> None:
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def _request_too_slow(self) -> None:
            self._request_timer = None
            self.logger.debug("closed a connection whose request took over %g s to arrive", request_timeout)
            self.transport.close()

    return GuardedH11


# RFC 3986 authority without userinfo: a reg-name or a bracketed IPv6 literal, then an optional port.
_AUTHORITY = re.compile(r"(?P<name>\[[0-9a-f:.]+\]|[^\s:/?#@\[\]\\]+)(?::(?P<port>[0-9]{1,5}|\*))?")
_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<authority>.+)")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ANY = -1  # an entry without a port (Host) or with `:*` (Origin): every port matches


def _authority(text: str, *, wildcard: bool = False) -> tuple[str, int | None] | None:
    """`name[:port]` as (lower-case name, port or None), or None if it is not one; `:*` only with `wildcard`."""
    match = _AUTHORITY.fullmatch(text.lower())
    if match is None:
        return None
    port = match["port"]
    if port == "*":
        return (match["name"], _ANY) if wildcard else None
    if port is not None and not 0 < int(port) <= 65535:
        return None
    return match["name"], int(port) if port is not None else None


def _origin(text: str, *, wildcard: bool = False) -> tuple[str, str, int] | None:
    """`scheme://name[:port]` as (scheme, name, port), the scheme's default port filled in; None if not one."""
    match = _ORIGIN.fullmatch(text.lower())
    authority = _authority(match["authority"], wildcard=wildcard) if match else None
    if match is None or authority is None:
        return None
    name, port = authority
    return match["scheme"], name, _DEFAULT_PORTS[match["scheme"]] if port is None else port


class HostOriginGuard:
    """ASGI middleware against DNS rebinding, outermost, so it answers before any token is looked at: every request
    but the health check must name a Host we serve (else 421) and, when a browser sends an Origin, come from a page we
    trust (else 403), except on the `public_paths` (the protected resource metadata, which any page may read).

    Names compare case-insensitively (RFC 9110: hosts and schemes are). A Host is ours if its name is loopback
    (`localhost`, 127.0.0.0/8, `[::1]`) or the bound address, with any port or none, or an `--allowed-host`, with
    any port unless the entry names one. An Origin is trusted if it is loopback over http or https, any port or
    none, or an `--allowed-origin` or a `cors_origins` entry (its port, the scheme's default if absent, or any with
    `:*`). A name is compared whole, so `localhost.evil.com` and `127.0.0.1.nip.io` are foreign.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        allowed_hosts: Sequence[str],
        allowed_origins: Sequence[str],
        public_paths: Collection[str] = (),
    ) -> None:
        self._app = app
        self._public = frozenset(public_paths)
        self._hosts: set[tuple[str, int]] = set()
        if not is_loopback(host) and host not in ("0.0.0.0", "::", ""):
            self._hosts.add((f"[{host.lower()}]" if ":" in host else host.lower(), _ANY))
        for entry in allowed_hosts:
            authority = _authority(entry)
            if authority is None:
                raise ConfigError(f"config error: --allowed-host {entry!r}: give a name such as mcp.example.internal")
            name, port = authority
            self._hosts.add((name, _ANY if port is None else port))
        self._origins: set[tuple[str, str, int]] = set()
        for entry in allowed_origins:
            origin = _origin(entry, wildcard=True)
            if origin is None:
                raise ConfigError(
                    f"config error: --allowed-origin {entry!r}: give an origin such as https://app.example.com"
                )
            self._origins.add(origin)

    def _host_allowed(self, value: str) -> bool:
        authority = _authority(value)
        if authority is None:
            return False
        name, port = authority
        return is_loopback(name) or (name, _ANY) in self._hosts or (name, port) in self._hosts

    def _origin_allowed(self, value: str) -> bool:
        origin = _origin(value)
        if origin is None:
            return False
        scheme, name, port = origin
        return is_loopback(name) or (scheme, name, _ANY) in self._origins or origin in self._origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != HEALTH_PATH:
            headers = Headers(scope=scope)
            host, origin = headers.get("host", ""), headers.get("origin")
            refusal = None
            if not self._host_allowed(host):
                logger.warning("refused a request for Host %r: not served here (see --allowed-host)", host[:200])
                refusal = JSONResponse(
                    {"error": "misdirected_request", "message": "This server does not serve that Host name."}, 421
                )
            elif origin is not None and scope["path"] not in self._public and not self._origin_allowed(origin):
                logger.warning("refused a request from Origin %r (see --allowed-origin, cors_origins)", origin[:200])
                refusal = JSONResponse({"error": "forbidden", "message": "Requests from this Origin are refused."}, 403)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self._app(scope, receive, send)


class CorsGate:
    """ASGI middleware for browser pages (CORS), inside the Host/Origin guard and outside the token gates: a preflight
    carries no token, so it is answered here.

    The protected resource metadata (`public_paths`) is public: any page may read it (`*`), preflight included.
    `/mcp` answers only pages of the operator's `origins` (`cors_origins`): their preflights, and every answer to
    their requests, 401s included (a page's MCP client reads the challenge to find where to sign in). Other origins
    get no CORS headers, so their pages cannot read an answer. Origins compare as the guard compares them (scheme
    and name case-insensitively, the scheme's default port filled in)."""

    def __init__(self, app: ASGIApp, origins: Sequence[str], public_paths: Collection[str] = ()) -> None:
        self._app = app
        self._origins = {parsed for parsed in map(_origin, origins) if parsed is not None}
        self._public = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if scope["path"] in self._public:
            allowed = {"access-control-allow-origin": "*"}
            if preflight:
                asked = headers.get("access-control-request-headers", "")
                allowed |= {"access-control-allow-methods": "GET", "access-control-max-age": str(CORS_MAX_AGE_SECONDS)}
                allowed |= {"access-control-allow-headers": asked} if _HEADER_NAMES.fullmatch(asked) else {}
                await Response(status_code=204, headers=allowed)(scope, receive, send)
                return
        elif scope["path"] == MCP_PATH and origin is not None and _origin(origin) in self._origins:
            allowed = {"access-control-allow-origin": origin, "vary": "Origin"}
            if preflight:
                allowed |= {"access-control-allow-methods": CORS_ALLOWED_METHODS,
                            "access-control-allow-headers": CORS_ALLOWED_HEADERS,
                            "access-control-max-age": str(CORS_MAX_AGE_SECONDS)}  # fmt: skip
                await Response(status_code=204, headers=allowed)(scope, receive, send)
                return
            allowed["access-control-expose-headers"] = CORS_EXPOSED_HEADERS
        else:
            await self._app(scope, receive, send)
            return
        await self._app(scope, receive, _with_headers(send, allowed))


_HEADER_NAMES = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*")


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    """A `send` that adds `extra` to the response's headers (replacing any of the same names)."""
    names = {name.encode() for name in extra}
    added = [(name.encode(), value.encode("latin-1")) for name, value in extra.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [(name, value) for name, value in message.get("headers", []) if name.lower() not in names]
            message = {**message, "headers": [*kept, *added]}
        await send(message)

    return sending


class AccessLogFilter(logging.Filter):
    """uvicorn's access lines (`client - "METHOD path HTTP/1.1" status`) with the path alone, never its query string:
    a client may put a credential there (`?access_token=`, which this server never reads), and whatever is in the
    query would otherwise reach the log whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].partition("?")[0], *args[3:])
        return True


def build_http_app(
    server: MCPServer[Any],
    *,
    host: str,
    auth_token: str | None,
    stateless: bool = False,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    cors_origins: Sequence[str] = (),
    oauth: OAuthResource | None = None,
) -> ASGIApp:
    """The ASGI app to serve: behind the static `auth_token`, or OAuth access tokens (`oauth`), or on loopback
    neither. Every request meets the Host/Origin guard first (a `cors_origins` entry is an allowed Origin too, so a
    page the operator lists works end to end), then CORS, then the token gate. Raises `ConfigError` for a
    non-loopback bind without a token or OAuth."""
    if oauth is not None and auth_token:
        raise ConfigError("config error: OAuth (oauth_issuer) and a static token are both set: use one")
    origins = [*allowed_origins, *cors_origins]
    if oauth is not None:
        app = _oauth_app(server, host=host, stateless=stateless, oauth=oauth)
        app = CorsGate(app, cors_origins, oauth.metadata_paths)
        return HostOriginGuard(app, host, [*allowed_hosts, oauth.host], origins, oauth.metadata_paths)
    if not is_loopback(host) and not auth_token:
        raise ConfigError(
            f"config error: --host {host}: serving beyond this machine needs a token; "
            "set RETELL_TELA_MCP_AUTH_TOKEN (or --auth-token) and send it as 'Authorization: Bearer <token>'"
        )
    app = BodyFirst(_sdk_app(server, host, stateless))
    app = CorsGate(BearerTokenGate(app, auth_token) if auth_token else app, cors_origins)
    return HostOriginGuard(app, host, allowed_hosts, origins)


def _sdk_app(server: MCPServer[Any], host: str, stateless: bool) -> ASGIApp:
    server.custom_route(HEALTH_PATH, methods=["GET"])(healthz)
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=stateless,
        max_request_body_size=MAX_BODY_BYTES,
        # The SDK's own Host/Origin check matches case-sensitively and only `name:port`: ours replaces it. (Off, it
        # still refuses a POST that is not JSON.)
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host=host,
    )


def _oauth_app(server: MCPServer[Any], *, host: str, stateless: bool, oauth: OAuthResource) -> ASGIApp:
    """The app as an OAuth protected resource: the metadata (RFC 9728) at its well-known paths, open like the health
    check; every other request needs an accepted token, and each JSON-RPC request the scope of its level. (The
    resource URL's host is a name this server is reached by: `build_http_app` serves it without `--allowed-host`.)"""

    async def protected_resource_metadata(request: Request) -> Response:
        return JSONResponse(oauth.metadata(), headers={"Cache-Control": "public, max-age=3600"})

    for path in dict.fromkeys(oauth.metadata_paths):
        server.custom_route(path, methods=["GET"])(protected_resource_metadata)
    app: ASGIApp = ScopeGate(AuthContextMiddleware(_sdk_app(server, host, stateless)), oauth)
    return OAuthGate(BodyFirst(app), oauth)
