"""Every write asks the user first, where the client can be asked, under every protocol (issue 20, points 1 and 6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client
from mcp_types import ElicitRequestParams, ElicitResult

from mcp_server.config import load_settings
from mcp_server.demo import DEMO_AGENT_ID, DEMO_PROMPT_VERSION_ID, demo_settings, demo_transport
from mcp_server.server import build_server
from tests.conftest import RUN_TOOL_NAMES, TOOL_NAMES, FakeVendors, error_of, is_write, make_settings

pytestmark = pytest.mark.anyio

EDIT_TOOL_NAMES = ["save_test_case_definition", "draft_agent_version", "save_test_case", "draft_prompt_version"]
# One write of each kind, with the question each one asks in the demo.
WRITES: dict[str, tuple[dict[str, Any], str]] = {
    "run_batch_test": (
        {"test_case_definition_ids": ["tcd_demo_refund", "tcd_demo_greeting"], "agent_id": DEMO_AGENT_ID, "version": 2},
        "Start 2 Retell tests on agent agent_demo_support (retell-llm llm_demo_support), version 2? Runs cost "
        "Retell credits.",
    ),
    "run_test_cases": (
        {"prompt_version_id": DEMO_PROMPT_VERSION_ID},
        f"Run every Tela test case of prompt version {DEMO_PROMPT_VERSION_ID}? Runs count towards your Tela quota.",
    ),
    "draft_agent_version": (
        {"agent_id": DEMO_AGENT_ID, "base_version": 3, "changes": {"general_prompt": "You are Demo Shoes' agent."}},
        "Create a new draft of Retell agent agent_demo_support from version 3, changing general_prompt? Nothing "
        "published changes; web calls and chats that pin no version use the new draft.",
    ),
    "draft_prompt_version": (
        {"base_version_id": DEMO_PROMPT_VERSION_ID, "changes": {"content": "Offer a refund for late orders."}},
        "Create a new draft of Tela prompt 550e8400-e29b-41d4-a716-446655440001 from version "
        f'{DEMO_PROMPT_VERSION_ID}, changing its content (titled "Support v2 (draft)"; its configuration and variables '
        f"as in {DEMO_PROMPT_VERSION_ID})? It is saved as a draft, never promoted or published.",
    ),
}
# What each write sends once accepted: (method, path) at the vendor.
SENDS = {
    "run_batch_test": [("POST", "/create-batch-test")],
    "run_test_cases": [("POST", "/test-case/run-all")],
    "draft_agent_version": [("POST", "/create-agent-version/agent_demo_support"),
                            ("PATCH", "/update-retell-llm/llm_demo_support")],
    "draft_prompt_version": [("POST", "/prompt-version")],
}  # fmt: skip


class Recorder:
    """The demo vendors, recording each request's method and path."""

    def __init__(self) -> None:
        self.transport = demo_transport()
        self.seen: list[tuple[str, str]] = []
        handler = self.transport.handler  # type: ignore[attr-defined]

        def record(request: Any) -> Any:
            self.seen.append((request.method, request.url.path))
            return handler(request)

        self.transport.handler = record  # type: ignore[attr-defined]

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.seen if is_write(method, path)]


def settings(**flags: Any) -> Any:
    return demo_settings(load_settings({"allow_runs": True, "allow_edits": True, **flags}, env={}))


def answering(action: str, asked: list[str]) -> Any:
    async def callback(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={} if action == "accept" else None)  # type: ignore[arg-type]

    return callback


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("tool", WRITES)
async def test_an_accepted_question_names_the_write_and_then_it_is_sent(tool: str, mode: str) -> None:
    """The user is asked one sentence naming what will be sent and what it costs (through elicitation/create
    under a handshake-era protocol, through the input-required round trip under 2026-07-28); accepted, the write
    is sent once."""
    vendors, asked = Recorder(), []
    server = build_server(settings(), transport=vendors.transport)
    async with Client(server, mode=mode, elicitation_callback=answering("accept", asked)) as client:  # type: ignore[arg-type]
        result = await client.call_tool(tool, WRITES[tool][0])
    assert result.is_error is False, result.content[0].text
    assert asked == [WRITES[tool][1]]
    assert vendors.writes() == SENDS[tool]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("action", ["decline", "cancel"])
@pytest.mark.parametrize("tool", WRITES)
async def test_a_declined_or_cancelled_question_sends_nothing(tool: str, action: str, mode: str) -> None:
    """Declined or cancelled: `declined`, and no write reaches the vendor (only the reads that prepared it)."""
    vendors, asked = Recorder(), []
    server = build_server(settings(), transport=vendors.transport)
    async with Client(server, mode=mode, elicitation_callback=answering(action, asked)) as client:  # type: ignore[arg-type]
        result = await client.call_tool(tool, WRITES[tool][0])
    error = error_of(result)
    assert error["code"] == "declined" and error["retryable"] is False and "nothing was sent" in error["message"]
    assert len(asked) == 1 and vendors.writes() == []


