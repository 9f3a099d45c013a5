"""The edit tools: what each sends, what it refuses before sending anything, and what it never sends twice
(issue 20, points 2-5 and 8)."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest

from tests.conftest import RETELL_KEY, TELA_KEY, FakeVendors, connect, error_of, is_write, json_response, make_settings

pytestmark = pytest.mark.anyio

PROMPT_ID = "550e8400-e29b-41d4-a716-446655440001"
VERSION_ID = "550e8400-e29b-41d4-a716-446655440002"
CASE_ID = "550e8400-e29b-41d4-a716-446655440000"
DEFINITION = {"test_case_definition_id": "tcd_1", "name": "refund", "user_prompt": "Ask for a refund.",
              "metrics": ["offers a refund"],
              "response_engine": {"type": "retell-llm", "llm_id": "llm_1", "version": 2},
              "dynamic_variables": {}, "tool_mocks": [], "llm_model": "gpt-4.1", "type": "simulation",
              "creation_timestamp": 1, "user_modified_timestamp": 2}  # fmt: skip
LLM = {"llm_id": "llm_1", "version": 5, "is_published": False, "general_prompt": "Be kind.",
       "states": [{"name": "order_help", "state_prompt": "Help.", "edges": [{"description": "x"}]},
                  {"name": "handoff", "state_prompt": "Hand off."}]}  # fmt: skip
FLOW = {"conversation_flow_id": "cf_1", "version": 5, "global_prompt": "Be brief.",
        "nodes": [{"id": "n1", "type": "conversation", "instruction": {"type": "prompt", "text": "Greet."}},
                  {"id": "n2", "type": "branch", "else_edge": {}}]}  # fmt: skip
PHONES = {"items": [{"phone_number": "+14155550100",
                     "inbound_agents": [{"agent_id": "agent_1", "weight": 1, "agent_version": 2}]}],
          "has_more": False, "pagination_key": None}  # fmt: skip
VERSION = {"id": VERSION_ID, "promptId": PROMPT_ID, "title": "Support v2", "content": "Help.", "promoted": True,
           "configuration": {"model": "gpt-4.1"}, "variables": [{"name": "order_id", "type": "text"}]}  # fmt: skip


class Retell:
    """A Retell with one agent (on an LLM or a flow), its versions, phone numbers and a test definition."""

    def __init__(self, engine: dict[str, Any] = LLM, phones: dict[str, Any] = PHONES) -> None:
        self.engine = engine
        self.phones = phones
        self.fail: dict[str, httpx2.Response | Exception] = {}  # path prefix -> answer
        self.bodies: list[tuple[str, str, Any]] = []
        self.versions = [1, 2, 3, 4, 5, 7]  # 2 is published

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        if is_write(method, path):
            self.bodies.append((method, str(request.url).removeprefix("https://api.retellai.com"),
                                json.loads(request.content)))  # fmt: skip
        for prefix, answer in self.fail.items():
            if path.startswith(prefix):
                if isinstance(answer, Exception):
                    raise answer
                return answer
        llm = "llm_id" in self.engine
        version = int(request.url.params.get("version", "5"))
        if path == "/v2/list-phone-numbers":
            return json_response(200, self.phones)
        if path == "/v2/list-agents":
            agent = {"agent_id": "agent_1", "agent_name": "Support", "channel": "voice", "tags": {}}
            return json_response(200, {"items": [agent], "has_more": False, "pagination_key": None})
        if path == "/list-agent-versions/agent_1":
            items = [{"version": n, "is_published": n == 2, "base_version": n - 1 or None,
                      "last_modification_timestamp": 1} for n in self.versions]  # fmt: skip
            return json_response(200, {"items": items, "has_more": False, "pagination_key": None})
        if path == "/get-agent/agent_1":
            engine = {"type": "retell-llm", "llm_id": "llm_1"} if llm else {
                "type": "conversation-flow", "conversation_flow_id": "cf_1"}  # fmt: skip
            published = version == 2
            agent = {"agent_id": "agent_1", "version": version, "is_published": published, "base_version": 4}
            return json_response(200, {**agent, "response_engine": {**engine, "version": version}})
        if path in ("/get-retell-llm/llm_1", "/get-conversation-flow/cf_1"):
            return json_response(200, {**self.engine, "version": version, "is_published": version == 2})
        if path == "/create-agent-version/agent_1":
            self.versions.append(6)
            return json_response(201, {"agent_id": "agent_1", "version": 6, "base_version": 5, "is_published": False})
        if path.startswith(("/update-retell-llm/", "/update-conversation-flow/")):
            return json_response(200, {**self.engine, **json.loads(request.content), "version": version})
        if path == "/get-test-case-definition/tcd_1":
            return json_response(200, DEFINITION)
        if path in ("/create-test-case-definition", "/update-test-case-definition/tcd_1"):
            return json_response(201, {**DEFINITION, **json.loads(request.content), "test_case_definition_id": "tcd_1"})
        return json_response(404, {"status": "error", "message": "Not Found"})


def tela(request: httpx2.Request) -> httpx2.Response:
    if request.url.path == f"/prompt-version/{VERSION_ID}" and request.method == "GET":
        return json_response(200, VERSION)
    if request.method in ("POST", "PATCH"):
        return json_response(201, {"id": "550e8400-e29b-41d4-a716-446655440099", **json.loads(request.content)})
    return json_response(404, {"message": "Not found"})


async def call(vendors: FakeVendors, tool: str, arguments: dict[str, Any], **flags: Any) -> Any:
    async with connect(vendors, make_settings({"allow_edits": True, **flags})) as client:
        return await client.call_tool(tool, arguments)


def writes(vendors: FakeVendors) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in vendors.requests if is_write(r.method, r.url.path)]


# --- save_test_case_definition --------------------------------------------------------------------------------


async def test_a_new_definition_is_created_with_the_engine_resolved_from_the_agent(vendors: FakeVendors) -> None:
    """Without an ID, save_test_case_definition POSTs name, the agent's engine (with the version asked for),
    user_prompt, metrics and what else was given; it answers the definition as Retell returned it."""
    retell = vendors.retell = Retell()
    mock = {"tool_name": "lookup_order", "input_match_rule": {"type": "any"}, "output": '{"status": "late"}'}
    arguments = {"name": "late order", "user_prompt": "Ask where your order is.", "metrics": ["gives the ETA"],
                 "agent_id": "agent_1", "version": 5, "tool_mocks": [mock],
                 "dynamic_variables": {"order": "O-1"}}  # fmt: skip
    result = await call(vendors, "save_test_case_definition", arguments)
    assert result.is_error is False, result.content[0].text
    ((method, url, body),) = retell.bodies
    assert (method, url) == ("POST", "/create-test-case-definition")
    assert body == {"name": "late order", "user_prompt": "Ask where your order is.", "metrics": ["gives the ETA"],
                    "dynamic_variables": {"order": "O-1"}, "tool_mocks": [mock],
                    "response_engine": {"type": "retell-llm", "llm_id": "llm_1", "version": 5}}  # fmt: skip
    assert result.structured_content["test_case_definition_id"] == "tcd_1"


async def test_a_definition_is_updated_whole_with_only_the_given_fields_changed(vendors: FakeVendors) -> None:
    """With an ID, the definition is read, the given fields overlaid, and the whole of it PUT, without the fields
    Retell keeps for itself (ID, type, timestamps)."""
    retell = vendors.retell = Retell()
    change = {"test_case_definition_id": "tcd_1", "metrics": ["offers a refund", "is polite"]}
    result = await call(vendors, "save_test_case_definition", change)
    assert result.is_error is False
    ((method, url, body),) = retell.bodies
    assert (method, url) == ("PUT", "/update-test-case-definition/tcd_1")
    kept = {key: DEFINITION[key] for key in ("name", "user_prompt", "response_engine", "dynamic_variables",
                                             "tool_mocks", "llm_model")}  # fmt: skip
    assert body == {**kept, "metrics": ["offers a refund", "is polite"]}


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"name": "n", "user_prompt": "p", "metrics": [], "llm_id": "llm_1"}, "at least one metric"),
        ({"name": "n", "user_prompt": "p", "metrics": ["m"]}, "missing: response_engine"),
        ({"name": "n", "user_prompt": "p", "metrics": ["m"], "llm_id": "llm_1",
          "tool_mocks": [{"tool_name": "t", "input_match_rule": {"type": "any"}, "output": {"a": 1}}]},
         "must be a string"),
        ({"name": "n", "user_prompt": "p", "metrics": ["m"], "llm_id": "llm_1",
          "tool_mocks": [{"tool_name": "t", "input_match_rule": {"type": "exact"}, "output": "{}"}]},
         "input_match_rule"),
        ({"name": "n", "user_prompt": "p", "metrics": ["m"], "llm_id": "llm_1",
          "tool_mocks": [{"tool_name": "t", "input_match_rule": {"type": "partial_match"}, "output": "{}"}]},
         "input_match_rule"),
        ({"name": "a\\nb", "user_prompt": "p", "metrics": ["m"], "llm_id": "llm_1"}, "name must be"),
        ({"name": "n", "user_prompt": "p" * 100_001, "metrics": ["m"], "llm_id": "llm_1"}, "at most 100,000"),
        ({"name": "n", "user_prompt": "p\\u0000", "metrics": ["m"], "llm_id": "llm_1"}, "control character"),
        ({"name": 5, "user_prompt": "p", "metrics": ["m"], "llm_id": "llm_1"}, "input schema"),
        ({"test_case_definition_id": "tcd_1"}, "at least one field"),
        ({"test_case_definition_id": "../x", "name": "n"}, "test_case_definition_id must be"),
    ],
)  # fmt: skip
async def test_bad_definitions_are_refused_before_any_request(
    vendors: FakeVendors, arguments: dict[str, Any], words: str
) -> None:
    """Empty metrics, no engine, a mock whose output is no string or whose match rule Retell does not know, a
    name with a line break, a prompt over 100,000 characters or with a control character, a wrong type: all
    invalid_argument in the contract's JSON, and nothing sent."""
    vendors.retell = Retell()
    arguments = json.loads(json.dumps(arguments).replace("\\\\n", "\\n").replace("\\\\u0000", "\\u0000"))
    error = error_of(await call(vendors, "save_test_case_definition", arguments))
    assert error["code"] == "invalid_argument" and words in error["message"], error
    assert vendors.requests == []


