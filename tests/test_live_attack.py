"""A second skeptical pass at "a Retell draft can never change what a live call is served" (issue 24, writes 1-4 and
9), with the recording workspace of `tests/retell_workspace.py` and the helpers of `tests/test_live_reach.py`.

Each test below that is not marked as a control fails on the code it was written against: it names an attack, why it
matters, and what the server should have done. The controls pin behaviour that held under attack.

The workspace of every test (as in test_live_reach): agent `agent_1` on `llm_1`, versions 1 and 2 published (LLM
versions 1 and 2), 3 an unpublished draft (LLM version 3); phone number +1 415 555 0100 pinned to version 2.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from tests.conftest import error_of, json_response
from tests.retell_workspace import Agent, Version, llm, phone, swap
from tests.test_live_reach import NEW, OLD, draft, made, refused, workspace

pytestmark = pytest.mark.anyio


# --- Findings -------------------------------------------------------------------------------------------------------


async def test_a_pin_to_version_0_that_runs_the_patched_engine_version_refuses_the_change() -> None:
    """Attack: a phone number pins agent_1 at version 0 (Retell's first version number; `base_version` takes 0),
    and draft 3 runs the very LLM version that version 0 runs (an LLM version may be shared by several agent
    versions, SPEC "Upstream facts"). For any other pinned number the server refuses ("... the version the change
    would patch"), but `drafts._refuse` looks the pinned version up with `whole(route.version) or -1`, so version 0
    becomes -1, the check is skipped, and the PATCH changes what the phone number's live callers are served."""
    ws = workspace()
    agent = ws.agents["agent_1"]
    ws.llms["llm_1"][0] = llm("llm_1", 0)
    agent.versions[0] = Version(("retell-llm", "llm_1", 0), published=False, base=None)
    agent.versions[3] = Version(("retell-llm", "llm_1", 0), published=False, base=None)
    ws.hide_base = True
    ws.phones.append(phone("+14155550107", "agent_1", 0))
    error = await refused(ws, OLD, "version 0", "llm_1 version 0")
    assert "Nothing was changed" in error["message"]


async def test_a_published_version_of_another_agent_on_the_same_llm_version_is_never_patched() -> None:
    """Attack: agent_2's published version 1 (no longer its latest, named by no phone number or swap) runs llm_1
    version 3, the LLM version draft 3 of agent_1 runs. The survey reads other agents only at their latest and at
    versions something names, so it finds nothing shared and PATCHes llm_1 version 3: a published version of another
    agent changes, which SPEC forbids outright ("no tool changes a published Retell agent version, LLM or flow").
    Calls created through the API with `override_agent_version` / a web call's `agent_version`
    (retell-sdk 6.2.13 `types/call_create_phone_call_params.py`, `call_create_web_call_params.py`) are served from
    exactly such versions, and the workspace fake counts every published version as live."""
    ws = workspace()
    ws.agents["agent_2"] = Agent({1: Version(("retell-llm", "llm_1", 3), published=True),
                                  2: Version(("retell-llm", "llm_9", 1), published=True)})  # fmt: skip
    ws.llms["llm_9"] = {1: llm("llm_9", 1)}
    await refused(ws, OLD, "agent 'agent_2' version 1", "llm_1")


async def test_a_published_version_of_another_agent_that_swaps_to_latest_refuses_the_draft() -> None:
    """Attack: agent_2's published version 1, which no phone number names (it is not agent_2's latest), swaps to
    agent_1 with no agent_version ("will use the latest version"). A call served from that published version (an
    API call pinning it, or "latest_published" once Retell's "most recently published" is version 1 again) is handed
    to the new draft at once. The survey never reads other agents' published versions, so the draft is made and
    `live()` changes (agent_1@3 becomes agent_1@4 for those callers)."""
    ws = workspace()
    ws.agents["agent_2"] = Agent({1: Version(("retell-llm", "llm_2", 1), published=True),
                                  2: Version(("retell-llm", "llm_9", 1), published=True)})  # fmt: skip
    ws.llms["llm_2"] = {1: llm("llm_2", 1, general_tools=[swap("agent_1")])}
    ws.llms["llm_9"] = {1: llm("llm_9", 1)}
    await refused(ws, NEW, "agent 'agent_2' version 1", "no version")


async def test_latest_published_when_nothing_is_published_is_not_proven_safe() -> None:
    """Attack: agent_1 has no published version at all, and a phone number binds it at "latest_published". What
    Retell serves then is documented nowhere (retell-sdk 6.2.13 `types/phone_number_response.py` only says it
    "resolves to the most recently published version"); falling back to latest would hand the number's callers the
    new draft at once. `_route_problem` answers None for every "latest_published" without looking, so the draft is
    made: "cannot be proven safe" was treated as safe."""
    ws = workspace()
    for version in ws.agents["agent_1"].versions.values():
        version.published = False
    ws.phones[:] = [phone("+14155550111", "agent_1", "latest_published")]
    result, asked = await draft(ws, NEW)
    assert result.is_error, "a draft was made though nothing showed latest_published could not serve it"
    error = error_of(result)
    assert error["code"] == "unsafe_edit" and "latest_published" in error["message"], error
    assert asked == [] and ws.writes() == []


@pytest.mark.parametrize("spelling", ["1", 1.5, " 1"], ids=["numeric string", "fraction", "padded string"])
async def test_a_version_spelling_the_survey_does_not_understand_for_another_agent_is_not_read_as_latest(
    spelling: object,
) -> None:
    """Attack: a phone number binds agent_2 at "1" (retell-sdk types `agent_version` as `Union[str, int, None]`; a
    string of digits may be read by Retell as version 1 as well as a tag), at 1.5 or at " 1". agent_2's version 1 swaps
    to agent_1 at latest. The survey reads any such spelling as an unassigned tag, i.e. agent_2's latest only, and
    answers "safe" from data it does not understand; for agent_1 itself the same spellings are refused. It should
    either read every version the spelling could mean or refuse (unsafe_edit)."""
    ws = workspace()
    ws.agents["agent_2"] = Agent({1: Version(("retell-llm", "llm_2", 1)),
                                  2: Version(("retell-llm", "llm_9", 1), published=True)})  # fmt: skip
    ws.llms["llm_2"] = {1: llm("llm_2", 1, general_tools=[swap("agent_1", "latest")])}
    ws.llms["llm_9"] = {1: llm("llm_9", 1)}
    ws.phones.append(phone("+14155550122", "agent_2", spelling))
    result, asked = await draft(ws, NEW)
    assert result.is_error, f"agent_2 bound at {spelling!r} was read as its latest only, and the draft was made"
    assert error_of(result)["code"] == "unsafe_edit"
    assert asked == [] and ws.writes() == []


async def test_a_binding_entry_naming_this_agent_under_an_unknown_key_refuses_the_draft() -> None:
    """Attack (issue 24 item 4, "a binding entry with this agent under a key the code does not know"): a phone
    number's `inbound_agents` entry binds agent_2 but also names agent_1 under a key Retell may add (a fallback or
    overflow agent). `phone_routes` checks unknown keys of the phone number, but never inside an entry of a list it
    knows, so the entry's extra key is skipped and the draft is made: "no binding found" from data it does not
    understand."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, True)})
    entry = {"agent_id": "agent_2", "weight": 1, "agent_version": 1,
             "fallback_agent": {"agent_id_ref": "agent_1", "agent_version": "latest"}}  # fmt: skip
    ws.phones.append({"phone_number": "+14155550133", "inbound_agents": [entry]})
    await refused(ws, NEW, "agent_1", "…0133")


async def test_this_agents_id_in_a_list_inside_another_engine_refuses_the_draft() -> None:
    """Attack: another agent's LLM names agent_1 inside a list of strings (`{"type": "custom", "agents":
    ["agent_1"]}`). `reach.handoffs` refuses agent_1 as the value of an unknown key, but a string inside a list is
    never compared (lists are pushed, and only dicts are inspected), so this unknown handoff shape passes as "no
    handoff". The phone-number side (`mentions`) does look inside lists; the engine side should too."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, True)}, general_tools=[{"type": "custom", "agents": ["agent_1"]}])
    await refused(ws, NEW, "does not know how to read")


async def test_an_agent_version_answered_for_another_version_is_not_trusted() -> None:
    """Attack: get-agent?version=2 (the published version whose LLM version draft 3 shares) answers the agent at
    version 1 (a vendor that ignores or mis-routes `version`, or a cache). The survey files what it got under the
    version the answer names, so `reach.engines` has no entry for published version 2 and `_refuse_published`
    silently skips it (`served is None`): LLM version 2, which the phone number serves, is patched. An answer for
    another version (or another agent) than asked is the vendor's fault, never a proof: bad_upstream_response or
    unsafe_edit."""
    ws = workspace()
    ws.agents["agent_1"].versions[3] = Version(("retell-llm", "llm_1", 2), base=None)
    ws.hide_base = True

    async def wrong_version(request: httpx2.Request) -> httpx2.Response | None:
        if request.url.params.get("version") == "2":
            return json_response(200, ws.agent_object("agent_1", 1))
        return None

    ws.hooks["/get-agent/agent_1"] = wrong_version
    before = ws.live("agent_1")
    result, asked = await draft(ws, OLD)
    assert result.is_error, "LLM version 2, which published version 2 serves, was patched"
    assert error_of(result)["code"] in ("unsafe_edit", "bad_upstream_response")
    assert ws.writes() == [] and ws.live("agent_1") == before and asked == []


@pytest.mark.parametrize("answered", [2, 3], ids=["a published version", "an existing draft"])
async def test_an_existing_version_retell_answers_is_never_called_a_draft_that_was_created(answered: int) -> None:
    """Attack on the messages (issue 24 item 9): create-agent-version answers version 2 (published) or 3 (an
    older draft), which existed before. The patch is rightly refused, but `_after_draft` words it as "Draft version 2
    of agent 'agent_1' was created from version 3, and nothing was patched in it ... Change that draft in Retell's
    dashboard, or delete it there": it calls a published version a new draft and advises deleting it, while the draft
    Retell did make (version 4) goes unnamed. The message should say Retell's answer cannot be trusted, name no
    existing version as made, never advise deleting it, and send the user to list_agent_versions."""
    ws = workspace()
    ws.answer_version = answered
    result, _ = await draft(ws, NEW)
    error = error_of(result)
    assert error["code"] == "unsafe_edit"
    message = error["message"]
    assert f"Draft version {answered} of agent 'agent_1' was created" not in message, message
    assert "delete it" not in message, message
    assert "list_agent_versions" in message, message
    assert ws.writes() == ["POST /create-agent-version/agent_1"]


# --- Controls: attacks that held --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version", ["4", "LATEST", " latest", "latest ", 3.5, -1, True, "latest_published "],
    ids=["numeric string", "upper case", "leading space", "trailing space", "fraction", "negative", "true",
         "padded latest_published"],
)  # fmt: skip
async def test_control_every_odd_spelling_binding_this_agent_refuses_the_draft(version: object) -> None:
    """Control: a phone number binding agent_1 itself at any spelling but a known number or exactly
    "latest_published" is refused before anyone is asked (a tag, a version that does not exist yet, or one this
    server does not understand)."""
    ws = workspace()
    ws.phones.append(phone("+14155550144", "agent_1", version, key="outbound_sms_agents"))
    await refused(ws, NEW)


async def test_control_shared_components_that_name_each_other_end() -> None:
    """Control: two shared flow components run each other (a cycle) and one swaps to agent_1 at latest: the survey
    reads each once, ends, and refuses. (`live()` is not used: the fake's own walk does not end on a cycle.)"""
    ws = workspace()
    swap_node = {"id": "go", "type": "agent_swap", "agent_id": "agent_1", "agent_version": "latest", "edge": {}}

    def component(target: str) -> dict[str, Any]:
        return {"id": f"to_{target}", "type": "component", "component_id": target, "component_type": "shared"}

    ws.components["comp_a"] = {"conversation_flow_component_id": "comp_a", "nodes": [component("comp_b")]}
    ws.components["comp_b"] = {"conversation_flow_component_id": "comp_b", "nodes": [component("comp_a"), swap_node]}
    ws.add_flow_agent("agent_2", "cf_2", {1: (1, True)}, nodes=[component("comp_a")])
    with anyio.fail_after(10):
        result, asked = await draft(ws, NEW)
    error = error_of(result)
    assert error["code"] == "unsafe_edit" and "comp_b" in error["message"], error
    assert asked == [] and ws.writes() == []
    assert sum(r.url.path.startswith("/get-conversation-flow-component/") for r in ws.requests) == 2


async def test_control_a_long_chain_of_pinned_handoffs_is_followed_to_its_end() -> None:
    """Control: a phone number serves agent_c00 version 1, which hands calls to agent_c01 version 1, and so on for
    twelve hops (twelve waves of reads, none of them any agent's latest); the last swaps to agent_1 at latest. The
    survey follows every hop and refuses, naming the last one. (The call's deadline is the fixed 50 s call budget,
    not `timeout_seconds`, which bounds each attempt; a read that hangs past it is covered by test_live_reach.)"""
    ws = workspace()
    for n in range(12):
        target = swap(f"agent_c{n + 1:02}", 1) if n < 11 else swap("agent_1", "latest")
        ws.add_llm_agent(f"agent_c{n:02}", f"llm_c{n}", {1: (1, False)}, general_tools=[target])
        ws.add_llm_agent(f"agent_c{n:02}", f"llm_d{n}", {2: (1, True)})
    ws.phones.append(phone("+14155550155", "agent_c00", 1))
    await refused(ws, NEW, "agent 'agent_c11' version 1", "at latest")


async def test_control_pages_whose_keys_loop_are_refused() -> None:
    """Control: list-agents pages whose pagination keys go round in a loop (A, B, A, ...) never answer "safe":
    the listing gives up after its page limit and the draft is refused."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, True)})

    async def looping(request: httpx2.Request) -> httpx2.Response:
        key = request.url.params.get("pagination_key")
        return json_response(200, {"items": [], "has_more": True, "pagination_key": "B" if key == "A" else "A"})

    ws.hooks["/v2/list-agents"] = looping
    result, asked = await draft(ws, NEW)
    assert error_of(result)["code"] == "unsafe_edit" and asked == [] and ws.writes() == []


async def test_control_a_handoff_to_this_agent_in_another_case_is_not_missed() -> None:
    """Control: a swap to "AGENT_1" (an agent that is not listed) cannot be read, so the survey refuses rather than
    treat it as another agent that serves nothing."""
    ws = workspace()
    ws.add_llm_agent("agent_2", "llm_2", {1: (1, True)}, general_tools=[swap("AGENT_1", "latest")])
    await refused(ws, NEW)


async def test_control_a_safe_draft_from_version_0_is_still_made() -> None:
    """Control for the version-0 finding: a fix must not refuse every draft of an agent that has a version 0."""
    ws = workspace()
    ws.llms["llm_1"][0] = llm("llm_1", 0)
    ws.agents["agent_1"].versions[0] = Version(("retell-llm", "llm_1", 0), published=False)
    await made(ws)