async def test_the_2026_round_trip_asks_once_and_prepares_again_on_the_answer() -> None:
    """Under 2026-07-28 the call comes back with the answer: the reads that prepared the question run again (they
    only read), the question is asked once, and the write is sent once."""
    vendors, asked = Recorder(), []
    server = build_server(settings(), transport=vendors.transport)
    async with Client(server, mode="2026-07-28", elicitation_callback=answering("accept", asked)) as client:  # type: ignore[arg-type]
        await client.call_tool("draft_agent_version", WRITES["draft_agent_version"][0])
    phone_reads = [path for method, path in vendors.seen if path == "/v2/list-phone-numbers"]
    # Two rounds of preparing, the check before the draft is made, and the check before its PATCH.
    assert len(asked) == 1 and len(phone_reads) == 4
    assert vendors.writes() == SENDS["draft_agent_version"]


@pytest.mark.parametrize("how", ["client without elicitation", "confirm_writes false"])
async def test_where_nobody_can_be_asked_the_opt_in_is_the_consent(how: str) -> None:
    """A client that declared no elicitation gets no question, nor does any client with confirm_writes false:
    the write is sent."""
    vendors, asked = Recorder(), []
    flags = {"confirm_writes": False} if how == "confirm_writes false" else {}
    server = build_server(settings(**flags), transport=vendors.transport)
    callback = answering("decline", asked) if flags else None
    async with Client(server, mode="legacy", elicitation_callback=callback) as client:  # type: ignore[arg-type]
        result = await client.call_tool("run_batch_test", WRITES["run_batch_test"][0])
    assert result.is_error is False and asked == []
    assert vendors.writes() == SENDS["run_batch_test"]


async def test_a_write_that_cannot_be_sent_is_refused_before_anyone_is_asked() -> None:
    """A draft the phone numbers would serve at once is unsafe_edit without a question: nobody is asked to
    confirm what will not be sent."""
    vendors, asked = Recorder(), []
    server = build_server(settings(), transport=vendors.transport)
    async with Client(server, mode="legacy", elicitation_callback=answering("accept", asked)) as client:  # type: ignore[arg-type]
        result = await client.call_tool(
            "draft_agent_version",
            {"agent_id": "agent_demo_live", "base_version": 1, "changes": {"general_prompt": "x"}},
        )
    assert error_of(result)["code"] == "unsafe_edit" and asked == [] and vendors.writes() == []


async def test_edit_tools_are_listed_only_with_allow_edits_and_labelled_as_writes(vendors: FakeVendors) -> None:
    """allow_edits off: tools/list is exactly the reads (and runs) list, byte for byte; on: the four edit tools
    follow, annotated as writes that are neither read-only, destructive nor idempotent."""
    lists = {}
    for edits in (None, False, True):
        flags = {"allow_runs": True} | ({"allow_edits": edits} if edits is not None else {})
        async with Client(build_server(make_settings(flags), transport=vendors.transport())) as client:
            lists[edits] = (await client.list_tools()).tools
    assert [t.model_dump_json() for t in lists[None]] == [t.model_dump_json() for t in lists[False]]
    assert [t.name for t in lists[False]] == TOOL_NAMES + RUN_TOOL_NAMES
    assert [t.name for t in lists[True]] == TOOL_NAMES + RUN_TOOL_NAMES + EDIT_TOOL_NAMES
    for tool in lists[True][-4:]:
        hints = tool.annotations
        assert hints is not None and tool.title
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (
            False, False, False, True)  # fmt: skip
        assert "confirmation" not in tool.input_schema["properties"]  # the resolvers' parameters are not arguments
        assert "prepared" not in tool.input_schema["properties"]
    draft = next(t for t in lists[True] if t.name == "draft_agent_version")
    assert "publish it in Retell's dashboard" in (draft.description or "")
    assert "Web calls and chats that pin no version use the newest version" in (draft.description or "")
    assert json.dumps(draft.input_schema).count('"title"') == 0


@pytest.mark.parametrize(("runs", "edits", "listed"), [(False, False, False), (True, False, False),
                                                      (False, True, False), (True, True, True)])  # fmt: skip
async def test_the_fix_loop_prompt_is_offered_only_where_its_steps_can_run(
    vendors: FakeVendors, runs: bool, edits: bool, listed: bool
) -> None:
    """fix_failing_test drafts and reruns: it is listed only with both allow_edits and allow_runs."""
    server = build_server(make_settings({"allow_runs": runs, "allow_edits": edits}), transport=vendors.transport())
    async with Client(server) as client:
        names = [prompt.name for prompt in (await client.list_prompts()).prompts]
    assert ("fix_failing_test" in names) is listed
