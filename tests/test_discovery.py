"""Finding tests from an agent: list_batch_tests, list_test_case_definitions, Tela's prompt versions and the
generations that always arrive (issue 9, points 1 and 4)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tests.conftest import CASE_ID, GENERATIONS, RETELL_KEY, TELA_CASE, FakeVendors, connect, error_of, json_response

pytestmark = pytest.mark.anyio

PAGE = {"items": [{"test_case_batch_job_id": "tcbj_1", "status": "complete", "new_field": [1]}], "has_more": False,
        "pagination_key": None}  # fmt: skip
AGENTS = {
    "agent_llm": {"agent_id": "agent_llm", "response_engine": {"type": "retell-llm", "llm_id": "llm_9", "version": 2}},
    "agent_flow": {"agent_id": "agent_flow",
                   "response_engine": {"type": "conversation-flow", "conversation_flow_id": "cf_4", "version": 1}},
    "agent_custom": {"agent_id": "agent_custom",
                     "response_engine": {"type": "custom-llm", "llm_websocket_url": "wss://x.example"}},
    "agent_odd": {"agent_id": "agent_odd", "response_engine": {"type": "retell-llm", "llm_id": "../x"}},
}  # fmt: skip
LISTINGS = {"list_batch_tests": "/v2/list-batch-tests", "list_test_case_definitions": "/v2/list-test-case-definitions"}


def retell(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.startswith("/get-agent/"):
        agent = AGENTS.get(request.url.path.rsplit("/", 1)[1])
        return json_response(200, agent) if agent else json_response(404, {"status": "error", "message": "x"})
    return json_response(200, PAGE)


async def call(vendors: FakeVendors, tool: str, arguments: dict[str, Any]) -> Any:
    vendors.retell = retell
    async with connect(vendors) as client:
        return await client.call_tool(tool, arguments)


@pytest.mark.parametrize("tool", LISTINGS)
@pytest.mark.parametrize(
    ("arguments", "query"),
    [
        ({"llm_id": "llm_9"}, "type=retell-llm&llm_id=llm_9&limit=50"),
        ({"conversation_flow_id": "cf_4", "limit": 9}, "type=conversation-flow&conversation_flow_id=cf_4&limit=9"),
        ({"llm_id": "llm_9", "pagination_key": "pk_2"}, "type=retell-llm&llm_id=llm_9&limit=50&pagination_key=pk_2"),
    ],
)  # fmt: skip
async def test_listing_by_engine_id_sends_retells_query_and_returns_the_page(
    vendors: FakeVendors, tool: str, arguments: dict[str, Any], query: str
) -> None:
    """An LLM or flow ID becomes Retell's `type` plus that ID; the page comes back exactly as Retell sent it."""
    result = await call(vendors, tool, arguments)
    assert result.structured_content == PAGE and json.loads(result.content[0].text) == PAGE
    (request,) = vendors.requests
    assert str(request.url) == f"https://api.retellai.com{LISTINGS[tool]}?{query}"
    assert request.headers["authorization"] == f"Bearer {RETELL_KEY}"


async def test_list_batch_tests_sends_the_version_only_when_given(vendors: FakeVendors) -> None:
    """`version` narrows to one engine version; without it Retell answers for the latest."""
    await call(vendors, "list_batch_tests", {"llm_id": "llm_9", "version": 3})
    assert vendors.requests[0].url.params.get("version") == "3"
    vendors.requests.clear()
    await call(vendors, "list_batch_tests", {"llm_id": "llm_9"})
    assert "version" not in vendors.requests[0].url.params


@pytest.mark.parametrize("tool", LISTINGS)
@pytest.mark.parametrize(
    ("agent", "query"),
    [("agent_llm", "type=retell-llm&llm_id=llm_9"), ("agent_flow", "type=conversation-flow&conversation_flow_id=cf_4")],
)
async def test_an_agent_is_resolved_to_its_response_engine(
    vendors: FakeVendors, tool: str, agent: str, query: str
) -> None:
    """agent_id costs one GET /get-agent/{id}; the listing then asks for the agent's LLM or flow."""
    result = await call(vendors, tool, {"agent_id": agent})
    assert result.structured_content == PAGE
    assert [str(r.url) for r in vendors.requests] == [
        f"https://api.retellai.com/get-agent/{agent}",
        f"https://api.retellai.com{LISTINGS[tool]}?{query}&limit=50",
    ]


@pytest.mark.parametrize("tool", LISTINGS)
async def test_a_custom_llm_agent_is_refused_with_the_reason(vendors: FakeVendors, tool: str) -> None:
    """Retell's tests do not run against custom LLMs: the agent is read, nothing is listed, the error says why."""
    error = error_of(await call(vendors, tool, {"agent_id": "agent_custom"}))
    assert error["code"] == "invalid_argument" and "custom LLM" in error["message"]
    assert [r.url.path for r in vendors.requests] == ["/get-agent/agent_custom"]


async def test_an_agent_without_a_usable_engine_is_a_bad_upstream_response(vendors: FakeVendors) -> None:
    """An engine ID that could steer a request elsewhere is the vendor's fault, and is never used in a path."""
    error = error_of(await call(vendors, "list_batch_tests", {"agent_id": "agent_odd"}))
    assert error["code"] == "bad_upstream_response" and "llm_id or conversation_flow_id" in error["message"]
    assert len(vendors.requests) == 1


