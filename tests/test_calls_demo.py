"""The call loop in the demo (issue 25, item 7): "which calls went wrong this week?", "make a test of that call",
save it, run it on the version the call ran on (it fails), draft the fix, rerun it on the draft (it passes), all in
one session; and from a shell, `call --demo`, with nothing private in the answers or on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from mcp import Client

from mcp_server.config import load_settings
from mcp_server.demo import DEMO_AGENT_ID, DEMO_LLM_ID, REFUND_RULE, demo_settings
from mcp_server.demo.calls import CANCEL_CALL_ID, production_calls
from mcp_server.demo.records import ORDER_HELP
from mcp_server.demo.vendors import DemoVendors
from mcp_server.server import build_server
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
WEEK_AGO = (NOW - timedelta(days=7)).isoformat().replace("+00:00", "Z")
# What the demo's calls hold that must never reach an answer or a log: their links, full numbers, a web call's access
# token, and what Retell scrubbed from the transcripts.
PRIVATE = ("https://", "cloudfront", "Signature", "crm.example.com", "eyJhbGci", "Maria", "Lopez", "maria.lopez",
           "650-555-0142", "6505550142", "4155550100", "4155550123", "2125550142", "3125550188", "twilio",
           "CA")  # fmt: skip


def demo_client(clock: FakeClock, **flags: Any) -> Client:
    settings = demo_settings(load_settings(flags, env={}))
    transport = httpx2.MockTransport(DemoVendors(now_ms=NOW_MS).handle)
    return Client(build_server(settings, transport=transport, clock=clock.clock()))


def private_parts(text: str) -> list[str]:
    """The private strings in `text` (the twilio SID prefix "CA" only as a word of its own, as SIDs start)."""
    return [part for part in PRIVATE if (f'"{part}' if part == "CA" else part) in text]


async def test_the_call_loop_runs_in_one_session() -> None:
    """The README's call rows, in one session of --demo --allow-edits --allow-runs: this week's failed calls of
    agent_demo_support are the cancellation alone (the voicemail is nine days old); its view has the tool call and the
    scrubbed transcript; the drafted test saved with metrics fails on version 2, where the call ran; a draft of version
    2 that lets the agent cancel (version 5, after the README's refund fix) passes it."""
    clock = FakeClock()
    async with demo_client(clock, allow_edits=True, allow_runs=True) as client:
        # The README's rows before these drafted version 4, the refund fix.
        refund_fix = {"states": [{"name": "order_help", "state_prompt": f"{ORDER_HELP}\n{REFUND_RULE}"}]}
        refund = await client.call_tool(
            "draft_agent_version", {"agent_id": DEMO_AGENT_ID, "base_version": 3, "changes": refund_fix}
        )
        assert refund.structured_content is not None and refund.structured_content["version"] == 4

        # "Which calls went wrong this week?"
        listed = await client.call_tool(
            "list_calls", {"agent_id": DEMO_AGENT_ID, "successful": False, "since": WEEK_AGO}
        )
        page = listed.structured_content
        assert page is not None, listed.content[0].text
        assert [item["call_id"] for item in page["items"]] == [CANCEL_CALL_ID]
        (item,) = page["items"]
        assert (item["agent_version"], item["user_sentiment"], item["from"]) == (2, "Negative", "…0142")
        everything = await client.call_tool("list_calls", {"agent_id": DEMO_AGENT_ID, "successful": False})
        assert everything.structured_content is not None
        assert [i["call_id"] for i in everything.structured_content["items"]] == [CANCEL_CALL_ID, "call_demo_voicemail"]

        # "Make a test of that call."
        prompt = await client.get_prompt("test_from_call", {"call_id": CANCEL_CALL_ID})
        steps = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert all(word in steps for word in ("get_call", "draft_test_from_call", "save_test_case_definition",
                                              "run_batch_test", "fix_failing_test"))  # fmt: skip
        call = (await client.call_tool("get_call", {"call_id": CANCEL_CALL_ID})).structured_content
        assert call is not None and call["transcript"] == "scrubbed"
        assert [turn["role"] for turn in call["turns"]][:4] == ["agent", "user", "tool_call_invocation",
                                                                "tool_call_result"]  # fmt: skip
        assert "[name]" in call["turns"][1]["content"]
        assert "Call History, call call_demo_cancel" in call["recording"]
        drafted = (await client.call_tool("draft_test_from_call", {"call_id": CANCEL_CALL_ID})).structured_content
        assert drafted is not None
        definition = drafted["definition"]
        assert (definition["llm_id"], definition["version"], definition["metrics"]) == (DEMO_LLM_ID, 2, [])
        assert definition["tool_mocks"] == [
            {
                "tool_name": "lookup_order",
                "input_match_rule": {"type": "partial_match", "args": {"order_id": "ORD-20418"}},
                "output": '{"status": "processing", "eta_days": 5}',
            }
        ]

        # Save it, with the metrics the assistant wrote.
        metrics = ["Agent cancels an order that has not shipped when the caller asks"]
        saved = await client.call_tool("save_test_case_definition", {**definition, "metrics": metrics})
        assert saved.structured_content is not None, saved.content[0].text
        test_id = saved.structured_content["test_case_definition_id"]
        assert test_id == "tcd_demo_new_1"  # the README's ID
        assert saved.structured_content["response_engine"] == {"type": "retell-llm", "llm_id": DEMO_LLM_ID,
                                                               "version": 2}  # fmt: skip

        # Run it on the version the call ran on: it fails, as the call did.
        first = await run(client, test_id, 2)
        assert first["counts"] == {"fail": 1}
        assert "cannot cancel orders" in first["failed"][0]["result_explanation"]

        # Fix it: a draft of version 2 that lets the agent cancel; rerun on the draft: it passes.
        rule = "If the caller asks to cancel an order that has not shipped, cancel it and confirm by email."
        fixed = await client.call_tool(
            "draft_agent_version",
            {"agent_id": DEMO_AGENT_ID, "base_version": 2,
             "changes": {"states": [{"name": "order_help", "state_prompt": f"{ORDER_HELP}\n{REFUND_RULE}\n{rule}"}]}},
        )  # fmt: skip
        draft = fixed.structured_content
        assert draft is not None, fixed.content[0].text
        assert (draft["version"], draft["base_version"], draft["engine"]["version"]) == (5, 2, 5)  # the README's
        second = await run(client, test_id, draft["engine"]["version"])
        assert second["counts"] == {"pass": 1} and second["failed"] == []
        for result in (listed, everything):
            assert private_parts(result.content[0].text) == []


async def run(client: Client, definition_id: str, version: int) -> dict[str, Any]:
    """Start the test on the support LLM at `version` and wait for it: the batch's summary."""
    started = await client.call_tool(
        "run_batch_test", {"test_case_definition_ids": [definition_id], "llm_id": DEMO_LLM_ID, "version": version}
    )
    assert started.structured_content is not None, started.content[0].text
    batch = started.structured_content["test_case_batch_job_id"]
    waited = await client.call_tool("summarize_batch_test", {"test_case_batch_job_id": batch, "wait_seconds": 40})
    summary = waited.structured_content
    assert summary is not None and summary["complete"] is True
    return summary


async def test_no_answer_holds_a_link_a_full_number_or_what_retell_scrubbed() -> None:
    """Every call of the demo, listed and read (with the scrubbed transcript, the default), and each drafted as a
    test: no link, no full phone number, no web call token, no name Retell scrubbed, in any answer."""
    async with demo_client(FakeClock()) as client:
        texts = [(await client.call_tool("list_calls", {"agent_id": agent, "limit": 50})).content[0].text
                 for agent in (DEMO_AGENT_ID, "agent_demo_live")]  # fmt: skip
        for call_id in production_calls(NOW_MS):
            for tool in ("get_call", "draft_test_from_call"):
                result = await client.call_tool(tool, {"call_id": call_id})
                assert result.is_error is False, result.content[0].text
                texts.append(result.content[0].text)
            texts.append((await client.read_resource(f"retell://calls/{call_id}")).contents[0].text)  # type: ignore[union-attr]
    assert len(texts) == 2 + 3 * len(production_calls(NOW_MS))
    assert {part for text in texts for part in private_parts(text)} == set()


async def test_with_full_transcripts_the_full_one_is_shown_and_links_still_are_not() -> None:
    """`call_transcripts: full` shows the full transcript (the caller's name as said), says so, and still shows no
    link and no full number."""
    async with demo_client(FakeClock(), call_transcripts="full") as client:
        call = (await client.call_tool("get_call", {"call_id": CANCEL_CALL_ID})).structured_content
    assert call is not None and call["transcript"] == "full" and "call_transcripts: full" in call["transcript_note"]
    assert "Maria Lopez" in call["turns"][1]["content"]
    text = json.dumps(call, ensure_ascii=False)
    assert "https://" not in text and "650-555-0142" not in text and "…0142" in text


def cli(*args: str, level: str = "DEBUG") -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RETELL", "TELA"))}
    return subprocess.run(
        [sys.executable, "-m", "mcp_server", "call", "--demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "RETELL_TELA_MCP_LOG_LEVEL": level},
    )


def test_the_readme_call_rows_work_from_a_shell_and_log_nothing_private() -> None:
    """`call --demo` lists this week's failed call, reads it and drafts its test through a real client session; at
    DEBUG, stderr names requests (Retell's own API addresses) but no link of the call, no full number and no
    transcript text; at INFO it holds no address at all."""
    since = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    listed = cli("list_calls", f"agent_id={DEMO_AGENT_ID}", "successful=false", f"since={since}")
    assert listed.returncode == 0, listed.stderr
    assert [item["call_id"] for item in json.loads(listed.stdout)["items"]] == [CANCEL_CALL_ID]
    read = cli("get_call", f"call_id={CANCEL_CALL_ID}")
    drafted = cli("draft_test_from_call", f"call_id={CANCEL_CALL_ID}", level="INFO")
    assert read.returncode == drafted.returncode == 0, read.stderr + drafted.stderr
    assert json.loads(drafted.stdout)["definition"]["version"] == 2
    for done in (listed, read, drafted):
        assert private_parts(done.stdout.replace("https://api.retellai.com", "")) == []
        stderr = done.stderr.replace("https://api.retellai.com/", "")
        assert private_parts(stderr) == [] and "cancel my order" not in stderr and "processing" not in stderr
    assert "tool=get_call" in read.stderr and "GET https://api.retellai.com/v2/get-call/call_demo_cancel" in read.stderr
    assert "https://" not in drafted.stderr and "tool=draft_test_from_call" in drafted.stderr
