"""OAuth resource server: which JWT access tokens are accepted (RFC 9068 tokens signed by a key the configured issuer
publishes, for this server's resource, not expired), what their scopes allow (one scope per tool level), and who sent
them; and the issuer's keys, held so that no request whose key is known waits for the issuer, and dropped once the
issuer withdraws them or they are too old to trust. `web` applies it to HTTP requests; `check` loads the issuer's keys
with it.

The MCP SDK is imported only inside the functions that need it, so `check` runs without loading the SDK.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
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
# `exp`, `nbf` and `iat` further than this from now are no time an issuer meant: the token is malformed.
MAX_CLAIM_YEARS_SECONDS = 100 * 365.25 * 24 * 3600
REFRESH_SECONDS = 300.0  # held keys are fetched again this long after their load, in the background
RETRY_SECONDS = 10.0  # after a failed load, or one for a token naming an unknown key: no other such load sooner
FETCH_DEADLINE_SECONDS = 5.0  # one load, metadata and JWKS together, however slowly the issuer sends them
MAX_DOCUMENT_BYTES = 512 * 1024  # metadata and JWKS documents are a few KB
MAX_TOKEN_CHARS = 16 * 1024


class IssuerError(Exception):
    """Raised when the issuer's metadata or its JWKS cannot be fetched or used, or (by `IssuerKeys.key`) when no key
    set fresh enough is held; the message says why in one line."""


@dataclass(frozen=True)
class KeySet:
    """What a load found: where the metadata and keys came from, and the usable signing keys (none: the issuer has
    withdrawn them all, or publishes none this server can use)."""

    metadata_url: str
    jwks_uri: str
    keys: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Grant:
    """A token that passed every check: who it names and the scopes it carries."""

    issuer: str
    resource: str
    subject: str
    client_id: str
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
        if not isinstance(operations, list) or not {"verify", "sign"} & set(map(str, operations)):
            continue  # an encryption key; a published copy of a signing key may still say "sign"
        if not isinstance(entry.get("kid", ""), str) or not isinstance(entry.get("alg", ""), str):
            continue
        try:
            jwt.PyJWK(entry)
        except Exception:  # whatever a key's fields make the library raise, it is a key no token can use
            continue
        keys.append(entry)
    return tuple(keys)


@dataclass(frozen=True)
class _Held:
    """A key set in use, and when the load that fetched it started (its age counts from there)."""

    keys: tuple[Mapping[str, Any], ...]
    fetched_at: float


class IssuerKeys:
    """The issuer's signing keys, from the JWKS its metadata names, held in memory and loaded again in the background.

    Requests never queue behind the issuer. A token whose key is held is checked at once, even while a load is due
    (`REFRESH_SECONDS` after the last one, started in the background) or in progress. Only a token that needs a load
    waits for it: one naming a key not held (at most one such load per `RETRY_SECONDS`), or any token once the keys
    held are `max_stale_seconds` old. Loads are single-flight, each within one `FETCH_DEADLINE_SECONDS` deadline. A
    failed load keeps the keys held, and their age: it is tried again `RETRY_SECONDS` after it ended, and past
    `max_stale_seconds` a key the issuer may have withdrawn stops working (`key` raises until a load succeeds). A JWKS
    that answers with no usable key withdraws them all at once.

    Used inside `async with`, which holds the background loads; `load` alone (what `check` runs) needs no entering.
    """

    def __init__(
        self,
        issuer: str,
        *,
        max_stale_seconds: float = 3600.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.issuer = issuer
        self.max_stale_seconds = max_stale_seconds
        self.refresh_seconds = min(REFRESH_SECONDS, max_stale_seconds / 2)  # refreshed before the keys grow stale
        self._clock = clock
        self._http = httpx2.AsyncClient(
            transport=transport,
            timeout=FETCH_DEADLINE_SECONDS,
            headers={"user-agent": f"retell-tela-mcp/{__version__}", "accept": "application/json"},
        )
        self._held: _Held | None = None
        self._prepared: dict[tuple[int, str], jwt.PyJWK | None] = {}
        self._loading: anyio.Event | None = None  # set when the load in progress ends
        self._retry_at = -math.inf  # after a failed load: no other before this
        self._unknown_after = -math.inf  # after a load for an unknown key: no other for one before this
        self._tasks: anyio.abc.TaskGroup | None = None
        self._exits = AsyncExitStack()

    async def __aenter__(self) -> IssuerKeys:
        self._tasks = await self._exits.enter_async_context(anyio.create_task_group())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()
        try:
            await self._exits.aclose()
        finally:
            self._tasks = None
            await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def prefetch(self) -> None:
        """Start loading the keys in the background, so the first token need not wait for them."""
        if self._held is None:
            self._start_load()

    async def load(self) -> KeySet:
        """Fetch the metadata, then its JWKS, within `FETCH_DEADLINE_SECONDS` in all. Raises `IssuerError` saying what
        failed."""
        fetching = [self.issuer]
        with anyio.move_on_after(FETCH_DEADLINE_SECONDS):
            return await self._fetch(fetching)
        raise IssuerError(f"{fetching[-1]} did not answer within {FETCH_DEADLINE_SECONDS:g} s")

    async def _fetch(self, fetching: list[str]) -> KeySet:
        failures: list[str] = []
        for url in metadata_urls(self.issuer):
            fetching.append(url)
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
            fetching.append(jwks_uri)
            try:
                keys = _signing_keys(await self._get_json(jwks_uri))
            except IssuerError as error:
                raise IssuerError(f"the JWKS at {jwks_uri} {error}") from None
            return KeySet(url, jwks_uri, keys)
        raise IssuerError("no authorization server metadata: " + "; ".join(failures))

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise IssuerError(f"answered HTTP {response.status_code}")
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > MAX_DOCUMENT_BYTES:
                    raise IssuerError(f"is larger than {MAX_DOCUMENT_BYTES} bytes")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise IssuerError(f"is larger than {MAX_DOCUMENT_BYTES} bytes")
        except httpx2.TimeoutException:
            raise IssuerError(f"did not answer within {FETCH_DEADLINE_SECONDS:g} s") from None
        except httpx2.HTTPError as error:
            raise IssuerError(f"could not be reached ({type(error).__name__})") from None
        try:
            document = pydantic_core.from_json(bytes(body))
        except ValueError:
            raise IssuerError("is not JSON") from None
        if not isinstance(document, dict):
            raise IssuerError("is not a JSON object")
        return document

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The held key that `kid` names, ready for `alg`, or None if the issuer publishes no such key. Raises
        `IssuerError` (a message for the client) while no key set fresh enough is held and none can be loaded."""
        now = self._clock.now()
        if not self._fresh(now):
            if self._loading is None and now < self._retry_at:
                raise IssuerError(self._unavailable())  # a load has just failed: do not start another at once
            await self._load_shared()
            if not self._fresh(self._clock.now()):
                raise IssuerError(self._unavailable())
            return self._match(kid, alg)  # from keys just loaded: a key they lack is not published
        assert self._held is not None
        if now >= self._held.fetched_at + self.refresh_seconds and now >= self._retry_at:
            self._start_load()  # in the background: this request goes on with the keys held
        found = self._match(kid, alg)
        if found is None and not self._names_a_held_key(kid):
            # A key not held may be one the issuer has just added: wait for the load in progress, or start one unless
            # a load failed or a token naming an unknown key caused one a moment ago (forged tokens cannot flood it).
            if self._loading is None and (now < self._unknown_after or now < self._retry_at):
                return None
            await self._load_shared(for_unknown_key=True)
            found = self._match(kid, alg) if self._fresh(self._clock.now()) else None
        return found

    def _fresh(self, now: float) -> bool:
        return self._held is not None and now < self._held.fetched_at + self.max_stale_seconds

    def _unavailable(self) -> str:
        if self._held is None:
            return "The authorization server's signing keys cannot be loaded; try again shortly."
        return (
            f"The authorization server's signing keys are over {self.max_stale_seconds:g} s old and it cannot be "
            "reached to load them again; try again shortly."
        )

    def _names_a_held_key(self, kid: str | None) -> bool:
        return kid is not None and self._held is not None and any(key.get("kid") == kid for key in self._held.keys)

    def _match(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The one held key for this token: the key with its `kid` (or, without one, the only key that fits)."""
        keys = self._held.keys if self._held is not None else ()
        family, curve = ALGORITHMS[alg]
        fits = [
            index
            for index, key in enumerate(keys)
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
                self._prepared[index, alg] = jwt.PyJWK(dict(keys[index]), alg)
            except jwt.PyJWTError:
                self._prepared[index, alg] = None
        return self._prepared[index, alg]

    async def _load_shared(self, *, for_unknown_key: bool = False) -> None:
        """Wait for the load in progress, starting one if there is none."""
        done = self._loading or self._start_load(for_unknown_key=for_unknown_key)
        await done.wait()

    def _start_load(self, *, for_unknown_key: bool = False) -> anyio.Event:
        """Start a load in the background unless one is in progress; the event set when it ends."""
        if self._loading is not None:
            return self._loading
        if self._tasks is None:
            raise RuntimeError("IssuerKeys loads keys only inside `async with`")
        done = self._loading = anyio.Event()
        self._tasks.start_soon(self._load_in_background, done, for_unknown_key)
        return done

    async def _load_in_background(self, done: anyio.Event, for_unknown_key: bool) -> None:
        """One load: on success the keys it found replace those held (none: withdrawn); on failure the keys held stay,
        with their age, and no load starts again before `RETRY_SECONDS` from its end (nor, after a load for an unknown
        key, another for one)."""
        started = self._clock.now()
        try:
            loaded = await self.load()
        except IssuerError as error:
            logger.warning("could not load the signing keys of %s: %s", self.issuer, error)
            self._retry_at = self._clock.now() + RETRY_SECONDS
        except Exception as error:  # a background load must never end the server: say what broke, go on
            logger.warning("could not load the signing keys of %s: %s", self.issuer, type(error).__name__)
            self._retry_at = self._clock.now() + RETRY_SECONDS
        else:
            before = self._held.keys if self._held is not None else None
            if not loaded.keys:
                logger.warning("%s publishes no signing key this server can use at %s", self.issuer, loaded.jwks_uri)
            elif before is None or [k.get("kid") for k in before] != [k.get("kid") for k in loaded.keys]:
                logger.info("loaded %d signing key(s) of %s from %s", len(loaded.keys), self.issuer, loaded.jwks_uri)
            self._held, self._prepared = _Held(loaded.keys, started), {}
            self._retry_at = -math.inf
        finally:
            if for_unknown_key:
                self._unknown_after = self._clock.now() + RETRY_SECONDS
            self._loading = None
            done.set()


def _invalid(description: str) -> Refusal:
    return Refusal(401, "invalid_token", description)


_EXPIRED = _invalid("The access token has expired.")
_NOT_A_JWT = _invalid("The access token is not a signed JWT.")
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], Refusal], ...] = (
    (jwt.ExpiredSignatureError, _EXPIRED),
    (jwt.ImmatureSignatureError, _invalid("The access token is not valid yet.")),
    (jwt.InvalidAudienceError, _invalid("The access token was issued for another resource.")),
    (jwt.InvalidIssuerError, _invalid("The access token was issued by another issuer.")),
    (jwt.InvalidSignatureError, _invalid("The access token's signature does not verify.")),
    (
        jwt.MissingRequiredClaimError,
        _invalid("The access token lacks a required claim (exp, iss, aud, sub or client_id)."),
    ),
    (jwt.InvalidKeyError, _invalid("The access token is signed with a key too weak to trust.")),
)
# RFC 9068 2.2: what every JWT access token carries.
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id")
TIME_CLAIMS = ("exp", "nbf", "iat")


def _malformed_claims(claims: Mapping[str, Any], now: float) -> Refusal | None:
    """Why the claims cannot be a JWT access token's (RFC 9068 2.2), read before any key is looked up: a required
    claim missing, `sub` or `client_id` not a non-empty string, or a time that is not a JSON number within 100 years
    of now (`"123"`, `true` and 1e300 are none)."""
    for name in REQUIRED_CLAIMS:
        if claims.get(name) is None:
            return _invalid(f"The access token lacks a required claim ({name}).")
    for name in ("sub", "client_id"):
        if not isinstance(claims[name], str) or not claims[name]:
            return _invalid(f"The access token's {name} is not a string.")
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if value is None and name != "exp":
            continue
        # JSON's true is no time; NaN fails the comparison; compared, never subtracted: 10**400 is a JSON number too.
        if not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and now - MAX_CLAIM_YEARS_SECONDS <= value <= now + MAX_CLAIM_YEARS_SECONDS
        ):
            return _invalid(f"The access token's {name} is not a time within 100 years of now.")
    return None


class TokenVerifier:
    """Checks an access token: a JWT signed (with an accepted algorithm) by a key the issuer publishes, whose `iss` is
    the issuer, whose `aud` holds the resource, that names its `sub` and `client_id` (RFC 9068), and that has not
    expired (give or take `LEEWAY_SECONDS`). The key always comes from the issuer's JWKS by the token's `kid`, never
    from the token (`jwk`, `jku`, `x5u`, `x5c`). Whatever a token holds, the answer is a `Grant` or a `Refusal`, never
    an exception: the header and claims are read as untrusted JSON of any shape."""

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
            return _NOT_A_JWT
        if not isinstance(header, dict) or not isinstance(unverified, dict):
            return _NOT_A_JWT
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            return _invalid("The access token is not signed with an accepted algorithm (RSA, ECDSA or EdDSA).")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in TOKEN_TYPES):
            return _invalid("The token is not an access token.")
        if kid is not None and not isinstance(kid, str):
            return _NOT_A_JWT
        # All before any key lookup: a foreign or malformed token never causes a fetch.
        if unverified.get("iss") != self.issuer:
            return _invalid("The access token was issued by another issuer.")
        malformed = _malformed_claims(unverified, time.time())
        if malformed is not None:
            return malformed
        try:
            key = await self.keys.key(kid, alg)
        except IssuerError as error:
            return Refusal(503, "temporarily_unavailable", str(error))
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
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as error:
            refusal = next((r for kind, r in _REFUSALS if isinstance(error, kind)), None)
            return refusal or _invalid("The access token is malformed.")
        return Grant(
            issuer=self.issuer,
            resource=self.resource,
            subject=claims["sub"],
            client_id=claims["client_id"],
            scopes=_scopes(claims),
            expires_at=int(claims["exp"]),
            fingerprint="sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16],
        )


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """RFC 9068's `scope`, split on ASCII spaces only (RFC 6749 3.3: a tab or a control character is part of a
    scope, never a separator), and `scp` (a string or a list, as Entra ID and Okta write it)."""
    scopes: set[str] = set()
    for claim in (claims.get("scope"), claims.get("scp")):
        if isinstance(claim, str):
            scopes.update(part for part in claim.split(" ") if part)
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
        keys = IssuerKeys(
            settings.oauth_issuer, max_stale_seconds=settings.oauth_keys_max_stale_seconds, transport=transport
        )
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
        client_id=grant.client_id,
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
