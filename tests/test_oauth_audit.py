"""Sign-in against a skeptical audit (issue 24, points 11 to 16), over real `serve --transport http` processes and a
home-made issuer on 127.0.0.1 (`tests.issuer`), which signs whatever token a test needs and misbehaves on demand:
an issuer that hangs or withdraws its keys, malformed tokens, credentials in a query string, one principal using
another's session ID, claims as RFC 9068 has them, the Host check and CORS."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import PromptReference

from mcp_server.auth import FETCH_DEADLINE_SECONDS, Grant, IssuerKeys, Refusal, TokenVerifier
from mcp_server.cli import main
from mcp_server.config import AUTH_TOKEN_ENV_VAR, CONFIG_ENV_VAR, ENV_VARS
from tests.conftest import RUN_TOOL_NAMES, TOOL_NAMES
from tests.issuer import Issuer, IssuerTransport, home_made_issuer
from tests.test_http import INIT, MCP_HEADERS, free_port, http_server
from tests.test_oauth import answer, call, challenge, request

APP = "https://app.example.com"  # the page origin the operator lists in `cors_origins`
# The new settings' variables, as SPEC's configuration table names them.
CORS_VAR, STALE_VAR = "RETELL_TELA_MCP_CORS_ORIGINS", "RETELL_TELA_MCP_OAUTH_KEYS_MAX_STALE_SECONDS"
JOB = {"test_case_job_id": "tcj_demo_failed"}
DIAGNOSE = PromptReference(type="ref/prompt", name="diagnose_test_run")


@dataclass(frozen=True)
class Served:
    url: str
    resource: str


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """One well-behaved issuer, shared by the tests that only have it sign tokens."""
    with home_made_issuer() as running:
        yield running


def serve(issuer: Issuer, *extra: str, env: dict[str, str] | None = None, logs: list[str] | None = None) -> Any:
    """`serve --transport http --demo` as an OAuth resource of `issuer`: where it will be, and the running server's
    context manager (see `tests.test_http.http_server`)."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    oauth = {ENV_VARS["oauth_issuer"]: issuer.url, ENV_VARS["oauth_resource"]: resource, **(env or {})}
    return Served(f"http://127.0.0.1:{port}", resource), http_server(*extra, port=port, env=oauth, logs=logs)


@pytest.fixture(scope="module")
def server(issuer: Issuer) -> Iterator[Served]:
    """One server with every level on, listing `APP` in `cors_origins` (and no `--allowed-origin`)."""
    served, running = serve(issuer, "--allow-runs", "--allow-edits", env={CORS_VAR: APP})
    with running:
        yield served


def post(served: Served, token: str | None, message: dict[str, Any], timeout: float = 30, **headers: str) -> Any:
    auth = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx2.post(f"{served.url}/mcp", json=message, headers={**MCP_HEADERS, **auth, **headers}, timeout=timeout)


def session(served: Served, token: str) -> dict[str, str]:
    opened = post(served, token, INIT)
    assert opened.status_code == 200, opened.text
    headers = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    assert post(served, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, **headers).status_code == 202
    return headers


def timed_post(served: Served, token: str, timeout: float) -> tuple[int | str, float]:
    """The status of an `initialize` with `token`, or "timeout", and the seconds it took."""
    started = time.monotonic()
    try:
        status: int | str = post(served, token, INIT, timeout=timeout).status_code
    except httpx2.TimeoutException:
        status = "timeout"
    return status, time.monotonic() - started


def until(predicate: Any, seconds: float) -> Any:
    """Call `predicate` every 0.1 s until it returns something true (returned), or `seconds` pass (the last value)."""
    deadline = time.monotonic() + seconds
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


# --- 11. A slow or failing issuer never stalls requests whose key is held


