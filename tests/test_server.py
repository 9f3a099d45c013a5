"""The server as a client sees it: listing, tool results, lossless output, resources, unconfigured vendors."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError

from mcp_server import __version__
from mcp_server.server import build_server
from tests.conftest import (
    CASE_ID,
    JOB_ID,
    RETELL_KEY,
    RETELL_RUN,
    TELA_CASE,
    TELA_KEY,
    TOOL_NAMES,
    FakeVendors,
    connect,
    error_of,
    json_response,
    make_settings,
)

pytestmark = pytest.mark.anyio


async def test_initialize_names_the_server_and_version(vendors: FakeVendors) -> None:
    """The server introduces itself as `retell-tela` with the package version and usage instructions."""
    async with connect(vendors) as client:
        assert client.server_info is not None
        assert client.server_info.name == "retell-tela"
        assert client.server_info.version == __version__
        assert client.instructions is not None and "get_test_run" in client.instructions


async def test_tools_are_listed_in_stable_order_with_titles_and_read_only_annotations(vendors: FakeVendors) -> None:
    """Both tools are listed, in order, read-only, idempotent, open-world, with human titles and output schemas."""
    async with connect(vendors) as client:
        tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == TOOL_NAMES
    by_name = {tool.name: tool for tool in tools}
    assert [by_name[name].title for name in ("get_test_run", "get_test_case")] == [
        "Get Retell test run",
        "Get Tela test case",
    ]
    for tool in tools:
        assert tool.annotations is not None and tool.output_schema is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.annotations.idempotent_hint is True
        assert tool.annotations.open_world_hint is True
        assert "title" not in tool.output_schema and "description" not in tool.output_schema
        if tool.name in ("summarize_batch_test", "compare_batch_tests"):
            continue  # our own summaries, not a vendor's object: fixed shapes with required fields
        assert tool.output_schema.get("additionalProperties", True) is not False
        assert not tool.output_schema.get("required")  # the schema must never reject a vendor's answer
        # no tokens spent on auto-generated titles that restate names (the SDK's own input schemas keep theirs)
        assert all("title" not in p for p in tool.output_schema["properties"].values())
    run, case = by_name["get_test_run"], by_name["get_test_case"]
    assert run.input_schema["required"] == ["test_case_job_id"]
    assert run.input_schema["properties"]["test_case_job_id"]["type"] == "string"
    assert case.input_schema["required"] == ["id"]
    assert case.input_schema["properties"]["include_generations"]["default"] is False
    assert {"status", "result_explanation", "transcript_snapshot"} <= set(run.output_schema["properties"])
    assert {"expectedOutput", "promptId", "deletedAt", "generations"} <= set(case.output_schema["properties"])


async def test_get_test_run_returns_retell_object_as_structured_content_and_compact_text(vendors: FakeVendors) -> None:
    """structuredContent is Retell's object; the one text block is the same JSON without whitespace."""
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert result.is_error is False
    assert result.structured_content == RETELL_RUN
    assert len(result.content) == 1 and result.content[0].type == "text"
    text = result.content[0].text
    assert json.loads(text) == RETELL_RUN
    assert text == json.dumps(RETELL_RUN, separators=(",", ":"), ensure_ascii=False)


async def test_get_test_run_sends_one_authenticated_get_to_its_endpoint(vendors: FakeVendors) -> None:
    """The request is GET /get-test-run/{id} with Retell's key only, our User-Agent, and JSON accepted."""
    async with connect(vendors) as client:
        await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    (request,) = vendors.requests
    assert request.method == "GET"
    assert str(request.url) == f"https://api.retellai.com/get-test-run/{JOB_ID}"
    assert request.headers["authorization"] == f"Bearer {RETELL_KEY}"
    assert request.headers["user-agent"] == f"retell-tela-mcp/{__version__}"
    assert TELA_KEY not in str(request.headers)


async def test_get_test_case_sends_tela_key_and_asks_for_generations_only_when_told(vendors: FakeVendors) -> None:
    """GET /test-case/{id} with Tela's key; `?includeGenerations=true` only when include_generations is set."""
    async with connect(vendors) as client:
        await client.call_tool("get_test_case", {"id": CASE_ID})
        await client.call_tool("get_test_case", {"id": CASE_ID, "include_generations": True})
    plain, with_generations = vendors.requests
    assert str(plain.url) == f"https://api.tela.com/test-case/{CASE_ID}"
    assert str(with_generations.url) == f"https://api.tela.com/test-case/{CASE_ID}?includeGenerations=true"
    assert plain.headers["authorization"] == f"Bearer {TELA_KEY}"


