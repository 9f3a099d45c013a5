"""OAuth resource server: which JWT access tokens are accepted (signed by a key the configured issuer publishes, for
this server's resource, not expired), what their scopes allow (one scope per tool level), and who sent them.
`web` applies it to HTTP requests; `check` loads the issuer's keys with it.

The MCP SDK is imported only inside the functions that need it, so `check` runs without loading the SDK.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx2
import jwt
import pydantic_core

from mcp_server import __version__
from mcp_server.config import Settings, is_loopback
from mcp_server.upstream.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from mcp_server.tools.base import Level

logger = logging.getLogger(__name__)

# One scope per tool level (SPEC: tools that change anything). Prompts, resources and completions are reads.
SCOPES: dict[Level, str] = {"read": "retell-tela:read", "runs": "retell-tela:runs", "edits": "retell-tela:edits"}
# JWS algorithms accepted, each with the key types (and curves) that may sign with it. No `none`, no HMAC: a
# shared secret would let anyone who can check a token mint one.
ALGORITHMS: dict[str, tuple[str, str | None]] = {
    **{f"{family}{bits}": ("RSA", None) for family in ("RS", "PS") for bits in (256, 384, 512)},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
# RFC 9068 names `at+jwt`; most identity providers still write `JWT`, or nothing. Any other type is another kind
# of token signed by the same keys (a logout token, a DPoP proof, a security event) and is refused.
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt", "jwt"})
LEEWAY_SECONDS = 60  # clock skew allowed between the issuer and this server, for exp, nbf and iat
KEYS_MAX_AGE_SECONDS = 300.0  # a key the issuer stops publishing is trusted at most this long after
UNKNOWN_KEY_COOLDOWN_SECONDS = 10.0  # tokens naming unknown keys refetch the JWKS at most this often
FETCH_TIMEOUT_SECONDS = 10.0
MAX_DOCUMENT_BYTES = 512 * 1024  # metadata and JWKS documents are a few KB
MAX_TOKEN_CHARS = 16 * 1024


class IssuerError(Exception):
    """Raised when the issuer's metadata or its JWKS cannot be fetched or used; the message says why in one line."""


@dataclass(frozen=True)
class KeySet:
    """What a load found: where the metadata and keys came from, and the usable signing keys."""

    metadata_url: str
    jwks_uri: str
    keys: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Grant:
    """A token that passed every check: who it names and the scopes it carries."""

    issuer: str
    resource: str
    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    expires_at: int
    fingerprint: str  # a short hash, to tell tokens apart without holding one


@dataclass(frozen=True)
class Refusal:
    """Why a token was not accepted: 401 `invalid_token` (its fault) or 503 (the issuer's keys cannot be loaded)."""

    status: int
    error: str
    description: str  # one plain sentence, safe inside a quoted header parameter


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be, in the order MCP clients try them: RFC 8414's well-known URI (inserted
    before the issuer's path), OpenID Connect's inserted the same way, then OpenID Connect's appended."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    urls = [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
    ]
    if path:
        urls.append(f"{origin}{path}/.well-known/openid-configuration")
    return urls


def _usable_url(url: object) -> bool:
    """https://, or http:// on loopback: the same rule as every other URL this server fetches."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    host = parts.hostname or ""
    return bool(host) and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host)))


def _signing_keys(document: object) -> tuple[Mapping[str, Any], ...]:
    """The JWKS's keys that may verify signatures with an accepted algorithm: asymmetric, for `sig` (or no `use`)."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise IssuerError("is not a JWKS (no 'keys' list)")
    families = {family for family, _ in ALGORITHMS.values()}
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") not in families or entry.get("use", "sig") != "sig":
            continue
        operations = entry.get("key_ops", ["verify"])
        if not isinstance(operations, list) or not {"verify", "sign"} & set(operations):
            continue  # an encryption key; a published copy of a signing key may still say "sign"
        if not isinstance(entry.get("kid", ""), str):
            continue
        try:
            jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # a key this library cannot use (an unknown curve): no token can be verified with it
        keys.append(entry)
    return tuple(keys)


