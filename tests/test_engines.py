"""The engine under test at the version that ran, and an agent's versions (issue 19, points 1 and 2)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.conftest import RETELL_RUN, FakeVendors, connect, error_of, json_response

pytestmark = pytest.mark.anyio

LLM = {"llm_id": "llm_9", "version": 4, "is_published": False, "general_prompt": "Be kind.",
       "states": [{"name": "order_help", "state_prompt": "Help with orders."}], "new_field": {"x": [1]}}  # fmt: skip
FLOW = {"conversation_flow_id": "cf_4", "version": 7, "global_prompt": "Be brief.", "nodes": [{"id": "n1"}]}
RUN = {**RETELL_RUN, "test_case_definition_snapshot": {
    "name": "refund", "response_engine": {"type": "retell-llm", "llm_id": "llm_9", "version": 3.0}}}  # fmt: skip
BATCH = {"test_case_batch_job_id": "tcbj_1", "status": "complete",
         "response_engine": {"type": "conversation-flow", "conversation_flow_id": "cf_4", "version": 2}}  # fmt: skip
AGENTS = {
    "agent_llm": {"agent_id": "agent_llm", "version": 5, "response_engine": {"type": "retell-llm", "llm_id": "llm_9"}},
    "agent_custom": {"agent_id": "agent_custom", "response_engine": {"type": "custom-llm", "llm_websocket_url": "w"}},
    "agent_half": {"agent_id": "agent_half",
                   "response_engine": {"type": "retell-llm", "llm_id": "llm_9", "version": 2.5}},
}  # fmt: skip
VERSIONS = {"items": [{"version": 3, "is_published": False, "base_version": 2, "version_title": "Fix"},
                      {"version": 2, "is_published": True, "base_version": 1}], "has_more": False,
            "pagination_key": None}  # fmt: skip


def retell(request: httpx2.Request) -> httpx2.Response:
    """Retell's read routes for one LLM, one flow, a run, a batch, agents (by version) and versions."""
    path, version = request.url.path, request.url.params.get("version")
    kind, _, tail = path.rpartition("/")
    if kind == "/get-retell-llm" and tail == "llm_9":
        return json_response(200, {**LLM, "version": int(version) if version else LLM["version"]})
    if kind == "/get-conversation-flow" and tail == "cf_4":
        return json_response(200, {**FLOW, "version": int(version) if version else FLOW["version"]})
    if path == "/get-test-run/tcj_1":
        return json_response(200, RUN)
    if path == "/get-batch-test/tcbj_1":
        return json_response(200, BATCH)
    if kind == "/get-agent" and tail in AGENTS:
        agent = AGENTS[tail]
        if version:
            engine = {**agent["response_engine"], "version": int(version)}
            return json_response(200, {**agent, "version": int(version), "response_engine": engine})
        return json_response(200, agent)
    if kind == "/list-agent-versions" and tail == "agent_llm":
        return json_response(200, VERSIONS)
    return json_response(404, {"status": "error", "message": "Not Found"})


async def call(vendors: FakeVendors, tool: str, arguments: dict[str, Any]) -> Any:
    vendors.retell = retell
    async with connect(vendors) as client:
        return await client.call_tool(tool, arguments)


def urls(vendors: FakeVendors) -> list[str]:
    return [str(request.url).removeprefix("https://api.retellai.com") for request in vendors.requests]