LOSSLESS_CASES: list[dict[str, Any]] = [
    {**RETELL_RUN, "status": "queued_for_gpu", "brand_new_field": {"nested": [1, 2.5, None, True]}},
    {**RETELL_RUN, "transcript_snapshot": None, "result_explanation": None},
    {"test_case_job_id": JOB_ID, "status": "pending"},  # a sparse early answer
    {**RETELL_RUN, "unicode": "ça marche — 日本語 ✓", "big": 2**62, "float": 0.1},
    {**RETELL_RUN, "status": {"phase": "queued"}, "creation_timestamp": 1.7e12 + 0.5},  # a known field changes type
]


@pytest.mark.parametrize("upstream", LOSSLESS_CASES)
async def test_test_run_output_is_lossless_for_unknown_fields_statuses_and_nulls(
    vendors: FakeVendors, upstream: dict[str, Any]
) -> None:
    """Whatever object Retell returns, structuredContent equals it: unknown fields and statuses, nulls, unicode."""
    vendors.retell = lambda request: json_response(200, upstream)
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert result.is_error is False
    assert result.structured_content == upstream
    assert json.loads(result.content[0].text) == upstream


async def test_test_case_output_keeps_tela_camel_case_names_nulls_and_new_fields(vendors: FakeVendors) -> None:
    """Tela's object comes back untouched: camelCase names, nulls kept, generations and new fields passed through."""
    upstream = {**TELA_CASE, "generations": [{"output": "hi"}, "any", 3], "scoreCard": {"x": None}}
    vendors.tela = lambda request: json_response(200, upstream)
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_case", {"id": CASE_ID, "include_generations": True})
    assert result.structured_content == upstream
    assert result.structured_content is not None and result.structured_content["deletedAt"] is None


async def test_unconfigured_vendor_returns_not_configured_without_a_request(vendors: FakeVendors) -> None:
    """With only Tela's key set, Retell calls say how to configure Retell, and nothing is sent."""
    settings = make_settings(RETELL_API_KEY="")
    async with connect(vendors, settings) as client:
        assert [t.name for t in (await client.list_tools()).tools] == TOOL_NAMES
        error = error_of(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))
        ok = await client.call_tool("get_test_case", {"id": CASE_ID})
    assert error["code"] == "not_configured"
    assert error["provider"] == "retell"
    assert "RETELL_API_KEY" in error["message"]
    assert ok.is_error is False
    assert [r.url.host for r in vendors.requests] == ["api.tela.com"]


async def test_server_with_no_keys_at_all_starts_and_lists_tools() -> None:
    """No keys: the server still starts and lists its tools; each call answers not_configured."""
    server = build_server(make_settings(RETELL_API_KEY="", TELA_API_KEY=""))
    async with Client(server) as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == TOOL_NAMES
        error = error_of(await client.call_tool("get_test_case", {"id": CASE_ID}))
    assert error["code"] == "not_configured" and "TELA_API_KEY" in error["message"]


async def test_resource_templates_are_listed_as_json(vendors: FakeVendors) -> None:
    """Both URI templates are listed with mimeType application/json."""
    async with connect(vendors) as client:
        templates = (await client.list_resource_templates()).resource_templates
    assert [(t.uri_template, t.mime_type) for t in templates] == [
        ("retell://test-runs/{test_case_job_id}", "application/json"),
        ("tela://test-cases/{id}", "application/json"),
        ("retell://batch-tests/{test_case_batch_job_id}", "application/json"),
        ("retell://test-case-definitions/{test_case_definition_id}", "application/json"),
        ("retell://calls/{call_id}", "application/json"),
    ]


async def test_resources_read_the_same_json_as_the_tools(vendors: FakeVendors) -> None:
    """Reading a resource URI gives the same object as the tool (Tela's without generations)."""
    async with connect(vendors) as client:
        run = await client.read_resource(f"retell://test-runs/{JOB_ID}")
        case = await client.read_resource(f"tela://test-cases/{CASE_ID}")
    assert run.contents[0].mime_type == "application/json"
    assert json.loads(run.contents[0].text) == RETELL_RUN  # type: ignore[union-attr]
    assert json.loads(case.contents[0].text) == TELA_CASE  # type: ignore[union-attr]
    assert [str(r.url) for r in vendors.requests] == [
        f"https://api.retellai.com/get-test-run/{JOB_ID}",
        f"https://api.tela.com/test-case/{CASE_ID}",
    ]


async def test_resource_not_found_is_invalid_params_with_the_tools_words(vendors: FakeVendors) -> None:
    """A missing object is a JSON-RPC -32602 error whose message is the tool's not_found message."""
    vendors.retell = lambda request: json_response(404, {"status": "error", "message": "Not Found"})
    async with connect(vendors) as client:
        tool_error = error_of(await client.call_tool("get_test_run", {"test_case_job_id": "missing"}))
        with pytest.raises(MCPError) as caught:
            await client.read_resource("retell://test-runs/missing")
    assert caught.value.error.code == -32602
    assert caught.value.error.message == tool_error["message"] == "Retell has no test run 'missing' (HTTP 404)."