class IssuerKeys:
    """The issuer's signing keys, from the JWKS its metadata names. Loaded at first use and cached; loaded again
    after `KEYS_MAX_AGE_SECONDS` (so a key the issuer drops stops being trusted) and when a token names a key that is
    not cached, at most once per `UNKNOWN_KEY_COOLDOWN_SECONDS`: never once per request. A failed load keeps the last
    good keys. Concurrent requests share one load."""

    def __init__(
        self, issuer: str, *, transport: httpx2.AsyncBaseTransport | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.issuer = issuer
        self._clock = clock
        self._http = httpx2.AsyncClient(
            transport=transport,
            timeout=FETCH_TIMEOUT_SECONDS,
            headers={"user-agent": f"retell-tela-mcp/{__version__}", "accept": "application/json"},
        )
        self._keys: tuple[Mapping[str, Any], ...] | None = None
        self._prepared: dict[tuple[int, str], jwt.PyJWK | None] = {}
        self._generation = 0
        self._fresh_until = -math.inf
        self._unknown_after = -math.inf
        self._lock: anyio.Lock | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def load(self) -> KeySet:
        """Fetch the metadata, then its JWKS. Raises `IssuerError` saying what failed."""
        failures: list[str] = []
        for url in metadata_urls(self.issuer):
            try:
                metadata = await self._get_json(url)
            except IssuerError as error:
                failures.append(f"{url} {error}")
                continue
            named = metadata.get("issuer")
            if named != self.issuer:  # RFC 8414 3.3: else it is another issuer's metadata
                shown = repr(named)[:200] if isinstance(named, str) else "no issuer"
                failures.append(f"{url} names {shown}, not {self.issuer!r} (oauth_issuer must be exactly the issuer)")
                continue
            jwks_uri = metadata.get("jwks_uri")
            if not _usable_url(jwks_uri):
                raise IssuerError(f"the metadata at {url} names no https:// jwks_uri")
            assert isinstance(jwks_uri, str)
            try:
                keys = _signing_keys(await self._get_json(jwks_uri))
            except IssuerError as error:
                raise IssuerError(f"the JWKS at {jwks_uri} {error}") from None
            if not keys:
                raise IssuerError(f"the JWKS at {jwks_uri} holds no signing key this server can use")
            return KeySet(url, jwks_uri, keys)
        raise IssuerError("no authorization server metadata: " + "; ".join(failures))

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise IssuerError(f"answered HTTP {response.status_code}")
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise IssuerError(f"is larger than {MAX_DOCUMENT_BYTES} bytes")
        except httpx2.TimeoutException:
            raise IssuerError(f"did not answer within {FETCH_TIMEOUT_SECONDS:g} s") from None
        except httpx2.HTTPError as error:
            raise IssuerError(f"could not be reached ({type(error).__name__})") from None
        try:
            document = pydantic_core.from_json(body)
        except ValueError:
            raise IssuerError("is not JSON") from None
        if not isinstance(document, dict):
            raise IssuerError("is not a JSON object")
        return document

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The cached key that `kid` names, ready for `alg`, or None if the issuer publishes no such key. Raises
        `IssuerError` while no key set has ever loaded."""
        generation = self._generation
        if self._clock.now() >= self._fresh_until:
            await self._reload(generation, scheduled=True)
        if self._keys is None:
            raise IssuerError("no signing keys loaded yet")
        found = self._match(kid, alg)
        if found is None and not self._names_a_cached_key(kid):
            # With the generation read before: keys that this very lookup (or a concurrent one) has just loaded are
            # not loaded again.
            await self._reload(generation, scheduled=False)
            found = self._match(kid, alg)
        return found

    def _names_a_cached_key(self, kid: str | None) -> bool:
        return kid is not None and any(key.get("kid") == kid for key in self._keys or ())

    def _match(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The one cached key for this token: the key with its `kid` (or, without one, the only key that fits)."""
        family, curve = ALGORITHMS[alg]
        fits = [
            index
            for index, key in enumerate(self._keys or ())
            if (kid is None or key.get("kid") == kid)
            and key.get("kty") == family
            and (curve is None or key.get("crv") == curve)
            and key.get("alg", alg) == alg
        ]
        if len(fits) != 1:
            return None
        index = fits[0]
        if (index, alg) not in self._prepared:
            try:
                self._prepared[index, alg] = jwt.PyJWK(dict((self._keys or ())[index]), alg)
            except jwt.PyJWTError:
                self._prepared[index, alg] = None
        return self._prepared[index, alg]

    async def _reload(self, generation: int, *, scheduled: bool) -> None:
        """Load the keys again, unless another lookup did since `generation` was read, or the last attempt was too
        recent (scheduled: the keys are fresh, or failed to load a moment ago; for an unknown key: the cooldown). On
        failure keep the last good keys and try again after the cooldown."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            now = self._clock.now()
            if self._generation != generation or now < (self._fresh_until if scheduled else self._unknown_after):
                return  # another lookup loaded them meanwhile, or just tried and failed: no herd of fetches
            if not scheduled:
                self._unknown_after = now + UNKNOWN_KEY_COOLDOWN_SECONDS
            try:
                loaded = await self.load()
            except IssuerError as error:
                logger.warning("could not load the signing keys of %s: %s", self.issuer, error)
                self._fresh_until = self._unknown_after = now + UNKNOWN_KEY_COOLDOWN_SECONDS
                return
            if self._keys is None:
                logger.info("loaded %d signing key(s) of %s from %s", len(loaded.keys), self.issuer, loaded.jwks_uri)
            self._keys, self._prepared = loaded.keys, {}
            self._generation += 1
            self._fresh_until = self._clock.now() + KEYS_MAX_AGE_SECONDS


def _invalid(description: str) -> Refusal:
    return Refusal(401, "invalid_token", description)


_EXPIRED = _invalid("The access token has expired.")
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], Refusal], ...] = (
    (jwt.ExpiredSignatureError, _EXPIRED),
    (jwt.ImmatureSignatureError, _invalid("The access token is not valid yet.")),
    (jwt.InvalidAudienceError, _invalid("The access token was issued for another resource.")),
    (jwt.InvalidIssuerError, _invalid("The access token was issued by another issuer.")),
    (jwt.InvalidSignatureError, _invalid("The access token's signature does not verify.")),
    (jwt.MissingRequiredClaimError, _invalid("The access token lacks a required claim (exp, iss or aud).")),
    (jwt.InvalidKeyError, _invalid("The access token is signed with a key too weak to trust.")),
)


class TokenVerifier:
    """Checks an access token: a JWT signed (with an accepted algorithm) by a key the issuer publishes, whose `iss` is
    the issuer, whose `aud` holds the resource, and that has not expired (give or take `LEEWAY_SECONDS`). The key
    always comes from the issuer's JWKS by the token's `kid`, never from the token (`jwk`, `jku`, `x5u`, `x5c`)."""

    def __init__(self, issuer: str, resource: str, keys: IssuerKeys) -> None:
        self.issuer = issuer
        self.resource = resource
        self.keys = keys

    async def verify(self, token: str) -> Grant | Refusal:
        if len(token) > MAX_TOKEN_CHARS:
            return _invalid("The access token is too long.")
        try:  # read, not trusted: only to pick the key, and to refuse early what could never pass
            parsed = jwt.decode_complete(token, options={"verify_signature": False})
            header, unverified = parsed["header"], parsed["payload"]
        except jwt.PyJWTError:
            return _invalid("The access token is not a signed JWT.")
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if alg not in ALGORITHMS:
            return _invalid("The access token is not signed with an accepted algorithm (RSA, ECDSA or EdDSA).")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in TOKEN_TYPES):
            return _invalid("The token is not an access token.")
        if unverified.get("iss") != self.issuer:  # before any key lookup: a foreign token never causes a fetch
            return _invalid("The access token was issued by another issuer.")
        if kid is not None and not isinstance(kid, str):
            return _invalid("The access token is not a signed JWT.")
        try:
            key = await self.keys.key(kid, alg)
        except IssuerError:
            return Refusal(503, "temporarily_unavailable", "The authorization server's keys cannot be loaded.")
        if key is None:
            return _invalid("The access token is signed by a key the issuer does not publish.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.resource,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as error:
            refusal = next((r for kind, r in _REFUSALS if isinstance(error, kind)), None)
            return refusal or _invalid("The access token is malformed.")
        client_id = next((v for v in (claims.get("client_id"), claims.get("azp")) if isinstance(v, str) and v), None)
        subject = claims.get("sub") if isinstance(claims.get("sub"), str) and claims.get("sub") else None
        return Grant(
            issuer=self.issuer,
            resource=self.resource,
            subject=subject,
            client_id=client_id,
            scopes=_scopes(claims),
            expires_at=int(claims["exp"]),
            fingerprint="sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16],
        )


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """RFC 9068's space-separated `scope`, and `scp` (a string or a list, as Entra ID and Okta write it)."""
    scopes: set[str] = set()
    for claim in (claims.get("scope"), claims.get("scp")):
        if isinstance(claim, str):
            scopes.update(claim.split())
        elif isinstance(claim, list):
            scopes.update(item for item in claim if isinstance(item, str))
    return frozenset(scopes)


@dataclass(frozen=True)
class OAuthResource:
    """This server as an OAuth protected resource: its public URL (the tokens' audience), the issuer it trusts, the
    levels it serves (so the scopes it offers) and the verifier."""

    issuer: str
    resource: str
    levels: tuple[Level, ...]
    verifier: TokenVerifier

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> OAuthResource:
        assert settings.oauth_issuer is not None and settings.oauth_resource is not None
        levels: tuple[Level, ...] = (
            "read",
            *(("runs",) if settings.allow_runs else ()),
            *(("edits",) if settings.allow_edits else ()),
        )
        keys = IssuerKeys(settings.oauth_issuer, transport=transport)
        verifier = TokenVerifier(settings.oauth_issuer, settings.oauth_resource, keys)
        return cls(settings.oauth_issuer, settings.oauth_resource, levels, verifier)

    @property
    def scopes_supported(self) -> list[str]:
        return [SCOPES[level] for level in self.levels]

    @property
    def metadata_paths(self) -> tuple[str, str]:
        """RFC 9728: the metadata's well-known path inserted before the resource's path; and the root path, where
        MCP clients look next."""
        path = urlsplit(self.resource).path.rstrip("/")
        return f"/.well-known/oauth-protected-resource{path}", "/.well-known/oauth-protected-resource"

    @property
    def metadata_url(self) -> str:
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{self.metadata_paths[0]}"

    @property
    def host(self) -> str:
        """The resource's host as a Host header names it (IPv6 in brackets): a name this server is reached by."""
        host = urlsplit(self.resource).hostname or ""
        return f"[{host}]" if ":" in host else host

    def metadata(self) -> dict[str, Any]:
        """The protected resource metadata document (RFC 9728)."""
        return {
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": "retell-tela-mcp",
        }


def oauth_resource(settings: Settings) -> OAuthResource | None:
    """The settings' OAuth resource server, or None when OAuth is off."""
    return OAuthResource.from_settings(settings) if settings.oauth_issuer and settings.oauth_resource else None


@cache
def tool_levels() -> Mapping[str, Level]:
    """Every tool's level, by name (whether this server serves it or not)."""
    from mcp_server.tools import TOOLS

    return {spec.name: spec.level for spec in TOOLS}


# Requests that read what the read tools read: a prompt's text, a resource's contents, completion of the IDs seen.
READ_METHODS = frozenset(
    {"prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe", "completion/complete"}
)
# Lists whose every entry is a read: empty for a token without the read scope.
READ_LISTS = {"prompts/list": "prompts", "resources/list": "resources", "resources/templates/list": "resourceTemplates"}


def needed_level(method: object, params: object) -> Level | None:
    """The level a JSON-RPC request needs beyond a valid token: a tool call its tool's, a read its `read`; None for
    the rest (the handshake, lists, pings, notifications) and for a tool no level names (the SDK says it is unknown)."""
    if method == "tools/call":
        name = params.get("name") if isinstance(params, Mapping) else None
        return tool_levels().get(name) if isinstance(name, str) else None
    return "read" if method in READ_METHODS else None


def granted_levels(scopes: frozenset[str] | list[str]) -> frozenset[Level]:
    return frozenset(level for level, scope in SCOPES.items() if scope in scopes)


def access_token(grant: Grant) -> AccessToken:
    """The SDK's record of an accepted token (what `get_access_token()` returns and sessions are bound to). It holds
    the token's fingerprint, never the token: nothing that logs or shows it can leak a usable credential."""
    from mcp.server.auth.provider import AccessToken

    return AccessToken(
        token=grant.fingerprint,
        client_id=grant.client_id or "",
        scopes=sorted(grant.scopes),
        expires_at=grant.expires_at,
        resource=grant.resource,
        subject=grant.subject,
        claims={"iss": grant.issuer},  # sessions and sealed request state are bound to (client, issuer, subject)
    )


class ScopeMiddleware:
    """What each OAuth token may see and do, inside the server: `tools/list` shows only the tools of the levels its
    scopes grant (of those the settings serve), and the prompt and resource lists are empty without `read`. A request
    beyond its scopes is an error, never a silent success: the HTTP front refuses it first with 403, so this is the
    same rule applied again to the request as the SDK parsed it. Without an OAuth token (stdio, the static token,
    OAuth off) every answer passes untouched."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        if token is None:
            return await call_next(ctx)
        granted = granted_levels(token.scopes)
        needed = needed_level(ctx.method, ctx.params)
        if needed is not None and needed not in granted:
            from mcp.shared.exceptions import MCPError
            from mcp_types import INVALID_REQUEST

            raise MCPError(code=INVALID_REQUEST, message=f"This access token lacks the scope {SCOPES[needed]}.")
        result = await call_next(ctx)
        if not isinstance(result, dict):
            return result
        if ctx.method == "tools/list":
            tools = result.get("tools", [])
            kept = [tool for tool in tools if tool_levels().get(tool.get("name"), "read") in granted]
            return result if len(kept) == len(tools) else {**result, "tools": kept}
        if ctx.method in READ_LISTS and "read" not in granted:
            return {key: value for key, value in result.items() if key != "nextCursor"} | {READ_LISTS[ctx.method]: []}
        return result


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case), or None."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and _TOKEN_CHARS.fullmatch(token) else None
