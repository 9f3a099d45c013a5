"""The issuer's key cache on its own, against the real authorization server, with time as a dependency: how long a
key is trusted, when the keys are fetched again, and what a failed fetch keeps."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from mcp_server.auth import KEYS_MAX_AGE_SECONDS, UNKNOWN_KEY_COOLDOWN_SECONDS, IssuerError, IssuerKeys
from mcp_server.upstream.clock import Clock
from tests.oidc import AuthorizationServer, authorization_server, install

pytestmark = pytest.mark.anyio


class Now:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def idp() -> Iterator[AuthorizationServer]:
    with authorization_server(install()) as server:
        yield server


def kid_of(idp: AuthorizationServer) -> str:
    kid: str = idp.public_jwks()["keys"][0]["kid"]
    return kid


async def test_a_key_the_issuer_drops_is_trusted_until_the_cache_ages_then_no_longer(idp: AuthorizationServer) -> None:
    """Within `KEYS_MAX_AGE_SECONDS` of a load, lookups use the cache (no fetch), so a key the issuer has just dropped
    still verifies; once the cache is older, the next lookup loads the keys again and the dropped key is gone."""
    now = Now()
    keys = IssuerKeys(idp.issuer, clock=Clock(now=now))
    old = kid_of(idp)
    try:
        assert await keys.key(old, "RS256") is not None
        (new,) = idp.rotate()
        now.value += KEYS_MAX_AGE_SECONDS - 1
        assert await keys.key(old, "RS256") is not None and idp.stats()["jwks"] == 1
        now.value += 2
        assert await keys.key(old, "RS256") is None
        assert await keys.key(new, "RS256") is not None and idp.stats()["jwks"] == 2
    finally:
        await keys.aclose()


async def test_concurrent_lookups_of_a_new_key_share_one_fetch_and_later_unknown_keys_wait_for_the_cooldown(
    idp: AuthorizationServer,
) -> None:
    """Twenty requests naming a key not yet cached, at once, cause one fetch and all find it; a key nobody publishes
    causes no further fetch until `UNKNOWN_KEY_COOLDOWN_SECONDS` have passed, then one."""
    now = Now()
    keys = IssuerKeys(idp.issuer, clock=Clock(now=now))
    try:
        assert await keys.key(kid_of(idp), "RS256") is not None
        (new,) = idp.rotate()
        found = []

        async def look() -> None:
            found.append(await keys.key(new, "RS256"))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(look)
        assert all(key is not None for key in found) and len(found) == 20 and idp.stats()["jwks"] == 2
        for _ in range(5):
            assert await keys.key("nobody-publishes-this", "RS256") is None
        assert idp.stats()["jwks"] == 2
        now.value += UNKNOWN_KEY_COOLDOWN_SECONDS
        assert await keys.key("nobody-publishes-this", "RS256") is None and idp.stats()["jwks"] == 3
    finally:
        await keys.aclose()


async def test_a_failed_reload_keeps_the_last_good_keys_and_says_so(
    oidc: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When the issuer cannot be reached at reload time, the keys loaded before stay in use, and ten lookups at once
    make one attempt (one warning line, naming the issuer), with none again before the cooldown; with no keys ever
    loaded, a lookup raises."""
    now = Now()
    with authorization_server(oidc) as idp:
        keys = IssuerKeys(idp.issuer, clock=Clock(now=now))
        kid = kid_of(idp)
        assert await keys.key(kid, "RS256") is not None
    try:
        now.value += KEYS_MAX_AGE_SECONDS + 1
        found = []

        async def look() -> None:
            found.append(await keys.key(kid, "RS256"))

        with caplog.at_level(logging.WARNING, logger="mcp_server.auth"):
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(look)
            await look()
        assert len(found) == 11 and all(key is not None for key in found)
        (warning,) = caplog.records
        assert warning.getMessage().startswith(f"could not load the signing keys of {idp.issuer}: ")
    finally:
        await keys.aclose()
    fresh = IssuerKeys(idp.issuer, clock=Clock(now=now))
    try:
        with pytest.raises(IssuerError):
            await fresh.key(kid, "RS256")
    finally:
        await fresh.aclose()


@pytest.fixture
def oidc() -> Path:
    return install()


async def test_a_key_is_used_only_with_an_algorithm_of_its_kind(idp: AuthorizationServer) -> None:
    """The provider's RSA key (published for RS256) never verifies as ES256 or as another RSA algorithm than its own."""
    keys = IssuerKeys(idp.issuer)
    kid = kid_of(idp)
    try:
        assert await keys.key(kid, "RS256") is not None
        assert await keys.key(kid, "ES256") is None and await keys.key(kid, "PS256") is None
    finally:
        await keys.aclose()
