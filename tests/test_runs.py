"""Starting runs: opt-in, labelled, exact requests, and never sent twice by us (issue 9, point 3)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from mcp_server.cli import _flags, build_parser
from mcp_server.config import load_settings
from mcp_server.server import build_server
from tests.conftest import (
    RETELL_KEY,
    RUN_TOOL_NAMES,
    TELA_KEY,
    TOOL_NAMES,
    FakeVendors,
    connect,
    error_of,
    json_response,
    make_settings,
)

pytestmark = pytest.mark.anyio

RUNS = make_settings({"allow_runs": True})
BATCH = {"test_case_batch_job_id": "tcbj_new", "status": "in_progress", "pass_count": 0, "total_count": 2}
VERSION_ID = "550e8400-e29b-41d4-a716-446655440002"
CASE_IDS = ["550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440003"]
AGENT = {"agent_id": "agent_1", "response_engine": {"type": "conversation-flow", "conversation_flow_id": "cf_1"}}


async def run(vendors: FakeVendors, tool: str, arguments: dict[str, Any], settings: Any = RUNS) -> Any:
    async with connect(vendors, settings) as client:
        return await client.call_tool(tool, arguments)


async def test_run_tools_are_not_listed_unless_allowed(vendors: FakeVendors) -> None:
    """Off by default: tools/list is exactly the read tools, and a run tool cannot be called."""
    async with connect(vendors) as client:
        assert [t.name for t in (await client.list_tools()).tools] == TOOL_NAMES
        result = await client.call_tool("run_batch_test", {"test_case_definition_ids": ["tcd_1"], "llm_id": "l"})
    assert result.is_error is True and "Unknown tool" in result.content[0].text
    assert vendors.requests == []


async def test_allowed_run_tools_are_listed_last_labelled_as_writes_that_cost_credits(vendors: FakeVendors) -> None:
    """With allow_runs the two run tools follow the read tools, annotated as non-read-only, non-idempotent,
    non-destructive and open-world, and their descriptions say they cost the vendor's credits."""
    async with connect(vendors, RUNS) as client:
        tools = (await client.list_tools()).tools
        instructions = client.instructions
    assert [t.name for t in tools] == TOOL_NAMES + RUN_TOOL_NAMES
    for tool in tools[len(TOOL_NAMES) :]:
        assert tool.annotations is not None and tool.title
        hints = tool.annotations
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (
            False, False, False, True)  # fmt: skip
        assert tool.description and ("credits" in tool.description or "quota" in tool.description)
    assert instructions is not None and "run_batch_test" in instructions


def test_allow_runs_comes_from_flag_environment_or_file(tmp_path: Any) -> None:
    """`--allow-runs`, RETELL_TELA_MCP_ALLOW_RUNS and the file's `allow_runs` each turn it on; default off."""
    assert load_settings(env={}).allow_runs is False
    assert load_settings(env={"RETELL_TELA_MCP_ALLOW_RUNS": "true"}).allow_runs is True
    config = tmp_path / "c.json"
    config.write_text('{"allow_runs": true}')
    assert load_settings(env={}, config_path=config).source_of("allow_runs") == "file"
    args = build_parser().parse_args(["serve", "--allow-runs"])
    settings = load_settings(_flags(args), env={"RETELL_TELA_MCP_ALLOW_RUNS": "false"})
    assert settings.allow_runs is True and settings.source_of("allow_runs") == "flag"
    assert load_settings(_flags(build_parser().parse_args(["serve"])), env={}).allow_runs is False


@pytest.mark.parametrize(
    ("arguments", "engine"),
    [
        ({"llm_id": "llm_1"}, {"type": "retell-llm", "llm_id": "llm_1"}),
        ({"llm_id": "llm_1", "version": 4}, {"type": "retell-llm", "llm_id": "llm_1", "version": 4}),
        ({"agent_id": "agent_1"}, {"type": "conversation-flow", "conversation_flow_id": "cf_1"}),
    ],
)
async def test_run_batch_test_posts_retells_body_and_returns_the_new_batch(
    vendors: FakeVendors, arguments: dict[str, Any], engine: dict[str, Any]
) -> None:
    """One POST /create-batch-test with the engine (an agent's, looked up first) and the definitions; the new
    batch comes back as Retell sent it."""
    vendors.retell = lambda r: json_response(200, AGENT if r.method == "GET" else BATCH)
    result = await run(vendors, "run_batch_test", {"test_case_definition_ids": ["tcd_1", "tcd_2"], **arguments})
    assert result.structured_content == BATCH
    post = vendors.requests[-1]
    assert (post.method, str(post.url)) == ("POST", "https://api.retellai.com/create-batch-test")
    assert json.loads(post.content) == {"response_engine": engine, "test_case_definition_ids": ["tcd_1", "tcd_2"]}
    assert post.headers["authorization"] == f"Bearer {RETELL_KEY}"
    assert post.headers["content-type"] == "application/json"
    assert len(vendors.requests) == (2 if "agent_id" in arguments else 1)