def test_a_hanging_issuer_never_stalls_requests_whose_key_is_held() -> None:
    """The audit's case, on a real server: keys loaded, then the issuer's metadata endpoint hangs (30 s) and five junk
    tokens naming an unknown `kid` arrive at once. They share one refetch, cut at its deadline, then 401. Valid tokens
    sent while it hangs, and the six after it failed, are each answered at once (they took 10, 20, 30 s before: each
    waited for a load of its own, one after the other)."""
    with home_made_issuer() as issuer:
        served, running = serve(issuer)
        with running:
            assert post(served, issuer.good(served.resource), INIT).status_code == 200
            issuer.metadata = "hang"
            loads_before = issuer.hits["metadata"]
            junk: list[tuple[int | str, float]] = []

            def send_junk(forged: str) -> None:
                junk.append(timed_post(served, forged, 30))

            forgeries = [issuer.good(served.resource, {"kid": f"unknown-{n}"}) for n in range(5)]
            senders = [threading.Thread(target=send_junk, args=(forged,)) for forged in forgeries]
            for sender in senders:
                sender.start()
            during = [timed_post(served, issuer.good(served.resource), 5) for _ in range(3)]
            for sender in senders:
                sender.join(40)
            after = [timed_post(served, issuer.good(served.resource), 5) for _ in range(6)]
            loads = issuer.hits["metadata"] - loads_before
            print(f"valid while the issuer hangs: {during}; after the refetch failed: {after}; junk: {junk}")
    assert [status for status, _ in during + after] == [200] * 9
    assert max(took for _, took in during + after) < 2.0  # client-side set-up included, on a busy machine
    assert [status for status, _ in junk] == [401] * 5
    assert max(took for _, took in junk) < FETCH_DEADLINE_SECONDS + 2
    assert loads == 1  # five junk tokens, nine valid ones: one load


def test_check_gives_up_on_a_dripping_jwks_at_its_deadline() -> None:
    """A JWKS sent a byte every 0.2 s (each read well inside any per-read timeout) cannot hold a load open: `check`
    (a real process) reports the JWKS URL as not answering within the deadline, in about that time, and exits 1."""
    with home_made_issuer() as dripping:
        dripping.jwks_behaviour = "drip"
        started = time.monotonic()
        try:
            done = start_command("check", {ENV_VARS["oauth_issuer"]: dripping.url,
                                           ENV_VARS["oauth_resource"]: "https://mcp.example.com/mcp"},
                                 timeout=FETCH_DEADLINE_SECONDS + 10)  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail("check was still reading the dripping JWKS")
        took = time.monotonic() - started
    (verdict,) = [line for line in done.stdout.splitlines() if line.startswith("oauth ")]
    assert f"{dripping.url}/jwks did not answer within {FETCH_DEADLINE_SECONDS:g} s" in verdict
    assert done.returncode == 1 and took < FETCH_DEADLINE_SECONDS + 5


