"""Property-based checks: any upstream JSON object round-trips; any config document loads or fails in one line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import anyio
import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from mcp_server.config import ConfigError, Settings, load_settings
from mcp_server.retell.client import RetellTestRun
from mcp_server.server import build_server
from mcp_server.tela.client import TelaTestCase
from tests.conftest import CASE_ID, make_settings

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Known field names get arbitrary values too: a vendor changing a field's type must not break a call.
known_keys = st.sampled_from([*RetellTestRun.model_fields, *TelaTestCase.model_fields])
upstream_objects = st.dictionaries(known_keys | st.text(max_size=12), json_values, max_size=12)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(upstream_objects, min_size=15, max_size=15))
def test_any_upstream_json_object_round_trips_losslessly(batch: list[dict[str, Any]]) -> None:
    """Whatever JSON object a vendor returns, both tools give back exactly it, and the client's schema check passes.
    (Each example sends a batch of 15 objects through one session, with caching off so each is fetched.)"""
    bodies = iter(json.dumps(upstream).encode() for upstream in batch for _ in range(2))
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, content=next(bodies)))

    async def scenario() -> None:
        settings = make_settings(RETELL_TELA_MCP_CACHE_TTL="0")
        async with Client(build_server(settings, transport=transport)) as client:
            await client.list_tools()  # so the client validates structuredContent against each outputSchema
            for upstream in batch:
                run = await client.call_tool("get_test_run", {"test_case_job_id": "job_1"})
                case = await client.call_tool("get_test_case", {"id": CASE_ID})
                for result in (run, case):
                    assert result.is_error is False, result.content
                    assert result.structured_content == upstream
                    assert json.loads(result.content[0].text) == upstream

    anyio.run(scenario)


setting_names = st.sampled_from(
    ["retell", "tela", "api_key", "base_url", "timeout_seconds", "max_retries", "max_response_bytes", "log_level"]
)
config_documents = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(setting_names | st.text(max_size=6), inner, max_size=5),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(config_documents)
def test_any_config_document_loads_or_fails_with_one_line(document: object) -> None:
    """Arbitrary JSON in the config file either loads or raises ConfigError with one line naming the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        try:
            loaded = load_settings(env={}, config_path=path)
        except ConfigError as error:
            message = str(error)
            assert message.startswith(f"config error: {path}: ")
            assert "\n" not in message
        else:
            assert isinstance(loaded, Settings)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_config_file_bytes_load_or_fail_with_one_line(raw: bytes) -> None:
    """Even bytes that are not JSON or not UTF-8 give the one-line error, never a traceback."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        path.write_bytes(raw)
        try:
            load_settings(env={}, config_path=path)
        except ConfigError as error:
            assert "\n" not in str(error) and str(error).startswith("config error: ")
