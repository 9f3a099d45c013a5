"""Writes under the byte-level fault vendor (issue 20, point 8): the real server process over stdio, every write tool.

A write that may have reached the vendor (a 5xx, a hang, a connection broken once sent, a 2xx whose body cannot be
used) is sent exactly once, and its error says what may have happened and where to look before trying again; a 429
or a refused connection proves nothing happened, so the write is sent again and succeeds. The session keeps serving
throughout, at DEBUG, and no piece of a key reaches the logs.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import StdioServerParameters
from mcp_types import CallToolResult

from tests.conftest import RETELL_KEY, TELA_KEY
from tests.faults import DEFAULT_LLM, PROMPT_ID, WRITE_METHODS, FaultVendor, fault_vendor
from tests.test_faults import server_params, session

pytestmark = pytest.mark.anyio

BASE_VERSION_ID = "22222222-2222-4222-8222-222222222222"  # any Tela prompt version: the vendor answers a fake one
MESSAGES = [{"role": "user", "content": "Where is my order?"}]


@dataclass(frozen=True)
class Write:
    """One write tool's call whose faulted request is scenario `s`: its arguments, the method of that request, what
    the error says may have happened ({} is "may have" or "has probably"), where it says to look, and the write sent
    before it in the same call (a draft's new version, before its LLM is changed), if any."""

    tool: str
    arguments: Callable[[FaultVendor, str], dict[str, Any]]
    method: str
    happened: str
    look: Callable[[FaultVendor, str], list[str]]
    before: Callable[[str], str] | None = None


def draft_of(s: str) -> str:
    """An agent whose new draft is made fine and whose LLM, `s`, then gets the fault."""
    return f"ok-{s}--{s}"


WRITES: dict[str, Write] = {
    "batch": Write(
        "run_batch_test",
        lambda v, s: {"test_case_definition_ids": [s], "agent_id": "ok-agent"},
        "POST",
        "the run {} started",
        lambda v, s: [f"Check list_batch_tests for llm_id={DEFAULT_LLM}"],
    ),
    "tela-run": Write(
        "run_test_cases",
        lambda v, s: {"prompt_version_id": v.uuid(s)},
        "POST",
        "the run {} started",
        lambda v, s: ["Check the cases' generations (get_test_case with include_generations)"],
    ),
    "definition-new": Write(
        "save_test_case_definition",
        lambda v, s: {"name": s, "user_prompt": "Ask for a refund.", "metrics": ["Polite."], "agent_id": "ok-agent"},
        "POST",
        "the test definition {} been created",
        lambda v, s: [f"Check list_test_case_definitions for the engine {DEFAULT_LLM}"],
    ),
    "definition-change": Write(
        "save_test_case_definition",
        lambda v, s: {"test_case_definition_id": s, "name": "Refund, politely"},
        "PUT",
        "the test definition {} been changed",
        lambda v, s: [f"Check get_test_case_definition test_case_definition_id={s}"],
    ),
    "case-new": Write(
        "save_test_case",
        lambda v, s: {"prompt_id": PROMPT_ID, "messages": MESSAGES, "title": s},
        "POST",
        "the test case {} been created",
        lambda v, s: [f"Check list_test_cases prompt_id={PROMPT_ID}"],
    ),
    "case-change": Write(
        "save_test_case",
        lambda v, s: {"id": v.uuid(s), "title": "Renamed"},
        "PATCH",
        "the test case {} been changed",
        lambda v, s: [f"Check get_test_case id={v.uuid(s)}"],
    ),
    "draft-new": Write(
        "draft_agent_version",
        lambda v, s: {"agent_id": s, "base_version": 1, "changes": {"general_prompt": "Be brief."}},
        "POST",
        "a new draft {} been created",
        lambda v, s: [f"Check list_agent_versions agent_id={s}", "draft_agent_version draft_version=<its version>"],
    ),
    "draft-change": Write(
        "draft_agent_version",
        lambda v, s: {"agent_id": draft_of(s), "base_version": 1, "changes": {"general_prompt": "Be brief."}},
        "PATCH",
        "retell-llm {s} version 2 {} been changed",
        lambda v, s: [
            f"Draft version 2 of agent '{draft_of(s)}' was created from version 1",
            f"Check get_response_engine llm_id={s} version=2",
            "Finish it with draft_agent_version draft_version=2.",
        ],
        before=draft_of,
    ),
    "prompt-draft": Write(
        "draft_prompt_version",
        lambda v, s: {"base_version_id": BASE_VERSION_ID, "changes": {"title": s, "content": "Offer a refund."}},
        "POST",
        "the draft {} been created",
        lambda v, s: [f"Check list_prompt_versions prompt_id={PROMPT_ID}"],
    ),
}

# (scenario, code, the error's status, how sure the error is that the write happened, words the message must hold)
FAULTS: list[tuple[str, str, int | None, str, list[str]]] = [
    ("status-500", "upstream_error", 500, "may have", ["failed with HTTP 500: simulated 500"]),
    ("status-503", "upstream_error", 503, "may have", ["failed with HTTP 503: simulated 503"]),
    ("hang", "timeout", None, "may have", ["did not answer within 1 s (1 attempt)"]),
    ("reset", "unreachable", None, "may have", ["broke before the answer was complete (1 attempt)"]),
    ("midbody", "unreachable", None, "has probably", ["broke before the answer was complete (1 attempt)"]),
    ("invalidjson", "bad_upstream_response", 200, "has probably", ["answered HTTP 200 with a body that is not valid"]),
    ("empty", "bad_upstream_response", 200, "has probably", ["answered HTTP 200 with an empty body"]),
    ("gzipcut", "bad_upstream_response", 200, "has probably", ["ends before the end of its gzip stream"]),
]

# Input no vendor could take: `invalid_argument` before any request.
BAD_INPUT: list[tuple[str, dict[str, Any]]] = [
    ("run_batch_test", {"test_case_definition_ids": ["ok-1/../x"], "agent_id": "ok-agent"}),
    ("run_test_cases", {"prompt_version_id": "ok-not-a-uuid"}),
    ("save_test_case_definition", {"name": "two\nlines", "user_prompt": "p", "metrics": ["m"], "agent_id": "ok-a"}),
    ("save_test_case_definition", {"test_case_definition_id": "ok-1?x=1", "name": "n"}),
    ("save_test_case", {"prompt_id": PROMPT_ID, "messages": []}),
    ("save_test_case", {"id": "ok-not-a-uuid", "title": "t"}),
    ("draft_agent_version", {"agent_id": "ok-agent", "base_version": 1, "changes": {}}),
    ("draft_agent_version", {"agent_id": "ok-agent", "base_version": 1, "draft_version": 2, "changes": {}}),
    ("draft_prompt_version", {"base_version_id": BASE_VERSION_ID, "changes": {}}),
]


def write_params(retell: FaultVendor, *, tela: FaultVendor | None = None, retries: str = "2") -> StdioServerParameters:
    """The server of test_faults.py (timeout 1 s, DEBUG), with every write tool listed and no one asked to confirm
    (the SDK client declares no elicitation: the opt-in is the consent)."""
    params = server_params(retell)
    assert params.env is not None
    params.env |= {
        "RETELL_TELA_MCP_ALLOW_RUNS": "true",
        "RETELL_TELA_MCP_ALLOW_EDITS": "true",
        "RETELL_TELA_MCP_MAX_RETRIES": retries,
        "TELA_BASE_URL": (tela or retell).url,
    }
    return params


def error_in(result: CallToolResult) -> dict[str, Any]:
    """The contract's error object of a result, or {} when the result is not one."""
    if not result.is_error or len(result.content) != 1 or result.content[0].type != "text":
        return {}
    try:
        error: dict[str, Any] = json.loads(result.content[0].text)["error"]
    except (ValueError, KeyError, TypeError):
        return {}
    return error


def no_key_in(text: str) -> None:
    for key in (RETELL_KEY, TELA_KEY):
        assert [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in text] == []


async def test_a_write_that_may_have_reached_the_vendor_is_sent_once_and_says_where_to_look() -> None:
    """Every write under every fault at once, in one session: one request each, its code, retryable false, what may
    have happened and where to look; the same write works right after; a 429 is retried; bad input sends nothing."""
    outcomes: dict[tuple[str, str], tuple[dict[str, Any], bool]] = {}
    retried: dict[str, bool] = {}
    with fault_vendor() as vendor, tempfile.TemporaryFile("w+") as errlog:
        async with session(write_params(vendor), errlog) as client:
            bad = [error_in(await client.call_tool(tool, arguments)) for tool, arguments in BAD_INPUT]
            assert vendor.hits == []  # not even the reads that prepare a write

            async def exercise(key: str, fault: str) -> None:
                write, s = WRITES[key], f"{fault}-{key}"
                result = await client.call_tool(write.tool, write.arguments(vendor, s))
                after = await client.call_tool(write.tool, write.arguments(vendor, f"ok-after-{s}"))
                outcomes[key, fault] = (error_in(result), after.is_error is False)

            async def rate_limited_once(key: str) -> None:
                write = WRITES[key]
                result = await client.call_tool(write.tool, write.arguments(vendor, f"flaky429-0-{key}"))
                retried[key] = result.is_error is False

            async with anyio.create_task_group() as tg:
                for key in WRITES:
                    tg.start_soon(rate_limited_once, key)
                    for fault, *_ in FAULTS:
                        tg.start_soon(exercise, key, fault)
            last = await client.call_tool("get_test_run", {"test_case_job_id": "ok-last"})
        errlog.seek(0)
        stderr = errlog.read()

    assert [(error["code"], error["retryable"], "Nothing was sent" in error["message"]) for error in bad] == [
        ("invalid_argument", False, True)
    ] * len(BAD_INPUT)

    failures = []
    for key, write in WRITES.items():
        for fault, code, status, how_sure, words in FAULTS:
            s = f"{fault}-{key}"
            error, next_ok = outcomes[key, fault]
            message = error.get("message", "")
            happened = write.happened.format(how_sure, s=s)
            expected = [*words, f"so {happened}.", *write.look(vendor, s), "before trying again; do not simply retry."]
            got = (
                (error.get("code"), error.get("status"), error.get("retryable")),
                [part for part in expected if part not in message],
                [hit.method for hit in vendor.hits if hit.scenario == s and hit.method in WRITE_METHODS],
                [vendor.writes[write.before(s)]] if write.before else [],
                (next_ok, vendor.writes[f"ok-after-{s}"]),
            )
            # exactly one request of the write, the one before it (if any) once, and the same write fine right after
            want: tuple[Any, ...] = ((code, status, False), [], [write.method], [1] if write.before else [], (True, 1))
            if got != want:
                failures.append((s, got, message))
    assert failures == [], "\n".join(map(repr, failures))

    # A 429 proves nothing happened: the write is sent again (Retry-After 0) and succeeds; nothing else is repeated.
    assert retried == dict.fromkeys(WRITES, True)
    assert {key: vendor.writes[f"flaky429-0-{key}"] for key in WRITES} == dict.fromkeys(WRITES, 2)
    assert vendor.writes[draft_of("flaky429-0-draft-change")] == 1
    assert last.is_error is False

    assert "DEBUG" in stderr and "Traceback" not in stderr
    no_key_in(stderr + json.dumps([error for error, _ in outcomes.values()]))


async def opened_once_refused(log: Path, vendor: FaultVendor, writes: list[str], done: dict[str, bool]) -> None:
    """Open a closed vendor once the server's log shows each of these writes refused and about to be retried (or
    once they have all ended, when they were not retried)."""
    with anyio.fail_after(20):
        while not all(f"{write}: unreachable; retry 1 in" in log.read_text() for write in writes):
            if all(write in done for write in writes):
                return
            await anyio.sleep(0.01)
    vendor.open()


async def test_a_refused_connection_proves_nothing_was_sent_so_the_write_is_retried_and_succeeds() -> None:
    """Writes to a vendor that refuses connections are retried like reads: once it listens, each arrives exactly once
    and succeeds."""
    retell_writes: dict[str, tuple[str, dict[str, Any]]] = {
        "Retell /create-batch-test": ("run_batch_test", {"test_case_definition_ids": ["ok-r1"], "llm_id": "ok-llm"}),
        "Retell /create-test-case-definition": (
            "save_test_case_definition",
            {"name": "ok-r2", "user_prompt": "Ask for a refund.", "metrics": ["Polite."], "llm_id": "ok-llm"},
        ),
    }
    results: dict[str, bool] = {}
    with (
        fault_vendor(closed=True) as retell,
        fault_vendor(closed=True) as tela,
        tempfile.NamedTemporaryFile("w+") as errlog,
    ):
        tela_writes: dict[str, tuple[str, dict[str, Any]]] = {
            "Tela /test-case/run-all": ("run_test_cases", {"prompt_version_id": tela.uuid("ok-t1")}),
            "Tela /test-case": ("save_test_case", {"prompt_id": PROMPT_ID, "messages": MESSAGES, "title": "ok-t2"}),
        }
        # Retries enough that one more refusal, should a retry beat the opening, still ends in success.
        async with session(write_params(retell, tela=tela, retries="4"), errlog) as client:

            async def call(write: str, tool: str, arguments: dict[str, Any]) -> None:
                results[write] = (await client.call_tool(tool, arguments)).is_error is False

            async with anyio.create_task_group() as tg:
                for write, (tool, arguments) in (retell_writes | tela_writes).items():
                    tg.start_soon(call, write, tool, arguments)
                tg.start_soon(opened_once_refused, Path(errlog.name), retell, list(retell_writes), results)
                tg.start_soon(opened_once_refused, Path(errlog.name), tela, list(tela_writes), results)
        stderr = Path(errlog.name).read_text()

    assert results == dict.fromkeys(retell_writes | tela_writes, True)
    # A refused connection never reaches the vendor: each write arrived once, after one refusal or more.
    assert dict(retell.writes) == {"ok-r1": 1, "ok-r2": 1} and dict(tela.writes) == {"ok-t1": 1, "ok-t2": 1}
    assert all(f"{write}: unreachable; retry 1 in" in stderr for write in retell_writes | tela_writes)
    assert "Traceback" not in stderr
    no_key_in(stderr)