# --- draft_agent_version --------------------------------------------------------------------------------------


async def test_a_draft_is_made_from_a_base_version_and_only_the_named_fields_change(vendors: FakeVendors) -> None:
    """base_version: the phone numbers are read (again before the draft, and again before the PATCH), the draft
    made, its engine version read, and a PATCH with that explicit version carries only the changed fields: states
    as the whole array with only the named state's prompt new. The answer shows each change before and after, and
    says what is live."""
    retell = vendors.retell = Retell()
    changes = {"general_prompt": "Be kinder.", "states": [{"name": "order_help", "state_prompt": "Offer a refund."}]}
    result = await call(vendors, "draft_agent_version", {"agent_id": "agent_1", "base_version": 5, "changes": changes})
    draft = result.structured_content
    assert result.is_error is False and draft is not None, result.content[0].text
    assert writes(vendors) == ["POST /create-agent-version/agent_1", "PATCH /update-retell-llm/llm_1"]
    (_, _, created), (_, patch_url, patch) = retell.bodies
    assert created == {"base_version": 5} and patch_url == "/update-retell-llm/llm_1?version=6"
    assert patch == {"general_prompt": "Be kinder.",
                     "states": [{**LLM["states"][0], "state_prompt": "Offer a refund."}, LLM["states"][1]]}  # fmt: skip
    assert (draft["agent_id"], draft["version"], draft["base_version"]) == ("agent_1", 6, 5)
    assert draft["engine"] == {"type": "retell-llm", "llm_id": "llm_1", "version": 6}
    assert draft["changes"] == [
        {"field": "general_prompt", "before": "Be kind.", "after": "Be kinder."},
        {"field": "states.order_help.state_prompt", "before": "Help.", "after": "Offer a refund."},
    ]
    assert "web calls, chats" in draft["note"] and "published" in draft["note"]
    phone_reads = [r for r in vendors.requests if r.url.path == "/v2/list-phone-numbers"]
    assert len(phone_reads) == 3


