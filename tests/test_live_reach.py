"""A draft never reaches a live call (issue 24, writes 1-4 and 9): attacked with a recording fake of a whole Retell
workspace (`tests/retell_workspace.py`) that tells what every live call would be served before and after each write.

The workspace of every test: agent `agent_1` on `llm_1`, versions 1 and 2 published (LLM versions 1 and 2), 3 an
unpublished draft (LLM version 3); phone number +1 415 555 0100 pinned to version 2. A new draft from version 3 is
version 4, on a new LLM version 4.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp_types import ElicitRequestParams, ElicitResult

from mcp_server.server import build_server
from tests.conftest import FakeVendors, error_of, json_response, make_settings
from tests.retell_workspace import Agent, Version, Workspace, llm, phone, swap

pytestmark = pytest.mark.anyio

NEW = {"agent_id": "agent_1", "base_version": 3, "changes": {"general_prompt": "Offer a refund."}}
OLD = {"agent_id": "agent_1", "draft_version": 3, "changes": {"general_prompt": "Offer a refund."}}


def workspace() -> Workspace:
    ws = Workspace()
    ws.add_llm_agent("agent_1", "llm_1", {1: (1, True), 2: (2, True), 3: (3, False)})
    ws.phones.append(phone("+14155550100", "agent_1", 2))
    return ws


async def draft(ws: Workspace, arguments: dict[str, Any], **flags: Any) -> tuple[Any, list[str]]:
    """draft_agent_version against the workspace, from a client whose user accepts every question (recorded)."""
    asked: list[str] = []

    async def accept(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={})

    vendors = FakeVendors()
    vendors.retell = ws.handle
    server = build_server(make_settings({"allow_edits": True, **flags}), transport=vendors.transport())
    async with Client(server, mode="legacy", elicitation_callback=accept) as client:  # type: ignore[arg-type]
        result = await client.call_tool("draft_agent_version", arguments)
    return result, asked


async def refused(ws: Workspace, arguments: dict[str, Any], *words: str) -> dict[str, Any]:
    """The draft is unsafe_edit naming `words`, asked of nobody, with nothing sent and nothing live changed."""
    before = ws.live("agent_1")
    result, asked = await draft(ws, arguments)
    error = error_of(result)
    assert error["code"] == "unsafe_edit", error
    for word in words:
        assert word in error["message"], error["message"]
    assert asked == [] and ws.writes() == []
    assert ws.live("agent_1") == before
    return error


async def made(ws: Workspace, arguments: dict[str, Any] = NEW) -> dict[str, Any]:
    """The draft is made and patched at its own engine version, and nothing live changed."""
    before = ws.live("agent_1")
    result, asked = await draft(ws, arguments)
    assert result.is_error is False, result.content[0].text
    assert len(asked) == 1
    assert ws.live("agent_1") == before
    patched = [r for r in ws.requests if r.method == "PATCH"]
    assert len(patched) == 1
    return {"draft": result.structured_content, "url": str(patched[0].url), "question": asked[0]}


async def test_a_safe_workspace_gets_its_draft_and_nothing_live_changes() -> None:
    """The control: with nothing live reaching a draft, a new draft is made and only its own LLM version changes."""
    ws = workspace()
    done = await made(ws)
    assert done["draft"]["version"] == 4 and done["url"].endswith("/update-retell-llm/llm_1?version=4")
    assert ws.llms["llm_1"][4]["general_prompt"] == "Offer a refund."
    assert ws.llms["llm_1"][3]["general_prompt"] == "Be kind."


# --- 1. No draft reaches another agent's calls ---------------------------------------------------------------


@pytest.mark.parametrize("arguments", [NEW, OLD], ids=["new draft", "existing draft"])
async def test_an_llm_another_agent_serves_from_is_never_changed(arguments: dict[str, Any]) -> None:
    """(a) Another agent's latest runs the same LLM: unsafe_edit naming that agent, before anyone is asked."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_1", {1: (3, False)})
    await refused(ws, arguments, "agent 'agent_2' version 1", "retell-llm llm_1", "shared")


