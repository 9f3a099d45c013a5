"""The demo's fake Retell and Tela, route by route: each answer's shape (as retell-sdk 6.2.13 and docs.tela.com
give it) and what each write changes, called on `DemoVendors().handle` directly."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from mcp_server.demo import (
    DEMO_AGENT_ID,
    DEMO_LIVE_AGENT_ID,
    DEMO_LIVE_LLM_ID,
    DEMO_LLM_ID,
    DEMO_PROMOTED_VERSION_ID,
    DEMO_PROMPT_ID,
    DEMO_PROMPT_VERSION_ID,
    REFUND_RULE,
    DemoVendors,
)

DEFINITION_IDS = ["tcd_demo_refund", "tcd_demo_greeting", "tcd_demo_human", "tcd_demo_address"]
REFUND_CASE = "550e8400-e29b-41d4-a716-446655440003"
NOT_FOUND = {"status": "error", "message": "Not Found"}
LLM_KEYS = {
    "llm_id", "version", "is_published", "last_modification_timestamp", "model", "general_prompt", "begin_message",
    "start_speaker", "starting_state", "states", "general_tools",
}  # fmt: skip
VERSION_ITEM_KEYS = {
    "version", "is_published", "base_version", "version_title", "version_description", "last_modification_timestamp"
}  # fmt: skip
HISTORY_KEYS = {"id", "promptId", "title", "draft", "promoted", "createdAt", "updatedAt", "versionIndex"}


def call(vendors: DemoVendors, method: str, path: str, body: object = None, **params: str | int) -> tuple[int, Any]:
    """One request to the demo vendors: its status and JSON body."""
    request = httpx2.Request(
        method, f"https://demo.invalid{path}", params=params or None, json=body if body is not None else None
    )
    response = vendors.handle(request)
    return response.status_code, response.json()


def ok(vendors: DemoVendors, method: str, path: str, body: object = None, **params: str | int) -> Any:
    status, answer = call(vendors, method, path, body, **params)
    assert status in (200, 201), answer
    return answer


def state_prompt(llm: dict[str, Any], name: str) -> str:
    (state,) = [state for state in llm["states"] if state["name"] == name]
    prompt = state["state_prompt"]
    assert isinstance(prompt, str)
    return prompt


def run_to_end(vendors: DemoVendors, engine: dict[str, Any], definitions: list[str]) -> tuple[Any, dict[str, str]]:
    """Start a batch, poll it twice; its final batch object and each definition's run status."""
    started = ok(
        vendors, "POST", "/create-batch-test", {"response_engine": engine, "test_case_definition_ids": definitions}
    )
    batch_id = started["test_case_batch_job_id"]
    ok(vendors, "GET", f"/get-batch-test/{batch_id}")
    batch = ok(vendors, "GET", f"/get-batch-test/{batch_id}")
    runs = ok(vendors, "GET", f"/v2/list-test-runs/{batch_id}")["items"]
    return batch, {run["test_case_definition_id"]: run["status"] for run in runs}


def support(version: int | None = None) -> dict[str, Any]:
    engine: dict[str, Any] = {"type": "retell-llm", "llm_id": DEMO_LLM_ID}
    return engine if version is None else {**engine, "version": version}


# --- Retell agents and their versions ---------------------------------------------------------------------------


def test_get_agent_without_a_version_answers_the_latest_draft() -> None:
    """The support agent's latest is version 3, a draft based on 2, running its LLM at version 3."""
    agent = ok(DemoVendors(), "GET", f"/get-agent/{DEMO_AGENT_ID}")
    assert (agent["version"], agent["is_published"], agent["base_version"]) == (3, False, 2)
    assert agent["version_title"] == "Friendlier greeting"
    assert agent["response_engine"] == {"type": "retell-llm", "llm_id": DEMO_LLM_ID, "version": 3}
    assert {"agent_id", "last_modification_timestamp", "voice_id"} <= set(agent)