@pytest.mark.parametrize(
    ("arguments", "requests", "response_engine"),
    [
        ({"test_case_job_id": "tcj_1"}, ["/get-test-run/tcj_1", "/get-retell-llm/llm_9?version=3"],
         {"type": "retell-llm", "llm_id": "llm_9", "version": 3}),
        ({"test_case_batch_job_id": "tcbj_1"}, ["/get-batch-test/tcbj_1", "/get-conversation-flow/cf_4?version=2"],
         {"type": "conversation-flow", "conversation_flow_id": "cf_4", "version": 2}),
        ({"agent_id": "agent_llm", "version": 6}, ["/get-agent/agent_llm?version=6", "/get-retell-llm/llm_9?version=6"],
         {"type": "retell-llm", "llm_id": "llm_9", "version": 6}),
        ({"llm_id": "llm_9", "version": 1}, ["/get-retell-llm/llm_9?version=1"],
         {"type": "retell-llm", "llm_id": "llm_9", "version": 1}),
        ({"conversation_flow_id": "cf_4"}, ["/get-conversation-flow/cf_4"],
         {"type": "conversation-flow", "conversation_flow_id": "cf_4", "version": 7}),
    ],
)  # fmt: skip
async def test_the_engine_is_read_at_the_version_that_ran(
    vendors: FakeVendors, arguments: dict[str, Any], requests: list[str], response_engine: dict[str, Any]
) -> None:
    """A run pins its definition snapshot's engine, a batch its own, an agent the engine of the version asked for;
    the LLM or flow is read at that version, and returned whole beside what was resolved."""
    result = await call(vendors, "get_response_engine", arguments)
    assert result.is_error is False, result.content[0].text
    assert urls(vendors) == requests
    content = result.structured_content
    assert content is not None and content["response_engine"] == response_engine
    expected = LLM if response_engine["type"] == "retell-llm" else FLOW
    assert content["engine"] == {**expected, "version": response_engine["version"]}


async def test_an_engine_without_a_version_is_read_at_its_latest_and_says_which(vendors: FakeVendors) -> None:
    """An agent whose engine names no version: the latest is read, and its version is the one Retell answered."""
    result = await call(vendors, "get_response_engine", {"agent_id": "agent_llm"})
    assert urls(vendors) == ["/get-agent/agent_llm", "/get-retell-llm/llm_9"]
    assert result.structured_content is not None
    assert result.structured_content["response_engine"] == {"type": "retell-llm", "llm_id": "llm_9", "version": 4}


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({}, "exactly one of test_case_job_id, test_case_batch_job_id, agent_id, llm_id or conversation_flow_id"),
        ({"llm_id": "a", "agent_id": "b"}, "got agent_id and llm_id"),
        ({"test_case_job_id": "tcj_1", "version": 2}, "version goes with agent_id, llm_id or conversation_flow_id"),
        ({"test_case_batch_job_id": "tcbj_1", "version": 2}, "a batch test names the version it ran"),
        ({"llm_id": "../etc"}, "llm_id must be"),
    ],
)
async def test_bad_engine_arguments_are_refused_before_any_request(
    vendors: FakeVendors, arguments: dict[str, Any], words: str
) -> None:
    """Zero or two IDs, a version beside a run or batch (they pin their own), or a malformed ID: nothing sent."""
    error = error_of(await call(vendors, "get_response_engine", arguments))
    assert error["code"] == "invalid_argument" and words in error["message"]
    assert vendors.requests == []


@pytest.mark.parametrize(
    ("arguments", "code", "words"),
    [
        ({"test_case_job_id": "tcj_gone"}, "not_found", "Retell has no test run 'tcj_gone'"),
        ({"test_case_batch_job_id": "tcbj_gone"}, "not_found", "Retell has no batch test 'tcbj_gone'"),
        ({"llm_id": "llm_gone", "version": 2}, "not_found", "Retell has no retell-llm llm_gone version 2"),
        ({"agent_id": "agent_custom"}, "invalid_argument", "custom LLM"),
        ({"agent_id": "agent_half"}, "bad_upstream_response", "whole version number"),
    ],
)
async def test_what_cannot_be_resolved_names_the_run_batch_or_engine(
    vendors: FakeVendors, arguments: dict[str, Any], code: str, words: str
) -> None:
    """A missing run or batch is not_found naming it; a custom-LLM agent cannot be tested; a fractional version
    from Retell is its fault."""
    error = error_of(await call(vendors, "get_response_engine", arguments))
    assert (error["code"], words in error["message"]) == (code, True), error


async def test_agent_versions_are_asked_newest_first_and_returned_as_retell_sent_them(vendors: FakeVendors) -> None:
    """list_agent_versions asks Retell for descending order (it documents no default) and returns its page."""
    result = await call(vendors, "list_agent_versions", {"agent_id": "agent_llm", "limit": 2, "pagination_key": "k1"})
    assert result.structured_content == VERSIONS
    assert urls(vendors) == ["/list-agent-versions/agent_llm?limit=2&pagination_key=k1&sort_order=descending"]
    error = error_of(await call(vendors, "list_agent_versions", {"agent_id": "a/b"}))
    assert error["code"] == "invalid_argument" and len(vendors.requests) == 1
