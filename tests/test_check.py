"""`check`: the configuration table with sources and masked keys, and one verdict per vendor key."""

from __future__ import annotations

import httpx2
import pytest

from mcp_server.check import PROBE_CASE_ID, PROBE_RUN_ID, probe_vendors, render
from mcp_server.cli import main
from tests.conftest import RETELL_KEY, TELA_KEY, FakeVendors, json_response, make_settings
from tests.loopback import Reply, loopback_vendor


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "outcome"),
    [(404, "accepted"), (200, "accepted"), (401, "rejected"), (403, "rejected"), (500, "failed")],
)
async def test_probe_tells_accepted_from_rejected(vendors: FakeVendors, status: int, outcome: str) -> None:
    """A 404 for the probe ID means the key works; 401/403 mean it does not; other faults are failures."""
    vendors.retell = lambda request: json_response(status, {})
    vendors.tela = lambda request: json_response(404, {})
    verdicts = await probe_vendors(make_settings(RETELL_TELA_MCP_MAX_RETRIES="0"), transport=vendors.transport())
    assert [(v.provider, v.outcome) for v in verdicts] == [("retell", outcome), ("tela", "accepted")]
    assert [r.url.path for r in vendors.requests] == [f"/get-test-run/{PROBE_RUN_ID}", f"/test-case/{PROBE_CASE_ID}"]
    assert all(v.ms is not None for v in verdicts)


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


@pytest.mark.parametrize(("status", "code", "verdict"), [(404, 0, "accepted"), (401, 1, "rejected"),
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
            main(["check"])
    out, _ = capsys.readouterr()
    assert caught.value.code == code
    assert f"retell  {verdict}" in out
    assert "tela    not configured" in out
    assert vendor.seen[0].headers["authorization"] == f"Bearer {RETELL_KEY}"