async def test_an_existing_draft_is_changed_in_place_and_a_flow_by_node(vendors: FakeVendors) -> None:
    """draft_version: nothing is created; a flow's node instruction is replaced by node ID, keeping its type."""
    retell = vendors.retell = Retell(engine=FLOW)
    changes = {"nodes": [{"id": "n1", "instruction": "Greet and ask how to help."}]}
    result = await call(vendors, "draft_agent_version", {"agent_id": "agent_1", "draft_version": 7, "changes": changes})
    assert result.is_error is False, result.content[0].text
    ((method, url, patch),) = retell.bodies
    assert (method, url) == ("PATCH", "/update-conversation-flow/cf_1?version=7")
    new_instruction = {"type": "prompt", "text": "Greet and ask how to help."}
    assert patch == {"nodes": [{**FLOW["nodes"][0], "instruction": new_instruction}, FLOW["nodes"][1]]}


@pytest.mark.parametrize(
    ("binding", "live"),
    [("latest", True), (None, True), ("prod", True), ("latest_published", False), (3, False), (7, True)],
)
async def test_a_number_that_would_serve_the_draft_refuses_it_before_anything_is_made(
    vendors: FakeVendors, binding: Any, live: bool
) -> None:
    """A phone number binding the agent to latest, to no version or to a tag (an unassigned tag is latest), or to
    the draft itself, makes the edit unsafe_edit naming the number's last four digits; nothing is created or
    changed. latest_published or another numeric version is safe."""
    phones = {"items": [{"phone_number": "+14155550123",
                         "outbound_agents": [{"agent_id": "agent_1", "weight": 1, "agent_version": binding}]}],
              "has_more": False}  # fmt: skip
    vendors.retell = Retell(phones=phones)
    result = await call(vendors, "draft_agent_version", {"agent_id": "agent_1", "draft_version": 7,
                                                         "changes": {"general_prompt": "x"}})  # fmt: skip
    if live:
        error = error_of(result)
        assert error["code"] == "unsafe_edit" and "…0123" in error["message"] and "+1415" not in error["message"]
        assert writes(vendors) == []
    else:
        assert result.is_error is False and writes(vendors) == ["PATCH /update-retell-llm/llm_1"]


