"""The batch and listing tools, include_transcript, and their resources (issue 6, first part)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tests.conftest import (
    CASE_ID,
    JOB_ID,
    RETELL_KEY,
    RETELL_RUN,
    TELA_CASE,
    FakeVendors,
    connect,
    error_of,
    json_response,
)

pytestmark = pytest.mark.anyio

BATCH = {"test_case_batch_job_id": "tcbj_1", "status": "complete", "pass_count": 3, "fail_count": 1}
PAGE = {"items": [RETELL_RUN], "has_more": True, "pagination_key": "tcj_2f8a9c"}
DEFINITION = {"test_case_definition_id": "tcd_77", "name": "refund", "metrics": ["offers refund"], "new": None}


async def call(vendors: FakeVendors, tool: str, arguments: dict[str, Any]) -> Any:
    async with connect(vendors) as client:
        return await client.call_tool(tool, arguments)


@pytest.mark.parametrize(
    ("tool", "arguments", "url", "body"),
    [
        ("get_batch_test", {"test_case_batch_job_id": "tcbj_1"},
         "https://api.retellai.com/get-batch-test/tcbj_1", BATCH),
        ("list_test_runs", {"test_case_batch_job_id": "tcbj_1"},
         "https://api.retellai.com/v2/list-test-runs/tcbj_1?limit=50", PAGE),
        ("list_test_runs", {"test_case_batch_job_id": "tcbj_1", "limit": 3, "pagination_key": "tcj_2f8a9c"},
         "https://api.retellai.com/v2/list-test-runs/tcbj_1?limit=3&pagination_key=tcj_2f8a9c", PAGE),
        ("get_test_case_definition", {"test_case_definition_id": "tcd_77"},
         "https://api.retellai.com/get-test-case-definition/tcd_77", DEFINITION),
    ],
)  # fmt: skip
async def test_retell_tools_forward_to_their_endpoint_and_return_the_object(
    vendors: FakeVendors, tool: str, arguments: dict[str, Any], url: str, body: dict[str, Any]
) -> None:
    """Each Retell tool makes one authenticated GET to its own endpoint and returns Retell's object unchanged."""
    vendors.retell = lambda request: json_response(200, body)
    result = await call(vendors, tool, arguments)
    assert result.structured_content == body and json.loads(result.content[0].text) == body
    (request,) = vendors.requests
    assert str(request.url) == url and request.headers["authorization"] == f"Bearer {RETELL_KEY}"


async def test_list_test_cases_wraps_tela_array_as_items(vendors: FakeVendors) -> None:
    """Tela answers a bare array for a prompt's cases; the tool returns it as {items: [...]}, unchanged inside."""
    cases = [TELA_CASE, {**TELA_CASE, "id": "550e8400-e29b-41d4-a716-446655440009", "extra": [1]}]
    vendors.tela = lambda request: json_response(200, cases)
    result = await call(vendors, "list_test_cases", {"prompt_id": CASE_ID, "include_generations": True})
    assert result.structured_content == {"items": cases}
    (request,) = vendors.requests
    assert str(request.url) == f"https://api.tela.com/test-case?promptId={CASE_ID}&includeGenerations=true"


async def test_list_test_cases_refuses_an_object_where_an_array_belongs(vendors: FakeVendors) -> None:
    """If Tela ever answers an object for the list, that is a bad upstream response, not a silent reshape."""
    vendors.tela = lambda request: json_response(200, {"items": []})
    error = error_of(await call(vendors, "list_test_cases", {"prompt_id": CASE_ID}))
    assert error["code"] == "bad_upstream_response" and "JSON object instead of an array" in error["message"]


@pytest.mark.parametrize(
    ("tool", "arguments", "words"),
    [
        ("get_batch_test", {"test_case_batch_job_id": "../x"}, "test_case_batch_job_id must be"),
        ("list_test_runs", {"test_case_batch_job_id": "a/b"}, "test_case_batch_job_id must be"),
        ("list_test_runs", {"test_case_batch_job_id": "ok", "pagination_key": "a b"}, "pagination_key must be"),
        ("list_test_runs", {"test_case_batch_job_id": "ok", "pagination_key": "k\x00"}, "pagination_key must be"),
        ("list_test_runs", {"test_case_batch_job_id": "ok", "pagination_key": "é"}, "pagination_key must be"),
        ("list_test_runs", {"test_case_batch_job_id": "ok", "pagination_key": "x" * 1025}, "pagination_key must be"),
        ("get_test_case_definition", {"test_case_definition_id": "%2e%2e"}, "test_case_definition_id must be"),
        ("list_test_cases", {"prompt_id": "not-a-uuid"}, "prompt_id must be a UUID"),
    ],
)
async def test_bad_arguments_never_reach_the_network(
    vendors: FakeVendors, tool: str, arguments: dict[str, Any], words: str
) -> None:
    """IDs and pagination keys are checked before any request; the error names the argument."""
    error = error_of(await call(vendors, tool, arguments))
    assert error["code"] == "invalid_argument" and words in error["message"]
    assert vendors.requests == []


@pytest.mark.parametrize("limit", [0, 1001, -5])
async def test_limit_outside_1_to_1000_is_rejected_by_the_schema(vendors: FakeVendors, limit: int) -> None:
    """`limit` is bounded in the input schema, so a bad one is refused before the tool runs."""
    result = await call(vendors, "list_test_runs", {"test_case_batch_job_id": "tcbj_1", "limit": limit})
    assert result.is_error is True and "limit" in result.content[0].text
    assert vendors.requests == []


async def test_include_transcript_false_leaves_the_field_out_and_the_cache_whole(vendors: FakeVendors) -> None:
    """Without the transcript the key is absent (not null); a later full read still has it (cache not mutated)."""
    async with connect(vendors) as client:
        short = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID, "include_transcript": False})
        full = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert short.structured_content == {k: v for k, v in RETELL_RUN.items() if k != "transcript_snapshot"}
    assert "transcript_snapshot" not in json.loads(short.content[0].text)
    assert full.structured_content == RETELL_RUN
    assert len(vendors.requests) == 1  # the finished run came from the cache the second time


async def test_batch_and_definition_resources_read_like_their_tools(vendors: FakeVendors) -> None:
    """The two new URI templates give the same JSON as get_batch_test and get_test_case_definition."""

    def route(request: httpx2.Request) -> httpx2.Response:
        return json_response(200, BATCH if "batch" in request.url.path else DEFINITION)

    vendors.retell = route
    async with connect(vendors) as client:
        batch = await client.read_resource("retell://batch-tests/tcbj_1")
        definition = await client.read_resource("retell://test-case-definitions/tcd_77")
    assert json.loads(batch.contents[0].text) == BATCH  # type: ignore[union-attr]
    assert json.loads(definition.contents[0].text) == DEFINITION  # type: ignore[union-attr]