@pytest.mark.parametrize(
    ("version", "published", "base", "title"),
    [(1, True, None, "Initial agent"), (2, True, 1, "Refund policy"), (3, False, 2, "Friendlier greeting")],
)
def test_get_agent_at_a_version_runs_its_llm_at_that_version(
    version: int, published: bool, base: int | None, title: str
) -> None:
    """`?version=N` answers that version, whose engine is the LLM at the same number."""
    agent = ok(DemoVendors(), "GET", f"/get-agent/{DEMO_AGENT_ID}", version=version)
    assert (agent["version"], agent["is_published"], agent["base_version"], agent["version_title"]) == (
        version,
        published,
        base,
        title,
    )
    assert agent["response_engine"] == {"type": "retell-llm", "llm_id": DEMO_LLM_ID, "version": version}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/get-agent/agent_nope", {}),
        (f"/get-agent/{DEMO_AGENT_ID}", {"version": 9}),
        (f"/get-agent/{DEMO_AGENT_ID}", {"version": "newest"}),
        ("/get-retell-llm/llm_nope", {}),
        (f"/get-retell-llm/{DEMO_LLM_ID}", {"version": 9}),
        ("/list-agent-versions/agent_nope", {}),
    ],
)
def test_an_unknown_agent_llm_or_version_is_retells_404(path: str, params: dict[str, Any]) -> None:
    """Retell's error body, status 404."""
    assert call(DemoVendors(), "GET", path, **params) == (404, NOT_FOUND)


def test_agent_versions_list_ascending_by_default_descending_when_asked_and_page() -> None:
    """list-agent-versions answers {items, has_more, pagination_key}; items carry the version fields only."""
    vendors = DemoVendors()
    ascending = ok(vendors, "GET", f"/list-agent-versions/{DEMO_AGENT_ID}")
    assert [item["version"] for item in ascending["items"]] == [1, 2, 3]
    assert all(set(item) == VERSION_ITEM_KEYS for item in ascending["items"])
    assert (ascending["has_more"], ascending["pagination_key"]) == (False, None)
    descending = ok(vendors, "GET", f"/list-agent-versions/{DEMO_AGENT_ID}", sort_order="descending", limit=2)
    assert [item["version"] for item in descending["items"]] == [3, 2] and descending["has_more"] is True
    rest = ok(
        vendors,
        "GET",
        f"/list-agent-versions/{DEMO_AGENT_ID}",
        sort_order="descending",
        limit=2,
        pagination_key=descending["pagination_key"],
    )
    assert [item["version"] for item in rest["items"]] == [1] and rest["has_more"] is False
    assert call(vendors, "GET", f"/list-agent-versions/{DEMO_AGENT_ID}", sort_order="sideways")[0] == 400


def test_the_live_agent_has_a_published_version_and_a_draft() -> None:
    """agent_demo_live: version 1 published, 2 a draft on 1, each with its llm_demo_live version."""
    vendors = DemoVendors()
    versions = ok(vendors, "GET", f"/list-agent-versions/{DEMO_LIVE_AGENT_ID}")["items"]
    assert [(item["version"], item["is_published"], item["base_version"]) for item in versions] == [
        (1, True, None),
        (2, False, 1),
    ]
    llm = ok(vendors, "GET", f"/get-retell-llm/{DEMO_LIVE_LLM_ID}")
    assert (llm["llm_id"], llm["version"], llm["is_published"]) == (DEMO_LIVE_LLM_ID, 2, False)


# --- Retell LLM versions: the prompts of the story --------------------------------------------------------------


def test_llm_versions_answer_llm_response_and_tell_the_story() -> None:
    """Version 2 has the refund rule in order_help; version 3 (the latest, a draft) asks how it can help but lost
    the rule; version 1 greets without asking; no version tells the agent to transfer the caller."""
    vendors = DemoVendors()
    v1, v2, v3 = (ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=n) for n in (1, 2, 3))
    assert ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}") == v3
    for llm, version, published in ((v1, 1, True), (v2, 2, True), (v3, 3, False)):
        assert set(llm) == LLM_KEYS
        assert (llm["version"], llm["is_published"], llm["model"], llm["start_speaker"]) == (
            version,
            published,
            "gpt-4.1",
            "agent",
        )
        assert llm["starting_state"] == "order_help"
        assert [state["name"] for state in llm["states"]] == ["order_help", "handoff"]
        assert all(set(state) == {"name", "state_prompt", "edges", "tools"} for state in llm["states"])
        assert llm["general_tools"][0]["type"] == "end_call"
        assert "transfer the caller" not in state_prompt(llm, "handoff")
    assert REFUND_RULE in state_prompt(v2, "order_help")
    assert "offer a refund" not in state_prompt(v3, "order_help") and "offer a refund" not in v3["general_prompt"]
    assert v3["begin_message"] == "Thanks for calling Demo Shoes, how can I help you today?"
    assert "how can I help" not in v1["begin_message"] and "how can I help" not in v2["begin_message"]