def start_command(command: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`retell-tela-mcp <command> --demo` as a real process, in a clean environment plus `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in (*ENV_VARS.values(), AUTH_TOKEN_ENV_VAR, CONFIG_ENV_VAR)}
    arguments = [sys.executable, "-m", "mcp_server", *command.split(), "--demo"]
    return subprocess.run(arguments, env=clean | env, capture_output=True, text=True, timeout=timeout)


# --- 12. Withdrawn keys stop working


@pytest.mark.parametrize("keys", ["withdrawn", "encryption-only"])
def test_keys_the_issuer_withdraws_stop_working_at_the_next_refresh(keys: Any) -> None:
    """With `oauth_keys_max_stale_seconds` 2 (so refreshed every second), an issuer that starts publishing
    `{"keys": []}` (or only an encryption key and a symmetric one) has withdrawn its key: within a few seconds the
    token signed with it is refused 401, and stays refused."""
    with home_made_issuer() as issuer:
        served, running = serve(issuer, env={STALE_VAR: "2"})
        with running:
            token = issuer.good(served.resource)
            assert post(served, token, INIT).status_code == 200
            issuer.keys = keys
            refused = until(lambda: (r := post(served, token, INIT)).status_code == 401 and r, 6)
            again = post(served, token, INIT)
    assert refused and "a key the issuer does not publish" in refused.json()["error_description"]
    assert again.status_code == 401


def test_past_max_stale_an_unreachable_issuer_is_503_with_a_clear_message() -> None:
    """With `oauth_keys_max_stale_seconds` 2, an issuer that fails every load from then on: the keys loaded are used
    until they are 2 s old, then every token is refused 503 `temporarily_unavailable` saying the keys are too old
    and the issuer cannot be reached, with `Retry-After`; never a 401 that would send the user to sign in again."""
    with home_made_issuer() as issuer:
        served, running = serve(issuer, env={STALE_VAR: "2"})
        with running:
            token = issuer.good(served.resource)
            assert post(served, token, INIT).status_code == 200
            issuer.metadata = "fail"
            unavailable = until(lambda: (r := post(served, token, INIT)).status_code != 200 and r, 6)
    assert unavailable and unavailable.status_code == 503, unavailable
    assert unavailable.headers["retry-after"] == "10"
    body = unavailable.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"] == (
        "The authorization server's signing keys are over 2 s old and it cannot be reached to load them again; "
        "try again shortly."
    )


# --- 13. Any malformed token is 401 invalid_token, never a 500


MALFORMED_HEADERS: list[Any] = [
    {"alg": ["RS256"]},
    {"alg": {"RS256": True}},
    {"alg": None},
    {"alg": 256},
    {"kid": 7},
    {"kid": ["issuer-key-1"]},
    {"kid": {"id": "issuer-key-1"}},
    {"kid": None, "typ": ["at+jwt"]},
    {"crit": "exp"},
    {"crit": ["unknown-extension"], "unknown-extension": 1},
    {"b64": False},
]
NOT_OBJECTS: list[Any] = [["RS256"], "RS256", 256, None, True]


def malformed_tokens(issuer: Issuer, resource: str) -> list[str]:
    good = {"alg": "RS256", "typ": "at+jwt", "kid": issuer.kid}
    claims = issuer.claims(issuer.url, resource)
    tokens = [issuer.sign({**good, **header}, claims) for header in MALFORMED_HEADERS]
    tokens += [issuer.sign(header, claims) for header in NOT_OBJECTS]
    tokens += [issuer.sign(good, payload) for payload in NOT_OBJECTS]
    return tokens + ["a.b.c", "e30.e30.", "..", "x" * 2000]


def test_malformed_tokens_are_401_invalid_token_never_a_500(issuer: Issuer, server: Served) -> None:
    """`alg` as a list, an object, null or a number; `kid` of every JSON type; a header or claims that are not JSON
    objects; bad `crit` or `b64`: each is 401 `invalid_token` with its challenge, and the server logs no traceback
    (the fixture's exit checks its whole log)."""
    for token in malformed_tokens(issuer, server.resource):
        response = post(server, token, INIT)
        assert response.status_code == 401, (token[:80], response.status_code, response.text[:200])
        assert challenge(response)["error"] == "invalid_token"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HEADER_NAMES = ("alg", "kid", "typ", "crit", "b64", "jwk", "jku", "x5u", "x5c", "cty", "zip", "enc")
CLAIM_NAMES = ("iss", "aud", "sub", "client_id", "azp", "exp", "nbf", "iat", "scope", "scp", "jti")
PROPERTY_ISSUER = IssuerTransport()


def overrides(names: tuple[str, ...], values: dict[str, Any]) -> Any:
    """An object of the given names set to arbitrary JSON (or, sometimes, to what a good token has)."""
    return st.dictionaries(st.sampled_from(names), st.one_of(JSON, *map(st.just, values.values())), max_size=5)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.one_of(JSON, overrides(HEADER_NAMES, {"alg": "RS256", "kid": PROPERTY_ISSUER.kid, "typ": "at+jwt"})),
    claims=st.one_of(JSON, overrides(CLAIM_NAMES, PROPERTY_ISSUER.claims(PROPERTY_ISSUER.URL, "https://r/mcp"))),
    merge=st.booleans(),
)
def test_any_jose_header_and_claims_give_a_grant_or_a_401_never_an_exception(
    header: Any, claims: Any, merge: bool
) -> None:
    """Property: a token signed by the issuer whose header and claims are arbitrary JSON (or a good token's with
    arbitrary values over any of its names) is accepted or refused 401 `invalid_token`: never an exception, never
    another status. A token accepted is one whose claims are RFC 9068's, with their types."""
    issuer = PROPERTY_ISSUER
    good_header = {"alg": "RS256", "typ": "at+jwt", "kid": issuer.kid}
    good_claims = issuer.claims(issuer.URL, "https://r/mcp")
    if merge and isinstance(header, dict):
        header = good_header | header
    if merge and isinstance(claims, dict):
        claims = good_claims | claims
    token = issuer.sign(header, claims)

    async def verify() -> Grant | Refusal:
        async with IssuerKeys(issuer.URL, transport=issuer.transport) as keys:
            return await TokenVerifier(issuer.URL, "https://r/mcp", keys).verify(token)

    verdict = anyio.run(verify)
    if isinstance(verdict, Refusal):
        assert (verdict.status, verdict.error) == (401, "invalid_token"), verdict
        assert '"' not in verdict.description and "\n" not in verdict.description
    else:
        assert isinstance(claims, dict) and isinstance(claims["sub"], str) and isinstance(claims["client_id"], str)
        assert type(claims["exp"]) in (int, float) and claims["exp"] > time.time() - 120


# --- 14. No credential in any log line


def test_no_credential_from_a_query_a_header_or_a_cookie_reaches_any_log_line(issuer: Issuer) -> None:
    """A DEBUG run that was sent good and bad tokens in `?access_token=` (on /mcp, the metadata, the health check, a
    404), in `Authorization` (served calls, refusals, a foreign Host) and in cookies: no 8 characters of any of them
    appear in any log line, the access lines included (which still name each request's method and path)."""
    logs: list[str] = []
    served, running = serve(issuer, "--allow-runs", "--log-level", "DEBUG", logs=logs)
    with running:
        good = issuer.good(served.resource)
        tokens = [good, issuer.good(served.resource, {"kid": "unknown"}), issuer.good(served.resource, scope="x")]
        tokens += [issuer.good(served.resource, sub="bob"), good[:-20] + "A" * 20]
        for token in tokens:
            for path in ("/mcp", "/healthz", "/.well-known/oauth-protected-resource/mcp", "/nowhere"):
                httpx2.get(f"{served.url}{path}?access_token={token}&state=x", headers={"accept": "text/event-stream"})
            httpx2.post(f"{served.url}/mcp?access_token={token}", json=INIT, headers=MCP_HEADERS)
            post(served, None, INIT, cookie=f"access_token={token}; session={token}")
            post(served, token, INIT, host="evil.example")
            post(served, token, INIT)
        headers = session(served, good)
        post(served, good, call("get_test_run", JOB), **headers)
        post(served, good, call("run_batch_test", {"agent_id": "agent_demo"}), **headers, cookie=f"t={good}")
    (log,) = logs
    leaks = {token[i : i + 8] for token in tokens for i in range(len(token) - 7) if token[i : i + 8] in log}
    assert not leaks, [line for line in log.splitlines() if any(leak in line for leak in leaks)][:3]
    assert '"GET /mcp HTTP/1.1" 401' in log and '"POST /mcp HTTP/1.1" 200' in log
    assert '"GET /healthz HTTP/1.1" 200' in log and "access_token" not in log


# --- 15. Completions belong to the caller


@pytest.mark.anyio
async def test_another_principal_presenting_a_session_id_neither_reads_nor_extends_its_completions(
    issuer: Issuer, server: Served
) -> None:
    """Alice's session was shown a run; Bob (another `sub`) sends protocol 2026-07-28 requests carrying her
    `Mcp-Session-Id`: completion offers him nothing of hers, and the run he fetches is not offered to her."""
    alice = issuer.good(server.resource, sub="alice")
    bob = issuer.good(server.resource, sub="bob")
    headers = session(server, alice)
    post(server, alice, call("get_test_run", JOB), **headers)
    complete = request("completion/complete", {"ref": {"type": "ref/prompt", "name": "diagnose_test_run"},
                                               "argument": {"name": "test_case_job_id", "value": ""}})  # fmt: skip
    hers = answer(post(server, alice, complete, **headers))["result"]["completion"]["values"]
    async with (
        httpx2.AsyncClient(
            headers={"authorization": f"Bearer {bob}", "mcp-session-id": headers["mcp-session-id"]}
        ) as h,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=h), mode="2026-07-28") as his,
    ):
        offered_to_him = (await his.complete(DIAGNOSE, {"name": "test_case_job_id", "value": ""})).completion.values
        await his.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_passed"})
        his_own = (await his.complete(DIAGNOSE, {"name": "test_case_job_id", "value": ""})).completion.values
    hers_after = answer(post(server, alice, complete, **headers))["result"]["completion"]["values"]
    assert hers == ["tcj_demo_failed"] and hers_after == ["tcj_demo_failed"]
    assert offered_to_him == [] and his_own == ["tcj_demo_passed"]


# --- 16. Claims as RFC 9068 has them; the Host check first; CORS


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"client_id": None, "azp": "app"}, "lacks a required claim (client_id)"),
        ({"sub": None}, "lacks a required claim (sub)"),
        ({"sub": ""}, "sub is not a string"),
        ({"client_id": 7}, "client_id is not a string"),
        ({"exp": str(int(time.time()) + 300)}, "exp is not a time within 100 years"),
        ({"exp": True}, "exp is not a time within 100 years"),
        ({"exp": int(time.time()) + 101 * 365 * 86400}, "exp is not a time within 100 years"),
        ({"exp": 1e300}, "exp is not a time within 100 years"),
        ({"exp": 10**400}, "exp is not a time within 100 years"),
        ({"nbf": "0"}, "nbf is not a time within 100 years"),
        ({"iat": [1]}, "iat is not a time within 100 years"),
        ({"iat": -(10**10)}, "iat is not a time within 100 years"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_claims_must_be_as_rfc_9068_has_them(issuer: Issuer, server: Served, changes: dict[str, Any], why: str) -> None:
    """`sub` and `client_id` are required non-empty strings (`azp` does not stand in for `client_id`); `exp`, `nbf`
    and `iat` are JSON numbers (not strings, not booleans) within 100 years of now. Anything else is 401."""
    response = post(server, issuer.good(server.resource, **changes), INIT)
    assert response.status_code == 401 and challenge(response)["error"] == "invalid_token"
    assert why in response.json()["error_description"]


def test_a_fractional_exp_is_a_json_number_like_any_other(issuer: Issuer, server: Served) -> None:
    """RFC 7519's NumericDate may be fractional: such a token is served."""
    assert post(server, issuer.good(server.resource, exp=time.time() + 300.5), INIT).status_code == 200


@pytest.mark.parametrize(
    ("scope", "levels"),
    [
        ("x\x1fretell-tela:edits", []),
        ("retell-tela:read\tretell-tela:runs", []),
        ("retell-tela:read\nretell-tela:runs", []),
        ("retell-tela:read\u00a0retell-tela:runs", []),
        ("retell-tela:read  retell-tela:runs ", ["read", "runs"]),
        (None, []),
    ],
    ids=["unit-separator", "tab", "newline", "no-break-space", "spaces", "none"],
)
def test_scopes_split_on_ascii_spaces_only(
    issuer: Issuer, server: Served, scope: str | None, levels: list[str]
) -> None:
    """RFC 6749 3.3: scopes are separated by spaces, and a tab, a newline or a control character is part of a scope:
    `x\\x1fretell-tela:edits` is one unknown scope, granting nothing."""
    token = issuer.good(server.resource, scope=scope)  # None: no scope claim at all
    tools = answer(post(server, token, request("tools/list"), **session(server, token)))["result"]["tools"]
    expected = {"read": TOOL_NAMES, "runs": RUN_TOOL_NAMES}
    assert [tool["name"] for tool in tools] == [name for level in levels for name in expected[level]]


def test_the_host_check_runs_before_the_token_check(issuer: Issuer, server: Served) -> None:
    """A foreign Host is 421 whatever the token: none, a bad one, a good one; a preflight for it too. The token is
    never looked at for a request this server does not serve."""
    forged = issuer.good(server.resource, {"kid": "unknown"})
    for token in (None, "not-a-jwt", forged, issuer.good(server.resource)):
        assert post(server, token, INIT, host="evil.example").status_code == 421
    preflight = httpx2.options(f"{server.url}/mcp", headers={"host": "evil.example", "origin": APP,
                                                             "access-control-request-method": "POST"})  # fmt: skip
    assert preflight.status_code == 421


def test_the_protected_resource_metadata_answers_any_page(server: Served) -> None:
    """RFC 9728's metadata is public: a page of any origin may read it (`*`), and its preflight is answered."""
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        got = httpx2.get(f"{server.url}{path}", headers={"origin": "https://anyone.example"})
        preflight = httpx2.options(f"{server.url}{path}", headers={"origin": "https://anyone.example",
                                   "access-control-request-method": "GET",
                                   "access-control-request-headers": "mcp-protocol-version"})  # fmt: skip
        assert got.status_code == 200 and got.headers["access-control-allow-origin"] == "*"
        assert got.json()["resource"] == server.resource
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
        assert preflight.headers["access-control-allow-methods"] == "GET"
        assert preflight.headers["access-control-allow-headers"] == "mcp-protocol-version"


def test_mcp_answers_the_pages_of_the_listed_origins_end_to_end(issuer: Issuer, server: Served) -> None:
    """`cors_origins` lists `https://app.example.com` (and no `--allowed-origin` names it): its preflight of a POST
    with a token is answered 204, allowing the headers an MCP client sends; its 401 lets the page read the challenge;
    its signed-in requests are served with the session header exposed. Another origin's preflight gets no CORS
    headers (a foreign one is refused 403, a loopback one reaches the token gate)."""
    asked = {"origin": "https://APP.example.com:443", "access-control-request-method": "POST",
             "access-control-request-headers": "authorization, content-type, mcp-protocol-version"}  # fmt: skip
    preflight = httpx2.options(f"{server.url}/mcp", headers=asked)
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "https://APP.example.com:443"
    assert set(preflight.headers["access-control-allow-headers"].split(", ")) >= {
        "authorization", "content-type", "mcp-protocol-version", "mcp-session-id"
    }  # fmt: skip
    assert "POST" in preflight.headers["access-control-allow-methods"] and "vary" in preflight.headers
    refused = post(server, None, INIT, origin=APP)
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == APP
    assert "www-authenticate" in refused.headers["access-control-expose-headers"]
    served = post(server, issuer.good(server.resource), INIT, origin=APP)
    assert served.status_code == 200 and served.headers["access-control-allow-origin"] == APP
    assert "mcp-session-id" in served.headers["access-control-expose-headers"]
    foreign = httpx2.options(f"{server.url}/mcp", headers={**asked, "origin": "https://other.example"})
    loopback = httpx2.options(f"{server.url}/mcp", headers={**asked, "origin": "http://localhost:3000"})
    assert foreign.status_code == 403 and "access-control-allow-origin" not in foreign.headers
    assert loopback.status_code == 401 and "access-control-allow-origin" not in loopback.headers


def test_cors_origins_work_with_the_static_token_too() -> None:
    """Without OAuth, behind the static token: a listed page's preflight needs no token (it never carries one), and
    its requests with the token are served with CORS headers."""
    token = "tok_cors_0123456789abcdef"
    with http_server(token=token, env={CORS_VAR: APP}) as url:
        preflight = httpx2.options(f"{url}/mcp", headers={"origin": APP, "access-control-request-method": "POST"})
        served = httpx2.post(f"{url}/mcp", json=INIT,
                             headers={**MCP_HEADERS, "origin": APP, "authorization": f"Bearer {token}"})  # fmt: skip
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == APP
    assert served.status_code == 200 and served.headers["access-control-allow-origin"] == APP


def test_check_shows_the_new_sign_in_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check` lists `oauth_keys_max_stale_seconds` and `cors_origins` with their values and sources."""
    with pytest.raises(SystemExit):
        main(["check", "--demo"])
    defaults = [line.split() for line in capsys.readouterr().out.splitlines()]
    monkeypatch.setenv(STALE_VAR, "600")
    monkeypatch.setenv(CORS_VAR, f"{APP}, http://localhost:5173")
    with pytest.raises(SystemExit):
        main(["check", "--demo"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["oauth_keys_max_stale_seconds", "3600.0", "default"] in defaults
    assert ["cors_origins", "(none)", "default"] in defaults
    assert ["oauth_keys_max_stale_seconds", "600.0", "env"] in rows
    assert ["cors_origins", f"{APP},http://localhost:5173", "env"] in rows


def test_a_cors_origin_that_is_no_origin_stops_start_up_in_one_line() -> None:
    """`cors_origins` entries are origins as browsers send them: a path, a bare name or `*` stops start-up."""
    for value in ("https://app.example.com/", "app.example.com", "*"):
        done = start_command("serve --transport http", {CORS_VAR: value})
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert CORS_VAR in done.stderr and "is not an origin" in done.stderr
