"""The issuer's key cache, through the token verifier, on virtual time: which requests wait for the issuer (only those
that need a load), how long keys are trusted, what withdrawn keys and failed loads do.

Each test runs on trio with `MockClock(autojump_threshold=0)` against the issuer played in process
(`tests.issuer.IssuerTransport`): time moves only when every task waits, so an issuer that hangs for 30 s costs
microseconds, yet the cache's deadline (`anyio.move_on_after`) and its clock (the event loop's, by default) see the
30 s pass. Latencies below are virtual seconds, exact: 0 means the request never waited on the issuer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import pytest

from mcp_server.auth import (
    FETCH_DEADLINE_SECONDS,
    REFRESH_SECONDS,
    RETRY_SECONDS,
    Grant,
    IssuerError,
    IssuerKeys,
    Refusal,
    TokenVerifier,
)
from tests.issuer import IssuerTransport
from tests.oidc import authorization_server, install

trio_testing = pytest.importorskip("trio.testing", reason="virtual time comes from trio's MockClock")

T = TypeVar("T")


def on_virtual_time(body: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(body, backend="trio", backend_options={"clock": trio_testing.MockClock(autojump_threshold=0)})


@asynccontextmanager
async def verifier(issuer: IssuerTransport, **options: Any) -> AsyncIterator[TokenVerifier]:
    """The verifier a server builds for `issuer` (with `options` for its key cache), its background loads running."""
    async with IssuerKeys(issuer.URL, transport=issuer.transport, **options) as keys:
        yield TokenVerifier(issuer.URL, issuer.resource, keys)


async def timed(verifier: TokenVerifier, token: str) -> tuple[Grant | Refusal, float]:
    started = anyio.current_time()
    verdict = await verifier.verify(token)
    return verdict, anyio.current_time() - started


def refused(verdict: Grant | Refusal, status: int, words: str) -> bool:
    return isinstance(verdict, Refusal) and verdict.status == status and words in verdict.description


def test_requests_whose_key_is_held_never_wait_while_the_issuer_hangs() -> None:
    """The audit's case: keys loaded, then the metadata endpoint hangs 30 s and a junk token names an unknown `kid`.
    The junk token waits for its one refetch (cut at the deadline, then refused 401); valid tokens, sent while it
    waits, after it failed, and once a refresh is due (started in the background, hanging too), take 0 s each. Three
    loads in all: the first, the junk token's, the scheduled refresh; never one per request."""
    issuer = IssuerTransport()

    async def run() -> tuple[list[float], Grant | Refusal, float, int]:
        latencies: list[float] = []
        junk: list[tuple[Grant | Refusal, float]] = []
        async with verifier(issuer) as check:
            assert isinstance(await check.verify(issuer.good()), Grant)
            issuer.metadata = "hang"

            async def send_junk() -> None:
                junk.append(await timed(check, issuer.good(header={"kid": "nobody-publishes-this"})))

            async def valid_every_second(count: int) -> None:
                for _ in range(count):
                    await anyio.sleep(1)
                    verdict, took = await timed(check, issuer.good())
                    assert isinstance(verdict, Grant)
                    latencies.append(took)

            async with anyio.create_task_group() as group:
                group.start_soon(send_junk)
                group.start_soon(valid_every_second, 3)  # while the junk token's refetch hangs
            await valid_every_second(3)  # after it failed
            await anyio.sleep(REFRESH_SECONDS)
            await valid_every_second(3)  # a refresh is due: it starts, hangs, and fails in the background
            await anyio.sleep(FETCH_DEADLINE_SECONDS)
            await valid_every_second(3)
        return latencies, junk[0][0], junk[0][1], issuer.hits["metadata"]

    latencies, junk, junk_took, loads = on_virtual_time(run)
    assert latencies == [0.0] * 12
    assert refused(junk, 401, "a key the issuer does not publish") and junk_took == FETCH_DEADLINE_SECONDS
    assert loads == 3


@pytest.mark.parametrize("where", ["metadata", "jwks"])
@pytest.mark.parametrize("behaviour", ["hang", "drip"])
def test_a_load_ends_at_its_one_deadline_however_slowly_the_issuer_sends(where: str, behaviour: str) -> None:
    """Twenty requests before any key is held share one load; the issuer hangs, or drips its document a byte a
    second (each byte well inside any per-read timeout): at `FETCH_DEADLINE_SECONDS` the load ends, each request is
    refused 503 ("cannot be loaded"), and the endpoint was asked once. `load` (what `check` runs) says which URL."""
    issuer = IssuerTransport()
    setattr(issuer, "metadata" if where == "metadata" else "jwks_behaviour", behaviour)

    async def run() -> tuple[list[tuple[Grant | Refusal, float]], str]:
        verdicts: list[tuple[Grant | Refusal, float]] = []
        async with verifier(issuer) as check:

            async def one() -> None:
                verdicts.append(await timed(check, issuer.good()))

            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(one)
        keys = IssuerKeys(issuer.URL, transport=issuer.transport)
        with pytest.raises(IssuerError) as caught:
            await keys.load()
        await keys.aclose()
        return verdicts, str(caught.value)

    verdicts, error = on_virtual_time(run)
    assert len(verdicts) == 20
    assert all(refused(v, 503, "cannot be loaded") and took == FETCH_DEADLINE_SECONDS for v, took in verdicts)
    assert issuer.hits[where] == 2  # once for the twenty requests, once for `load`
    url = issuer.URL + ("/.well-known/oauth-authorization-server" if where == "metadata" else "/jwks")
    assert error == f"{url} did not answer within {FETCH_DEADLINE_SECONDS:g} s"