# --- Retell batches ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_id", "version", "statuses"),
    [
        ("tcbj_demo_baseline", 2, ["pass", "fail", "fail", "error"]),
        ("tcbj_demo_latest", 3, ["fail", "pass", "fail", "error"]),
    ],
)
def test_each_batch_ran_one_version_and_counts_its_runs(batch_id: str, version: int, statuses: list[str]) -> None:
    """The baseline ran version 2, the latest version 3; every run's snapshot names that version, and the batch's
    counts follow the runs (refund, greeting, human, address, in that order)."""
    vendors = DemoVendors()
    batch = ok(vendors, "GET", f"/get-batch-test/{batch_id}")
    assert batch["response_engine"] == {"type": "retell-llm", "llm_id": DEMO_LLM_ID, "version": version}
    assert (batch["status"], batch["total_count"]) == ("complete", 4)
    assert (batch["pass_count"], batch["fail_count"], batch["error_count"]) == tuple(
        statuses.count(status) for status in ("pass", "fail", "error")
    )
    runs = ok(vendors, "GET", f"/v2/list-test-runs/{batch_id}")["items"]
    assert [run["test_case_definition_id"] for run in runs] == DEFINITION_IDS
    assert [run["status"] for run in runs] == statuses
    assert all(run["test_case_definition_snapshot"]["response_engine"]["version"] == version for run in runs)
    failed = [run for run in runs if run["status"] != "pass"]
    assert all(run["result_explanation"] for run in failed)


def test_baseline_to_latest_fixed_the_greeting_and_broke_the_refund() -> None:
    """Matched by definition: greeting fixed, refund regressed, human and address still failing."""
    vendors = DemoVendors()
    before, after = (
        {
            run["test_case_definition_id"]: run["status"]
            for run in ok(vendors, "GET", f"/v2/list-test-runs/{b}")["items"]
        }
        for b in ("tcbj_demo_baseline", "tcbj_demo_latest")
    )
    assert [d for d in DEFINITION_IDS if before[d] != "pass" and after[d] == "pass"] == ["tcd_demo_greeting"]
    assert [d for d in DEFINITION_IDS if before[d] == "pass" and after[d] != "pass"] == ["tcd_demo_refund"]
    assert [d for d in DEFINITION_IDS if before[d] != "pass" and after[d] != "pass"] == [
        "tcd_demo_human",
        "tcd_demo_address",
    ]
    assert (
        ok(vendors, "GET", "/get-batch-test/tcbj_demo_baseline")["creation_timestamp"]
        < ok(vendors, "GET", "/get-batch-test/tcbj_demo_latest")["creation_timestamp"]
    )


def test_batch_tests_list_newest_first_filtered_by_version() -> None:
    """Without `version`, every batch of the LLM, newest first; with one, that version's only; another LLM, none."""
    vendors = DemoVendors()

    def ids(**params: str | int) -> list[str]:
        page = ok(vendors, "GET", "/v2/list-batch-tests", type="retell-llm", **params)
        return [batch["test_case_batch_job_id"] for batch in page["items"]]

    assert ids(llm_id=DEMO_LLM_ID) == ["tcbj_demo_latest", "tcbj_demo_baseline"]
    assert ids(llm_id=DEMO_LLM_ID, version=2) == ["tcbj_demo_baseline"]
    assert ids(llm_id=DEMO_LIVE_LLM_ID) == []
    ok(
        vendors,
        "POST",
        "/create-batch-test",
        {"response_engine": support(2), "test_case_definition_ids": ["tcd_demo_refund"]},
    )
    assert ids(llm_id=DEMO_LLM_ID, version=2) == ["tcbj_demo_rerun_1", "tcbj_demo_baseline"]


def test_a_started_batch_is_pending_then_in_progress_then_complete() -> None:
    """Pending when created, in progress at the first poll, finished at the second."""
    vendors = DemoVendors()
    body = {"response_engine": support(), "test_case_definition_ids": ["tcd_demo_greeting"]}
    status, started = call(vendors, "POST", "/create-batch-test", body)
    assert (status, started["test_case_batch_job_id"], started["status"]) == (201, "tcbj_demo_rerun_1", "in_progress")
    run = ok(vendors, "GET", "/get-test-run/tcj_demo_rerun_1_1")
    assert (run["status"], run["transcript_snapshot"], run["result_explanation"]) == ("pending", None, None)
    assert ok(vendors, "GET", "/get-batch-test/tcbj_demo_rerun_1")["status"] == "in_progress"
    assert ok(vendors, "GET", "/get-test-run/tcj_demo_rerun_1_1")["status"] == "in_progress"
    assert ok(vendors, "GET", "/get-batch-test/tcbj_demo_rerun_1")["status"] == "complete"
    assert ok(vendors, "GET", "/get-test-run/tcj_demo_rerun_1_1")["transcript_snapshot"]["messages"]


