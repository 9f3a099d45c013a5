"""The one request path both vendors share: cache and coalescing, deadline, retries, decoding, size limit, byte
budget, error mapping."""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import random
import re
import ssl
import time
import urllib.request
import zlib
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx2
import pydantic_core

from mcp_server import __version__
from mcp_server.config import ENV_VARS, VendorSettings
from mcp_server.errors import (
    PROVIDER_NAMES,
    BadUpstreamResponse,
    Forbidden,
    NotConfigured,
    NotFound,
    Provider,
    RateLimited,
    Unauthorized,
    Unreachable,
    UpstreamError,
    UpstreamFault,
    UpstreamTimeout,
)
from mcp_server.redaction import Redactor
from mcp_server.upstream.budget import Body, ByteBudget, current_answer
from mcp_server.upstream.cache import ResponseCache
from mcp_server.upstream.clock import SYSTEM_CLOCK, Clock

logger = logging.getLogger(__name__)

USER_AGENT = f"retell-tela-mcp/{__version__}"
KEEPALIVE_CONNECTIONS = 20  # idle connections kept per vendor (httpx's default); more are closed as they free up
# A call never outlives this (unless timeout_seconds alone is longer), so it ends before the usual 60 s client limit.
CALL_BUDGET_SECONDS = 50.0
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
ERROR_BODY_LIMIT = 64 * 1024
RETRY_AFTER_MAX_SECONDS = 86_400.0
VENDOR_MESSAGE_LIMIT = 300

_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


def from_json(data: bytes, *, allow_inf_nan: bool = True) -> Any:
    """pydantic-core's parser, keeping only object keys in its process-wide string cache. By default it also keeps
    up to 16,384 short string values, which outlive the answer they came from: scattered among a large answer's
    freed objects, each pins a 1 MiB pymalloc arena, and after four 9.6 MiB answers the process stayed ~85 MiB up
    (measured with `bench/memory.py`). Keys repeat and are few; values rarely repeat. Also ~20% faster here."""
    return pydantic_core.from_json(data, allow_inf_nan=allow_inf_nan, cache_strings="keys")


@dataclass(frozen=True)
class RequestPolicy:
    """How hard to try: per-attempt timeout, retries, body limit; all from Settings."""

    timeout_seconds: float
    max_retries: int
    max_response_bytes: int
    call_budget_seconds: float = CALL_BUDGET_SECONDS
    max_connections: int = 100  # open at once to the vendor; further requests wait for one to free up

    @property
    def budget_seconds(self) -> float:
        """The one deadline per call: every attempt and every wait between attempts fits inside it."""
        return max(self.call_budget_seconds, self.timeout_seconds)


class OpenedOnFirstRequest(httpx2.AsyncBaseTransport):
    """A vendor's connection pool, made at its first request rather than at start-up. Making one loads the TLS
    trust store and the pool's machinery (~90 ms in a fresh process, more than all the rest the server adds to the
    SDK's own start), which a session that lists the tools and never calls this vendor does not need. Still one
    pool per vendor for the life of the process, closed with its client."""

    def __init__(self, make: Callable[[], httpx2.AsyncBaseTransport]) -> None:
        self._make = make
        self._transport: httpx2.AsyncBaseTransport | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._transport is None:
            self._transport = self._make()
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def open_client(
    vendor: VendorSettings,
    policy: RequestPolicy,
    transport: httpx2.AsyncBaseTransport | None,
    tls: Callable[[], ssl.SSLContext],
) -> httpx2.AsyncClient:
    """The long-lived client for one vendor: its base URL, its key only, our User-Agent, no redirects. Its pool
    (`upstream/pool.py`) is made at the first request, with the TLS context `tls` gives (both vendors share one).
    httpx applies the environment's proxy settings (`HTTPS_PROXY`, `NO_PROXY`, the system's on macOS and Windows)
    only to a client that makes its own pool: where any proxy is set, httpx makes it, at once, as it always did."""
    assert vendor.api_key is not None
    limits = httpx2.Limits(max_connections=policy.max_connections, max_keepalive_connections=KEEPALIVE_CONNECTIONS)
    if transport is None and not urllib.request.getproxies():
        transport = OpenedOnFirstRequest(lambda: vendor_pool(tls(), limits))
    return httpx2.AsyncClient(
        base_url=vendor.base_url,
        headers={
            "Authorization": f"Bearer {vendor.api_key.get_secret_value()}",
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": USER_AGENT,
        },
        timeout=httpx2.Timeout(policy.timeout_seconds),
        # A redirect could carry the Authorization header to another host: report it instead of following it.
        follow_redirects=False,
        limits=limits,
        transport=transport,
    )


