"""The demo tells the whole story offline: the README's walkthrough, step by step, through a real client session
(issue 9, point 6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from mcp_server.config import load_settings
from mcp_server.demo import (
    DEMO_AGENT_ID,
    DEMO_LIVE_AGENT_ID,
    DEMO_PROMPT_ID,
    DEMO_PROMPT_VERSION_ID,
    REFUND_RULE,
    demo_settings,
    demo_transport,
)
from mcp_server.server import build_server
from tests.conftest import TOOL_NAMES, FakeClock

pytestmark = pytest.mark.anyio

CASE_ID = "550e8400-e29b-41d4-a716-446655440003"
READS: dict[str, dict[str, Any]] = {
    "get_test_run": {"test_case_job_id": "tcj_demo_failed"},
    "get_test_case": {"id": CASE_ID, "include_generations": True},
    "get_batch_test": {"test_case_batch_job_id": "tcbj_demo_latest"},
    "list_test_runs": {"test_case_batch_job_id": "tcbj_demo_baseline", "limit": 1},
    "get_test_case_definition": {"test_case_definition_id": "tcd_demo_refund"},
    "list_test_cases": {"prompt_id": DEMO_PROMPT_ID, "prompt_version_ids": [DEMO_PROMPT_VERSION_ID]},
    "summarize_batch_test": {"test_case_batch_job_id": "tcbj_demo_latest"},
    "wait_for_test_run": {"test_case_job_id": "tcj_demo_passed"},
    "list_batch_tests": {"agent_id": DEMO_AGENT_ID},
    "list_test_case_definitions": {"llm_id": "llm_demo_support"},
    "get_response_engine": {"test_case_job_id": "tcj_demo_failed"},
    "list_agent_versions": {"agent_id": DEMO_AGENT_ID},
    "compare_batch_tests": {"before_batch_id": "tcbj_demo_baseline", "after_batch_id": "tcbj_demo_latest"},
    "get_prompt_version": {"id": DEMO_PROMPT_VERSION_ID},
    "list_prompt_versions": {"prompt_id": DEMO_PROMPT_ID},
    "list_calls": {"agent_id": DEMO_AGENT_ID, "successful": False},
    "get_call": {"call_id": "call_demo_cancel"},
    "draft_test_from_call": {"call_id": "call_demo_cancel"},
    "list_completion_runs": {"prompt_id": DEMO_PROMPT_ID},
    "get_completion_run": {"id": "6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f5"},
    "draft_test_case_from_run": {"run_id": "6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f5"},
}


def demo_client(clock: FakeClock, *, allow_runs: bool = True, allow_edits: bool = False) -> Client:
    settings = demo_settings(load_settings({"allow_runs": allow_runs, "allow_edits": allow_edits}, env={}))
    return Client(build_server(settings, transport=demo_transport(), clock=clock.clock()))


def test_every_read_tool_has_a_demo_call() -> None:
    assert sorted(READS) == sorted(TOOL_NAMES)


@pytest.mark.parametrize("tool", READS)
async def test_every_read_tool_answers_something_real_in_the_demo(tool: str) -> None:
    """No read tool answers not_found (or any error) for the demo IDs the README gives."""
    async with demo_client(FakeClock(), allow_runs=False) as client:
        result = await client.call_tool(tool, READS[tool])
    assert result.is_error is False, result.content[0].text
    assert result.structured_content


async def test_the_readme_walkthrough_runs_in_one_session() -> None:
    """The README's loop, row by row, in one session: find the last batch of agent_demo_support, summarize it,
    diagnose its failure, read the prompt that ran (version 3 lost the refund rule), see what version 3 changed
    against the batch before it, rerun the refund test on version 2 (which has the rule) and watch it pass."""
    clock = FakeClock()
    async with demo_client(clock) as client:
        batches = (await client.call_tool("list_batch_tests", {"agent_id": DEMO_AGENT_ID})).structured_content
        assert batches is not None
        latest = batches["items"][0]["test_case_batch_job_id"]
        assert latest == "tcbj_demo_latest"

        summary = (
            await client.call_tool("summarize_batch_test", {"test_case_batch_job_id": latest})
        ).structured_content
        assert summary is not None and summary["complete"] is True
        assert summary["counts"] == {"pass": 1, "fail": 2, "error": 1}
        failure = summary["failed"][0]
        assert [run["status"] for run in summary["failed"]] == ["fail", "fail", "error"]
        assert failure["test_case_job_id"] == "tcj_demo_failed"

        prompt = await client.get_prompt("diagnose_test_run", {"test_case_job_id": failure["test_case_job_id"]})
        assert "get_response_engine test_case_job_id=tcj_demo_failed" in prompt.messages[0].content.text  # type: ignore[union-attr]
        run = (await client.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_failed"})).structured_content
        assert run is not None and run["status"] == "fail" and run["test_case_definition_id"] == "tcd_demo_refund"

        # "What did the agent's prompt say?"
        engine = (
            await client.call_tool("get_response_engine", {"test_case_job_id": "tcj_demo_failed"})
        ).structured_content
        assert engine is not None
        assert engine["response_engine"] == {"type": "retell-llm", "llm_id": "llm_demo_support", "version": 3}
        states = {state["name"]: state["state_prompt"] for state in engine["engine"]["states"]}
        assert "offer a refund" not in states["order_help"]
        versions = (await client.call_tool("list_agent_versions", {"agent_id": DEMO_AGENT_ID})).structured_content
        assert versions is not None
        assert [(v["version"], v["is_published"]) for v in versions["items"]] == [(3, False), (2, True), (1, True)]
        before = (
            await client.call_tool("get_response_engine", {"agent_id": DEMO_AGENT_ID, "version": 2})
        ).structured_content
        assert before is not None and "offer a refund" in str(before["engine"]["states"])

        # "What did my change fix?"
        compared = (
            await client.call_tool(
                "compare_batch_tests", {"before_batch_id": "tcbj_demo_baseline", "after_batch_id": latest}
            )
        ).structured_content
        assert compared is not None and compared["complete"] is True
        assert {key: [change["test_case_definition_id"] for change in compared[key]] for key in
                ("fixed", "regressed", "still_failing")} == {"fixed": ["tcd_demo_greeting"],
                "regressed": ["tcd_demo_refund"], "still_failing": ["tcd_demo_human", "tcd_demo_address"]}  # fmt: skip

        started = await client.call_tool(
            "run_batch_test",
            {"test_case_definition_ids": ["tcd_demo_refund"], "agent_id": DEMO_AGENT_ID, "version": 2},
        )
        rerun = started.structured_content
        assert rerun is not None and rerun["status"] == "in_progress"
        assert rerun["test_case_batch_job_id"] == "tcbj_demo_rerun_1"

        waited = await client.call_tool(
            "summarize_batch_test", {"test_case_batch_job_id": "tcbj_demo_rerun_1", "wait_seconds": 30}
        )
        final = waited.structured_content
        assert final is not None and final["status"] == "complete" and final["complete"] is True
        assert final["counts"] == {"pass": 1} and final["failed"] == []
        assert clock.slept  # it waited: the rerun was still running at first


async def test_the_readme_fix_loop_runs_in_one_session() -> None:
    """--demo --allow-edits --allow-runs plays the fix loop end to end: the fix_failing_test prompt, a draft of
    version 3 with the refund rule put back (version 4, never published), the refund test rerun on it passes, and
    the comparison with the failed batch shows it fixed; the agent a phone number binds to latest is refused."""
    clock = FakeClock()
    async with demo_client(clock, allow_edits=True) as client:
        prompt = await client.get_prompt("fix_failing_test", {"test_case_job_id": "tcj_demo_failed"})
        text = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert all(step in text for step in ("get_response_engine", "draft_agent_version", "run_batch_test",
                                              "compare_batch_tests", "publish"))  # fmt: skip

        fixed_prompt = f"Ask for the order number and look it up with lookup_order. {REFUND_RULE}"
        drafted = await client.call_tool(
            "draft_agent_version",
            {"agent_id": DEMO_AGENT_ID, "base_version": 3,
             "changes": {"states": [{"name": "order_help", "state_prompt": fixed_prompt}]}},
        )  # fmt: skip
        draft = drafted.structured_content
        assert draft is not None, drafted.content[0].text
        assert (draft["version"], draft["base_version"], draft["engine"]["version"]) == (4, 3, 4)
        assert draft["changes"][0]["field"] == "states.order_help.state_prompt"
        versions = (await client.call_tool("list_agent_versions", {"agent_id": DEMO_AGENT_ID})).structured_content
        assert versions is not None and (versions["items"][0]["version"], versions["items"][0]["is_published"]) == (
            4, False)  # fmt: skip

        started = await client.call_tool(
            "run_batch_test", {"test_case_definition_ids": ["tcd_demo_refund"], "agent_id": DEMO_AGENT_ID, "version": 4}
        )
        assert started.structured_content is not None
        rerun = started.structured_content["test_case_batch_job_id"]
        waited = await client.call_tool("summarize_batch_test", {"test_case_batch_job_id": rerun, "wait_seconds": 40})
        assert waited.structured_content is not None and waited.structured_content["counts"] == {"pass": 1}

        compared = (
            await client.call_tool(
                "compare_batch_tests", {"before_batch_id": "tcbj_demo_latest", "after_batch_id": rerun}
            )
        ).structured_content
        assert compared is not None and compared["complete"] is True
        assert [change["test_case_definition_id"] for change in compared["fixed"]] == ["tcd_demo_refund"]
        assert compared["regressed"] == [] and compared["still_failing"] == []

        live = await client.call_tool(
            "draft_agent_version",
            {"agent_id": DEMO_LIVE_AGENT_ID, "base_version": 1, "changes": {"general_prompt": "Hello."}},
        )
        error = json.loads(live.content[0].text)["error"]
        assert error["code"] == "unsafe_edit" and "…0199" in error["message"]


async def test_tela_runs_in_the_demo() -> None:
    """run_test_cases answers an execution ID in the demo, and the prompt's failing case shows its generation."""
    async with demo_client(FakeClock()) as client:
        answer = await client.call_tool("run_test_cases", {"prompt_version_id": DEMO_PROMPT_VERSION_ID})
        case = await client.call_tool("get_test_case", {"id": CASE_ID, "include_generations": True})
    assert answer.structured_content is not None and answer.structured_content["executionId"]
    assert case.structured_content is not None and case.structured_content["generations"]


async def test_a_pagination_key_the_demo_never_issued_is_the_vendors_400() -> None:
    """A made-up pagination_key gets the error a vendor would give (an error result), never a traceback; the key
    the demo did issue reads the next page."""
    async with demo_client(FakeClock(), allow_runs=False) as client:
        made_up = await client.call_tool(
            "list_test_runs", {"test_case_batch_job_id": "tcbj_demo_latest", "pagination_key": "abc"}
        )
        first = await client.call_tool("list_test_runs", {"test_case_batch_job_id": "tcbj_demo_latest", "limit": 1})
        assert first.structured_content is not None and first.structured_content["has_more"] is True
        key = first.structured_content["pagination_key"]
        second = await client.call_tool(
            "list_test_runs", {"test_case_batch_job_id": "tcbj_demo_latest", "limit": 1, "pagination_key": key}
        )
    error = json.loads(made_up.content[0].text)["error"]
    assert (error["code"], error["status"]) == ("upstream_error", 400) and "pagination_key" in error["message"]
    assert second.structured_content is not None
    assert second.structured_content["items"][0]["test_case_job_id"] == "tcj_demo_passed"