@pytest.mark.parametrize(
    ("arguments", "body"),
    [
        ({}, {"promptVersionId": VERSION_ID}),
        ({"test_case_ids": CASE_IDS}, {"promptVersionId": VERSION_ID, "testCaseIds": CASE_IDS}),
    ],
)
async def test_run_test_cases_posts_tela_body_and_returns_its_answer(
    vendors: FakeVendors, arguments: dict[str, Any], body: dict[str, Any]
) -> None:
    """One POST /test-case/run-all; an empty executionId (everything already running) comes back unchanged."""
    answer = {"executionId": "", "skipped": CASE_IDS}
    vendors.tela = lambda request: json_response(200, answer)
    result = await run(vendors, "run_test_cases", {"prompt_version_id": VERSION_ID, **arguments})
    assert result.structured_content == answer
    (post,) = vendors.requests
    assert (post.method, str(post.url)) == ("POST", "https://api.tela.com/test-case/run-all")
    assert json.loads(post.content) == body and post.headers["authorization"] == f"Bearer {TELA_KEY}"


@pytest.mark.parametrize(
    ("tool", "arguments", "words"),
    [
        ("run_batch_test", {"test_case_definition_ids": [], "llm_id": "l"}, "at least one"),
        ("run_batch_test", {"test_case_definition_ids": ["ok", "../x"], "llm_id": "l"}, "test_case_definition_ids"),
        ("run_batch_test", {"test_case_definition_ids": ["ok"]}, "exactly one of"),
        ("run_batch_test", {"test_case_definition_ids": ["ok"], "llm_id": "a", "agent_id": "b"}, "exactly one of"),
        ("run_test_cases", {"prompt_version_id": "v1"}, "prompt_version_id must be a UUID"),
        ("run_test_cases", {"prompt_version_id": VERSION_ID, "test_case_ids": []}, "at least one"),
        ("run_test_cases", {"prompt_version_id": VERSION_ID, "test_case_ids": ["x?y"]}, "test_case_ids must be"),
    ],
)
async def test_bad_run_arguments_never_reach_the_network(
    vendors: FakeVendors, tool: str, arguments: dict[str, Any], words: str
) -> None:
    error = error_of(await run(vendors, tool, arguments))
    assert error["code"] == "invalid_argument" and words in error["message"]
    assert vendors.requests == []


async def hang(request: httpx2.Request) -> httpx2.Response:
    await anyio.sleep(30)
    raise AssertionError("the attempt should have timed out")


