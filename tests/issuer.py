"""A home-made OAuth issuer on 127.0.0.1, for the sign-in tests that need what no real provider does on demand: sign
any token (any header, any claims, as only the issuer could), and misbehave as told (withdraw its keys, hang, drip a
JWKS a byte at a time, fail). RFC 8414 metadata at `/.well-known/oauth-authorization-server`, the JWKS at `/jwks`;
it counts the requests it was sent. `IssuerTransport` plays the same issuer in process, on the event loop's clock,
for tests on virtual time."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import anyio
import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

SCOPE = "retell-tela:read retell-tela:runs retell-tela:edits"
Keys = Literal["published", "withdrawn", "encryption-only", "huge"]
Behaviour = Literal["answer", "hang", "drip", "fail", "redirect"]
HANG_SECONDS = 30.0  # how long a hanging endpoint holds a request (the audit's slow metadata endpoint)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """The issuer's own RSA key: its public JWK, and JWS of any header and payload signed with it."""

    def __init__(self, kid: str = "issuer-key-1") -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        self.public = {**public, "kid": kid, "alg": "RS256", "use": "sig"}

    def sign(self, header: object, payload: object) -> str:
        """A compact JWS of these JSON values (objects or not), signed RS256 with the issuer's key."""
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
        algorithm = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256)
        return f"{signing_input}.{b64(algorithm.sign(signing_input.encode(), self.private))}"

    def claims(self, issuer: str, resource: str, **changes: Any) -> dict[str, Any]:
        """Good RFC 9068 claims for `resource`, with `changes` (a value of None drops that claim)."""
        now = int(time.time())
        claims = {"iss": issuer, "aud": resource, "sub": "alice", "client_id": "app", "iat": now, "exp": now + 300,
                  "scope": SCOPE, "jti": f"{time.monotonic_ns()}"}  # fmt: skip
        return {name: value for name, value in (claims | changes).items() if value is not None}

    def token(self, issuer: str, resource: str, header: dict[str, Any] | None = None, **changes: Any) -> str:
        """A token the issuer signed for `resource`: good unless `header` or `changes` (claims) say otherwise."""
        return self.sign({"alg": "RS256", "typ": "at+jwt", "kid": self.kid, **(header or {})},
                         self.claims(issuer, resource, **changes))  # fmt: skip

    def jwks(self, keys: Keys) -> bytes:
        if keys == "withdrawn":
            return b'{"keys": []}'
        if keys == "encryption-only":  # what is left once the signing keys are withdrawn: nothing to verify with
            return json.dumps(
                {"keys": [{**self.public, "use": "enc"}, {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}
            ).encode()
        if keys == "huge":
            return json.dumps({"keys": [self.public], "padding": "x" * 600_000}).encode()
        return json.dumps({"keys": [self.public]}).encode()


class Issuer(Signer):
    """The issuer over real HTTP: `metadata` and `jwks` say how each endpoint behaves now, `keys` what the JWKS holds;
    `hits` counts requests by endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.metadata: Behaviour = "answer"
        self.jwks_behaviour: Behaviour = "answer"
        self.keys: Keys = "published"
        self.hits: Counter[str] = Counter()
        self.stopping = threading.Event()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path == "/.well-known/oauth-authorization-server":
                    issuer.hits["metadata"] += 1
                    body = json.dumps({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}).encode()
                    self.answer(issuer.metadata, body)
                elif self.path == "/jwks":
                    issuer.hits["jwks"] += 1
                    self.answer(issuer.jwks_behaviour, issuer.jwks(issuer.keys))
                else:
                    self.send_error(404)

            def answer(self, behaviour: Behaviour, body: bytes) -> None:
                if behaviour == "hang":
                    issuer.stopping.wait(HANG_SECONDS)
                    return
                if behaviour == "fail":
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                if behaviour == "drip":  # no length: the body ends when the connection does, a byte at a time
                    self.end_headers()
                    for byte in body:
                        if issuer.stopping.wait(0.2):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    return
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def good(self, resource: str, header: dict[str, Any] | None = None, **changes: Any) -> str:
        return self.token(self.url, resource, header, **changes)


@contextmanager
def home_made_issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    thread = threading.Thread(target=issuer.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        issuer.stopping.set()
        issuer.httpd.shutdown()
        issuer.httpd.server_close()


class IssuerTransport(Signer):
    """The same issuer in process (`https://issuer.example`), as an httpx2 transport: every wait is an `anyio.sleep`,
    so on trio's MockClock an hour-long hang costs nothing, yet every deadline sees it."""

    URL = "https://issuer.example"

    def __init__(self, resource: str = "https://mcp.example.com/mcp") -> None:
        super().__init__()
        self.resource = resource
        self.jwks_uri = f"{self.URL}/jwks"  # what the metadata names
        self.metadata: Behaviour = "answer"
        self.jwks_behaviour: Behaviour = "answer"
        self.keys: Keys = "published"
        self.hits: Counter[str] = Counter()
        self.transport = httpx2.MockTransport(self._handle)

    def good(self, header: dict[str, Any] | None = None, **changes: Any) -> str:
        return self.token(self.URL, self.resource, header, **changes)

    async def _handle(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/.well-known/oauth-authorization-server":
            self.hits["metadata"] += 1
            body = json.dumps({"issuer": self.URL, "jwks_uri": self.jwks_uri}).encode()
            return await self._answer(self.metadata, body)
        if request.url.path == "/jwks":
            self.hits["jwks"] += 1
            return await self._answer(self.jwks_behaviour, self.jwks(self.keys))
        return httpx2.Response(404)

    async def _answer(self, behaviour: Behaviour, body: bytes) -> httpx2.Response:
        if behaviour == "hang":
            await anyio.sleep(HANG_SECONDS)
            raise httpx2.ReadTimeout("the issuer never answered")
        if behaviour == "fail":
            return httpx2.Response(500)
        if behaviour == "redirect":
            return httpx2.Response(302, headers={"location": f"{self.URL}/jwks"})
        if behaviour == "drip":

            async def dripping() -> AsyncIterator[bytes]:
                for byte in body:
                    await anyio.sleep(1)
                    yield bytes([byte])

            return httpx2.Response(200, content=dripping())
        return httpx2.Response(200, content=body, headers={"content-type": "application/json"})