@pytest.mark.parametrize(
    ("version", "recorded", "expected"),
    [
        (None, 3, {"tcd_demo_refund": "fail", "tcd_demo_greeting": "pass", "tcd_demo_human": "fail"}),
        (3, 3, {"tcd_demo_refund": "fail", "tcd_demo_greeting": "pass", "tcd_demo_human": "fail"}),
        (2, 2, {"tcd_demo_refund": "pass", "tcd_demo_greeting": "fail", "tcd_demo_human": "fail"}),
        (1, 1, {"tcd_demo_refund": "fail", "tcd_demo_greeting": "fail", "tcd_demo_human": "fail"}),
    ],
)
def test_rerun_outcomes_follow_the_prompts_of_the_version_run(
    version: int | None, recorded: int, expected: dict[str, str]
) -> None:
    """Refund passes where order_help offers a refund, greeting where begin_message asks how it can help; the
    address test always errors; the batch records the version it ran (the latest when none was given)."""
    batch, statuses = run_to_end(DemoVendors(), support(version), DEFINITION_IDS)
    assert batch["response_engine"] == support(recorded)
    assert statuses == {**expected, "tcd_demo_address": "error"}
    assert (batch["pass_count"], batch["fail_count"], batch["error_count"]) == (
        list(expected.values()).count("pass"),
        list(expected.values()).count("fail"),
        1,
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"response_engine": support(9), "test_case_definition_ids": ["tcd_demo_refund"]}, 404),
        ({"response_engine": {"type": "retell-llm", "llm_id": "llm_nope"}, "test_case_definition_ids": ["x"]}, 404),
        ({"response_engine": support(), "test_case_definition_ids": ["tcd_nope"]}, 400),
        ({"response_engine": support(), "test_case_definition_ids": []}, 400),
    ],
)
def test_create_batch_test_refuses_what_it_cannot_run(body: dict[str, Any], status: int) -> None:
    """An engine or version the demo lacks is a 404; no or unknown definitions a 400; nothing is started."""
    vendors = DemoVendors()
    assert call(vendors, "POST", "/create-batch-test", body)[0] == status
    assert call(vendors, "GET", "/get-batch-test/tcbj_demo_rerun_1") == (404, NOT_FOUND)


# --- Retell drafts ----------------------------------------------------------------------------------------------


def test_create_agent_version_makes_a_draft_whose_llm_copies_the_base_version() -> None:
    """A draft from version 2 is version 4 (largest + 1), unpublished, based on 2, and its LLM version 4 is LLM
    version 2's prompts, unpublished; it becomes the latest and is listed."""
    vendors = DemoVendors()
    status, draft = call(vendors, "POST", f"/create-agent-version/{DEMO_AGENT_ID}", {"base_version": 2})
    assert status == 201
    assert (draft["version"], draft["base_version"], draft["is_published"]) == (4, 2, False)
    assert draft["response_engine"] == support(4)
    base, copied = (ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=n) for n in (2, 4))
    assert (copied["version"], copied["is_published"]) == (4, False)
    assert {key: copied[key] for key in ("general_prompt", "begin_message", "states", "general_tools")} == {
        key: base[key] for key in ("general_prompt", "begin_message", "states", "general_tools")
    }
    assert ok(vendors, "GET", f"/get-agent/{DEMO_AGENT_ID}") == draft
    listed = ok(vendors, "GET", f"/list-agent-versions/{DEMO_AGENT_ID}", sort_order="descending")["items"][0]
    assert (listed["version"], listed["base_version"], listed["is_published"]) == (4, 2, False)


@pytest.mark.parametrize(
    ("agent_id", "body", "status"),
    [
        (DEMO_AGENT_ID, {}, 400),
        (DEMO_AGENT_ID, {"base_version": "2"}, 400),
        (DEMO_AGENT_ID, {"base_version": True}, 400),
        (DEMO_AGENT_ID, {"base_version": 2.5}, 400),
        (DEMO_AGENT_ID, {"base_version": 9}, 404),
        ("agent_nope", {"base_version": 1}, 404),
    ],
)
def test_create_agent_version_needs_an_existing_integer_base_version(
    agent_id: str, body: dict[str, Any], status: int
) -> None:
    """`base_version` is a required int; an unknown base or agent is a 404; no version is made."""
    vendors = DemoVendors()
    assert call(vendors, "POST", f"/create-agent-version/{agent_id}", body)[0] == status
    assert ok(vendors, "GET", f"/get-agent/{DEMO_AGENT_ID}")["version"] == 3