def test_a_document_over_the_size_limit_is_not_read_whole() -> None:
    """A JWKS of 600 KB (the limit is 512 KiB) fails the load, in words."""
    issuer = IssuerTransport()
    issuer.keys = "huge"

    async def run() -> str:
        keys = IssuerKeys(issuer.URL, transport=issuer.transport)
        with pytest.raises(IssuerError) as caught:
            await keys.load()
        await keys.aclose()
        return str(caught.value)

    assert "is larger than 524288 bytes" in on_virtual_time(run)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"metadata": "redirect"}, "oauth-authorization-server answered HTTP 302"),
        ({"jwks_behaviour": "redirect"}, "the JWKS at https://issuer.example/jwks answered HTTP 302"),
        ({"jwks_uri": "http://keys.example/jwks"}, "names no https:// jwks_uri"),
        ({"jwks_uri": "http://127.0.0.1:9/jwks"}, None),
    ],
    ids=["metadata-redirect", "jwks-redirect", "plain-http-jwks", "loopback-http-jwks"],
)
def test_redirects_are_not_followed_and_a_plain_http_jwks_uri_only_on_loopback(
    change: dict[str, str], problem: str | None
) -> None:
    """A redirect is an answer that failed (it is never followed, so keys cannot be fetched from where the issuer did
    not say); a `jwks_uri` over plain http:// is used only on loopback."""
    issuer = IssuerTransport()
    for name, value in change.items():
        setattr(issuer, name, value)

    async def run() -> str | None:
        keys = IssuerKeys(issuer.URL, transport=issuer.transport)
        try:
            await keys.load()
        except IssuerError as error:
            return str(error)
        finally:
            await keys.aclose()
        return None

    error = on_virtual_time(run)
    assert (error is None) if problem is None else (error is not None and problem in error), error


def test_a_failed_refresh_keeps_the_keys_and_their_age_and_is_retried_only_after_the_cooldown() -> None:
    """The refresh due at 300 s hangs and fails at 305 s: tokens pass throughout, no load starts again before 315 s
    (`RETRY_SECONDS` after the failure ended), one starts then; the failures do not renew the keys, so at 3600 s
    after their load they are no longer used (503, saying they are too old), even though every refresh failed."""
    issuer = IssuerTransport()

    async def run() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with verifier(issuer) as check:
            loaded_at = anyio.current_time()
            assert isinstance(await check.verify(issuer.good()), Grant)
            issuer.metadata = "hang"

            async def at(offset: float) -> tuple[Grant | Refusal, float]:
                await anyio.sleep(loaded_at + offset - anyio.current_time())
                return await timed(check, issuer.good())

            async def loads_started() -> int:
                await anyio.sleep(0.001)  # a load started in the background reaches the issuer
                return issuer.hits["metadata"]

            seen["300"] = await at(REFRESH_SECONDS)  # the refresh starts, in the background
            seen["loads at 314"] = (await at(314), await loads_started())
            seen["loads at 315"] = (await at(315), await loads_started())
            seen["3599"] = await at(3599)
            seen["3600"] = await at(3600)
        return seen

    seen = on_virtual_time(run)
    assert isinstance(seen["300"][0], Grant) and seen["300"][1] == 0
    (at_314, took_314), loads_314 = seen["loads at 314"]
    (at_315, took_315), loads_315 = seen["loads at 315"]
    assert isinstance(at_314, Grant) and isinstance(at_315, Grant) and took_314 == took_315 == 0
    assert (loads_314, loads_315) == (2, 3)
    assert isinstance(seen["3599"][0], Grant) and seen["3599"][1] == 0
    verdict, took = seen["3600"]
    assert refused(verdict, 503, "signing keys are over 3600 s old and it cannot be reached")
    assert took == FETCH_DEADLINE_SECONDS - 1  # it joined the refresh the request at 3599 s started: one load


