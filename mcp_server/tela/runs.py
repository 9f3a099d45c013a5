"""Tela's completion runs, real customers' requests to a prompt: a page of them made small, and a test case drafted
from one, whose fields are `save_test_case`'s arguments.

What Tela documents and what it leaves out (docs.tela.com, docs/upstream-facts.md "Completion runs"):
- GET /v1/completion-run (`completion-run/get-v1-completion-run`) lists runs "most recently updated first" with
  camelCase keys; its envelope and its rows' fields are not documented. Its description sets the rows against "the
  snake_case webhook payload" (the run as completion/get shows it), so each field of the run is read under both
  spellings, and the rows are the one array the answer holds (a bare array, or the one array field of an object).
  Everything else in the answer is its paging, whatever Tela names it, and is passed on untouched as `page`.
- No status filter is documented, so `status` picks from the page Tela returned.
- GET /v2/chat/completions/{id} (`completion/get`): `raw_input` holds the request's own fields (`messages`,
  `variables`, `version_id`, `canvas_id`, `webhook_url`), so it is read as what the caller sent, before the run's
  `input_content`; `output_content.content` is its answer ("read output_content.content", async-and-webhooks),
  `output_content.information` its `duration` and `cost` (units not documented), `prompt_version_id` the version.
- A run's URLs (`input_content.files[].url`, signed file links; `raw_input.webhook_url`) are in get_completion_run's
  lossless answer only: never in a compact item, a draft or a log line.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from mcp_server.errors import BadUpstreamResponse, NotFound
from mcp_server.tela.client import TelaClient, check_run_id
from mcp_server.text import clip
from mcp_server.upstream.ids import UUID
from mcp_server.upstream.schema import VendorObject

Status = Literal["created", "running", "succeeded", "failed"]  # completion/get's `status` enum
OUTPUT_CHARS = 300  # of a run's answer in a list item
DRAFT_OUTPUT_CHARS = 2000  # of the run's answer beside a draft: what the expectation is written against
TITLE_CHARS = 120
MAX_VARIABLE_CHARS = 10_000  # a longer value (a document pasted in, base64) is left out of a draft, and said so
ROLES = ("user", "system", "assistant", "function", "developer")  # save_test_case's, as test-case/create lists them


class CompletionRunPage(VendorObject):
    """A page of completion runs, each made small; Tela's paging passed on as it came."""

    items: Any = Field(
        None,
        description="array, newest updated first: {id, status, promptVersionId, createdAt, updatedAt, duration, "
        "cost, output (clipped)}; duration and cost as Tela reports them (units not documented)",
    )
    scanned: Any = Field(None, description="integer: runs on Tela's page, before the status filter")
    page: Any = Field(None, description="object: every other field of Tela's answer (its paging), as sent")


class DraftedTestCase(VendorObject):
    """A test case drafted from a completion run: `test_case` holds save_test_case's arguments but expected_output."""

    test_case: Any = Field(None, description="object: prompt_id, title, messages, variables, metadata {source_run_id}")
    prompt_version_id: Any = Field(None, description="string: the version the run used")
    run_output: Any = Field(None, description="string: what the run answered (clipped)")
    left_out: Any = Field(None, description="array of strings: what of the run could not be copied, and why")
    next: Any = Field(None, description="string: what to do with the draft")


def _field(record: object, snake: str, camel: str) -> Any:
    """A run's field under Tela's snake_case name (the run) or camelCase one (a listed row)."""
    if not isinstance(record, dict):
        return None
    value = record.get(camel)
    return record.get(snake) if value is None else value


def _one_line(text: str) -> str:
    """Text on one line: every run of whitespace, control or format characters one space."""
    return " ".join("".join(char if char.isprintable() else " " for char in text).split())


def _answer_text(run: dict[str, Any]) -> str | None:
    """The run's answer (`output_content.content`) as text: a string as it is, structured output as compact JSON."""
    content = _field(_field(run, "output_content", "outputContent"), "content", "content")
    if content is None:
        return None
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def _number(value: object) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _short(value: object, limit: int) -> str | None:
    """A vendor string a list item repeats: on one line, clipped (an ID longer than 128 characters is no ID)."""
    return clip(_one_line(value), limit) if isinstance(value, str) else None