def test_update_llm_edits_only_the_version_named() -> None:
    """PATCH ?version=4 changes version 4's given fields (states as a whole) and nothing of version 3 it copied."""
    vendors = DemoVendors()
    ok(vendors, "POST", f"/create-agent-version/{DEMO_AGENT_ID}", {"base_version": 3})
    before = ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=3)
    states = [{"name": "order_help", "state_prompt": REFUND_RULE, "edges": [], "tools": []}]
    updated = ok(
        vendors,
        "PATCH",
        f"/update-retell-llm/{DEMO_LLM_ID}",
        {"states": states, "general_prompt": "Be kind."},
        version=4,
    )
    assert (updated["version"], updated["states"], updated["general_prompt"]) == (4, states, "Be kind.")
    assert updated["begin_message"] == before["begin_message"]  # not given: kept
    assert updated["last_modification_timestamp"] > before["last_modification_timestamp"]
    assert ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=4) == updated
    assert ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=3) == before


@pytest.mark.parametrize("version", [1, 2])
def test_update_llm_refuses_a_published_version(version: int) -> None:
    """Editing a published version is a 400 and changes nothing."""
    vendors = DemoVendors()
    before = ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=version)
    answer = call(vendors, "PATCH", f"/update-retell-llm/{DEMO_LLM_ID}", {"begin_message": "Hi"}, version=version)
    assert answer == (400, {"status": "error", "message": "Cannot update a published version"})
    assert ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=version) == before


def test_update_llm_without_a_version_edits_the_latest() -> None:
    """No `version` query edits the latest version, as Retell documents: here the live agent's draft, 2."""
    vendors = DemoVendors()
    updated = ok(vendors, "PATCH", f"/update-retell-llm/{DEMO_LIVE_LLM_ID}", {"begin_message": "Hi there!"})
    assert (updated["version"], updated["begin_message"]) == (2, "Hi there!")
    assert ok(vendors, "GET", f"/get-retell-llm/{DEMO_LIVE_LLM_ID}", version=1)["begin_message"] != "Hi there!"


@pytest.mark.parametrize(
    ("llm_id", "version", "body", "status"),
    [
        ("llm_nope", None, {"begin_message": "Hi"}, 404),
        (DEMO_LLM_ID, 9, {"begin_message": "Hi"}, 404),
        (DEMO_LLM_ID, 3, {"version": 4}, 400),
        (DEMO_LLM_ID, 3, {"general_prompt": 7}, 400),
        (DEMO_LLM_ID, 3, {"states": [{"state_prompt": "no name"}]}, 400),
    ],
)
def test_update_llm_refuses_unknown_llms_versions_and_fields(
    llm_id: str, version: int | None, body: dict[str, Any], status: int
) -> None:
    """Unknown LLM or version: 404; a field update-retell-llm does not take, or a badly typed one: 400."""
    params = {"version": version} if version is not None else {}
    vendors = DemoVendors()
    assert call(vendors, "PATCH", f"/update-retell-llm/{llm_id}", body, **params)[0] == status
    assert ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=3)["begin_message"].startswith("Thanks")


def test_a_draft_that_restores_the_rules_passes_on_rerun() -> None:
    """Draft from 3, give order_help back its refund rule and handoff a transfer rule: refund, greeting and human
    pass on the draft; version 3 itself still fails refund."""
    vendors = DemoVendors()
    ok(vendors, "POST", f"/create-agent-version/{DEMO_AGENT_ID}", {"base_version": 3})
    states = ok(vendors, "GET", f"/get-retell-llm/{DEMO_LLM_ID}", version=4)["states"]
    states[0]["state_prompt"] += f"\n{REFUND_RULE}"
    states[1]["state_prompt"] += "\nIf the caller asks for a person, transfer the caller to a colleague."
    ok(vendors, "PATCH", f"/update-retell-llm/{DEMO_LLM_ID}", {"states": states}, version=4)
    batch, statuses = run_to_end(vendors, support(4), DEFINITION_IDS)
    assert batch["response_engine"] == support(4)
    assert statuses == {
        "tcd_demo_refund": "pass",
        "tcd_demo_greeting": "pass",
        "tcd_demo_human": "pass",
        "tcd_demo_address": "error",
    }
    assert run_to_end(vendors, support(3), ["tcd_demo_refund"])[1] == {"tcd_demo_refund": "fail"}


# --- Retell phone numbers ---------------------------------------------------------------------------------------