async def test_a_chat_agent_on_the_same_llm_is_found_through_its_own_route() -> None:
    """A chat agent (channel chat) is read with get-chat-agent, and sharing the LLM refuses the draft."""
    ws = workspace()
    ws.add_llm_agent("chat_1", "llm_1", {1: (2, True)}, channel="chat")
    await refused(ws, NEW, "agent 'chat_1'")
    assert any(r.url.path == "/get-chat-agent/chat_1" for r in ws.requests)


async def test_an_older_version_of_another_agent_counts_only_where_a_call_can_reach_it() -> None:
    """agent_2's latest runs another LLM; its version 1 ran llm_1. Unbound, version 1 serves nobody and the draft is
    made; once a phone number pins agent_2 to version 1, the draft is refused naming it."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_1", {1: (1, False)})
    ws.add_llm_agent("agent_2", "llm_9", {2: (1, True)})
    await made(ws)
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_1", {1: (1, False)})
    ws.add_llm_agent("agent_2", "llm_9", {2: (1, True)})
    ws.phones.append(phone("+14155550177", "agent_2", 1))
    await refused(ws, NEW, "agent 'agent_2' version 1")


@pytest.mark.parametrize(
    ("handoff", "words"),
    [
        ({"general_tools": [swap("agent_1", "latest")]}, ["at latest"]),
        ({"general_tools": [swap("agent_1")]}, ["at no version"]),
        ({"general_tools": [swap("agent_1", None)]}, ["at no version"]),
        ({"general_tools": [swap("agent_1", "prod")]}, ['the tag "prod"']),
        ({"states": [{"name": "s", "state_prompt": "p", "tools": [swap("agent_1", "latest")]}]}, ["at latest"]),
        ({"general_tools": [swap("agent_1", 9)]}, ["version 9, which does not exist yet"]),
        ({"general_tools": [{"type": "transfer_call", "name": "t", "transfer_destination": {
            "type": "agentic_warm_transfer", "transfer_agent": {"agent_id": "agent_1", "agent_version": "latest"}}}]},
         ["at latest"]),
    ],
    ids=["latest", "no agent_version", "null", "tag", "state tool", "a number a draft could take", "warm transfer"],
)  # fmt: skip
async def test_another_agents_handoff_to_the_draft_refuses_it(handoff: dict[str, Any], words: list[str]) -> None:
    """(b) An agent_swap (general or a state's tool) or an agentic warm transfer from another agent's LLM to this agent
    at latest, no version, a tag, or a number the new draft could take: unsafe_edit naming the other agent."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, True)}, **handoff)
    await refused(ws, NEW, "agent 'agent_2' version 1", *words)


async def test_a_handoff_pinned_to_the_existing_draft_refuses_a_change_to_it() -> None:
    """A swap pinned to version 3 refuses changing draft 3, but not making a new draft from it."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, True)}, general_tools=[swap("agent_1", 3)])
    await refused(ws, OLD, "at version 3, the draft itself")
    await made(ws)


async def test_a_handoff_pinned_to_a_published_version_is_safe() -> None:
    ws = workspace()
    ws.add_llm_agent(
        "agent_2", "llm_2", {1: (1, True)}, general_tools=[swap("agent_1", 2), swap("agent_1", "latest_published")]
    )
    await made(ws)


async def test_flow_swap_nodes_and_shared_components_are_read_too() -> None:
    """A flow's agent_swap node, and a swap inside a shared component a flow runs, are handoffs too."""
    node = {"id": "go", "type": "agent_swap", "agent_id": "agent_1", "agent_version": "latest", "edge": {}}
    ws = workspace()
    ws.add_flow_agent("agent_2", "cf_2", {1: (1, True)}, nodes=[node])
    await refused(ws, NEW, "agent 'agent_2'", "conversation-flow cf_2")
    ws = workspace()
    ws.components["comp_1"] = {"conversation_flow_component_id": "comp_1", "nodes": [node]}
    component = {"id": "c", "type": "component", "component_id": "comp_1", "component_type": "shared", "else_edge": {}}
    ws.add_flow_agent("agent_2", "cf_2", {1: (1, True)}, nodes=[component])
    await refused(ws, NEW, "shared component 'comp_1'")


async def test_handoffs_are_followed_to_agents_only_another_handoff_reaches() -> None:
    """A phone number serves agent_2's version 1, whose LLM swaps to agent_3's version 1 (not its latest), whose LLM
    swaps to agent_1 at latest: a live caller could reach the draft in two hops."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, False)}, general_tools=[swap("agent_3", 1)])
    ws.add_llm_agent("agent_2", "llm_22", {2: (1, True)})
    ws.add_llm_agent("agent_3", "llm_3", {1: (1, False)}, general_tools=[swap("agent_1", "latest")])
    ws.add_llm_agent("agent_3", "llm_33", {2: (1, True)})
    ws.phones.append(phone("+14155550177", "agent_2", 1))
    await refused(ws, NEW, "agent 'agent_3' version 1")


async def test_a_published_version_that_swaps_to_this_agents_latest_refuses_the_draft() -> None:
    """The agent's own published version 2 (which the phone number serves) swaps to the agent itself at latest."""
    ws = workspace()
    ws.llms["llm_1"][2]["general_tools"] = [swap("agent_1", "latest")]
    await refused(ws, NEW, "agent 'agent_1' version 2", "at latest")


async def test_every_page_of_agents_is_read() -> None:
    """With one agent a page, the agent that shares the LLM is on the last of thirty pages."""
    ws = workspace()
    for n in range(28):
        ws.add_llm_agent(f"agent_x{n:02}", f"llm_x{n}", {1: (1, True)})
    ws.add_llm_agent("agent_z", "llm_1", {1: (2, True)})
    ws.page_size = 1
    await refused(ws, NEW, "agent 'agent_z'")
    assert sum(r.url.path == "/v2/list-agents" for r in ws.requests) == 30


async def test_the_workspace_is_read_concurrently() -> None:
    """Twenty agents, each read taking 50 ms: the reads overlap (one call's deadline could not hold them in a row)."""
    ws = workspace()
    for n in range(20):
        ws.add_llm_agent(f"agent_x{n:02}", f"llm_x{n}", {1: (1, True)})
    ws.delay = 0.05
    await made(ws)
    assert ws.most_in_flight >= 4


@pytest.mark.parametrize("fault", ["hang", "500"])
async def test_a_workspace_that_cannot_all_be_read_is_unsafe_never_a_guess(fault: str) -> None:
    """One agent's read hangs past the call's deadline, or keeps failing: unsafe_edit ("could not prove"), nothing
    made; the call ends within its deadline."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, True)})

    async def broken(request: httpx2.Request) -> httpx2.Response:
        if fault == "hang":
            await anyio.sleep(30)
        return json_response(500, {"status": "error", "message": "boom"})

    ws.hooks["/get-agent/agent_2"] = broken
    with anyio.fail_after(10):
        result, asked = await draft(ws, NEW, timeout_seconds=1, max_retries=0)
    error = error_of(result)
    assert error["code"] == "unsafe_edit" and "Could not prove that no live call reaches" in error["message"]
    assert asked == [] and ws.writes() == []


# --- 2. A published version is never changed ---------------------------------------------------------------------


async def test_a_draft_that_shares_its_llm_version_with_a_published_one_is_never_patched() -> None:
    """Retell makes the draft without an LLM version of its own (nothing documents that it makes one): version 4
    runs LLM version 2, which published version 2 serves. The draft exists, but nothing is patched; the error names
    both versions, says nothing was patched, never calls the new draft published, and does not send the user to a
    call that would be refused again."""
    ws = workspace()
    ws.new_engine_version = False
    before = ws.live("agent_1")
    result, asked = await draft(ws, {**NEW, "base_version": 2})
    error = error_of(result)
    assert error["code"] == "unsafe_edit", error
    message = error["message"]
    assert "Draft version 4" in message and "published version 2" in message and "nothing was patched" in message
    assert "is published" not in message and "draft_version=4" not in message and "dashboard" in message
    assert ws.writes() == ["POST /create-agent-version/agent_1"] and len(asked) == 1
    assert ws.live("agent_1") == before


@pytest.mark.parametrize("shared_with", ["published", "base", "base only listed", "llm says published"])
async def test_an_existing_draft_on_a_protected_llm_version_is_refused_before_anyone_is_asked(shared_with: str) -> None:
    """Draft 3 runs the LLM version that published version 2 runs, or that its base runs (named by get-agent, or only
    by the version list), or one whose LLM says it is published: unsafe_edit naming both versions, before the
    question."""
    ws = workspace()
    if shared_with == "published":
        ws.agents["agent_1"].versions[3] = Version(("retell-llm", "llm_1", 2), base=1)
        words = ["published version 2"]
    elif shared_with.startswith("base"):
        ws.agents["agent_1"].versions[3] = Version(("retell-llm", "llm_1", 1), base=1)
        ws.agents["agent_1"].versions[1].published = False
        ws.hide_base = shared_with == "base only listed"
        words = ["its base version 1"]
    else:
        ws.llms["llm_1"][3]["is_published"] = True
        words = ["which Retell says is published"]
    await refused(ws, OLD, "Draft version 3", "retell-llm llm_1", *words)


async def test_a_published_version_named_as_the_draft_is_refused() -> None:
    ws = workspace()
    await refused(ws, {**OLD, "draft_version": 2}, "Version 2 of agent 'agent_1' is published", "base_version=2")


# --- 3. Checked against what Retell actually made --------------------------------------------------------------


async def test_a_number_pinned_to_the_version_retell_answers_refuses_the_patch() -> None:
    """A phone number pinned to version 4 refuses a new draft before anything is made (4 could be its number); if
    Retell answers a version that already existed, the patch is refused and the draft named."""
    ws = workspace()
    ws.phones.append(phone("+14155550144", "agent_1", 4))
    await refused(ws, NEW, "…0144", "version 4, which does not exist yet")
    ws = workspace()
    ws.answer_version = 3
    result, _ = await draft(ws, NEW)
    error = error_of(result)
    assert error["code"] == "unsafe_edit" and "Retell answered version 3, which existed before" in error["message"]
    assert ws.writes() == ["POST /create-agent-version/agent_1"]


async def test_a_binding_that_appears_once_the_draft_is_made_stops_the_patch() -> None:
    """The bindings are read again right before the PATCH: a number bound to latest after the draft was made stops
    it, and the error names the draft and says nothing was patched."""
    ws = workspace()

    async def rebind(request: httpx2.Request) -> None:
        ws.phones.append(phone("+14155550199", "agent_1", "latest"))
        return None

    ws.hooks["/create-agent-version/"] = rebind
    result, _ = await draft(ws, NEW)
    error = error_of(result)
    assert error["code"] == "unsafe_edit"
    message = error["message"]
    assert "Draft version 4" in message and "nothing was patched" in message and "…0199" in message
    assert "draft_version=4" in message  # pin the number, then finish it: that call would go through
    assert ws.writes() == ["POST /create-agent-version/agent_1"]


# --- 4. Fail closed on data the code does not understand ----------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ({"phone_number": "+14155550123", "inbound_agents": {"agent_id": "agent_1"}}, "not a list"),
        ({"phone_number": "+14155550123", "inbound_agents": ["agent_1"]}, "not a list"),
        ({"phone_number": "+14155550123", "fallback_agents": [{"agent_id": "agent_1"}]}, '"fallback_agents"'),
        ({"phone_number": "+14155550123", "inbound_agent_id": "agent_1", "inbound_agent_version": 2},
         '"inbound_agent_id"'),
    ],
    ids=["a dict", "strings", "unknown key", "legacy field"],
)  # fmt: skip
async def test_bindings_the_code_does_not_understand_refuse_the_draft(number: dict[str, Any], words: str) -> None:
    """A binding list that is not a list of agents (the vendor's fault, which the draft meets as unsafe_edit: nothing
    could be proven), this agent under a key the code does not know, or a legacy binding field naming it: refused
    before the question, nothing sent."""
    ws = workspace()
    ws.phones.append(number)
    before = ws.live("agent_1")
    result, asked = await draft(ws, NEW)
    error = error_of(result)
    assert error["code"] == "unsafe_edit" and words in error["message"], error
    assert asked == [] and ws.writes() == [] and ws.live("agent_1") == before


@pytest.mark.parametrize("listing", ["/v2/list-phone-numbers", "/v2/list-agents", "/list-agent-versions/agent_1"])
async def test_a_page_that_does_not_say_whether_more_follow_refuses_the_draft(listing: str) -> None:
    ws = workspace()

    async def no_has_more(request: httpx2.Request) -> httpx2.Response:
        return json_response(200, {"items": [], "pagination_key": None})

    ws.hooks[listing] = no_has_more
    result, asked = await draft(ws, NEW)
    error = error_of(result)
    assert error["code"] == "unsafe_edit" and "has_more" in error["message"], error
    assert asked == [] and ws.writes() == []


async def test_an_agent_whose_engine_names_no_version_is_refused() -> None:
    """Another agent without an engine version cannot be read; this agent's base without one is refused before the
    user is asked."""
    ws = workspace()
    ws.agents["agent_2"] = Agent({1: Version(("retell-llm", "llm_2", None), True)})
    ws.llms["llm_2"] = {1: {"llm_id": "llm_2", "version": 1, "general_tools": []}}
    await refused(ws, NEW, "'agent_2' version 1", "without naming its version")
    ws = workspace()
    ws.agents["agent_1"].versions[3] = Version(("retell-llm", "llm_1", None), base=2)
    await refused(ws, NEW, "version 3 runs retell-llm llm_1 without naming its version")


async def test_this_agents_id_anywhere_unexpected_in_another_engine_refuses_the_draft() -> None:
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, True)}, general_tools=[{"type": "custom", "target": "agent_1"}])
    await refused(ws, NEW, '"target"', "does not know how to read")


# --- 9. Messages that tell the truth ------------------------------------------------------------------------------


async def test_the_question_names_recent_unpublished_drafts_from_the_same_base() -> None:
    """Drafts 4 and 5 from version 3 were made in the last hour (after failed attempts); 6 is older; 7 is published:
    the question names 4 and 5, so the user can finish one instead of making another."""
    ws = workspace()
    now = int(time.time() * 1000)
    ws.agents["agent_1"].versions |= {
        4: Version(("retell-llm", "llm_1", 4), base=3, modified=now - 600_000),
        5: Version(("retell-llm", "llm_1", 5), base=3, modified=now - 60_000),
        6: Version(("retell-llm", "llm_1", 6), base=3, modified=now - 7_200_000),
        7: Version(("retell-llm", "llm_1", 7), published=True, base=3, modified=now - 60_000),
    }
    for number in (4, 5, 6, 7):
        ws.llms["llm_1"][number] = llm("llm_1", number)
    done = await made(ws)
    assert "Unpublished drafts made from version 3 in the last hour: 4, 5 (" in done["question"]
    assert done["draft"]["version"] == 8


async def test_a_call_abandoned_after_the_draft_was_made_logs_the_draft(caplog: pytest.LogCaptureFixture) -> None:
    """The client gives up while the draft's checks are running: the draft Retell made is logged at INFO, so it can
    be found and finished."""
    ws = workspace()
    made_it = anyio.Event()

    async def slow_after_create(request: httpx2.Request) -> None:
        if made_it.is_set():
            await anyio.sleep(30)
        return None

    async def note_create(request: httpx2.Request) -> None:
        made_it.set()
        return None

    ws.hooks["/create-agent-version/"] = note_create
    ws.hooks["/get-agent/agent_1"] = slow_after_create
    caplog.set_level(logging.INFO, logger="mcp_server")
    vendors = FakeVendors()
    vendors.retell = ws.handle
    server = build_server(make_settings({"allow_edits": True, "confirm_writes": False}), transport=vendors.transport())
    async with Client(server) as client:
        with anyio.move_on_after(5) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(client.call_tool, "draft_agent_version", NEW)
                await made_it.wait()
                await anyio.sleep(0.2)
                group.cancel_scope.cancel()
        assert not scope.cancelled_caught
        await anyio.sleep(0.2)
    lines = [record.getMessage() for record in caplog.records]
    assert any("made draft version 4 of agent agent_1 from version 3" in line for line in lines), lines