async def test_an_unknown_agent_is_not_found(vendors: FakeVendors) -> None:
    error = error_of(await call(vendors, "list_test_case_definitions", {"agent_id": "agent_gone"}))
    assert error["code"] == "not_found" and "agent 'agent_gone'" in error["message"]


@pytest.mark.parametrize("tool", LISTINGS)
@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({}, "got none"),
        ({"agent_id": "agent_llm", "llm_id": "llm_9"}, "got agent_id and llm_id"),
        ({"agent_id": "a", "llm_id": "b", "conversation_flow_id": "c"}, "exactly one of"),
        ({"agent_id": "../../x"}, "agent_id must be"),
        ({"llm_id": "llm 9"}, "llm_id must be"),
        ({"conversation_flow_id": "cf%2f"}, "conversation_flow_id must be"),
        ({"agent_id": "agent_llm", "pagination_key": "a b"}, "pagination_key must be"),
    ],
)
async def test_anything_but_exactly_one_good_id_is_refused_before_any_request(
    vendors: FakeVendors, tool: str, arguments: dict[str, Any], words: str
) -> None:
    """Zero or several IDs, a malformed one, or a malformed pagination key: invalid_argument, and not even the
    agent is looked up."""
    error = error_of(await call(vendors, tool, arguments))
    assert error["code"] == "invalid_argument" and words in error["message"]
    assert vendors.requests == []


async def test_list_test_cases_sends_prompt_version_ids_as_repeated_parameters(vendors: FakeVendors) -> None:
    """Tela's `promptVersionIds` is a repeated query parameter, one per UUID, in the order given."""
    versions = ["550e8400-e29b-41d4-a716-446655440007", "550e8400-e29b-41d4-a716-446655440008"]
    async with connect(vendors) as client:
        result = await client.call_tool("list_test_cases", {"prompt_id": CASE_ID, "prompt_version_ids": versions})
    assert result.structured_content == {"items": [TELA_CASE]}
    (request,) = vendors.requests
    assert request.url.params.get_list("promptVersionIds") == versions
    assert str(request.url) == (
        f"https://api.tela.com/test-case?promptId={CASE_ID}"
        f"&promptVersionIds={versions[0]}&promptVersionIds={versions[1]}"
    )


async def test_a_malformed_prompt_version_id_never_reaches_the_network(vendors: FakeVendors) -> None:
    async with connect(vendors) as client:
        result = await client.call_tool("list_test_cases", {"prompt_id": CASE_ID, "prompt_version_ids": ["v1&x=y"]})
    error = error_of(result)
    assert error["code"] == "invalid_argument" and "prompt_version_ids must be a UUID" in error["message"]
    assert vendors.requests == []


def tela_ignoring_the_flag_by_id(request: httpx2.Request) -> httpx2.Response:
    """A Tela that honours includeGenerations only where it is documented: on the list route."""
    if request.url.path == "/test-case":
        other = {**TELA_CASE, "id": "550e8400-e29b-41d4-a716-446655440009", "generations": []}
        with_generations = request.url.params.get("includeGenerations") == "true"
        return json_response(200, [other, {**TELA_CASE, **({"generations": GENERATIONS} if with_generations else {})}])
    return json_response(200, TELA_CASE)


async def test_generations_come_from_the_list_when_the_by_id_route_ignores_the_flag(vendors: FakeVendors) -> None:
    """include_generations=true always returns generations: when the case arrives without them, the prompt's list
    (where Tela documents the flag) supplies this case's."""
    vendors.tela = tela_ignoring_the_flag_by_id
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_case", {"id": CASE_ID, "include_generations": True})
        plain = await client.call_tool("get_test_case", {"id": CASE_ID})
    assert result.structured_content == {**TELA_CASE, "generations": GENERATIONS}
    assert plain.structured_content == TELA_CASE  # without the flag: one request, the case as Tela sent it
    assert [str(r.url) for r in vendors.requests] == [
        f"https://api.tela.com/test-case/{CASE_ID}?includeGenerations=true",
        f"https://api.tela.com/test-case?promptId={TELA_CASE['promptId']}&includeGenerations=true",
        f"https://api.tela.com/test-case/{CASE_ID}",
    ]


async def test_generations_sent_by_id_need_no_second_request(vendors: FakeVendors) -> None:
    """When Tela does include generations on the by-ID route, they are used as they are."""
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_case", {"id": CASE_ID, "include_generations": True})
    assert result.structured_content == {**TELA_CASE, "id": CASE_ID, "generations": GENERATIONS}
    assert len(vendors.requests) == 1


async def test_review_prompt_leads_to_a_case_with_generations(vendors: FakeVendors) -> None:
    """review_test_case asks for get_test_case with include_generations; against a Tela that ignores the flag by
    ID, following the prompt still yields the generations it needs."""
    vendors.tela = tela_ignoring_the_flag_by_id
    async with connect(vendors) as client:
        prompt = await client.get_prompt("review_test_case", {"id": CASE_ID})
        text = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert "get_test_case" in text and "include_generations true" in text
        result = await client.call_tool("get_test_case", {"id": CASE_ID, "include_generations": True})
    assert result.structured_content is not None and result.structured_content["generations"] == GENERATIONS