def _stamp(value: object) -> object:
    return _number(value) if not isinstance(value, str) else _short(value, 40)


def compact_run(row: dict[str, Any]) -> dict[str, Any]:
    """One listed run, small: its ID, status, version, times, duration, cost and the start of its answer; never its
    inputs or any URL."""
    information = _field(_field(row, "output_content", "outputContent"), "information", "information")
    text = _answer_text(row)
    return {
        "id": _short(row.get("id"), 128),
        "status": _short(row.get("status"), 40),
        "promptVersionId": _short(_field(row, "prompt_version_id", "promptVersionId"), 128),
        "createdAt": _stamp(_field(row, "created_at", "createdAt")),
        "updatedAt": _stamp(_field(row, "updated_at", "updatedAt")),
        "duration": _number(_field(information, "duration", "duration")),
        "cost": _number(_field(information, "cost", "cost")),
        "output": clip(_one_line(text), OUTPUT_CHARS) if text is not None else None,
    }


def _rows(answer: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The runs of Tela's answer and the rest of it: the one array it holds (an array answer arrives as `items`),
    or, when it holds several, the one that is not empty and holds objects."""
    arrays = [key for key, value in answer.items() if isinstance(value, list)]
    filled = [key for key in arrays if answer[key] and all(isinstance(row, dict) for row in answer[key])]
    if len(arrays) == 1:
        key = arrays[0]
    elif len(filled) == 1:
        key = filled[0]
    elif arrays and not any(answer[key] for key in arrays):
        return [], {key: value for key, value in answer.items() if key not in arrays}
    else:
        shown = ", ".join(_short(name, 40) or "" for name in sorted(answer)[:10]) or "no fields"
        raise BadUpstreamResponse(
            f"Tela listed completion runs in a shape this server cannot read (an object with {shown}), so none can "
            "be shown. get_completion_run reads one run by its ID.",
            provider="tela",
            status=200,
        )
    return answer[key], {name: value for name, value in answer.items() if name != key}


async def list_runs(
    tela: TelaClient,
    *,
    prompt_id: str | None,
    prompt_version_id: str | None,
    prompt_application_id: str | None,
    status: Status | None,
    limit: int,
) -> dict[str, Any]:
    """A page of runs made small, those with `status` only when it is given (from the page Tela returned), at most
    `limit` of them whatever Tela sends."""
    answer = await tela.list_completion_runs(
        prompt_id=prompt_id,
        prompt_version_id=prompt_version_id,
        prompt_application_id=prompt_application_id,
        limit=limit,
    )
    rows, page = _rows(answer)
    runs = [row for row in rows if isinstance(row, dict)]
    chosen = [row for row in runs if status is None or row.get("status") == status][:limit]  # Tela clamps to 100
    return {"items": [compact_run(row) for row in chosen], "scanned": len(runs), "page": page}


# --- A test case from a run ----------------------------------------------------------------------------------------


def _messages(run: dict[str, Any], left_out: list[str]) -> list[dict[str, str]]:
    """What the caller sent (`raw_input.messages`, else the run's `input_content.messages`) as test case messages:
    {role, content} of a role save_test_case takes and text content (CR LF as LF); the rest named in `left_out`."""
    sent = _field(_field(run, "raw_input", "rawInput"), "messages", "messages")
    if not isinstance(sent, list) or not sent:
        sent = _field(_field(run, "input_content", "inputContent"), "messages", "messages")
    messages = []
    for index, message in enumerate(sent if isinstance(sent, list) else []):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ROLES:
            left_out.append(f"message {index + 1}: its role {clip(role, 40)!r} is none a test case takes")
        elif not isinstance(content, str):
            left_out.append(f"message {index + 1} ({role}): its content is not text")
        else:
            messages.append({"role": role, "content": content.replace("\r\n", "\n").replace("\r", "\n")})
    if not messages:
        left_out.append("messages: the run holds no message a test case can take; write the customer's request")
    return messages


def _variables(run: dict[str, Any], left_out: list[str]) -> dict[str, Any]:
    """The variables the caller sent (else those the run used) whose values are text or numbers; a file (an object
    holding its URL) or a very long value is left out, and named."""
    sent = _field(_field(run, "raw_input", "rawInput"), "variables", "variables")
    if not isinstance(sent, dict) or not sent:
        sent = _field(_field(run, "input_content", "inputContent"), "variables", "variables")
    variables: dict[str, Any] = {}
    for name, value in (sent if isinstance(sent, dict) else {}).items():
        if isinstance(value, str) and len(value) > MAX_VARIABLE_CHARS:
            left_out.append(f"variable {clip(name, 60)!r}: {len(value):,} characters, too long to copy")
        elif isinstance(value, str | bool) or _number(value) is not None:
            variables[name] = value
        else:
            left_out.append(f"variable {clip(name, 60)!r}: not text (a file?); add it to the case in Tela")
    return variables


def _title(run_id: str, messages: list[dict[str, str]]) -> str:
    asked = next((_one_line(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")
    return clip(asked, TITLE_CHARS) or f"Completion run {run_id}"


async def _prompt_of(tela: TelaClient, run: dict[str, Any], version: object, deadline: float) -> str | None:
    """The prompt (canvas) the run belongs to: its version's `promptId` (prompt-version/get-by-id), else the
    `raw_input.canvas_id` it was called with (prompt-version history documents `promptId` as "Canvas id.")."""
    if isinstance(version, str) and UUID.fullmatch(version):
        try:
            prompt = (await tela.get_prompt_version(version, deadline=deadline)).get("promptId")
        except NotFound:
            prompt = None
        if isinstance(prompt, str) and UUID.fullmatch(prompt):
            return prompt
    canvas = _field(_field(run, "raw_input", "rawInput"), "canvas_id", "canvasId")
    return canvas if isinstance(canvas, str) and UUID.fullmatch(canvas) else None


async def draft_case(tela: TelaClient, run_id: str) -> dict[str, Any]:
    """Read the run (and its version, for the prompt), and draft the test case that replays it."""
    checked = check_run_id(run_id, argument="run_id")
    deadline = tela.deadline()  # one for both requests
    run = await tela.get_completion_run(checked, argument="run_id", deadline=deadline)
    version = _field(run, "prompt_version_id", "promptVersionId") or _field(
        _field(run, "raw_input", "rawInput"), "version_id", "versionId"
    )
    left_out: list[str] = []
    prompt_id = await _prompt_of(tela, run, version, deadline)
    messages = _messages(run, left_out)
    variables = _variables(run, left_out)
    files = _field(_field(run, "input_content", "inputContent"), "files", "files")
    if isinstance(files, list) and files:
        names = ", ".join(repr(clip(_field(f, "name", "name"), 60)) for f in files[:5])
        left_out.append(f"files ({len(files)}: {names}): save_test_case cannot attach files; add them in Tela")
    case: dict[str, Any] = {}
    if prompt_id is None:
        left_out.append("prompt_id: the run names no prompt that could be read; ask for the prompt's UUID")
    else:
        case["prompt_id"] = prompt_id
    case["title"] = _title(checked, messages)
    if messages:
        case["messages"] = messages
    if variables:
        case["variables"] = variables
    case["metadata"] = {"source_run_id": checked}
    answer = _answer_text(run)
    ran_on = version if isinstance(version, str) and UUID.fullmatch(version) else None
    rerun = (
        f"run it on prompt version {ran_on} (the one the run used) with run_test_cases and expect it to miss"
        if ran_on
        else "run it on the version the run used with run_test_cases and expect it to miss"
    )
    return {
        "test_case": case,
        "prompt_version_id": ran_on,
        "run_output": clip(answer, DRAFT_OUTPUT_CHARS) if answer is not None else None,
        "left_out": left_out,
        "next": "Write expected_output from what went wrong (what a good answer says), add it to test_case, save "
        f"the case with save_test_case (test_case's fields as they are), then {rerun} before any fix.",
    }