async def test_a_published_version_is_never_changed(vendors: FakeVendors) -> None:
    """draft_version naming a published version is unsafe_edit, nothing sent."""
    vendors.retell = Retell()
    error = error_of(await call(vendors, "draft_agent_version", {"agent_id": "agent_1", "draft_version": 2,
                                                                 "changes": {"general_prompt": "x"}}))  # fmt: skip
    assert error["code"] == "unsafe_edit" and "published" in error["message"] and writes(vendors) == []


@pytest.mark.parametrize(
    ("engine", "changes", "words"),
    [
        (LLM, {"states": [{"name": "refunds", "state_prompt": "x"}]}, 'no state named "refunds"'),
        (LLM, {"nodes": [{"id": "n1", "instruction": "x"}]}, "belong to conversation flows"),
        (FLOW, {"general_prompt": "x"}, "belong to Retell LLMs"),
        (FLOW, {"nodes": [{"id": "n9", "instruction": "x"}]}, 'no node with ID "n9"'),
        (FLOW, {"nodes": [{"id": "n2", "instruction": "x"}]}, "no instruction to change"),
        (LLM, {}, "nothing to change"),
        (LLM, {"general_prompt": "x" * 100_001}, "at most 100,000"),
    ],
)
async def test_changes_that_do_not_fit_the_engine_are_refused_before_anything_is_sent(
    vendors: FakeVendors, engine: dict[str, Any], changes: dict[str, Any], words: str
) -> None:
    """An unknown state or node, LLM fields for a flow or flow fields for an LLM, a node without an instruction,
    no change at all, an oversized prompt: invalid_argument, only reads made."""
    vendors.retell = Retell(engine=engine)
    error = error_of(await call(vendors, "draft_agent_version", {"agent_id": "agent_1", "base_version": 5,
                                                                 "changes": changes}))  # fmt: skip
    assert error["code"] == "invalid_argument" and words in error["message"], error
    assert writes(vendors) == []