def vendor_pool(ssl_context: ssl.SSLContext, limits: httpx2.Limits) -> httpx2.AsyncBaseTransport:
    """A vendor's connection pool (`upstream/pool.py`), imported only now: httpcore2 takes ~60 ms to import."""
    from mcp_server.upstream.pool import VendorPool

    return VendorPool(ssl_context, limits)


# Query parameters as (name, value) pairs: a name may repeat (Tela's `promptVersionIds`).
Params = Sequence[tuple[str, str]]

# How the current task's last get_object was answered: "hit" (cache), "miss" (it asked the vendor), "shared"
# (it joined an identical request in flight), "none" (no lookup: the call failed before). Read for the log line.
cache_status: ContextVar[str] = ContextVar("cache_status", default="none")


@dataclass
class _Flight:
    """One upstream request that identical calls arriving meanwhile wait on; neither result nor error: abandoned.
    `deadline` is its leader's; `ran_out` says its error is a timeout that came because that deadline passed."""

    deadline: float
    done: anyio.Event = field(default_factory=anyio.Event)
    result: dict[str, Any] | None = None
    error: UpstreamError | None = None
    ran_out: bool = False


@dataclass(frozen=True)
class Effect:
    """What a write does at the vendor, in the words of an error once the request may have reached it: `what`
    happens ("the run" ... "started"), what the key may not do when refused (`action`), and where to `check`
    before trying again."""

    what: str
    done: str
    check: str
    action: str

    def advice(self, how_sure: str) -> str:
        """ ", so the run may have started. Check ... before trying again; do not simply retry." """
        return f", so {self.what} {how_sure} {self.done}. Check {self.check} before trying again; do not simply retry."


def run_effect(check: str) -> Effect:
    """A request that starts a run, found again at `check`."""
    return Effect("the run", "started", check, "start it")


def made_effect(what: str, check: str) -> Effect:
    """A request that creates `what`, found again at `check`."""
    return Effect(what, "been created", check, "create it")


def changed_effect(what: str, check: str) -> Effect:
    """A request that changes `what`, seen at `check`."""
    return Effect(what, "been changed", check, "change it")


@dataclass(frozen=True)
class _Exchange:
    """One request as the request path sees it. `effect` is set for a write (a run started, a test saved, a draft
    made): such a request is never sent again once it may have reached the vendor, and its errors say where to
    look."""

    method: str
    path: str
    subject: str
    params: Params | None = None
    body: dict[str, Any] | None = None
    items: bool = False
    envelope: bool = False
    effect: Effect | None = None


# A vendor's answer: the JSON object.
_Answer = dict[str, Any]


@dataclass(frozen=True)
class _Failed:
    """How one attempt failed: the contract error (its `is_retryable` decides another try) and the vendor's wait."""

    error: UpstreamError
    retry_after: float | None = None


