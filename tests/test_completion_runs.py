"""Tela completion runs (issue 25, items 4, 6, 7 and 8 for Tela): list_completion_runs sends exactly the filters given
and makes each run small, get_completion_run is lossless, draft_test_case_from_run drafts save_test_case's arguments,
no run's URL reaches a list, a draft or a log line, and the demo walks the loop from a bad run to a passing fix."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent

from mcp_server.config import load_settings
from mcp_server.demo import DEMO_PROMOTED_VERSION_ID, DEMO_PROMPT_ID, DemoVendors, demo_settings, demo_transport
from mcp_server.demo.completions import DEMO_RUN_MISSED_ID, SIGNED_FILE_URL, WEBHOOK_URL
from mcp_server.server import build_server
from tests.conftest import FakeVendors, connect, error_of, is_write, json_response, make_settings

pytestmark = pytest.mark.anyio

PROMPT_ID = "550e8400-e29b-41d4-a716-446655440001"
VERSION_ID = "550e8400-e29b-41d4-a716-446655440004"
APP_ID = "550e8400-e29b-41d4-a716-446655440009"
RUN_ID = "crsv-i52z8vnqekc"  # the shape of the ID in docs.tela.com's completion example: not a UUID
FILE_URL = "https://vault.tela.example/files/receipt.pdf?X-Amz-Signature=0123456789abcdef"
HOOK_URL = "https://hooks.customer.example/tela?secret=s3cr3t-hook"
LONG_ANSWER = "Your order ORD-1 ships tomorrow.\n" + "More words. " * 200

# A run as GET /v2/chat/completions/{id} answers it (docs.tela.com completion/get), with both URL-bearing fields.
RUN: dict[str, Any] = {
    "id": RUN_ID,
    "status": "succeeded",
    "input_content": {
        "variables": {"customer_name": "Maria Garcia", "order_id": "ORD-1"},
        "messages": [{"role": "user", "content": "Cancel ORD-1", "function_call": None}],
        "files": [
            {
                "name": "receipt.pdf",
                "used_at": "variables",
                "parsed_content": "...",
                "url": FILE_URL,
                "type": "document",
            }
        ],
    },
    "output_content": {
        "role": "assistant",
        "tool_calls": [],
        "information": {"duration": 1.6, "cost": 0.0014, "input_tokens": 412, "output_tokens": 38},
        "has_structured_output": False,
        "content": LONG_ANSWER,
        "input_messages": "Cancel ORD-1",
    },
    "raw_input": {
        "version_id": None,
        "canvas_id": PROMPT_ID,
        "application_id": None,
        "webhook_url": HOOK_URL,
        "variables": {"customer_name": "Maria Garcia", "order_id": "ORD-1", "receipt": {"file_url": FILE_URL}},
        "messages": [{"role": "user", "content": "Please cancel ORD-1.\r\nWrong size."}],
        "override": None,
    },
    "raw_output": {},
    "compatibility_date": "2024-10-01T00:00:00.000Z",
    "prompt_version_id": VERSION_ID,
    "prompt_application_id": None,
    "workspace_id": "550e8400-e29b-41d4-a716-4466554400ff",
    "created_at": "2024-11-21T11:05:09.000Z",
    "updated_at": "2024-11-21T11:05:11.000Z",
    "a_field_tela_adds_later": {"kept": [1, None]},
}


def camel(value: Any, key: str | None = None) -> Any:
    """The run as a listed row: "Rows are returned with camelCase keys" (completion-run/get-v1-completion-run)."""
    if isinstance(value, dict) and key != "variables":
        return {k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]): camel(v, k) for k, v in value.items()}
    return [camel(v, key) for v in value] if isinstance(value, list) else value


def row(number: int, status: str = "succeeded") -> dict[str, Any]:
    return camel({**RUN, "id": f"run-{number}", "status": status})


class Tela:
    """A Tela answering the completion-run routes (and the version a run names); records every request."""

    def __init__(self, listed: object = None) -> None:
        self.listed = [row(1), row(2, "failed")] if listed is None else listed
        self.run: dict[str, Any] = RUN
        self.version: httpx2.Response = json_response(200, {"id": VERSION_ID, "promptId": PROMPT_ID})

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == "/v1/completion-run":
            return json_response(200, self.listed)
        if path.startswith("/v2/chat/completions/"):
            return json_response(200, {**self.run, "id": path.rsplit("/", 1)[1]})
        if path.startswith("/prompt-version/"):
            return self.version
        if path.startswith("/test-case"):
            return json_response(201, {"id": "550e8400-e29b-41d4-a716-446655440077", **json.loads(request.content)})
        return json_response(404, {"message": "Not Found"})


def tela_vendors(tela: Tela) -> FakeVendors:
    vendors = FakeVendors()
    vendors.tela = tela
    return vendors


async def call(vendors: FakeVendors, tool: str, arguments: dict[str, Any], **flags: Any) -> Any:
    async with connect(vendors, make_settings(flags or None)) as client:
        return await client.call_tool(tool, arguments)


def sent(vendors: FakeVendors) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [(r.method, r.url.path, list(r.url.params.multi_items())) for r in vendors.requests]


# --- list_completion_runs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "params"),
    [
        ({}, [("limit", "20")]),
        ({"prompt_id": PROMPT_ID, "limit": 50}, [("promptId", PROMPT_ID), ("limit", "50")]),
        ({"prompt_version_id": VERSION_ID, "limit": 1}, [("promptVersionId", VERSION_ID), ("limit", "1")]),
        ({"prompt_application_id": APP_ID}, [("promptApplicationId", APP_ID), ("limit", "20")]),
        (
            {"prompt_id": PROMPT_ID, "prompt_version_id": VERSION_ID, "status": "failed"},
            [("promptId", PROMPT_ID), ("promptVersionId", VERSION_ID), ("limit", "20")],
        ),
    ],
)
async def test_the_list_sends_exactly_the_filters_given_under_telas_names(
    arguments: dict[str, Any], params: list[tuple[str, str]]
) -> None:
    """One GET /v1/completion-run with the filters asked for (Tela's names) and the limit; a status is never sent,
    since Tela documents no status filter."""
    vendors = tela_vendors(Tela())
    result = await call(vendors, "list_completion_runs", arguments)
    assert result.is_error is False, result.content[0].text
    assert sent(vendors) == [("GET", "/v1/completion-run", params)]


async def test_each_listed_run_is_small_and_holds_no_input_and_no_url() -> None:
    """A bare array of camelCase rows: each item is the run's ID, status, version, times, duration and cost (from
    outputContent.information) and the start of its answer on one line; no input, no file link, no webhook URL."""
    vendors = tela_vendors(Tela())
    result = await call(vendors, "list_completion_runs", {"prompt_id": PROMPT_ID})
    page = result.structured_content
    assert page == json.loads(result.content[0].text)
    first = page["items"][0]
    assert first == {
        "id": "run-1",
        "status": "succeeded",
        "promptVersionId": VERSION_ID,
        "createdAt": "2024-11-21T11:05:09.000Z",
        "updatedAt": "2024-11-21T11:05:11.000Z",
        "duration": 1.6,
        "cost": 0.0014,
        "output": first["output"],
    }
    assert len(first["output"]) == 300 and first["output"].startswith("Your order ORD-1 ships tomorrow. More words.")
    assert "\n" not in first["output"] and first["output"].endswith("…")
    assert [item["status"] for item in page["items"]] == ["succeeded", "failed"]
    assert (page["scanned"], page["page"]) == (2, {})
    for leak in (FILE_URL, HOOK_URL, "vault.tela.example", "hooks.customer.example", "Maria Garcia"):
        assert leak not in result.content[0].text


async def test_snake_case_rows_are_read_as_well() -> None:
    """Tela documents camelCase rows but the run itself in snake_case: a row in either spelling gives the same item."""
    vendors = tela_vendors(Tela([{**RUN, "id": "run-1"}]))
    snake = (await call(vendors, "list_completion_runs", {})).structured_content["items"][0]
    vendors = tela_vendors(Tela([row(1)]))
    assert snake == (await call(vendors, "list_completion_runs", {})).structured_content["items"][0]


async def test_an_envelope_passes_its_paging_on_untouched() -> None:
    """Tela's envelope is not documented: an object holding the rows in its one array gives those rows, and every
    other field of it (a cursor, a flag, whatever it is named) comes back as `page`, exactly as sent."""
    paging = {"nextCursor": "eyJ1cGRhdGVkQXQiOiIyMDI0In0=", "hasMore": True, "meta": {"total": 41, "limit": 20}}
    vendors = tela_vendors(Tela({"data": [row(1), row(2)], **paging}))
    page = (await call(vendors, "list_completion_runs", {})).structured_content
    assert [item["id"] for item in page["items"]] == ["run-1", "run-2"]
    assert page["page"] == paging and page["scanned"] == 2


async def test_status_picks_from_the_page_tela_returned() -> None:
    """`status` keeps the page's runs in that status, in Tela's order; `scanned` says how many the page held."""
    vendors = tela_vendors(Tela([row(1, "running"), row(2, "failed"), row(3), row(4, "failed")]))
    page = (await call(vendors, "list_completion_runs", {"status": "failed", "limit": 4})).structured_content
    assert [item["id"] for item in page["items"]] == ["run-2", "run-4"] and page["scanned"] == 4


@pytest.mark.parametrize(
    "answer",
    [
        {"runs": [{"id": "a"}], "errors": [{"code": 1}]},
        {"data": {"rows": [{"id": "a"}]}},
        {},
    ],
)
async def test_an_answer_whose_runs_cannot_be_told_apart_is_bad_upstream_response(answer: object) -> None:
    """Two arrays of objects, or none at all: no run is guessed at; the error names the fields seen."""
    error = error_of(await call(tela_vendors(Tela(answer)), "list_completion_runs", {}))
    assert error["code"] == "bad_upstream_response" and "get_completion_run" in error["message"]


@pytest.mark.parametrize("answer", ["runs", 3, True])
async def test_an_answer_that_is_neither_an_array_nor_an_object_is_bad_upstream_response(answer: object) -> None:
    empty = await call(tela_vendors(Tela([])), "list_completion_runs", {})  # an empty array is an empty page
    assert empty.structured_content == {"items": [], "scanned": 0, "page": {}}
    vendors = FakeVendors()
    vendors.tela = lambda request: json_response(200, answer)
    error = error_of(await call(vendors, "list_completion_runs", {}))
    assert error["code"] == "bad_upstream_response" and "an array or an object" in error["message"]


async def test_fifty_runs_with_long_answers_fit_in_32_kb() -> None:
    """The largest page (50) of runs whose answers are 2,400 characters stays small: every item is bounded, and a
    Tela that sends more rows than asked for is shown only the first 50 of them."""
    vendors = tela_vendors(Tela([row(n) for n in range(60)]))
    result = await call(vendors, "list_completion_runs", {"limit": 50})
    assert len(result.structured_content["items"]) == 50 and result.structured_content["scanned"] == 60
    assert len(result.content[0].text.encode()) < 32 * 1024


@pytest.mark.parametrize(
    "arguments",
    [
        {"prompt_id": "../test-case"},
        {"prompt_version_id": "not-a-uuid"},
        {"prompt_application_id": "550e8400-e29b-41d4-a716-44665544000?"},
    ],
)
async def test_a_malformed_filter_is_invalid_argument_with_no_request(arguments: dict[str, Any]) -> None:
    vendors = tela_vendors(Tela())
    error = error_of(await call(vendors, "list_completion_runs", arguments))
    assert error["code"] == "invalid_argument" and error["provider"] == "tela" and vendors.requests == []


@pytest.mark.parametrize("arguments", [{"limit": 51}, {"limit": 0}, {"status": "done"}])
async def test_arguments_outside_the_schema_send_nothing(arguments: dict[str, Any]) -> None:
    """A limit above 50 or an unknown status fails the input schema (the SDK's error): no request."""
    vendors = tela_vendors(Tela())
    result = await call(vendors, "list_completion_runs", arguments)
    assert result.is_error is True and vendors.requests == []


# --- get_completion_run ------------------------------------------------------------------------------------------


async def test_get_is_lossless_urls_and_unknown_fields_included() -> None:
    """GET /v2/chat/completions/{id}: the run exactly as Tela sent it, as structured content and compact text."""
    vendors = tela_vendors(Tela())
    result = await call(vendors, "get_completion_run", {"id": RUN_ID})
    assert result.structured_content == RUN
    assert json.loads(result.content[0].text) == RUN and ": " not in result.content[0].text
    assert sent(vendors) == [("GET", f"/v2/chat/completions/{RUN_ID}", [])]


@pytest.mark.parametrize(
    "run_id",
    ["", ".", "..", "a..b", "a/b", "a?b", "a#b", "%2e%2e", "a b", "a\nb", "a\x00b", "ｒｕｎ", "a" * 129, "run\\1"],
)
async def test_a_run_id_that_could_leave_its_path_is_invalid_argument_with_no_request(run_id: str) -> None:
    """Tela documents the ID as a string: any that stays one path segment is sent, nothing else."""
    vendors = tela_vendors(Tela())
    for tool, argument in (("get_completion_run", "id"), ("draft_test_case_from_run", "run_id")):
        error = error_of(await call(vendors, tool, {argument: run_id}))
        assert error["code"] == "invalid_argument" and argument in error["message"], (tool, run_id)
    assert vendors.requests == []


@pytest.mark.parametrize("run_id", ["6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f5", "crsv-i52z8vnqekc", "run_1.2~x:y"])
async def test_run_ids_of_any_documented_looking_shape_are_sent(run_id: str) -> None:
    vendors = tela_vendors(Tela())
    assert (await call(vendors, "get_completion_run", {"id": run_id})).is_error is False
    assert [r.url.path for r in vendors.requests] == [f"/v2/chat/completions/{run_id}"]


async def test_an_unknown_run_is_not_found_naming_it() -> None:
    vendors = FakeVendors()
    vendors.tela = lambda request: json_response(404, {"message": "Completion not found"})
    error = error_of(await call(vendors, "get_completion_run", {"id": RUN_ID}))
    assert error["code"] == "not_found" and f"completion run '{RUN_ID}'" in error["message"]


# --- draft_test_case_from_run ------------------------------------------------------------------------------------


async def save_test_case_arguments(**flags: Any) -> set[str]:
    async with connect(FakeVendors(), make_settings({"allow_edits": True, **flags})) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    return set(tools["save_test_case"].input_schema["properties"])


async def test_a_draft_is_save_test_cases_arguments_from_what_the_caller_sent() -> None:
    """The run's prompt (read from its version), what the caller sent (messages, CR LF as LF; text variables),
    a title from the customer's message and metadata.source_run_id; expected_output is left for the assistant. A
    file and a variable holding a file are named in left_out; no URL is in the draft."""
    vendors = tela_vendors(Tela())
    result = await call(vendors, "draft_test_case_from_run", {"run_id": RUN_ID})
    draft = result.structured_content
    case = draft["test_case"]
    assert case == {
        "prompt_id": PROMPT_ID,
        "title": "Please cancel ORD-1. Wrong size.",
        "messages": [{"role": "user", "content": "Please cancel ORD-1.\nWrong size."}],
        "variables": {"customer_name": "Maria Garcia", "order_id": "ORD-1"},
        "metadata": {"source_run_id": RUN_ID},
    }
    assert set(case) < await save_test_case_arguments() and "expected_output" not in case
    assert draft["prompt_version_id"] == VERSION_ID
    assert draft["run_output"].startswith("Your order ORD-1 ships tomorrow.") and len(draft["run_output"]) == 2000
    assert any("'receipt'" in reason for reason in draft["left_out"])
    assert any("receipt.pdf" in reason and "files" in reason for reason in draft["left_out"])
    assert "expected_output" in draft["next"] and VERSION_ID in draft["next"]
    for leak in (FILE_URL, HOOK_URL, "vault.tela.example", "hooks.customer.example"):
        assert leak not in result.content[0].text
    assert [r.url.path for r in vendors.requests] == [f"/v2/chat/completions/{RUN_ID}", f"/prompt-version/{VERSION_ID}"]
    assert not any(is_write(r.method, r.url.path) for r in vendors.requests)


async def test_the_drafted_case_is_saved_as_it_is_with_its_metadata() -> None:
    """The draft's test_case plus an expected_output goes straight into save_test_case: POST /test-case sends
    promptId, messages, title, variables, expectedOutput, metadata (with source_run_id) and variablesRichContent."""
    tela = Tela()
    vendors = tela_vendors(tela)
    async with connect(vendors, make_settings({"allow_edits": True})) as client:
        draft = (await client.call_tool("draft_test_case_from_run", {"run_id": RUN_ID})).structured_content
        saved = await client.call_tool("save_test_case", {**draft["test_case"], "expected_output": "Cancelled."})
    assert saved.is_error is False, saved.content[0].text
    (post,) = [r for r in vendors.requests if r.method == "POST"]
    assert post.url.path == "/test-case"
    assert json.loads(post.content) == {
        "promptId": PROMPT_ID,
        "messages": [{"role": "user", "content": "Please cancel ORD-1.\nWrong size."}],
        "title": "Please cancel ORD-1. Wrong size.",
        "expectedOutput": "Cancelled.",
        "variables": {"customer_name": "Maria Garcia", "order_id": "ORD-1"},
        "metadata": {"source_run_id": RUN_ID},
        "variablesRichContent": {},
    }


async def test_metadata_alone_is_patched_onto_a_case(caplog: pytest.LogCaptureFixture) -> None:
    """save_test_case with an id and metadata sends only metadata (test-case/update takes it); the log line names
    the field, not its value."""
    vendors = tela_vendors(Tela())
    case_id = "550e8400-e29b-41d4-a716-446655440000"
    with caplog.at_level(logging.INFO):
        result = await call(
            vendors, "save_test_case", {"id": case_id, "metadata": {"source_run_id": "secret-run"}}, allow_edits=True
        )
    assert result.is_error is False, result.content[0].text
    (patch,) = [r for r in vendors.requests if r.method == "PATCH"]
    assert patch.url.path == f"/test-case/{case_id}" and json.loads(patch.content) == {
        "metadata": {"source_run_id": "secret-run"}
    }
    assert "fields=metadata" in caplog.text and "secret-run" not in caplog.text


async def test_a_run_whose_version_is_gone_takes_its_prompt_from_canvas_id() -> None:
    tela = Tela()
    tela.version = json_response(404, {"message": "Prompt version not found"})
    draft = (await call(tela_vendors(tela), "draft_test_case_from_run", {"run_id": RUN_ID})).structured_content
    assert draft["test_case"]["prompt_id"] == PROMPT_ID


async def test_a_run_naming_no_prompt_leaves_prompt_id_out_and_says_so() -> None:
    """No version and no canvas: no request beyond the run, no prompt_id, and left_out asks for it; a run with no
    message a case can take (a multimodal content, an unknown role) says that too."""
    tela = Tela()
    tela.run = {
        **RUN,
        "prompt_version_id": None,
        "raw_input": {"messages": [{"role": "tool", "content": "x"}, {"role": "user", "content": [{"type": "image"}]}]},
        "input_content": {},
    }
    vendors = tela_vendors(tela)
    draft = (await call(vendors, "draft_test_case_from_run", {"run_id": RUN_ID})).structured_content
    assert set(draft["test_case"]) == {"title", "metadata"} and draft["prompt_version_id"] is None
    assert draft["test_case"]["title"] == f"Completion run {RUN_ID}"
    reasons = " ".join(draft["left_out"])
    assert "prompt_id" in reasons and "'tool'" in reasons and "not text" in reasons and "messages:" in reasons
    assert len(vendors.requests) == 1


async def test_no_run_url_reaches_a_log_line_at_any_level(caplog: pytest.LogCaptureFixture) -> None:
    """Listing, reading and drafting at DEBUG: the file link and the webhook URL are in no log record."""
    vendors = tela_vendors(Tela())
    with caplog.at_level(logging.DEBUG):
        async with connect(vendors, make_settings({"log_level": "DEBUG"})) as client:
            await client.call_tool("list_completion_runs", {})
            await client.call_tool("get_completion_run", {"id": RUN_ID})
            await client.call_tool("draft_test_case_from_run", {"run_id": RUN_ID})
    assert "tool=get_completion_run" in caplog.text
    for leak in (FILE_URL, HOOK_URL, "vault.tela.example", "hooks.customer.example"):
        assert leak not in caplog.text


# --- The calls toolset and the prompt ------------------------------------------------------------------------------


@pytest.mark.parametrize(("toolsets", "listed"), [(["tela"], False), (["tela", "calls"], True), (None, True)])
async def test_the_run_tools_and_prompt_are_listed_only_with_the_calls_toolset(
    toolsets: list[str] | None, listed: bool
) -> None:
    """Read tools (annotated so, with output schemas) of the calls toolset; left out of toolsets, none is listed."""
    settings = make_settings({"toolsets": toolsets} if toolsets else None)
    async with Client(build_server(settings, transport=FakeVendors().transport())) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        prompts = [prompt.name for prompt in (await client.list_prompts()).prompts]
        instructions = client.instructions or ""
    ours = ["list_completion_runs", "get_completion_run", "draft_test_case_from_run"]
    assert ("list_completion_runs finds a prompt's production completions" in instructions) is listed
    assert [name for name in tools if name in ours] == (ours if listed else [])
    assert ("test_from_completion_run" in prompts) is listed
    for name in ours if listed else []:
        assert tools[name].annotations is not None and tools[name].annotations.read_only_hint is True
        assert tools[name].output_schema is not None


async def test_the_prompt_walks_run_to_failing_test_to_fix() -> None:
    """test_from_completion_run names the run in each read, then save, run on the version, see it miss, fix."""
    async with connect(FakeVendors()) as client:
        result = await client.get_prompt("test_from_completion_run", {"run_id": RUN_ID})
        content = result.messages[0].content
        with pytest.raises(MCPError) as raised:
            await client.get_prompt("test_from_completion_run", {"run_id": "../test-case"})
    assert isinstance(content, TextContent)
    text = content.text
    assert f"get_completion_run id={RUN_ID}" in text and f"draft_test_case_from_run run_id={RUN_ID}" in text
    steps = ["expected_output", "save_test_case", "run_test_cases", "miss", "draft_prompt_version", "publish"]
    assert all(step in text for step in steps)
    assert [text.index(step) for step in steps] == sorted(text.index(step) for step in steps)
    assert raised.value.error.code == -32602


# --- The demo ------------------------------------------------------------------------------------------------------


def demo_client() -> Client:
    settings = demo_settings(load_settings({"allow_runs": True, "allow_edits": True}, env={}))
    return Client(build_server(settings, transport=demo_transport()))


async def test_the_tela_loop_runs_in_the_demo_from_a_bad_run_to_a_passing_fix() -> None:
    """The README's Tela rows in one session: list the prompt's runs and spot the one that ignored a cancellation,
    draft a case from it, save it, run it on the version the run used (its generation misses too), draft a fix of
    the prompt, rerun the case on the draft (its generation cancels). No list or draft shows a run's URL."""
    async with demo_client() as client:
        listed = await client.call_tool("list_completion_runs", {"prompt_id": DEMO_PROMPT_ID})
        items = listed.structured_content["items"]
        assert [item["status"] for item in items][:1] == ["running"] and "failed" in [i["status"] for i in items]
        (missed,) = [item for item in items if "ships tomorrow" in (item["output"] or "")]
        assert missed["id"] == DEMO_RUN_MISSED_ID and missed["promptVersionId"] == DEMO_PROMOTED_VERSION_ID

        whole = await client.call_tool("get_completion_run", {"id": DEMO_RUN_MISSED_ID})
        assert "cancel" in whole.structured_content["raw_input"]["messages"][0]["content"]
        assert SIGNED_FILE_URL in whole.content[0].text and WEBHOOK_URL in whole.content[0].text

        drafted = await client.call_tool("draft_test_case_from_run", {"run_id": DEMO_RUN_MISSED_ID})
        draft = drafted.structured_content
        assert draft["test_case"]["prompt_id"] == DEMO_PROMPT_ID
        assert draft["prompt_version_id"] == DEMO_PROMOTED_VERSION_ID
        for text in (listed.content[0].text, drafted.content[0].text):
            assert SIGNED_FILE_URL not in text and WEBHOOK_URL not in text

        expected = "Done, Maria: order ORD-67890 is cancelled."
        saved = await client.call_tool("save_test_case", {**draft["test_case"], "expected_output": expected})
        case_id = saved.structured_content["id"]
        assert saved.structured_content["metadata"] == {"source_run_id": DEMO_RUN_MISSED_ID}

        async def rerun(version_id: str) -> str:
            started = await client.call_tool(
                "run_test_cases", {"prompt_version_id": version_id, "test_case_ids": [case_id]}
            )
            assert started.structured_content["executionId"]
            case = await client.call_tool("get_test_case", {"id": case_id, "include_generations": True})
            output: str = case.structured_content["generations"][-1]["output"]
            return output

        assert "cancelled" not in await rerun(draft["prompt_version_id"])  # the test fails, as the run did

        base = (await client.call_tool("get_prompt_version", {"id": DEMO_PROMOTED_VERSION_ID})).structured_content
        fix = f"{base['content']}\nIf the customer asks to cancel an order, cancel it and confirm."
        made = await client.call_tool(
            "draft_prompt_version", {"base_version_id": DEMO_PROMOTED_VERSION_ID, "changes": {"content": fix}}
        )
        assert made.structured_content["draft"] is True and made.structured_content["promoted"] is False
        assert "cancelled" in await rerun(made.structured_content["id"])  # the fix passes


def demo_call(vendors: DemoVendors, path: str, **params: str) -> tuple[int, Any]:
    response = vendors.handle(httpx2.Request("GET", f"https://demo.invalid{path}", params=params or None))
    return response.status_code, response.json()


def test_the_demo_list_route_follows_telas_description() -> None:
    """Newest updated first, camelCase rows, limit 10 by default and clamped to 1-100, filters by prompt and
    version; a prompt, version or app the workspace lacks is a 404 (completion-run/get-v1-completion-run)."""
    vendors = DemoVendors()
    status, rows = demo_call(vendors, "/v1/completion-run")
    assert status == 200 and len(rows) == 6
    assert [r["updatedAt"] for r in rows] == sorted((r["updatedAt"] for r in rows), reverse=True)
    assert {"promptVersionId", "rawInput", "outputContent", "createdAt"} <= set(rows[0])
    assert "customer_name" in rows[0]["rawInput"]["variables"]  # the customer's names are not camelCased
    assert len(demo_call(vendors, "/v1/completion-run", limit="2")[1]) == 2
    assert len(demo_call(vendors, "/v1/completion-run", limit="0")[1]) == 1
    assert len(demo_call(vendors, "/v1/completion-run", limit="500")[1]) == 6
    assert demo_call(vendors, "/v1/completion-run", limit="x")[0] == 400
    assert len(demo_call(vendors, "/v1/completion-run", promptVersionId=DEMO_PROMOTED_VERSION_ID)[1]) == 6
    assert demo_call(vendors, "/v1/completion-run", promptVersionId="550e8400-e29b-41d4-a716-446655440002")[1] == []
    for name in ("promptId", "promptVersionId", "promptApplicationId"):
        assert demo_call(vendors, "/v1/completion-run", **{name: "550e8400-e29b-41d4-a716-4466554400aa"})[0] == 404
    status, run = demo_call(vendors, f"/v2/chat/completions/{DEMO_RUN_MISSED_ID}")
    assert status == 200 and run["raw_input"]["webhook_url"] == WEBHOOK_URL
    assert demo_call(vendors, "/v2/chat/completions/nope")[0] == 404


async def test_listed_run_ids_complete_the_prompts_run_id_and_never_a_case_id() -> None:
    """Runs listed are remembered as runs: the prompt's `run_id` is offered them, a test case's `id` is not."""
    from mcp_types import PromptReference, ResourceTemplateReference

    server = build_server(demo_settings(load_settings(env={})), transport=demo_transport())
    async with Client(server, mode="legacy") as client:  # a handshake-era connection is remembered as one client
        listed = await client.call_tool("list_completion_runs", {"prompt_id": DEMO_PROMPT_ID})
        assert listed.structured_content is not None
        ids = [item["id"] for item in listed.structured_content["items"]]
        runs = await client.complete(PromptReference(name="test_from_completion_run"), {"name": "run_id", "value": ""})
        cases = await client.complete(
            ResourceTemplateReference(uri="tela://test-cases/{id}"), {"name": "id", "value": ""}
        )
    assert ids and sorted(runs.completion.values) == sorted(ids)
    assert not set(ids) & set(cases.completion.values)