@pytest.mark.parametrize(
    "arguments",
    [{"changes": {"general_prompt": "x"}}, {"base_version": 1, "draft_version": 2, "changes": {"general_prompt": "x"}}],
)
async def test_exactly_one_of_base_and_draft_version(vendors: FakeVendors, arguments: dict[str, Any]) -> None:
    vendors.retell = Retell()
    error = error_of(await call(vendors, "draft_agent_version", {"agent_id": "agent_1", **arguments}))
    assert error["code"] == "invalid_argument" and "exactly one of base_version" in error["message"]
    assert vendors.requests == []


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (json_response(500, {"status": "error", "message": "boom"}), "upstream_error"),
        (httpx2.RemoteProtocolError("Server disconnected"), "unreachable"),
        (httpx2.ReadTimeout("slow"), "timeout"),
    ],
)
async def test_a_draft_that_may_have_been_made_is_never_asked_for_again(
    vendors: FakeVendors, answer: Any, code: str
) -> None:
    """create-agent-version answered by a 5xx, a broken connection or no answer may have made a draft: one
    request, retryable false, and the message says to look with list_agent_versions and to finish it with
    draft_version."""
    retell = vendors.retell = Retell()
    retell.fail["/create-agent-version/"] = answer
    error = error_of(await call(vendors, "draft_agent_version", {"agent_id": "agent_1", "base_version": 5,
                                                                 "changes": {"general_prompt": "x"}}))  # fmt: skip
    assert (error["code"], error["retryable"]) == (code, False)
    assert "list_agent_versions agent_id=agent_1" in error["message"] and "draft_version" in error["message"]
    assert writes(vendors) == ["POST /create-agent-version/agent_1"]


async def test_an_error_after_the_draft_was_made_names_it(vendors: FakeVendors) -> None:
    """The draft was made but its change failed: the error names draft version 6 and how to finish it, and the
    change is not sent again."""
    retell = vendors.retell = Retell()
    retell.fail["/update-retell-llm/"] = json_response(503, {"status": "error", "message": "down"})
    error = error_of(await call(vendors, "draft_agent_version", {"agent_id": "agent_1", "base_version": 5,
                                                                 "changes": {"general_prompt": "x"}}))  # fmt: skip
    assert error["retryable"] is False
    assert "Draft version 6 of agent 'agent_1' was created" in error["message"]
    assert "draft_version=6" in error["message"]
    assert writes(vendors) == ["POST /create-agent-version/agent_1", "PATCH /update-retell-llm/llm_1"]


# --- Tela ------------------------------------------------------------------------------------------------------


async def test_a_tela_case_is_created_with_empty_rich_content_and_updated_with_only_what_was_given(
    vendors: FakeVendors,
) -> None:
    """Create: promptId, messages, variablesRichContent {} by default, and the optional fields given, in Tela's
    names. Update: a PATCH of only the fields given."""
    vendors.tela = tela
    messages = [{"role": "user", "content": "Where is my order?"}]
    created = await call(vendors, "save_test_case", {"prompt_id": PROMPT_ID, "messages": messages, "title": "ETA",
                                                     "expected_output": "It arrives Friday."})  # fmt: skip
    updated = await call(vendors, "save_test_case", {"id": CASE_ID, "expected_output": "Friday."})
    assert created.is_error is False and updated.is_error is False
    post, patch = (r for r in vendors.requests if is_write(r.method, r.url.path))
    assert (post.method, post.url.path) == ("POST", "/test-case")
    assert json.loads(post.content) == {"promptId": PROMPT_ID, "messages": messages, "title": "ETA",
                                        "expectedOutput": "It arrives Friday.", "variablesRichContent": {}}  # fmt: skip
    assert (patch.method, patch.url.path, json.loads(patch.content)) == (
        "PATCH", f"/test-case/{CASE_ID}", {"expectedOutput": "Friday."})  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "needs prompt_id and messages"),
        ({"prompt_id": PROMPT_ID, "messages": [{"role": "robot", "content": "x"}]}, "input schema"),
        ({"prompt_id": PROMPT_ID, "messages": []}, "at least one message"),
        ({"id": CASE_ID, "title": "a\\tb"}, "title must be"),
        ({"id": "case-1", "title": "t"}, "id must be a UUID"),
    ],
)
async def test_bad_tela_cases_are_refused_before_any_request(
    vendors: FakeVendors, arguments: dict[str, Any], words: str
) -> None:
    arguments = json.loads(json.dumps(arguments).replace("\\\\t", "\\t"))
    error = error_of(await call(vendors, "save_test_case", arguments))
    assert error["code"] == "invalid_argument" and words in error["message"], error
    assert vendors.requests == []


