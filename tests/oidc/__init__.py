"""The OAuth tests' authorization server: oidc-provider (OpenID Certified) on loopback, run by `provider.mjs` beside
this file, installed from npm with the pinned lockfile into a per-user cache (never into the repository)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent
SCOPES = ("retell-tela:read", "retell-tela:runs", "retell-tela:edits")
# A confidential client of the client credentials grant (a service calling the server on its own behalf); test only.
SERVICE = {
    "client_id": "service",
    "client_secret": "service-secret-for-tests-only",
    "grant_types": ["client_credentials"],
    "response_types": [],
    "redirect_uris": [],
    "scope": " ".join(SCOPES),
    "token_endpoint_auth_method": "client_secret_post",
}


def install() -> Path:
    """The directory holding `provider.mjs` and its `node_modules`, installed once per lockfile; skips the test when
    Node.js or npm is missing (fails instead under CI)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed: the OAuth tests run oidc-provider, a Node.js server")
    lock = (HERE / "package-lock.json").read_bytes()
    prefix = Path.home() / ".cache" / "retell-tela-mcp" / f"oidc-{hashlib.sha256(lock).hexdigest()[:12]}"
    if not (prefix / "node_modules" / "oidc-provider" / "package.json").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(HERE / name, prefix / name)
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=prefix,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            reason = f"npm ci of oidc-provider failed: {done.stderr.strip()[-300:]}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
    # The script sits beside node_modules so that `import 'oidc-provider'` resolves there; copied fresh each run.
    script = prefix / f"provider-{uuid.uuid4().hex}.mjs"
    shutil.copyfile(HERE / "provider.mjs", script)
    script.replace(prefix / "provider.mjs")
    return prefix


def signing_key(kid: str | None = None) -> dict[str, Any]:
    """A fresh RSA signing key as a private JWK, for providers that must share keys."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private))
    jwk.pop("key_ops", None)  # as identity providers publish them: `use` says it all
    return {**jwk, "kid": kid or uuid.uuid4().hex, "alg": "RS256", "use": "sig"}


class AuthorizationServer:
    """A running provider, and what the tests ask of it."""

    def __init__(self, issuer: str, process: subprocess.Popen[str]) -> None:
        self.issuer = issuer
        self.process = process
        self.http = httpx2.Client(base_url=issuer, timeout=30)

    def token(self, resource: str, scope: str | None = " ".join(SCOPES), client: dict[str, Any] = SERVICE) -> str:
        """An access token from the client credentials grant, for `resource` with `scope` (None: ask for none)."""
        form = {"grant_type": "client_credentials", "resource": resource}
        form |= {"client_id": client["client_id"], "client_secret": client["client_secret"]}
        form |= {"scope": scope} if scope is not None else {}
        response = self.http.post("/token", data=form)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def rotate(self, jwks: dict[str, Any] | None = None) -> list[str]:
        """Replace the provider's signing keys (a new RSA key unless given) without restarting it; the new kids."""
        kids: list[str] = self.http.post("/test/rotate", json={"jwks": jwks} if jwks else {}).json()["kids"]
        return kids

    def set_clock(self, offset: float) -> None:
        """Run the provider's clock `offset` seconds from the real one (tokens issued then carry that time)."""
        self.http.post("/test/clock", json={"offset": offset}).raise_for_status()

    def stats(self) -> dict[str, int]:
        """How often the MCP server (by its User-Agent) has fetched the metadata and the JWKS."""
        counts: dict[str, int] = self.http.get("/test/stats").json()
        return counts

    def public_jwks(self) -> dict[str, Any]:
        document: dict[str, Any] = self.http.get("/jwks").json()
        return document


@contextmanager
def authorization_server(
    directory: Path, *, jwks: dict[str, Any] | None = None, clients: list[dict[str, Any]] | None = None
) -> Iterator[AuthorizationServer]:
    """Start `provider.mjs` on a free loopback port; stop it on exit."""
    config = {"clients": clients if clients is not None else [SERVICE], **({"jwks": jwks} if jwks else {})}
    with tempfile.TemporaryFile("w+") as stderr:  # a file, not a pipe: notices can never fill it and stall node
        process = subprocess.Popen(
            ["node", "provider.mjs"],
            cwd=directory,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(config))
        process.stdin.close()
        try:
            line = process.stdout.readline()
            if not line:
                process.wait(10)
                stderr.seek(0)
                raise AssertionError(f"oidc-provider did not start: {stderr.read()[-2000:]}")
            server = AuthorizationServer(json.loads(line)["issuer"], process)
            with server.http:
                yield server
        finally:
            process.terminate()
            process.wait(10)
            process.stdout.close()
