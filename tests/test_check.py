"""`check`: the configuration table with sources and masked keys, and one verdict per vendor key."""

from __future__ import annotations

import httpx2
import pytest

from mcp_server.check import probe_vendors, render
from mcp_server.cli import main
from mcp_server.tela.client import PROBE_PROMPT_ID
from tests.conftest import RETELL_KEY, TELA_KEY, FakeVendors, json_response, make_settings
from tests.loopback import Reply, loopback_vendor


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "accepted"), (401, "rejected"), (403, "rejected"), (404, "failed"), (500, "failed")],
)
async def test_retell_probe_reads_agents_and_only_200_means_accepted(
    vendors: FakeVendors, status: int, outcome: str
) -> None:
    """Retell is probed with GET /v2/list-phone-numbers?limit=1: 200 proves the key; 401/403 reject it; a 404 means the
    base URL is not Retell's API, which is a failure, not a pass."""
    vendors.retell = lambda request: json_response(status, {"items": [], "has_more": False} if status == 200 else {})
    vendors.tela = lambda request: json_response(200, {})
    verdicts = await probe_vendors(make_settings(RETELL_TELA_MCP_MAX_RETRIES="0"), transport=vendors.transport())
    assert [(v.provider, v.outcome) for v in verdicts] == [("retell", outcome), ("tela", "accepted")]
    assert [str(r.url) for r in vendors.requests] == [
        "https://api.retellai.com/v2/list-phone-numbers?limit=1",
        "https://api.tela.com/api-key",
    ]
    assert all(v.ms is not None for v in verdicts)
    if status == 404:
        assert "retell.base_url" in verdicts[0].detail


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("api_key_status", "list_status", "outcome", "requests"),
    [
        (200, None, "accepted", 1),
        (401, None, "rejected", 1),
        (404, 200, "accepted", 2),  # an older Tela without /api-key: the documented list route decides
        (404, 401, "rejected", 2),
        (404, 404, "failed", 2),  # a base URL that answers 404 to everything never passes as "key accepted"
    ],
)
async def test_tela_probe_uses_api_key_route_then_the_list_route(
    vendors: FakeVendors, api_key_status: int, list_status: int | None, outcome: str, requests: int
) -> None:
    """Tela is probed with GET /api-key (what Tela's integrations use); only when that route is missing (404) does
    the list route decide, and a 404 there too is a wrong base URL."""

    def tela(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/api-key":
            return json_response(api_key_status, {})
        return json_response(list_status or 500, [] if list_status == 200 else {"message": "x"})

    vendors.tela = tela
    settings = make_settings(RETELL_API_KEY="", RETELL_TELA_MCP_MAX_RETRIES="0")
    (_, verdict) = await probe_vendors(settings, transport=vendors.transport())
    assert verdict.outcome == outcome
    assert len(vendors.requests) == requests
    if requests == 2:
        assert str(vendors.requests[1].url) == f"https://api.tela.com/test-case?promptId={PROBE_PROMPT_ID}"


@pytest.mark.anyio
async def test_unreachable_vendor_fails_and_missing_key_is_not_probed(vendors: FakeVendors) -> None:
    """A refused connection is a failure; a vendor with no key is reported and gets no request."""

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused")

    vendors.retell = refuse
    settings = make_settings(TELA_API_KEY="", RETELL_TELA_MCP_MAX_RETRIES="0")
    verdicts = await probe_vendors(settings, transport=vendors.transport())
    assert [(v.outcome, v.ok) for v in verdicts] == [("failed", False), ("not configured", True)]
    assert "unreachable" in verdicts[0].detail
    assert [r.url.host for r in vendors.requests] == ["api.retellai.com"]


@pytest.mark.anyio
async def test_table_shows_every_setting_source_and_masked_keys_only(vendors: FakeVendors) -> None:
    """Every setting appears with where it came from; keys appear only masked."""
    settings = make_settings({"max_retries": 1})
    text = render(settings, await probe_vendors(settings, transport=vendors.transport()))
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["retell.api_key"] == ["key_…46aa", "env"]
    assert rows["max_retries"] == ["1", "flag"]
    assert rows["tela.base_url"] == ["https://api.tela.com", "default"]
    assert {"timeout_seconds", "max_response_bytes", "log_level", "tela.api_key"} <= set(rows)
    for key in (RETELL_KEY, TELA_KEY):
        assert not [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in text]


@pytest.mark.parametrize(("status", "code", "verdict"), [(200, 0, "accepted"), (401, 1, "rejected"),
                                                         (403, 1, "rejected"), (500, 1, "failed")])  # fmt: skip
def test_check_command_exit_code_follows_the_verdicts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, status: int, code: int, verdict: str
) -> None:
    """`retell-tela-mcp check` against a real loopback vendor: exit 0 only when the key is accepted."""
    with loopback_vendor(lambda path: Reply(status, {"status": "error", "message": "x"})) as vendor:
        monkeypatch.setenv("RETELL_API_KEY", RETELL_KEY)
        monkeypatch.setenv("RETELL_BASE_URL", vendor.url)
        monkeypatch.setenv("RETELL_TELA_MCP_MAX_RETRIES", "0")
        with pytest.raises(SystemExit) as caught:
            main(["check", "--allow-runs"])
    out, _ = capsys.readouterr()
    assert caught.value.code == code
    assert f"retell  {verdict}" in out
    assert "tela    not configured" in out
    assert ["allow_runs", "True", "flag"] in [line.split() for line in out.splitlines()]
    assert vendor.seen[0].headers["authorization"] == f"Bearer {RETELL_KEY}"


def test_check_does_not_import_the_mcp_sdk() -> None:
    """`check` is a configuration and key probe: it runs without loading the MCP SDK, so it starts in a
    fraction of the server's time (run against the demo vendors: real settings, real probes, no network)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mcp_server.cli import main\n"
        "try:\n"
        "    main(['check', '--demo'])\n"
        "except SystemExit as exit:\n"
        "    loaded = sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types')))\n"
        "    print('EXIT', exit.code, 'MCP', loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert "retell  accepted" in done.stdout, done.stderr
    assert done.stdout.strip().endswith("EXIT 0 MCP []"), done.stdout