async def test_a_tela_draft_copies_its_base_and_is_never_promoted(vendors: FakeVendors) -> None:
    """draft_prompt_version reads the base, then POSTs its promptId, configuration and variables with the new
    content (as content and as the one system message), a title, draft true and promoted false, even when the
    base itself is promoted."""
    vendors.tela = tela
    arguments = {"base_version_id": VERSION_ID, "changes": {"content": "Offer refunds when late."}}
    result = await call(vendors, "draft_prompt_version", arguments)
    assert result.is_error is False, result.content[0].text
    (post,) = (r for r in vendors.requests if r.method != "GET")
    assert (post.method, post.url.path) == ("POST", "/prompt-version")
    assert json.loads(post.content) == {
        "promptId": PROMPT_ID, "title": "Support v2 (draft)", "configuration": VERSION["configuration"],
        "variables": VERSION["variables"], "content": "Offer refunds when late.",
        "message": {"role": "system", "content": "Offer refunds when late."},
        "draft": True, "promoted": False}  # fmt: skip


@pytest.mark.parametrize("tool", ["save_test_case", "draft_prompt_version"])
async def test_a_tela_write_that_may_have_landed_is_not_sent_again(vendors: FakeVendors, tool: str) -> None:
    """A 5xx after a Tela write: one request, retryable false, and where to look."""

    def failing(request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET":
            return tela(request)
        return json_response(502, {"message": "bad gateway"})

    vendors.tela = failing
    arguments = ({"prompt_id": PROMPT_ID, "messages": [{"role": "user", "content": "x"}]} if tool == "save_test_case"
                 else {"base_version_id": VERSION_ID, "changes": {"title": "v3"}})  # fmt: skip
    error = error_of(await call(vendors, tool, arguments))
    assert error["retryable"] is False and "may have been created" in error["message"]
    assert f"prompt_id={PROMPT_ID}" in error["message"]
    assert len([r for r in vendors.requests if r.method != "GET"]) == 1


async def test_each_write_is_logged_by_ids_and_field_names_never_a_prompt_or_key(
    vendors: FakeVendors, caplog: pytest.LogCaptureFixture
) -> None:
    """One INFO line per write naming IDs and fields; the prompt text and the keys appear nowhere."""
    vendors.retell = Retell()
    vendors.tela = tela
    secret_prompt = "The secret refund rule is forty-two."
    with caplog.at_level(logging.INFO):
        await call(vendors, "draft_agent_version", {"agent_id": "agent_1", "base_version": 5,
                                                    "changes": {"general_prompt": secret_prompt}})  # fmt: skip
        await call(
            vendors, "draft_prompt_version", {"base_version_id": VERSION_ID, "changes": {"content": secret_prompt}}
        )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("drafted")]
    assert lines == [
        "drafted Retell agent version: agent=agent_1 version=6 base=5 engine=retell-llm:6 fields=general_prompt "
        "changed=general_prompt",
        f"drafted Tela prompt version: id=550e8400-e29b-41d4-a716-446655440099 prompt={PROMPT_ID} fields=content,title",
    ]
    assert secret_prompt not in caplog.text
    for key in (RETELL_KEY, TELA_KEY):
        assert not any(key[i : i + 8] in caplog.text for i in range(len(key) - 7))