def test_phone_numbers_page_and_bind_agents_at_a_version_or_latest() -> None:
    """limit=1 gives two pages: the support line pinned to published version 2, the front desk at "latest"."""
    vendors = DemoVendors()
    first = ok(vendors, "GET", "/v2/list-phone-numbers", limit=1)
    assert first["has_more"] is True and len(first["items"]) == 1
    second = ok(vendors, "GET", "/v2/list-phone-numbers", limit=1, pagination_key=first["pagination_key"])
    assert (second["has_more"], second["pagination_key"]) == (False, None)
    support_line, front_desk = first["items"][0], second["items"][0]
    for number in (support_line, front_desk):
        assert number["phone_number_type"] == "retell-twilio" and number["phone_number"].startswith("+1")
        assert {"phone_number_pretty", "nickname", "last_modification_timestamp", "outbound_agents"} <= set(number)
    assert support_line["phone_number"] == "+14155550100"
    assert support_line["inbound_agents"] == [{"agent_id": DEMO_AGENT_ID, "weight": 1, "agent_version": 2}]
    assert front_desk["phone_number"] == "+14155550199"
    assert front_desk["inbound_agents"] == [{"agent_id": DEMO_LIVE_AGENT_ID, "weight": 1, "agent_version": "latest"}]


def test_list_agents_is_not_answered() -> None:
    """The old key probe is gone (Retell's list-agents is a POST); the phone-number listing replaced it."""
    assert call(DemoVendors(), "GET", "/v2/list-agents")[0] == 404


# --- Retell test definitions ------------------------------------------------------------------------------------

NEW_DEFINITION = {
    "name": "Caller asks about opening hours",
    "response_engine": {"type": "retell-llm", "llm_id": DEMO_LIVE_LLM_ID},
    "user_prompt": "Ask when the store opens on Sunday.",
    "metrics": ["Agent gives the opening hours"],
}


def test_create_definition_fills_the_defaults_is_listed_and_runs() -> None:
    """201 with the full definition (ID, type, timestamps, defaults); listed for its engine only; a run passes."""
    vendors = DemoVendors()
    status, made = call(vendors, "POST", "/create-test-case-definition", NEW_DEFINITION)
    assert status == 201
    assert made == {
        **NEW_DEFINITION,
        "dynamic_variables": {},
        "tool_mocks": [],
        "llm_model": "gpt-4.1",
        "test_case_definition_id": "tcd_demo_new_1",
        "type": "simulation",
        "creation_timestamp": made["creation_timestamp"],
        "user_modified_timestamp": made["creation_timestamp"],
    }
    assert ok(vendors, "GET", "/get-test-case-definition/tcd_demo_new_1") == made
    listed = ok(vendors, "GET", "/v2/list-test-case-definitions", type="retell-llm", llm_id=DEMO_LIVE_LLM_ID)
    assert [item["test_case_definition_id"] for item in listed["items"]] == ["tcd_demo_new_1"]
    support_ids = ok(vendors, "GET", "/v2/list-test-case-definitions", type="retell-llm", llm_id=DEMO_LLM_ID)
    assert [item["test_case_definition_id"] for item in support_ids["items"]] == DEFINITION_IDS
    engine = {"type": "retell-llm", "llm_id": DEMO_LIVE_LLM_ID}
    assert run_to_end(vendors, engine, ["tcd_demo_new_1"])[1] == {"tcd_demo_new_1": "pass"}


@pytest.mark.parametrize("missing", ["name", "response_engine", "user_prompt", "metrics"])
def test_create_definition_without_a_required_field_is_a_400(missing: str) -> None:
    """Each of the four required fields; nothing is created."""
    vendors = DemoVendors()
    body = {key: value for key, value in NEW_DEFINITION.items() if key != missing}
    status, answer = call(vendors, "POST", "/create-test-case-definition", body)
    assert status == 400 and missing in answer["message"]
    assert call(vendors, "GET", "/get-test-case-definition/tcd_demo_new_1") == (404, NOT_FOUND)


def test_update_definition_replaces_the_given_fields_only() -> None:
    """PUT changes the given fields and the modification time, keeps the rest; an unknown definition is a 404."""
    vendors = DemoVendors()
    before = ok(vendors, "GET", "/get-test-case-definition/tcd_demo_refund")
    updated = ok(vendors, "PUT", "/update-test-case-definition/tcd_demo_refund", {"metrics": ["Agent offers a refund"]})
    assert updated["metrics"] == ["Agent offers a refund"]
    assert {key: value for key, value in updated.items() if key not in ("metrics", "user_modified_timestamp")} == {
        key: value for key, value in before.items() if key not in ("metrics", "user_modified_timestamp")
    }
    assert updated["user_modified_timestamp"] > before["user_modified_timestamp"]
    assert ok(vendors, "GET", "/get-test-case-definition/tcd_demo_refund") == updated
    assert call(vendors, "PUT", "/update-test-case-definition/tcd_nope", {"name": "x"}) == (404, NOT_FOUND)
    assert call(vendors, "PUT", "/update-test-case-definition/tcd_demo_refund", {"type": "other"})[0] == 400