async def test_resource_vendor_fault_is_an_error_with_the_tools_words(vendors: FakeVendors) -> None:
    """A rejected key on a resource read is a JSON-RPC error carrying the same message as the tool's."""
    vendors.tela = lambda request: json_response(401, {"message": "Invalid API key"})
    async with connect(vendors) as client:
        tool_error = error_of(await client.call_tool("get_test_case", {"id": CASE_ID}))
        with pytest.raises(MCPError) as caught:
            await client.read_resource(f"tela://test-cases/{CASE_ID}")
    assert caught.value.error.code == -32603
    assert caught.value.error.message == tool_error["message"]
    assert "rejected the API key" in tool_error["message"]


async def test_resource_with_invalid_id_fails_without_a_request(vendors: FakeVendors) -> None:
    """A resource URI whose ID is not a UUID is refused as invalid params, and nothing is sent."""
    async with connect(vendors) as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource("tela://test-cases/not-a-uuid")
    assert caught.value.error.code == -32602
    assert "UUID" in caught.value.error.message
    assert vendors.requests == []


async def test_schema_violations_stay_protocol_level_errors(vendors: FakeVendors) -> None:
    """A missing required argument is rejected by the SDK's input validation, and nothing is sent."""
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_run", {})
    assert result.is_error is True
    assert "test_case_job_id" in result.content[0].text
    assert vendors.requests == []


async def test_one_http_client_per_vendor_is_reused_across_calls() -> None:
    """Six calls open exactly one HTTP client per vendor (two in all), closed when the session ends."""
    transport = CountingTransport()
    server = build_server(make_settings(RETELL_TELA_MCP_CACHE_TTL="0"), transport=transport)  # every call goes out
    async with Client(server) as client:
        for _ in range(3):
            assert not (await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})).is_error
            assert not (await client.call_tool("get_test_case", {"id": CASE_ID})).is_error
    assert transport.handled == 6
    assert transport.opened == 2 and transport.closed == 2


class CountingTransport(httpx2.AsyncBaseTransport):
    """Counts how often a transport is shared, opened and closed (AsyncClient enters its transport once)."""

    def __init__(self) -> None:
        self.handled = self.opened = self.closed = 0

    async def __aenter__(self) -> CountingTransport:
        self.opened += 1
        return self

    async def aclose(self) -> None:
        self.closed += 1

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.handled += 1
        body = RETELL_RUN if request.url.host == "api.retellai.com" else TELA_CASE
        return json_response(200, body)


async def test_input_schemas_carry_no_auto_titles_or_null_branches(vendors: FakeVendors) -> None:
    """What the model reads of every tool (run tools included) has no SDK-generated `title` and shows an optional
    argument as its own type, not `anyOf [type, null]` with `default: null`; an explicit null is still accepted."""
    async with connect(vendors, make_settings({"allow_runs": True})) as client:
        tools = (await client.list_tools()).tools
        explicit_null = await client.call_tool(
            "list_test_runs", {"test_case_batch_job_id": "b1", "pagination_key": None}
        )
    for tool in tools:
        assert "title" not in tool.input_schema, tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert "title" not in prop and "anyOf" not in prop and prop.get("default", 0) is not None, (tool.name, name)
            assert "type" in prop, (tool.name, name)
    listing = next(t for t in tools if t.name == "list_batch_tests").input_schema["properties"]
    assert listing["agent_id"] == {"type": "string"}  # the name says what it is: no description repeats it
    assert explicit_null.is_error is False


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "default"])
@pytest.mark.parametrize(
    ("name", "arguments", "says"),
    [
        ("no_such_prompt", {}, "Unknown prompt: 'no_such_prompt'"),
        ("diagnose_test_run", {}, "needs argument(s): test_case_job_id"),
        ("review_test_case", {"other": "x"}, "needs argument(s): id"),
    ],
)
async def test_a_bad_prompt_request_is_invalid_params_under_every_protocol_version(
    vendors: FakeVendors, caplog: pytest.LogCaptureFixture, mode: str, name: str, arguments: dict[str, str], says: str
) -> None:
    """An unknown prompt or a missing argument is -32602 (the SPEC), under the handshake protocol and 2026-07-28
    alike, and it is the client's mistake: no ERROR line, no traceback in the log."""
    server = build_server(make_settings(), transport=vendors.transport())
    async with Client(server, **({"mode": "legacy"} if mode == "legacy" else {})) as client:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt(name, arguments)
    assert caught.value.error.code == -32602
    assert says in caught.value.error.message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