def reset(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.RemoteProtocolError("Server disconnected without sending a response.", request=request)


def status(code: int) -> Callable[[httpx2.Request], httpx2.Response]:
    return lambda request: json_response(code, {"status": "error", "message": "boom"})


TOOLS = {
    "retell": ("run_batch_test", {"test_case_definition_ids": ["tcd_1"], "llm_id": "llm_1"}, "list_batch_tests"),
    "tela": ("run_test_cases", {"prompt_version_id": VERSION_ID}, "generations"),
}


@pytest.mark.parametrize("vendor", TOOLS)
@pytest.mark.parametrize(
    ("answer", "code"),
    [(status(500), "upstream_error"), (status(503), "upstream_error"), (hang, "timeout"), (reset, "unreachable")],
)
async def test_a_run_request_that_may_have_arrived_is_never_sent_again(
    vendors: FakeVendors, vendor: str, answer: Any, code: str
) -> None:
    """A 5xx, a timeout or a connection broken after sending: exactly one request, retryable false, and a message
    that says the run may have started and where to check before starting again."""
    tool, arguments, check = TOOLS[vendor]
    setattr(vendors, vendor, answer)
    settings = make_settings({"allow_runs": True, "timeout_seconds": 0.3})
    error = error_of(await run(vendors, tool, arguments, settings))
    assert (error["code"], error["retryable"]) == (code, False)
    assert "may have started" in error["message"] and check in error["message"]
    assert len(vendors.requests) == 1


@pytest.mark.parametrize("vendor", TOOLS)
@pytest.mark.parametrize("refusal", ["429", "connect"])
async def test_a_refusal_that_proves_nothing_started_is_retried_like_a_read(
    vendors: FakeVendors, vendor: str, refusal: str
) -> None:
    """A 429 (with Retry-After) or a refused connection started nothing: the request is sent again and succeeds."""
    tool, arguments, _ = TOOLS[vendor]
    answers = iter(["refuse", "ok"])

    def handler(request: httpx2.Request) -> httpx2.Response:
        if next(answers) == "ok":
            return json_response(200, BATCH if vendor == "retell" else {"executionId": "e1"})
        if refusal == "connect":
            raise httpx2.ConnectError("Connection refused", request=request)
        return json_response(429, {"status": "error", "message": "slow down"}, {"retry-after": "0"})

    setattr(vendors, vendor, handler)
    result = await run(vendors, tool, arguments)
    assert result.is_error is False and len(vendors.requests) == 2


async def test_a_400_is_reported_as_the_vendors_refusal_without_a_retry(vendors: FakeVendors) -> None:
    """A 4xx says the vendor refused the request: reported with its own message, not sent again."""
    vendors.retell = lambda r: json_response(400, {"status": "error", "message": "Unknown test case definition"})
    error = error_of(await run(vendors, *TOOLS["retell"][:2]))
    assert error["code"] == "upstream_error" and "Unknown test case definition" in error["message"]
    assert error["retryable"] is False and len(vendors.requests) == 1


async def test_each_started_run_is_logged_with_its_ids_and_never_a_key(
    vendors: FakeVendors, caplog: pytest.LogCaptureFixture
) -> None:
    """One INFO line per started run naming what was started; no key, in whole or in part."""
    vendors.retell = lambda request: json_response(200, BATCH)
    vendors.tela = lambda request: json_response(200, {"executionId": "exec_9"})
    with caplog.at_level(logging.INFO):
        await run(vendors, "run_batch_test", {"test_case_definition_ids": ["tcd_1", "tcd_2"], "llm_id": "llm_1"})
        await run(vendors, "run_test_cases", {"prompt_version_id": VERSION_ID, "test_case_ids": CASE_IDS[:1]})
    started = [r.getMessage() for r in caplog.records if r.getMessage().startswith("started")]
    assert started == [
        "started Retell batch test tcbj_new: retell-llm llm_1, version latest, definitions tcd_1,tcd_2",
        f"started Tela run exec_9: prompt version {VERSION_ID}, cases {CASE_IDS[0]}",
    ]
    text = caplog.text
    for key in (RETELL_KEY, TELA_KEY):
        assert not any(key[i : i + 8] in text for i in range(len(key) - 7))


async def test_without_allow_runs_the_list_is_byte_for_byte_the_read_only_list(vendors: FakeVendors) -> None:
    """allow_runs false and unset give the same tools/list, so turning the feature off costs nothing."""
    lists = []
    for settings in (make_settings(), make_settings({"allow_runs": False})):
        async with Client(build_server(settings, transport=vendors.transport())) as client:
            lists.append((await client.list_tools()).model_dump_json())
    assert lists[0] == lists[1]


@pytest.mark.parametrize("vendor", TOOLS)
@pytest.mark.parametrize(
    ("body", "problem"),
    [(b"<html>ok</html>", "not valid JSON"), (b"[]", "instead of an object"), (b'{"n": 1e999}', "not valid JSON")],
)
async def test_a_run_answered_2xx_with_an_unusable_body_probably_started(
    vendors: FakeVendors, vendor: str, body: bytes, problem: str
) -> None:
    """A 2xx means the vendor accepted the run even when its body is unusable: bad_upstream_response, one request,
    and the message says where to find the run rather than 'try again'."""
    tool, arguments, check = TOOLS[vendor]
    setattr(vendors, vendor, lambda request: httpx2.Response(201, content=body))
    error = error_of(await run(vendors, tool, arguments))
    assert (error["code"], error["status"], error["retryable"]) == ("bad_upstream_response", 201, False)
    assert problem in error["message"] and "probably started" in error["message"] and check in error["message"]
    assert "try again later" not in error["message"]
    assert len(vendors.requests) == 1
