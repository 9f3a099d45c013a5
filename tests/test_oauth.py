"""OAuth over Streamable HTTP against a real authorization server (oidc-provider on loopback): the protected resource
metadata, which tokens pass, scopes as the tool levels, the SDK client's own OAuth flow, key rotation, `check`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client, MCPError
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from mcp_server.auth import SCOPES
from mcp_server.cli import main
from mcp_server.config import AUTH_TOKEN_ENV_VAR, ENV_VARS, ConfigError, load_settings
from mcp_server.tools import TOOLS
from mcp_server.tools.base import caller
from tests.conftest import RUN_TOOL_NAMES, TOOL_NAMES, FakeVendors, connect, make_settings
from tests.loopback import Reply, loopback_vendor
from tests.oidc import AuthorizationServer, authorization_server, install, signing_key
from tests.test_http import INIT, MCP_HEADERS, free_port, http_server, sse_messages

ISSUER_VAR, RESOURCE_VAR = ENV_VARS["oauth_issuer"], ENV_VARS["oauth_resource"]
ALL_SCOPES = " ".join(SCOPES.values())
EDIT_TOOL_NAMES = [spec.name for spec in TOOLS if spec.level == "edits"]
LEVEL_TOOLS = {"read": TOOL_NAMES, "runs": RUN_TOOL_NAMES, "edits": EDIT_TOOL_NAMES}
JOB = {"test_case_job_id": "tcj_demo_failed"}


@dataclass(frozen=True)
class Served:
    """A running OAuth-protected server: its base URL, and its resource (the tokens' audience)."""

    url: str
    resource: str


def oauth_env(issuer: str, resource: str) -> dict[str, str]:
    return {ISSUER_VAR: issuer, RESOURCE_VAR: resource}


@pytest.fixture(scope="session")
def oidc_dir() -> Path:
    return install()


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    """The signing keys of the module's provider, shared with the 'other issuer' that must still be refused."""
    return {"keys": [signing_key()]}


@pytest.fixture(scope="module")
def idp(oidc_dir: Path, keys: dict[str, Any]) -> Iterator[AuthorizationServer]:
    with authorization_server(oidc_dir, jwks=keys) as server:
        yield server


def serve_oauth(idp: AuthorizationServer, *extra: str, logs: list[str] | None = None) -> Any:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    return http_server(*extra, port=port, env=oauth_env(idp.issuer, resource), logs=logs), resource


@pytest.fixture(scope="module")
def server(idp: AuthorizationServer) -> Iterator[Served]:
    """One OAuth server with every level on (demo data), shared by the tests that only send it requests."""
    running, resource = serve_oauth(idp, "--allow-runs", "--allow-edits")
    with running as url:
        yield Served(url, resource)


@pytest.fixture(scope="module")
def stateless(idp: AuthorizationServer) -> Iterator[Served]:
    running, resource = serve_oauth(idp, "--allow-runs", "--allow-edits", "--stateless")
    with running as url:
        yield Served(url, resource)


def post(url: str, token: str | None, message: dict[str, Any], **headers: str) -> httpx2.Response:
    auth = {"authorization": f"Bearer {token}"} if token else {}
    return httpx2.post(f"{url}/mcp", json=message, headers={**MCP_HEADERS, **auth, **headers}, timeout=30)


def request(method: str, params: dict[str, Any] | None = None, request_id: int = 2) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, **({"params": params} if params else {})}


def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return request("tools/call", {"name": name, "arguments": arguments or {}})


def answer(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text)
    (message,) = sse_messages(response.text) if "data:" in response.text else [response.json()]
    return message


def session(url: str, token: str) -> dict[str, str]:
    """Headers of a freshly opened session (2025-06-18 handshake) for `token`."""
    opened = post(url, token, INIT)
    assert opened.status_code == 200, opened.text
    headers = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    assert post(url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, **headers).status_code == 202
    return headers


def listed(
    url: str, token: str, method: str = "tools/list", key: str = "tools", *, stateless: bool = False
) -> list[str]:
    entries = answer(post(url, token, request(method), **({} if stateless else session(url, token))))["result"][key]
    return [entry.get("name") or entry.get("uriTemplate") or entry["uri"] for entry in entries]


