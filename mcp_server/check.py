"""`retell-tela-mcp check`: show the effective configuration, then probe each configured vendor's key (and, with
OAuth on, load the issuer's metadata and signing keys)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

import httpx2

from mcp_server.config import Settings, mask_secret, setting_keys, shown_store_url
from mcp_server.errors import PROVIDER_NAMES, Forbidden, NotFound, Provider, Unauthorized, UpstreamError
from mcp_server.upstream.vendors import Upstreams, open_upstreams


@dataclass(frozen=True)
class Verdict:
    provider: Provider | Literal["oauth"]
    outcome: str  # "accepted", "rejected", "failed" or "not configured"; the issuer's: "loaded" or "failed"
    detail: str
    ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("accepted", "loaded", "not configured")


def config_rows(settings: Settings) -> list[tuple[str, str, str]]:
    """(setting, value, source) for every setting; keys masked."""
    rows: list[tuple[str, str, str]] = []
    for key in setting_keys():
        section, _, name = key.rpartition(".")
        value = getattr(getattr(settings, section) if section else settings, name)
        if name in ("api_key", "request_state_key"):
            shown = "(not set)" if value is None else mask_secret(value.get_secret_value())
        elif name == "request_state_store":
            shown = "(not set: in memory)" if value is None else shown_store_url(value.get_secret_value())
        elif isinstance(value, list):
            shown = ",".join(value) or "(none)"
        else:
            shown = str(value)
        rows.append((key, shown, settings.source_of(key)))
    return rows


async def _probe(provider: Provider, fetch: Awaitable[None]) -> Verdict:
    """A documented read that answers 200 only for a good key: a 404 means the base URL is wrong, not the key."""
    started = time.perf_counter()
    try:
        await fetch
    except NotFound as error:
        outcome = "failed"
        detail = f"the probe route answered HTTP {error.status}: check {provider}.base_url points at the API"
    except (Unauthorized, Forbidden) as error:
        outcome, detail = "rejected", error.message
    except UpstreamError as error:
        outcome, detail = "failed", f"{error.code}: {error.message}"
    else:
        outcome, detail = "accepted", "key accepted"
    return Verdict(provider, outcome, detail, (time.perf_counter() - started) * 1000)


async def probe_vendors(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    issuer_transport: httpx2.AsyncBaseTransport | None = None,
) -> list[Verdict]:
    """One cheap authenticated GET per configured vendor; a vendor without a key is reported, not probed. With
    OAuth on, the issuer's metadata and JWKS are loaded as the server would load them (`issuer_transport` replaces
    the network for that, as `transport` does for the vendors)."""
    verdicts: list[Verdict] = []
    async with open_upstreams(settings, transport=transport) as upstreams:
        for provider in ("retell", "tela"):
            if not getattr(settings, provider).configured:
                verdicts.append(Verdict(provider, "not configured", f"no key: {PROVIDER_NAMES[provider]} calls fail"))
                continue
            verdicts.append(await _probe(provider, _probe_call(upstreams, provider)))
    if settings.oauth_issuer is not None:
        verdicts.append(await probe_issuer(settings.oauth_issuer, transport=issuer_transport))
    return verdicts


async def probe_issuer(issuer: str, *, transport: httpx2.AsyncBaseTransport | None = None) -> Verdict:
    """Whether the issuer's metadata and signing keys load: without them no token can be accepted."""
    from mcp_server.auth import IssuerError, IssuerKeys  # here: the JOSE library costs `check` ~0.1 s to import

    started = time.perf_counter()
    keys = IssuerKeys(issuer, transport=transport)
    try:
        loaded = await keys.load()
    except IssuerError as error:
        outcome, detail = "failed", str(error)
    else:
        outcome, detail = "loaded", f"{len(loaded.keys)} signing key(s) from {loaded.jwks_uri} ({loaded.metadata_url})"
        if not loaded.keys:  # the issuer has withdrawn them, or publishes none usable: no token can pass
            outcome, detail = "failed", f"the JWKS at {loaded.jwks_uri} holds no signing key this server can use"
    finally:
        await keys.aclose()
    return Verdict("oauth", outcome, detail, (time.perf_counter() - started) * 1000)


def _probe_call(upstreams: Upstreams, provider: Provider) -> Awaitable[None]:
    return upstreams.retell.check_key() if provider == "retell" else upstreams.tela.check_key()


def render(settings: Settings, verdicts: list[Verdict]) -> str:
    rows = [("setting", "value", "source"), *config_rows(settings)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    lines.append("")
    for verdict in verdicts:
        took = f" ({verdict.ms:.0f} ms)" if verdict.ms is not None else ""
        lines.append(f"{verdict.provider:<7} {verdict.outcome:<15} {verdict.detail}{took}")
    return "\n".join(lines)