# --- Tela prompt versions ---------------------------------------------------------------------------------------

VERSION_KEYS = {
    "id", "promptId", "title", "configuration", "variables", "content", "markdownContent", "messages", "message",
    "promoted", "draft", "createdAt", "updatedAt",
}  # fmt: skip
NEW_VERSION = {
    "promptId": DEMO_PROMPT_ID,
    "title": "Support v3 (draft)",
    "configuration": {"model": "gpt-4.1", "type": "chat", "temperature": 0.3, "structuredOutput": {"enabled": False}},
    "variables": [{"name": "order_id", "type": "text", "required": True, "description": "The order"}],
    "content": "Offer a refund when an order is a week late.",
    "draft": True,
}


def test_prompt_versions_are_the_promoted_one_with_refund_guidance_and_the_draft_without() -> None:
    """Both versions answer the full get-by-id object; only the promoted one mentions refunds."""
    vendors = DemoVendors()
    promoted = ok(vendors, "GET", f"/prompt-version/{DEMO_PROMOTED_VERSION_ID}")
    draft = ok(vendors, "GET", f"/prompt-version/{DEMO_PROMPT_VERSION_ID}")
    for version in (promoted, draft):
        assert set(version) == VERSION_KEYS and version["promptId"] == DEMO_PROMPT_ID
        assert version["configuration"]["type"] == "chat"
        assert version["configuration"]["structuredOutput"] == {"enabled": False}
        assert version["message"] == {"role": "system", "content": version["content"]}
        assert {"name", "type", "required", "description"} <= set(version["variables"][0])
    assert (promoted["title"], promoted["promoted"], promoted["draft"]) == ("Support v1", True, False)
    assert (draft["title"], draft["promoted"], draft["draft"]) == ("Support v2 (draft)", False, True)
    assert "refund" in promoted["content"] and "refund" not in draft["content"]
    assert call(vendors, "GET", "/prompt-version/550e8400-e29b-41d4-a716-446655440099")[0] == 404


def test_prompt_history_lists_newest_first_without_content() -> None:
    """A bare array, newest first, lifecycle fields only; limit and offset page it; an unknown prompt has none."""
    vendors = DemoVendors()
    history = ok(vendors, "GET", "/prompt-version/history", promptId=DEMO_PROMPT_ID)
    assert [item["id"] for item in history] == [DEMO_PROMPT_VERSION_ID, DEMO_PROMOTED_VERSION_ID]
    assert all(set(item) == HISTORY_KEYS for item in history)
    assert [item["versionIndex"] for item in history] == [2, 1]
    second = ok(vendors, "GET", "/prompt-version/history", promptId=DEMO_PROMPT_ID, limit=1, offset=1)
    assert [item["id"] for item in second] == [DEMO_PROMOTED_VERSION_ID]
    assert ok(vendors, "GET", "/prompt-version/history", promptId="550e8400-e29b-41d4-a716-446655440099") == []
    assert call(vendors, "GET", "/prompt-version/history", promptId=DEMO_PROMPT_ID, limit=101)[0] == 400


def test_create_prompt_version_makes_a_draft_listed_first() -> None:
    """201 with the full version, a draft, never promoted; history lists it first; get-by-id answers it."""
    vendors = DemoVendors()
    status, made = call(vendors, "POST", "/prompt-version", NEW_VERSION)
    assert status == 201 and set(made) == VERSION_KEYS
    assert (made["draft"], made["promoted"], made["content"], made["title"]) == (
        True,
        False,
        NEW_VERSION["content"],
        "Support v3 (draft)",
    )
    assert made["message"] == {"role": "system", "content": NEW_VERSION["content"]}
    assert made["id"] not in (DEMO_PROMPT_VERSION_ID, DEMO_PROMOTED_VERSION_ID)
    history = ok(vendors, "GET", "/prompt-version/history", promptId=DEMO_PROMPT_ID)
    assert [item["id"] for item in history][:2] == [made["id"], DEMO_PROMPT_VERSION_ID]
    assert history[0]["versionIndex"] == 3
    assert ok(vendors, "GET", f"/prompt-version/{made['id']}") == made