def test_past_max_stale_requests_share_one_fresh_load_and_wait_for_nothing_while_it_cools_down() -> None:
    """With `max_stale_seconds` 60 (refreshed every 30 s) and the issuer hanging once the keys are loaded, twenty
    requests at 61 s share one load and are refused 503 when it fails; requests in the cooldown that follows are
    refused at once, without a load; once the issuer answers again, the first request after the cooldown loads the
    keys (waiting for that load only) and passes, and so do those after it."""
    issuer = IssuerTransport()

    async def run() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with verifier(issuer, max_stale_seconds=60) as check:
            assert isinstance(await check.verify(issuer.good()), Grant)
            issuer.metadata = "hang"
            await anyio.sleep(61)
            burst: list[tuple[Grant | Refusal, float]] = []

            async def one() -> None:
                burst.append(await timed(check, issuer.good()))

            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(one)
            seen["burst"], seen["loads"] = burst, issuer.hits["metadata"]
            seen["cooling"] = await timed(check, issuer.good())
            issuer.metadata = "answer"
            await anyio.sleep(RETRY_SECONDS)
            seen["recovered"] = [await timed(check, issuer.good()) for _ in range(3)]
            seen["loads after"] = issuer.hits["metadata"]
        return seen

    seen = on_virtual_time(run)
    assert len(seen["burst"]) == 20 and seen["loads"] == 2
    assert all(refused(v, 503, "over 60 s old") and took == FETCH_DEADLINE_SECONDS for v, took in seen["burst"])
    assert refused(seen["cooling"][0], 503, "over 60 s old") and seen["cooling"][1] == 0
    assert [isinstance(v, Grant) for v, _ in seen["recovered"]] == [True] * 3
    assert [took for _, took in seen["recovered"]] == [0.0] * 3  # the issuer answers at once: a load costs 0 s here
    assert seen["loads after"] == 3


@pytest.mark.parametrize("keys", ["withdrawn", "encryption-only"])
def test_keys_the_issuer_withdraws_stop_working_at_the_next_refresh(keys: Any) -> None:
    """The issuer answers `{"keys": []}` (or only an encryption key and a symmetric one): that is an answer, not a
    failure. The refresh due at 300 s (which the request that finds it due does not wait for) replaces the keys with
    none, and from then on the token, signed with the withdrawn key, is refused 401."""
    issuer = IssuerTransport()

    async def run() -> list[Grant | Refusal]:
        verdicts = []
        async with verifier(issuer) as check:
            verdicts.append(await check.verify(issuer.good()))
            issuer.keys = keys
            await anyio.sleep(REFRESH_SECONDS - 1)
            verdicts.append(await check.verify(issuer.good()))
            await anyio.sleep(1)
            verdicts.append(await check.verify(issuer.good()))  # finds the refresh due, starts it, is not held up
            await anyio.sleep(0.001)
            verdicts.append(await check.verify(issuer.good()))
        return verdicts

    first, before, due, after = on_virtual_time(run)
    assert isinstance(first, Grant) and isinstance(before, Grant) and isinstance(due, Grant)
    assert refused(after, 401, "a key the issuer does not publish")


def test_a_new_key_is_found_by_one_shared_fetch_and_unknown_keys_refetch_at_most_once_per_cooldown() -> None:
    """The issuer rotates to a new key: twenty tokens naming it, at once, cause one fetch and all pass. Tokens naming a
    key nobody publishes cause no further fetch until `RETRY_SECONDS` after that one ended, then one."""
    issuer = IssuerTransport()

    async def run() -> tuple[list[Grant | Refusal], list[int]]:
        verdicts: list[Grant | Refusal] = []
        fetches = []
        async with verifier(issuer) as check:
            assert isinstance(await check.verify(issuer.good()), Grant)
            issuer.kid, issuer.public = "issuer-key-2", {**issuer.public, "kid": "issuer-key-2"}

            async def one() -> None:
                verdicts.append(await check.verify(issuer.good()))

            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(one)
            fetches.append(issuer.hits["jwks"])
            for _ in range(5):
                assert refused(await check.verify(issuer.good(header={"kid": "forged"})), 401, "does not publish")
            fetches.append(issuer.hits["jwks"])
            await anyio.sleep(RETRY_SECONDS)
            assert refused(await check.verify(issuer.good(header={"kid": "forged"})), 401, "does not publish")
            fetches.append(issuer.hits["jwks"])
        return verdicts, fetches

    verdicts, fetches = on_virtual_time(run)
    assert len(verdicts) == 20 and all(isinstance(v, Grant) for v in verdicts)
    assert fetches == [2, 2, 3]


@pytest.mark.anyio
async def test_a_key_is_used_only_with_an_algorithm_of_its_kind() -> None:
    """oidc-provider's RSA key (published for RS256) never verifies as ES256, nor as another RSA algorithm."""
    with authorization_server(install()) as idp:
        kid = idp.public_jwks()["keys"][0]["kid"]
        async with IssuerKeys(idp.issuer) as keys:
            assert await keys.key(kid, "RS256") is not None
            assert await keys.key(kid, "ES256") is None and await keys.key(kid, "PS256") is None


def test_check_says_when_the_issuer_publishes_no_usable_key() -> None:
    """A JWKS that loads but holds no signing key is what `check` reports as failed: no token could pass."""
    from mcp_server.check import probe_issuer

    issuer = IssuerTransport()
    issuer.keys = "withdrawn"
    verdict = on_virtual_time(lambda: probe_issuer(issuer.URL, transport=issuer.transport))
    assert verdict.outcome == "failed" and "holds no signing key this server can use" in verdict.detail