def challenge(response: httpx2.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer ...` answer."""
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_for(idp: AuthorizationServer, resource: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": idp.issuer, "aud": resource, "sub": "mallory", "client_id": "mallory-app", "iat": now,
            "exp": now + 300, "scope": ALL_SCOPES}  # fmt: skip


def signed_by_attacker(idp: AuthorizationServer, resource: str, kid: str) -> str:
    """A token signed by the attacker's own key, which its header carries (`jwk`), under the issuer's `kid`."""
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    return jwt.encode(claims_for(idp, resource), attacker, "RS256", headers={"kid": kid, "jwk": public})


def hs256_with_the_public_key(idp: AuthorizationServer, resource: str, kid: str) -> str:
    """The old algorithm confusion: HMAC keyed with the issuer's (public) RSA key, under its `kid`."""
    public = jwt.algorithms.RSAAlgorithm.from_jwk(idp.public_jwks()["keys"][0])
    assert isinstance(public, rsa.RSAPublicKey)
    secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    body = b64(json.dumps(claims_for(idp, resource)).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def signed_by_the_issuer(
    idp: AuthorizationServer,
    resource: str,
    private: dict[str, Any],
    header: dict[str, Any] | None = None,
    drop: str | None = None,
) -> str:
    """A token signed with the issuer's own private key (as only the issuer could), otherwise good for `resource`:
    with `header` added, or the claim `drop` left out."""
    claims = {name: value for name, value in claims_for(idp, resource).items() if name != drop}
    key = jwt.PyJWK(private).key
    return jwt.encode(claims, key, "RS256", headers={"kid": private["kid"], "typ": "at+jwt", **(header or {})})


def with_header(token: str, **header: Any) -> str:
    """`token` with its header changed and its signature kept."""
    head, body, signature = token.split(".")
    return ".".join([b64(json.dumps({**json.loads(unb64(head)), **header}).encode()), body, signature])


def with_claims(token: str, **claims: Any) -> str:
    """`token` with its claims changed and its signature kept."""
    head, body, signature = token.split(".")
    return ".".join([head, b64(json.dumps({**json.loads(unb64(body)), **claims}).encode()), signature])


def unsigned(token: str) -> str:
    head, body, _ = with_header(token, alg="none").split(".")
    return f"{head}.{body}."


# --- 1. The resource server: metadata, 401s, which tokens pass


def test_protected_resource_metadata_names_the_issuer_the_resource_and_the_scopes(
    idp: AuthorizationServer, server: Served
) -> None:
    """RFC 9728: the metadata, open without a token at the path derived from the resource and at the root, names the
    resource, the issuer and the scopes of the levels served."""
    expected = {
        "resource": server.resource,
        "authorization_servers": [idp.issuer],
        "scopes_supported": list(SCOPES.values()),
        "bearer_methods_supported": ["header"],
        "resource_name": "retell-tela-mcp",
    }
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        response = httpx2.get(f"{server.url}{path}")
        assert response.status_code == 200 and response.json() == expected


def test_the_metadata_offers_only_the_scopes_of_the_levels_served(idp: AuthorizationServer) -> None:
    """A server without `allow_runs` and `allow_edits` offers (and asks for) the read scope alone."""
    running, _ = serve_oauth(idp)
    with running as url:
        metadata = httpx2.get(f"{url}/.well-known/oauth-protected-resource/mcp").json()
        asked = challenge(post(url, None, INIT))["scope"]
    assert metadata["scopes_supported"] == ["retell-tela:read"] and asked == "retell-tela:read"


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_a_request_without_a_token_is_401_pointing_at_the_metadata(server: Served, method: str) -> None:
    """No token: 401 whose WWW-Authenticate names the metadata URL and the scopes to ask for, and no error code
    (RFC 6750 3.1: the request carried no credentials)."""
    body = json.dumps(INIT) if method == "POST" else None
    response = httpx2.request(method, f"{server.url}/mcp", content=body, headers=MCP_HEADERS)
    assert response.status_code == 401
    params = challenge(response)
    assert params == {"resource_metadata": f"{server.url}/.well-known/oauth-protected-resource/mcp",
                      "scope": ALL_SCOPES}  # fmt: skip
    assert httpx2.get(params["resource_metadata"]).json()["resource"] == server.resource


def test_the_health_check_stays_open_under_oauth(server: Served) -> None:
    """Load balancers probe GET /healthz with no token."""
    response = httpx2.get(f"{server.url}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.anyio
async def test_a_token_the_issuer_made_for_this_resource_is_served(idp: AuthorizationServer, server: Served) -> None:
    """The SDK client sending a client-credentials token for this resource lists and calls tools as usual."""
    token = idp.token(server.resource)
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
    ):
        result = await client.call_tool("get_test_run", JOB)
    assert result.is_error is False and result.structured_content is not None


def refused_tokens() -> list[Any]:
    """How to make each token that must fail, from the provider, the server and the provider's private key."""

    def other_audience(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        return idp.token("https://other.example.com/mcp")

    def expired(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        idp.set_clock(-2 * 3600)  # issued two hours ago, for five minutes
        try:
            return idp.token(served.resource)
        finally:
            idp.set_clock(0)

    def not_valid_yet(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        idp.set_clock(3600)
        try:
            return idp.token(served.resource)
        finally:
            idp.set_clock(0)

    def opaque(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        response = idp.http.post("/token", data={"grant_type": "client_credentials", "client_id": "service",
                                                 "client_secret": "service-secret-for-tests-only"})  # fmt: skip
        token: str = response.json()["access_token"]  # no resource asked: the provider makes an opaque token
        assert token.count(".") == 0
        return token

    def scope_raised(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        return with_claims(idp.token(served.resource, "retell-tela:read"), scope=ALL_SCOPES)

    def alg_none(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        return unsigned(idp.token(served.resource))

    def hmac_confusion(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        return hs256_with_the_public_key(idp, served.resource, key["kid"])

    def key_in_the_token(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        return signed_by_attacker(idp, served.resource, key["kid"])

    def another_jwt_type(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        return signed_by_the_issuer(idp, served.resource, key, {"typ": "logout+jwt"})

    def without_expiry(idp: AuthorizationServer, served: Served, key: dict[str, Any]) -> str:
        return signed_by_the_issuer(idp, served.resource, key, drop="exp")

    makers = [
        (other_audience, "was issued for another resource"),
        (expired, "has expired"),
        (not_valid_yet, "is not valid yet"),
        (opaque, "is not a signed JWT"),
        (scope_raised, "signature does not verify"),
        (alg_none, "is not signed with an accepted algorithm"),
        (hmac_confusion, "is not signed with an accepted algorithm"),
        (key_in_the_token, "signature does not verify"),
        (another_jwt_type, "is not an access token"),
        (without_expiry, "lacks a required claim"),
    ]
    return [pytest.param(maker, why, id=maker.__name__) for maker, why in makers]


@pytest.mark.parametrize(("make", "why"), refused_tokens())
def test_tokens_that_must_not_pass_are_401_invalid_token(
    idp: AuthorizationServer, server: Served, keys: dict[str, Any], make: Any, why: str
) -> None:
    """A token for another audience, expired, not valid yet, opaque, with raised scopes (signature kept), unsigned
    (`none`), HMAC-signed with the issuer's public key, signed by a key it carries itself, or signed by the issuer but
    of another JWT type or without `exp`: 401 `invalid_token` naming the metadata, and nothing served."""
    response = post(server.url, make(idp, server, keys["keys"][0]), INIT)
    assert response.status_code == 401, response.text
    params = challenge(response)
    assert params["error"] == "invalid_token" and params["resource_metadata"].endswith("/oauth-protected-resource/mcp")
    assert why in params["error_description"] and why in response.json()["error_description"]
    assert "mcp-session-id" not in response.headers


def test_a_token_from_another_issuer_is_refused_even_when_signed_with_the_same_key(
    oidc_dir: Path, keys: dict[str, Any], server: Served
) -> None:
    """A second provider at another address, holding the very same signing key, issues a token for this resource:
    its `iss` is not the configured issuer, so it is refused."""
    with authorization_server(oidc_dir, jwks=keys) as other:
        response = post(server.url, other.token(server.resource), INIT)
    assert response.status_code == 401 and challenge(response)["error"] == "invalid_token"
    assert "another issuer" in response.json()["error_description"]


def test_rotating_the_signing_key_is_picked_up_without_a_restart_and_the_old_key_is_refused(oidc_dir: Path) -> None:
    """The provider swaps its key for a new one (the old one is no longer published): the next token, signed with the
    new key, is served by the running server, and a token signed with the rotated-out key is refused from then on."""
    with authorization_server(oidc_dir) as idp:
        running, resource = serve_oauth(idp)
        with running as url:
            before = idp.token(resource)
            assert post(url, before, INIT).status_code == 200
            idp.rotate()
            after = idp.token(resource)
            assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
            assert post(url, after, INIT).status_code == 200
            refused = post(url, before, INIT)
            assert refused.status_code == 401 and "does not publish" in refused.json()["error_description"]
            assert idp.stats()["jwks"] == 2  # loaded at the first token, again for the new key: no more


def test_tokens_naming_unknown_keys_do_not_refetch_the_keys_on_every_request(
    idp: AuthorizationServer, server: Served
) -> None:
    """Good tokens are checked against the cached keys (no fetch per request), and a burst of forged tokens naming
    keys nobody published refetches the JWKS at most once: the issuer cannot be flooded through this server."""
    good = idp.token(server.resource)
    assert post(server.url, good, INIT).status_code == 200
    before = idp.stats()["jwks"]
    for _ in range(10):
        assert post(server.url, good, INIT).status_code == 200
    assert idp.stats()["jwks"] == before
    for _ in range(20):
        forged = with_header(good, kid=uuid.uuid4().hex)
        assert post(server.url, forged, INIT).status_code == 401
    assert idp.stats()["jwks"] - before <= 1


def test_an_issuer_whose_keys_cannot_be_loaded_gets_503_not_401() -> None:
    """While the issuer's keys have never loaded (nothing listens at the issuer), a token cannot be judged: 503 with
    Retry-After, so clients wait instead of asking their user to sign in again."""
    issuer = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    now = int(time.time())
    claims = {"iss": issuer, "aud": resource, "sub": "alice", "client_id": "app", "exp": now + 60}
    token = jwt.encode(claims, signing_key_pem(), "RS256")
    with http_server(port=port, env=oauth_env(issuer, resource)) as url:
        response = post(url, token, INIT)
    assert response.status_code == 503 and response.headers["retry-after"] == "10"
    assert response.json()["error"] == "temporarily_unavailable"


def signing_key_pem() -> bytes:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())  # fmt: skip


# --- 1. Start-up and configuration


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`serve --transport http --demo` as a real process, expected to stop at once (30 s at most: else it served)."""
    clean = {k: v for k, v in os.environ.items() if k not in (*ENV_VARS.values(), AUTH_TOKEN_ENV_VAR)}
    command = [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--demo", "--port", str(free_port())]
    return subprocess.run(command, env=clean | env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("given", "missing"), [("oauth_issuer", "oauth_resource"), ("oauth_resource", "oauth_issuer")])
def test_one_oauth_setting_without_the_other_stops_start_up_in_one_line(given: str, missing: str) -> None:
    """OAuth needs the issuer and the resource: either alone stops start-up with one line naming the missing key."""
    done = start({ENV_VARS[given]: "https://example.com/x"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"{given} is set but {missing} is not" in done.stderr and ENV_VARS[missing] in done.stderr


def test_oauth_and_the_static_token_together_stop_start_up_in_one_line() -> None:
    """OAuth replaces the static token: setting both is a mistake, said in one line that shows neither value."""
    env = oauth_env("https://login.example.com", "https://mcp.example.com/mcp")
    done = start({**env, AUTH_TOKEN_ENV_VAR: "tok_0123456789abcdef"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "oauth_issuer and the HTTP auth token" in done.stderr and "tok_0123" not in done.stderr


@pytest.mark.parametrize("key", ["oauth_issuer", "oauth_resource"])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://login.example.com", "plain http://"),
        ("ftp://login.example.com", "absolute https:// URL"),
        ("https://login.example.com/?tenant=1", "query string"),
        ("https://user:pw@login.example.com", "user name or password"),
        ("login.example.com", "absolute https:// URL"),
    ],
)
def test_oauth_urls_must_be_https_or_loopback_http(key: str, value: str, problem: str) -> None:
    """Like base URLs: https://, or http:// only on loopback; no query, fragment or user info. The error is one line
    naming the variable and the key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env={ENV_VARS[key]: value})
    message = str(caught.value)
    assert ENV_VARS[key] in message and key in message and problem in message and "\n" not in message


def test_oauth_urls_are_kept_as_written_for_the_exact_comparisons() -> None:
    """Tokens' `iss` is compared with the issuer as a string (RFC 8414), so a trailing slash stays; loopback http and
    surrounding whitespace are fine."""
    settings = load_settings(
        env={ISSUER_VAR: " https://tenant.example.auth0.com/ ", RESOURCE_VAR: "http://[::1]:8000/mcp"}
    )
    assert (settings.oauth_issuer, settings.oauth_resource) == (
        "https://tenant.example.auth0.com/",
        "http://[::1]:8000/mcp",
    )


def test_off_loopback_oauth_stands_in_for_the_static_token_and_its_host_is_served(idp: AuthorizationServer) -> None:
    """Bound beyond loopback with OAuth and no static token the server starts; the resource URL's host is a Host it
    serves without `--allowed-host`, and any other Host is still refused (421) even with a good token."""
    resource = "https://mcp.example.com/mcp"
    with http_server("--host", "0.0.0.0", env=oauth_env(idp.issuer, resource)) as url:
        ours = httpx2.get(f"{url}/.well-known/oauth-protected-resource/mcp", headers={"host": "mcp.example.com"})
        foreign = post(url, idp.token(resource), INIT, host="evil.example")
        served = post(url, idp.token(resource), INIT, host="MCP.example.com")
    assert ours.status_code == 200 and ours.json()["resource"] == resource
    assert foreign.status_code == 421 and served.status_code == 200


# --- 1. check


def run_check(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, issuer: str) -> tuple[int, str]:
    monkeypatch.setenv(ISSUER_VAR, issuer)
    monkeypatch.setenv(RESOURCE_VAR, "https://mcp.example.com/mcp")
    with pytest.raises(SystemExit) as caught:
        main(["check", "--demo"])
    out, _ = capsys.readouterr()
    assert isinstance(caught.value.code, int)
    return caught.value.code, out


def test_check_shows_the_oauth_settings_and_loads_the_issuers_keys(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, idp: AuthorizationServer
) -> None:
    """`check` lists both OAuth settings with their source, loads the issuer's metadata and JWKS as the server would,
    says how many signing keys it found, and exits 0."""
    code, out = run_check(capsys, monkeypatch, idp.issuer)
    rows = [line.split() for line in out.splitlines()]
    assert ["oauth_issuer", idp.issuer, "env"] in rows
    assert ["oauth_resource", "https://mcp.example.com/mcp", "env"] in rows
    (verdict,) = [line for line in out.splitlines() if line.startswith("oauth ")]
    assert verdict.startswith("oauth   loaded") and f"1 signing key(s) from {idp.issuer}/jwks" in verdict
    assert code == 0


def metadata_without_keys(path: str) -> Reply:
    """An issuer whose metadata is fine but whose JWKS holds only a symmetric key, which is never accepted."""
    if path.endswith("/jwks"):
        return Reply(200, {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]})
    if path == "/.well-known/oauth-authorization-server":
        return Reply(200, {"issuer": ISSUER_HOLDER[0], "jwks_uri": f"{ISSUER_HOLDER[0]}/jwks"})
    return Reply(404, {})


ISSUER_HOLDER: list[str] = [""]


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (None, "could not be reached"),
        (lambda path: Reply(404, {}), "answered HTTP 404"),
        (lambda path: Reply(200, {"issuer": "https://someone.else", "jwks_uri": "https://x/jwks"}), "names"),
        (metadata_without_keys, "no signing key this server can use"),
    ],
    ids=["unreachable", "no-metadata", "another-issuers-metadata", "no-usable-key"],
)
def test_check_fails_when_the_issuers_metadata_or_keys_do_not_load(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, route: Any, problem: str
) -> None:
    """Nothing listening, no metadata, metadata of another issuer, or a JWKS without a usable signing key: `check`
    says so on its `oauth` line and exits 1."""
    if route is None:
        code, out = run_check(capsys, monkeypatch, f"http://127.0.0.1:{free_port()}")
    else:
        with loopback_vendor(route) as fake:
            ISSUER_HOLDER[0] = fake.url
            code, out = run_check(capsys, monkeypatch, fake.url)
    (verdict,) = [line for line in out.splitlines() if line.startswith("oauth ")]
    assert verdict.startswith("oauth   failed") and problem in verdict
    assert code == 1


# --- 2. Scopes are the levels


@pytest.mark.parametrize("mode", ["sessions", "stateless"])
@pytest.mark.parametrize(
    "levels",
    [("read",), ("runs",), ("edits",), ("read", "runs"), ("read", "runs", "edits"), ()],
    ids=lambda levels: "+".join(levels) or "no-scope",
)
def test_tools_list_shows_only_the_tools_of_the_levels_the_token_holds(
    idp: AuthorizationServer, server: Served, stateless: Served, mode: str, levels: tuple[str, ...]
) -> None:
    """On a server with every level on, stateful or stateless, a token sees exactly the tools of its scopes' levels,
    in the usual order; a token with no scope sees none."""
    served = server if mode == "sessions" else stateless
    token = idp.token(served.resource, " ".join(f"retell-tela:{level}" for level in levels) if levels else None)
    expected = [name for level in ("read", "runs", "edits") if level in levels for name in LEVEL_TOOLS[level]]
    assert listed(served.url, token, stateless=mode == "stateless") == expected


def test_a_token_without_the_read_scope_sees_no_prompts_or_resources(idp: AuthorizationServer, server: Served) -> None:
    """Prompts and resources are reads: a token holding only `runs` lists none of them, where a read token lists all."""
    runs, reads = idp.token(server.resource, "retell-tela:runs"), idp.token(server.resource, "retell-tela:read")
    for method, key in [("prompts/list", "prompts"), ("resources/templates/list", "resourceTemplates"),
                        ("resources/list", "resources")]:  # fmt: skip
        assert listed(server.url, runs, method, key) == []
        if key != "resources":  # the views are listed only to clients that declared them
            assert listed(server.url, reads, method, key) != []


def test_a_scope_for_a_level_the_server_does_not_serve_grants_nothing(idp: AuthorizationServer) -> None:
    """The settings stay the upper bound: a token with every scope, on a server without `allow_runs`, sees the read
    tools only, and calling a run tool is the SDK's unknown-tool error, never a run."""
    running, resource = serve_oauth(idp)
    with running as url:
        token = idp.token(resource)
        tools = listed(url, token)
        result = answer(post(url, token, call("run_batch_test", {"agent_id": "agent_demo"}), **session(url, token)))
    assert tools == TOOL_NAMES
    assert "error" in result or result["result"]["isError"] is True


@pytest.mark.parametrize("mode", ["sessions", "stateless"])
@pytest.mark.parametrize(
    ("scope", "tool", "arguments", "needed"),
    [
        ("retell-tela:read", "run_batch_test", {"agent_id": "agent_demo"}, "retell-tela:runs"),
        ("retell-tela:read retell-tela:runs", "draft_agent_version", {"agent_id": "agent_demo"}, "retell-tela:edits"),
        ("retell-tela:runs", "get_test_run", JOB, "retell-tela:read"),
        (None, "get_test_run", JOB, "retell-tela:read"),
    ],
    ids=["read-calls-runs", "runs-calls-edits", "runs-calls-read", "none-calls-read"],
)
def test_calling_a_tool_the_token_does_not_cover_is_403_insufficient_scope(
    idp: AuthorizationServer,
    server: Served,
    stateless: Served,
    mode: str,
    scope: str | None,
    tool: str,
    arguments: dict[str, Any],
    needed: str,
) -> None:
    """Over stateful and stateless HTTP, a tools/call beyond the token's scopes is answered 403 with RFC 6750's
    `insufficient_scope` naming the scope it needs (so a client can ask its user for it), before the tool runs."""
    served = server if mode == "sessions" else stateless
    token = idp.token(served.resource, scope)
    headers = session(served.url, token) if mode == "sessions" else {}
    response = post(served.url, token, call(tool, arguments), **headers)
    assert response.status_code == 403, response.text
    params = challenge(response)
    assert (params["error"], params["scope"]) == ("insufficient_scope", needed)
    assert params["resource_metadata"] == f"{served.url}/.well-known/oauth-protected-resource/mcp"
    assert response.json() == {"error": "insufficient_scope", "scope": needed,
                               "error_description": f"tools/call {tool} needs the scope {needed}."}  # fmt: skip


@pytest.mark.parametrize(
    "message",
    [
        request("prompts/get", {"name": "diagnose_test_run", "arguments": {"test_case_job_id": "tcj_demo_failed"}}),
        request("resources/read", {"uri": "retell://test-runs/tcj_demo_failed"}),
        request(
            "completion/complete",
            {
                "ref": {"type": "ref/prompt", "name": "diagnose_test_run"},
                "argument": {"name": "test_case_job_id", "value": ""},
            },
        ),  # fmt: skip
    ],
    ids=["prompt", "resource", "completion"],
)
def test_prompts_resources_and_completions_need_the_read_scope(
    idp: AuthorizationServer, server: Served, message: dict[str, Any]
) -> None:
    """A prompt, a resource or a completion reads what the read tools read: without `read` it is 403 naming it; with
    it, served."""
    runs, reads = idp.token(server.resource, "retell-tela:runs"), idp.token(server.resource, "retell-tela:read")
    refused = post(server.url, runs, message, **session(server.url, runs))
    assert refused.status_code == 403 and challenge(refused)["scope"] == "retell-tela:read"
    assert "result" in answer(post(server.url, reads, message, **session(server.url, reads)))


def test_with_every_scope_the_tool_list_is_byte_identical_to_the_server_without_oauth(
    idp: AuthorizationServer, server: Served
) -> None:
    """OAuth adds nothing to what clients are shown: the same server's tools/list answer, with OAuth and every scope
    or without OAuth, is the same bytes."""
    token = idp.token(server.resource)
    with_oauth = post(server.url, token, request("tools/list"), **session(server.url, token))
    with http_server("--allow-runs", "--allow-edits") as plain:
        without = post(plain, None, request("tools/list"), **session_without_token(plain))
    assert with_oauth.status_code == without.status_code == 200
    (ours,), (theirs,) = (
        [line for line in r.text.splitlines() if line.startswith("data:")] for r in (with_oauth, without)
    )
    assert ours == theirs


def session_without_token(url: str) -> dict[str, str]:
    opened = httpx2.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS)
    headers = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    httpx2.post(f"{url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                headers={**MCP_HEADERS, **headers})  # fmt: skip
    return headers


def as_token(scopes: list[str], subject: str = "alice", client_id: str = "app") -> Any:
    """Run the next lines as the SDK does for a request that carried an accepted token."""
    return auth_context_var.set(AuthenticatedUser(AccessToken(token="sha256:x", client_id=client_id, scopes=scopes,
                                                              subject=subject)))  # fmt: skip


@pytest.mark.anyio
async def test_inside_the_server_a_token_sees_and_calls_only_its_levels() -> None:
    """The same rule inside the server, where a request reaches it parsed (the in-memory client carries the SDK's
    auth context like HTTP does): a read token lists the read tools, and its call of a run tool is an error, never a
    run; with no token at all, nothing changes."""
    oauth = {"oauth_issuer": "https://idp.example.com", "oauth_resource": "https://mcp.example.com/mcp"}
    settings = make_settings({"allow_runs": True, **oauth})
    async with connect(FakeVendors(), settings) as client:
        untouched = [tool.name for tool in (await client.list_tools()).tools]
    reset = as_token(["retell-tela:read"])
    try:
        async with connect(FakeVendors(), settings) as client:
            seen = [tool.name for tool in (await client.list_tools()).tools]
            with pytest.raises(MCPError, match="lacks the scope retell-tela:runs"):
                await client.call_tool("run_batch_test", {"agent_id": "agent_1"})
    finally:
        auth_context_var.reset(reset)
    assert untouched == TOOL_NAMES + RUN_TOOL_NAMES and seen == TOOL_NAMES


# --- 3. Who did what


def test_caller_names_the_subject_and_the_client_and_escapes_what_could_forge_a_log_line() -> None:
    """`caller()` is `sub=... client_id=...` for the request's token, escapes whitespace and control characters (a
    `sub` cannot add a field or a line to the log), and is None without a token."""
    assert caller() is None
    for (subject, client_id), expected in [
        (("alice", "app"), "sub=alice client_id=app"),
        (("alice", ""), "sub=alice"),
        (("eve\ninjected=1 x", "app"), "sub=eve\\ninjected=1\\x20x client_id=app"),
    ]:
        reset = as_token([], subject, client_id)
        try:
            assert caller() == expected
        finally:
            auth_context_var.reset(reset)


def test_no_token_nor_any_piece_of_one_reaches_a_log_line_or_an_answer(idp: AuthorizationServer) -> None:
    """At DEBUG, through calls, a refused call and refused tokens, no 8 characters of any token the server saw appear
    in its log or its answers; a refusal names who was refused (`sub`, `client_id`) and what was missing."""
    logs: list[str] = []
    running, resource = serve_oauth(idp, "--allow-runs", "--log-level", "DEBUG", logs=logs)
    tokens, answers = [], []
    with running as url:
        good, reader = idp.token(resource), idp.token(resource, "retell-tela:read")
        tokens += [good, reader]
        for token, message in [(good, call("get_test_run", JOB)), (reader, call("run_batch_test", {"agent_id": "a"}))]:
            answers.append(post(url, token, message, **session(url, token)).text)
        for bad in (with_claims(good, scope="x"), unsigned(good), with_header(good, kid="unknown")):
            tokens.append(bad)
            answers.append(post(url, bad, INIT).text)
    text = logs[0] + "".join(answers)
    leaks = {token[i : i + 8] for token in tokens for i in range(len(token) - 7) if token[i : i + 8] in text}
    assert not leaks
    assert (
        "refused tools/call run_batch_test: the token lacks retell-tela:runs (sub=service client_id=service)" in logs[0]
    )


def test_each_write_names_its_caller_at_info_and_each_read_at_debug(idp: AuthorizationServer) -> None:
    """The per-call log line of a write names the token's `sub` and `client_id` at INFO; a read's names it at DEBUG."""
    info: list[str] = []
    running, resource = serve_oauth(idp, "--allow-runs", logs=info)
    with running as url:
        token = idp.token(resource)
        headers = session(url, token)
        run = {"test_case_definition_ids": ["tcd_demo_refund"], "agent_id": "agent_demo_support"}
        post(url, token, call("run_batch_test", run), **headers)
    debug: list[str] = []
    running, resource = serve_oauth(idp, "--log-level", "DEBUG", logs=debug)
    with running as url:
        token = idp.token(resource)
        post(url, token, call("get_test_run", JOB), **session(url, token))
    (write,) = [line for line in info[0].splitlines() if "tool=run_batch_test" in line]
    assert " INFO " in write and "sub=service client_id=service" in write
    assert any("tool=get_test_run" in line and "sub=service" in line for line in debug[0].splitlines())


# --- 4. The SDK client's own OAuth flow


class MemoryStorage:
    """The SDK client's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class User:
    """The person at the browser: follows the authorization URL, signs in as `login`, consents to `grants` (one list
    of scopes per authorization, all asked when None), and hands the redirect back as the client's callback would."""

    REDIRECT = "http://127.0.0.1:9/callback"  # never reached: the redirect is read from the Location header

    def __init__(self, issuer: str, login: str, grants: list[list[str] | None]) -> None:
        self.issuer, self.login, self.grants = issuer, login, grants
        self.asked: list[dict[str, list[str]]] = []  # the scopes each consent screen asked for, by resource
        self.urls: list[str] = []
        self._redirect = ""

    async def authorize(self, authorization_url: str) -> None:
        self.urls.append(authorization_url)
        grant = self.grants[len(self.urls) - 1]
        async with httpx2.AsyncClient(base_url=self.issuer) as browser:  # its own cookie jar, like a browser
            response = await browser.get(authorization_url)
            while not (location := response.headers["location"]).startswith(self.REDIRECT):
                if "/interaction/" not in location:
                    response = await browser.get(location)
                    continue
                prompt = (await browser.get(location)).json()
                if prompt["prompt"] == "login":
                    response = await browser.post(f"{location}/login", json={"login": self.login})
                else:
                    self.asked.append(prompt["details"].get("missingResourceScopes", {}))
                    response = await browser.post(f"{location}/confirm", json={"scopes": grant} if grant else {})
        self._redirect = location

    async def callback(self) -> AuthorizationCodeResult:
        query = {name: values[0] for name, values in parse_qs(urlsplit(self._redirect).query).items()}
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def sdk_oauth(url: str, user: User, storage: MemoryStorage) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(client_name="retell-tela-mcp tests", redirect_uris=[User.REDIRECT],
                                   grant_types=["authorization_code", "refresh_token"])  # fmt: skip
    return OAuthClientProvider(f"{url}/mcp", metadata, storage, user.authorize, user.callback)


@pytest.mark.anyio
async def test_the_sdk_clients_oauth_flow_discovers_registers_authorizes_with_pkce_and_calls_tools(
    idp: AuthorizationServer, server: Served
) -> None:
    """The official client, from nothing but the server's URL: the 401 leads it to the metadata, the metadata to the
    issuer, where it registers itself (dynamic registration) and sends the user to authorize with PKCE; the user signs
    in and consents to reads only. Its token (for this resource) lists the read tools only, and calls them."""
    user, storage = User(idp.issuer, "alice", [["retell-tela:read"]]), MemoryStorage()
    async with (
        httpx2.AsyncClient(auth=sdk_oauth(server.url, user, storage)) as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
    ):
        tools = [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("get_test_run", JOB)
    assert storage.client is not None and storage.client.client_id  # registered at the issuer
    (url,) = user.urls
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{idp.issuer}/auth?") and query["code_challenge_method"] == ["S256"]
    assert query["resource"] == [server.resource]
    assert user.asked == [{server.resource: list(SCOPES.values())}]  # what the metadata offers
    assert storage.tokens is not None and storage.tokens.scope == "retell-tela:read"
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert (claims["sub"], claims["aud"], claims["iss"]) == ("alice", server.resource, idp.issuer)
    assert tools == TOOL_NAMES and result.is_error is False


@pytest.mark.anyio
async def test_a_403_insufficient_scope_leads_the_sdk_client_to_ask_for_the_scope_and_retry(
    idp: AuthorizationServer, server: Served
) -> None:
    """A call beyond the granted scopes (the user first consented to `runs` only, then a read is called): the 403
    names `retell-tela:read`, the SDK client sends the user to authorize again for it (keeping `runs`), and the same
    call then succeeds."""
    user, storage = User(idp.issuer, "alice", [["retell-tela:runs"], None]), MemoryStorage()
    async with (
        httpx2.AsyncClient(auth=sdk_oauth(server.url, user, storage)) as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
    ):
        first = [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("get_test_run", JOB)
        then = [tool.name for tool in (await client.list_tools()).tools]
    assert first == RUN_TOOL_NAMES and len(user.urls) == 2
    assert set(parse_qs(urlsplit(user.urls[1]).query)["scope"][0].split()) >= {"retell-tela:read", "retell-tela:runs"}
    assert storage.tokens is not None and {"retell-tela:read", "retell-tela:runs"} <= set(storage.tokens.scope.split())
    assert result.is_error is False and then == TOOL_NAMES + RUN_TOOL_NAMES + EDIT_TOOL_NAMES