@pytest.mark.parametrize(
    "change",
    [
        {"promoted": True},
        {"draft": False},
        {"promptId": None},
        {"title": None},
        {"configuration": None},
        {"variables": None},
        {"title": "x" * 257},
        {"message": {"role": "user", "content": "Hi"}},
        {"messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"}]},
    ],
)
def test_create_prompt_version_refuses_live_incomplete_or_malformed_versions(change: dict[str, Any]) -> None:
    """Promoted or non-draft, a required field missing, a long title, a non-system or second message: a 400 with
    Tela's `message`, and history unchanged."""
    vendors = DemoVendors()
    body = {key: value for key, value in {**NEW_VERSION, **change}.items() if value is not None}
    status, answer = call(vendors, "POST", "/prompt-version", body)
    assert status == 400 and set(answer) == {"message"}
    assert len(ok(vendors, "GET", "/prompt-version/history", promptId=DEMO_PROMPT_ID)) == 2


# --- Tela test cases --------------------------------------------------------------------------------------------

NEW_CASE = {
    "promptId": DEMO_PROMPT_ID,
    "title": "Refund after a week",
    "messages": [{"role": "user", "content": "My order is 8 days late."}],
    "variablesRichContent": {},
    "expectedOutput": "I'm sorry. I can refund the order now.",
}
CASE_KEYS = {
    "id", "title", "messages", "variables", "variablesRichContent", "files", "promptId", "expectedOutput", "answers",
    "promptApplicationId", "metadata", "createdAt", "updatedAt", "deletedAt",
}  # fmt: skip


def test_create_case_answers_the_case_and_lists_it() -> None:
    """201 with the case as get-by-id shows it (omitted fields null); the prompt's list includes it."""
    vendors = DemoVendors()
    status, made = call(vendors, "POST", "/test-case", NEW_CASE)
    assert status == 201 and set(made) == CASE_KEYS
    assert {key: made[key] for key in NEW_CASE} == NEW_CASE
    assert (made["variables"], made["files"], made["metadata"], made["deletedAt"]) == (None, None, None, None)
    assert ok(vendors, "GET", f"/test-case/{made['id']}") == made
    listed = ok(vendors, "GET", "/test-case", promptId=DEMO_PROMPT_ID, includeGenerations="true")
    assert [case["id"] for case in listed][-1] == made["id"] and listed[-1]["generations"] == []


@pytest.mark.parametrize("missing", ["promptId", "messages", "variablesRichContent"])
def test_create_case_without_a_required_field_is_a_400(missing: str) -> None:
    """Tela's error body names the field; no case is added."""
    vendors = DemoVendors()
    status, answer = call(vendors, "POST", "/test-case", {k: v for k, v in NEW_CASE.items() if k != missing})
    assert status == 400 and missing in answer["message"]
    assert len(ok(vendors, "GET", "/test-case", promptId=DEMO_PROMPT_ID)) == 2


def test_update_case_applies_the_given_fields() -> None:
    """PATCH changes only what it names (and updatedAt); an unknown case is a 404; a bad role a 400."""
    vendors = DemoVendors()
    before = ok(vendors, "GET", f"/test-case/{REFUND_CASE}")
    updated = ok(vendors, "PATCH", f"/test-case/{REFUND_CASE}", {"expectedOutput": "A refund is offered."})
    assert updated["expectedOutput"] == "A refund is offered." and updated["updatedAt"] != before["updatedAt"]
    assert {k: v for k, v in updated.items() if k not in ("expectedOutput", "updatedAt")} == {
        k: v for k, v in before.items() if k not in ("expectedOutput", "updatedAt")
    }
    assert ok(vendors, "GET", f"/test-case/{REFUND_CASE}") == updated
    missing = call(vendors, "PATCH", "/test-case/550e8400-e29b-41d4-a716-446655440099", {"title": "x"})
    assert missing == (404, {"message": "Test case not found"})
    bad = call(vendors, "PATCH", f"/test-case/{REFUND_CASE}", {"messages": [{"role": "robot", "content": "x"}]})
    assert bad[0] == 400


def test_tela_reads_keep_their_behaviour() -> None:
    """The key check answers, the list drops generations unless asked, the by-ID route never has them, run-all
    answers an execution ID."""
    vendors = DemoVendors()
    assert ok(vendors, "GET", "/api-key") == {}
    plain = ok(vendors, "GET", "/test-case", promptId=DEMO_PROMPT_ID)
    assert [case["id"] for case in plain][1] == REFUND_CASE and all("generations" not in case for case in plain)
    full = ok(vendors, "GET", "/test-case", promptId=DEMO_PROMPT_ID, includeGenerations="true")
    assert all(case["generations"] for case in full)
    assert "generations" not in ok(vendors, "GET", f"/test-case/{REFUND_CASE.upper()}")
    assert ok(vendors, "POST", "/test-case/run-all", {"promptVersionId": DEMO_PROMPT_VERSION_ID})["executionId"]
    assert call(vendors, "GET", "/nowhere") == (404, {"message": "Not Found"})