class VendorHTTP:
    """Sends one vendor's requests and turns every failure into an `UpstreamError`."""

    def __init__(
        self,
        provider: Provider,
        client: httpx2.AsyncClient,
        policy: RequestPolicy,
        redact: Redactor,
        *,
        cache: ResponseCache | None = None,
        clock: Clock = SYSTEM_CLOCK,
        budget: ByteBudget | None = None,
    ) -> None:
        self.provider: Provider = provider
        self.name = PROVIDER_NAMES[provider]
        self._client = client
        self._policy = policy
        self._redact = redact
        self._cache = cache
        self._clock = clock
        self._budget = budget or ByteBudget(policy.max_response_bytes)
        self._flights: dict[str, _Flight] = {}
        # Absolute URLs built here: httpx's base_url merge re-parses every URL, which cost more than our whole
        # request preparation. IDs are checked to a safe alphabet before they get here, so joining is exact.
        self._base = str(client.base_url).rstrip("/")

    def __repr__(self) -> str:
        return f"VendorHTTP({self.provider!r}, {str(self._client.base_url)!r})"

    def deadline(self) -> float:
        """When a call starting now must be answered: what a call making several requests hands to each of them."""
        return self._clock.now() + self._policy.budget_seconds

    async def get_object(
        self,
        path: str,
        *,
        subject: str,
        params: Params | None = None,
        ttl: Callable[[dict[str, Any]], float] = lambda obj: 0.0,
        items: bool = False,
        envelope: bool = False,
        fresh: bool = False,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """GET `path` and return its JSON object. `subject` names the object in messages ("test run 'abc'");
        `params` are query pairs (a name may repeat); `ttl(obj)` says how long a successful answer may be served
        from the cache (0: not at all). With `items`, the vendor answers a JSON array, returned as
        `{"items": [...]}` (a structured MCP result is an object); with `envelope` (a vendor that does not document
        whether it answers an array or an object holding one) either is taken, an array as `{"items": [...]}`.
        `fresh` skips the cache lookup (polling must see the vendor's current answer); the answer is still cached.
        `deadline` (on this VendorHTTP's clock) is the calling tool's, shared by all its requests; without it the
        request has the whole call budget.

        Identical requests at the same time share one upstream request: the first caller makes it, the others
        wait for its answer, and the vendor's answer (an object, a 404, a 401, a 5xx after retries) is theirs too.
        Two outcomes belong to the first caller alone, and after them each waiter with time left asks again: its
        cancellation (its request is aborted at once, so nobody's call is held hostage to it), and a timeout
        because its own deadline passed, when the waiter's deadline is later. Asking again goes through the cache
        and the flights like a new call, so waiters asking again share one new request between them; every
        request is still some caller's own, so there are never more requests than calls."""
        # Keyed by vendor too: both vendors share one cache, bounded as a whole.
        key = f"{self.provider}:{path}?{urlencode(sorted(params))}" if params else f"{self.provider}:{path}"
        deadline = self.deadline() if deadline is None else min(deadline, self.deadline())
        while True:
            if self._cache is not None and not fresh and (hit := self._cache.get(key)) is not None:
                cache_status.set("hit")
                cached: dict[str, Any] = from_json(hit)  # a new object each time: callers may edit it
                return cached
            flight = self._flights.get(key)
            if flight is None:
                break
            cache_status.set("shared")
            with anyio.move_on_after(max(0.0, deadline - self._clock.now())):
                await flight.done.wait()
            if not flight.done.is_set():
                raise self._timeout_error(1, None, deadline)
            if flight.result is not None:
                return flight.result
            if flight.error is not None and not (
                flight.ran_out and deadline > flight.deadline and not self._out_of_time(deadline)
            ):
                raise flight.error
            # the caller that made the request gave up, or ran out of time this call still has: ask again (from
            # the cache, a new flight, or our own)

        cache_status.set("miss")
        flight = self._flights[key] = _Flight(deadline)
        try:
            exchange = _Exchange("GET", path, subject, params=params, items=items, envelope=envelope)
            flight.result = self._remember(key, await self._send(exchange, deadline), ttl)
            return flight.result
        except UpstreamError as error:
            flight.error = error
            flight.ran_out = isinstance(error, UpstreamTimeout) and self._out_of_time(deadline)
            raise
        finally:
            del self._flights[key]
            flight.done.set()

    async def write_object(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        *,
        subject: str,
        effect: Effect,
        params: Params | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Send a JSON body that changes something at the vendor (POST, PUT or PATCH) and return its JSON object.
        Never cached or shared, and sent again only when the vendor's answer proves nothing happened (a 429, a
        refused connection); any other failure says what may have happened (`effect`) and where to look."""
        cache_status.set("none")
        deadline = self.deadline() if deadline is None else min(deadline, self.deadline())
        return await self._send(_Exchange(method, path, subject, params=params, body=body, effect=effect), deadline)

    async def post_read(
        self, path: str, body: dict[str, Any], *, subject: str, params: Params | None = None, deadline: float
    ) -> dict[str, Any]:
        """POST a read (Retell lists its agents with a POST): retried like any read, never cached or shared, since
        its answer depends on a body the cache key does not hold."""
        cache_status.set("none")
        deadline = min(deadline, self.deadline())
        return await self._send(_Exchange("POST", path, subject, params=params, body=body), deadline)

    def _remember(self, key: str, obj: dict[str, Any], ttl: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
        """Cache the answer as compact JSON for `ttl(obj)` seconds; an answer not to be cached (most are not: pages,
        Tela's objects, unfinished runs) is never serialised here, and drops any older one kept under its key."""
        if self._cache is not None:
            seconds = ttl(obj)
            if seconds > 0:
                self._cache.put(key, pydantic_core.to_json(obj), ttl=seconds)
            else:
                self._cache.discard(key)
        return obj

    async def _send(self, exchange: _Exchange, deadline: float) -> _Answer:
        """One request's attempts: retried while the error itself says so, with backoff, all before `deadline`."""
        clock = self._clock
        attempts = 0
        while True:
            attempts += 1
            outcome = await self._try(exchange, attempts, deadline)
            if not isinstance(outcome, _Failed):
                return outcome
            error, wait = outcome.error, outcome.retry_after
            delay = wait if wait is not None else _backoff(attempts)
            if not error.is_retryable or attempts > self._policy.max_retries:
                raise error
            if clock.now() + delay >= deadline:
                # Sleeping would outlive the call's deadline: answer now, saying when to come back.
                if error.retry_after_seconds is None and wait is not None:
                    error.retry_after_seconds = wait
                raise error
            logger.debug("%s %s: %s; retry %d in %.2fs", self.name, exchange.path, error.code, attempts, delay)
            await clock.sleep(delay)

    async def _try(self, exchange: _Exchange, attempts: int, deadline: float) -> _Answer | _Failed:
        """One attempt within its time limit (the timeout, or less when the call's deadline is nearer)."""
        try:
            with anyio.fail_after(min(self._policy.timeout_seconds, max(deadline - self._clock.now(), 0.0))):
                return await self._attempt(exchange, attempts)
        except (TimeoutError, httpx2.TimeoutException) as exc:
            # Only a connection never made (or never taken from the pool) proves the request was not sent.
            unsent = isinstance(exc, httpx2.ConnectTimeout | httpx2.PoolTimeout)
            return _Failed(self._timeout_error(attempts, None if unsent else exchange.effect, deadline))
        except httpx2.TransportError as exc:
            unsent = isinstance(exc, httpx2.ConnectError)
            return _Failed(self._transport_error(exc, attempts, None if unsent else exchange.effect))

    async def _attempt(self, exchange: _Exchange, attempts: int) -> _Answer | _Failed:
        url = httpx2.URL(self._base + exchange.path)
        params = tuple(exchange.params) if exchange.params else None
        async with self._client.stream(exchange.method, url, params=params, json=exchange.body) as response:
            return await self._take_answer(response, exchange, attempts)

    async def _take_answer(self, response: httpx2.Response, exchange: _Exchange, attempts: int) -> _Answer | _Failed:
        """The answer's body read within its limit, then mapped: the object, or how the attempt failed. The body
        is held in the process's byte budget until it is parsed: its size, when the headers tell it exactly, else
        its decoded bytes, counted as they arrive."""
        status, ok = response.status_code, response.is_success
        limit = self._policy.max_response_bytes if ok else ERROR_BODY_LIMIT
        size = _known_size(response)
        if (kept_by := current_answer.get()) is not None:
            kept_by.release()  # the call has moved on from the body it read before
        async with self._budget.body(limit if size is None else min(size, limit)) as held:
            try:
                body = await _read_body(response, held, limit, size, truncate=not ok)
            except httpx2.TransportError as exc:
                if not (ok and exchange.effect):
                    raise
                # The vendor said yes before the connection broke: the write has probably been done.
                return _Failed(self._transport_error(exc, attempts, exchange.effect, "has probably"))
            if isinstance(body, _Unreadable):
                raise self._bad_body(status, body.problem, exchange, advice=body.advice)
            if not ok:
                return self._status_error(response, body, exchange)
            answer = self._parse(body, status, exchange)
            if kept_by is not None:
                kept_by.keep(held)  # its bytes stay counted until the answer made of it has been written
            return answer

    def _bad_body(self, status: int, problem: str, exchange: _Exchange, advice: str = "") -> BadUpstreamResponse:
        """An answer whose body cannot be used. After a 2xx to a run request the run started all the same, so the
        advice is where to find it; otherwise `advice`, or that the fault is on the vendor's side."""
        if exchange.effect and 200 <= status < 300:
            advice = exchange.effect.advice("has probably")
        elif not advice:
            advice = f". This is a fault on {self.name}'s side or in a proxy between us; try again later."
        return BadUpstreamResponse(
            f"{self.name} answered HTTP {status} with {problem}{advice}", provider=self.provider, status=status
        )

    def _parse(self, body: bytes, status: int, exchange: _Exchange) -> _Answer:
        """The answer as a JSON object: the body itself, or with `items` the body's array as `{"items": [...]}`."""
        expected: type | tuple[type, ...] = list if exchange.items else dict
        wanted = "an array" if exchange.items else "an object"
        if exchange.envelope:
            expected, wanted = (list, dict), "an array or an object"
        try:
            # NaN and Infinity are not JSON; neither is a number too large for a float (1e999 would parse as inf).
            document = from_json(body, allow_inf_nan=False) if body.strip() else None
        except (ValueError, RecursionError):
            raise self._bad_body(status, "a body that is not valid JSON", exchange) from None
        if not all_finite(document):
            raise self._bad_body(status, "a body that is not valid JSON (a number too large for a float)", exchange)
        if not isinstance(document, expected):
            kind = "an empty body" if document is None else f"a JSON {_json_kind(document)} instead of {wanted}"
            raise self._bad_body(status, kind, exchange)
        if isinstance(document, list):
            return {"items": document}
        assert isinstance(document, dict)
        return document

    def _status_error(self, response: httpx2.Response, body: bytes, exchange: _Exchange) -> _Failed:
        status, subject, effect = response.status_code, exchange.subject, exchange.effect
        vendor_message = self._vendor_message(body)
        said = f": {vendor_message}" if vendor_message else ""
        provider, name = self.provider, self.name
        if status == 401:
            return _Failed(
                Unauthorized(
                    f"{name} rejected the API key (HTTP 401){said}. Check {_key_hint(provider)}.",
                    provider=provider,
                    status=status,
                )
            )
        if status == 403:
            return _Failed(
                Forbidden(
                    f"{name} refused access to {subject} (HTTP 403){said}. The API key may not "
                    + (f"{effect.action}." if effect else "read it."),
                    provider=provider,
                    status=status,
                )
            )
        if status == 404 or (status == 422 and provider == "retell" and _says_missing(vendor_message)):
            return _Failed(NotFound(f"{name} has no {subject} (HTTP {status}).", provider=provider, status=status))
        if status == 429:
            # A refusal: nothing was started, so even a request that starts a run may be sent again.
            wait = _retry_after(response.headers)
            return _Failed(
                RateLimited(
                    f"{name} is rate-limiting requests (HTTP 429){said}. Wait before trying again.",
                    provider=provider,
                    status=status,
                    retry_after_seconds=wait,
                ),
                wait,
            )
        if 300 <= status < 400:
            return _Failed(
                UpstreamFault(
                    f"{name} answered with a redirect (HTTP {status}), which is not followed so the API key stays "
                    f"with {name}. Check {provider}.base_url.",
                    provider=provider,
                    status=status,
                )
            )
        if status >= 500:
            message = f"{name} failed with HTTP {status}{said}" + (
                effect.advice("may have") if effect else ". Try again later."
            )
        else:
            message = f"{name} rejected the request for {subject} (HTTP {status}){said}."
        # A run request gets no second try after anything but a refusal: the vendor may have acted on it.
        fault = UpstreamFault(message, provider=provider, status=status, retryable=False if effect else None)
        return _Failed(fault, _retry_after(response.headers) if fault.is_retryable else None)

    def _vendor_message(self, body: bytes) -> str:
        """The vendor's own explanation: `message` or `error.message` (or `error`); clipped, on one line, no secrets."""
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return ""
        message: object = None
        if isinstance(document, dict):
            message = document.get("message")
            error = document.get("error")
            if not isinstance(message, str) and isinstance(error, dict):
                message = error.get("message")
            elif not isinstance(message, str):
                message = error
        if not isinstance(message, str):
            return ""
        clean = _CONTROL_OR_SPACE.sub(" ", message).strip()
        if len(clean) > VENDOR_MESSAGE_LIMIT:
            clean = clean[: VENDOR_MESSAGE_LIMIT - 1] + "…"
        return self._redact(clean)

    def _out_of_time(self, deadline: float) -> bool:
        """Whether a call with this deadline has no time left for a request (a millisecond is none)."""
        return deadline - self._clock.now() <= 0.001

    def _timeout_error(self, attempts: int, effect: Effect | None, deadline: float) -> UpstreamTimeout:
        if self._out_of_time(deadline):
            fact = f"{self.name} did not answer in the time this call had left ({_attempts(attempts)})"
        else:
            fact = f"{self.name} did not answer within {self._policy.timeout_seconds:g} s ({_attempts(attempts)})"
        if effect:
            return UpstreamTimeout(fact + effect.advice("may have"), provider=self.provider, retryable=False)
        return UpstreamTimeout(f"{fact}. Try again later, or raise timeout_seconds.", provider=self.provider)

    def _transport_error(
        self, exc: httpx2.TransportError, attempts: int, effect: Effect | None, how_sure: str = "may have"
    ) -> Unreachable:
        if isinstance(exc, httpx2.ConnectError):
            what = f"could not connect to {self.name} at {self._client.base_url.host}"
        elif isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
            what = f"the connection to {self.name} broke before the answer was complete"
        else:
            what = f"the request to {self.name} failed ({type(exc).__name__})"
        fact = f"{what[:1].upper()}{what[1:]} ({_attempts(attempts)})"
        if effect:
            return Unreachable(fact + effect.advice(how_sure), provider=self.provider, retryable=False)
        return Unreachable(f"{fact}. Check the network and {self.provider}.base_url.", provider=self.provider)


def require(http: VendorHTTP | None, provider: Provider) -> VendorHTTP:
    """The vendor's request path, or `NotConfigured` saying how to give it a key."""
    if http is not None:
        return http
    raise NotConfigured(
        f"{PROVIDER_NAMES[provider]} is not configured: set {_key_hint(provider)} and restart the server.",
        provider=provider,
    )


def _key_hint(provider: Provider) -> str:
    return f"{ENV_VARS[provider + '.api_key']} (or {provider}.api_key in the config file)"


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


@dataclass(frozen=True)
class _Unreadable:
    """Why a body cannot be used, as `_bad_body` words it: the problem, and the advice when it is not the usual."""

    problem: str
    advice: str = ""


async def _read_body(
    response: httpx2.Response, held: Body, limit: int, size: int | None, *, truncate: bool
) -> bytes | _Unreadable:
    """The body, decoded, of at most `limit` bytes, reading no further than that so memory stays bounded (with
    `truncate`, its first `limit` bytes). A body of known `size` is counted whole in the byte budget (`held`)
    before it is read, so it never waits half-read; otherwise each decoded piece (at most DECODE_PIECE_BYTES, or
    what one read from the network gave) is counted before it is kept, and a body waiting for room holds that one
    piece uncounted. A body that is not the coding its Content-Encoding says, or whose compressed stream is cut
    short, is `_Unreadable`, as is one over the limit without `truncate`."""
    declared = response.headers.get("content-length", "")
    too_large = _Unreadable(
        f"a body larger than the {limit:,}-byte limit",
        "; raise max_response_bytes if this object is expected to be that large.",
    )
    if not truncate and ((declared.isdigit() and int(declared) > limit) or (size is not None and size > limit)):
        return too_large
    if size is not None:
        await held.cover(size)
    body = bytearray()
    try:
        decoder = _Decoder(_codings(response))
        async with contextlib.aclosing(_raw_chunks(response)) as chunks:
            async for chunk in chunks:
                for piece in decoder.decode(chunk):
                    if len(body) + len(piece) > limit:
                        if not truncate:
                            return too_large
                        piece = piece[: limit - len(body)]
                        await held.cover(limit)
                        return bytes(body + piece)
                    await held.cover(len(body) + len(piece))
                    body += piece
        decoder.end()
    except _CodingError as error:
        # Not a transport fault: the vendor (or a proxy) labelled the body with a coding it does not have, or
        # the compressed stream stopped short while the HTTP message around it came whole.
        coding = response.headers.get("content-encoding", "")
        if error.cut_short:
            return _Unreadable(
                f"a body that ends before the end of its {error.coding} stream (the answer was cut short)"
            )
        return _Unreadable(f"a body that is not the {coding!r} its Content-Encoding says")
    return bytes(body)


async def _raw_chunks(response: httpx2.Response) -> AsyncGenerator[bytes]:
    """The body as it came, still encoded. A response read when it was made (`httpx2.Response(content=...)`, as a
    mock transport gives) is already decoded: `_codings` has nothing left to undo."""
    if response.is_stream_consumed:
        yield response.content
        return
    async with contextlib.aclosing(response.aiter_raw()) as chunks:
        async for chunk in chunks:
            yield chunk


def _known_size(response: httpx2.Response) -> int | None:
    """The body's size once decoded, when the headers say it exactly: its Content-Length, with nothing to decode."""
    if response.is_stream_consumed:
        return len(response.content)
    declared = response.headers.get("content-length", "")
    return int(declared) if declared.isdigit() and not _codings(response) else None


# We decode what we ask for (`Accept-Encoding`, set in `open_client`), ourselves: httpx2's decoders take a gzip or
# deflate stream cut short for a whole one (zlib's `flush()` does not say whether the stream ended), so a body cut
# off after a complete JSON object would pass as the vendor's answer.
ACCEPT_ENCODING = "gzip, deflate"
MAX_CODINGS = 5  # stacked codings, as httpx allows: more is no real answer
DECODE_PIECE_BYTES = 64 * 1024  # decoded bytes made (and counted in the byte budget) at a time
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class _CodingError(Exception):
    """A body that is not the coding it claims; `cut_short` when its compressed stream stopped before its end."""

    def __init__(self, coding: str, *, cut_short: bool = False) -> None:
        super().__init__(coding)
        self.coding = coding
        self.cut_short = cut_short


class _Inflater:
    """Undoes one gzip or deflate coding, DECODE_PIECE_BYTES of output at a time, and knows whether its compressed
    stream reached its end. A gzip body may be several members (RFC 1952), with zero bytes between them as gzip
    pads; anything else after a member is not gzip. A deflate body may be zlib-wrapped (RFC 1950, as the standard
    says) or raw deflate (as some servers send), told apart by its first two bytes; what follows the end of a
    deflate stream is ignored, as httpx does."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib = zlib.decompressobj(_GZIP_WBITS) if coding == "gzip" else None
        self._head = b""  # deflate: its first bytes, until there are two to tell zlib-wrapped from raw
        self._fed = False  # no input at all is an empty body, not a cut stream

    def decode(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        guessed = False
        if self._zlib is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            guessed = _zlib_header(data)  # a raw stream may start with two bytes that look like one
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if guessed else -zlib.MAX_WBITS)
        more = True  # a full piece may leave output pending inside zlib: ask again even with no input left
        while data or more:
            if self._zlib.eof:
                if self.coding != "gzip":
                    return
                data = data.lstrip(b"\0")
                if not data:
                    return
                self._zlib = zlib.decompressobj(_GZIP_WBITS)  # the next member
            try:
                out = self._zlib.decompress(data, DECODE_PIECE_BYTES)
            except zlib.error:
                if not guessed:
                    raise _CodingError(self.coding) from None
                guessed, self._zlib = False, zlib.decompressobj(-zlib.MAX_WBITS)  # raw after all
                continue
            guessed = False
            if out:
                yield out
            data = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
            more = len(out) == DECODE_PIECE_BYTES

    def end(self) -> None:
        if self._fed and not (self._zlib is not None and self._zlib.eof):
            raise _CodingError(self.coding, cut_short=True)


def _zlib_header(data: bytes) -> bool:
    """Whether a deflate body starts with a zlib header (RFC 1950: method 8, check bits a multiple of 31)."""
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _codings(response: httpx2.Response) -> list[str]:
    """The codings we undo, in the order the vendor applied them. Others pass through as they are (httpx too passes
    codings it cannot decode), and so does a response httpx decoded when it was made."""
    if response.is_stream_consumed:
        return []
    values = response.headers.get_list("content-encoding", split_commas=True)
    return [coding for value in values if (coding := value.strip().lower()) in ("gzip", "deflate")]


class _Decoder:
    """A body's Content-Encoding undone, layer by layer (the last coding applied first)."""

    def __init__(self, codings: Sequence[str]) -> None:
        if len(codings) > MAX_CODINGS:
            raise _CodingError(", ".join(codings))
        self.layers = [_Inflater(coding) for coding in reversed(codings)]

    def decode(self, data: bytes) -> Iterator[bytes]:
        pieces: Iterator[bytes] = iter((data,))
        for layer in self.layers:
            pieces = _through(layer, pieces)
        return pieces

    def end(self) -> None:
        """Raise `_CodingError` if a compressed stream has not reached its end (the outermost is checked first)."""
        for layer in self.layers:
            layer.end()


def _through(layer: _Inflater, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from layer.decode(piece)


def _json_kind(value: object) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return kinds.get(type(value), "value")


def _says_missing(message: str) -> bool:
    lowered = message.lower()
    return not lowered or "find" in lowered or "not found" in lowered or "not exist" in lowered


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: a random wait up to 0.5 s, 1 s, 2 s, ... capped at 8 s."""
    return random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2 ** (attempt - 1)))


def _retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds the vendor asked us to wait: `retry-after-ms`, else `Retry-After` as seconds or an HTTP date.
    A value that is not a sane number of seconds (`inf`, `1e400`, `nan`, a date past year 9999, over a day) is
    ignored, so the error JSON only ever carries a finite `retry_after_seconds`."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        with contextlib.suppress(ValueError):
            if math.isfinite(wait := float(milliseconds) / 1000) and wait <= RETRY_AFTER_MAX_SECONDS:
                return max(0.0, wait)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        wait = float(value)
    except ValueError:
        try:
            wait = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
    return max(0.0, wait) if math.isfinite(wait) and wait <= RETRY_AFTER_MAX_SECONDS else None


def all_finite(value: object) -> bool:
    """Whether no number in a parsed document is NaN or infinite (1e999 parses as inf; Python's JSON readers take
    NaN and Infinity). A walk of the parsed document (~2 ms for a 4.6 MB page of 1,000 runs) costs less than any
    scan of its text, serialised or raw."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(all_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(all_finite(item) for item in value)
    return True
