"""Tela's write tools (level `edits`): save a test case, draft a fix of a prompt as a new version that is never
promoted. Every write is checked before anything is sent and confirmed by the user where the client can be asked
(`tools/writes.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server.mcpserver.resolve import Resolve
from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.errors import BadUpstreamResponse, InvalidArgument
from mcp_server.tela.client import TelaClient, TelaPromptVersion, TelaTestCase
from mcp_server.text import quoted
from mcp_server.tools.base import Ctx, ToolSpec, runtime
from mcp_server.tools.writes import (
    MAX_NAME_CHARS,
    Confirmation,
    Prepared,
    check_name,
    check_text,
    confirming,
    log_write,
    prepare,
    written,
)
from mcp_server.upstream.ids import UUID, check_id


class Message(BaseModel):
    """A Tela test case's message; the roles are those docs.tela.com `test-case/create` lists."""

    model_config = ConfigDict(title="Message", extra="forbid")

    role: Literal["user", "system", "assistant", "function", "developer"]
    content: str


class PromptChanges(BaseModel):
    model_config = ConfigDict(title="PromptChanges", extra="forbid")

    content: str | None = Field(None, description="the new prompt text")
    title: str | None = None


# --- save_test_case (Tela) ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CasePlan:
    case_id: str | None
    body: dict[str, Any]


def _prepare_case(
    case_id: str | None,
    prompt_id: str | None,
    messages: list[Message] | None,
    variables_rich_content: dict[str, Any] | None,
    title: str | None,
    variables: dict[str, Any] | None,
    expected_output: str | None,
    metadata: dict[str, Any] | None = None,
) -> tuple[CasePlan, str]:
    body: dict[str, Any] = {}
    if prompt_id is not None:
        body["promptId"] = check_id(prompt_id, argument="prompt_id", provider="tela")
    if messages is not None:
        if not messages:
            raise InvalidArgument("messages must hold at least one message. Nothing was sent.", provider="tela")
        body["messages"] = [
            {"role": message.role, "content": check_text(message.content, "each message's content", "tela")}
            for message in messages
        ]
    if title is not None:
        body["title"] = check_name(title, "title", "tela")
    if expected_output is not None:
        body["expectedOutput"] = check_text(expected_output, "expected_output", "tela")
    if variables is not None:
        body["variables"] = variables
    if variables_rich_content is not None:
        body["variablesRichContent"] = variables_rich_content
    if metadata is not None:  # test-case/create and test-case/update take `metadata`, an object ("including source")
        body["metadata"] = metadata
    if case_id is None:
        if "promptId" not in body or "messages" not in body:
            raise InvalidArgument("A new test case needs prompt_id and messages. Nothing was sent.", provider="tela")
        body.setdefault("variablesRichContent", {})  # required by Tela's create route
        named = f" {quoted(body['title'])}" if "title" in body else ""
        question = (
            f"Create the Tela test case{named} for prompt {body['promptId']} ({len(body['messages'])} messages), "
            f"sending {', '.join(body)}?"
        )
        return CasePlan(None, body), f"{question} Saving costs nothing; running it counts towards your Tela quota."
    checked = check_id(case_id, argument="id", provider="tela")
    if not body:
        raise InvalidArgument("Give at least one field to change. Nothing was sent.", provider="tela")
    question = f"Change the Tela test case {checked}: {', '.join(body)}?"
    return CasePlan(checked, body), f"{question} Saving costs nothing; running it counts towards your Tela quota."


async def prepare_case(
    ctx: Ctx,
    id: str | None,
    prompt_id: str | None,
    messages: list[Message] | None,
    variables_rich_content: dict[str, Any] | None,
    title: str | None,
    variables: dict[str, Any] | None,
    expected_output: str | None,
    metadata: dict[str, Any] | None,
) -> Prepared[CasePlan]:
    async def checks() -> tuple[CasePlan, str]:
        return _prepare_case(
            id, prompt_id, messages, variables_rich_content, title, variables, expected_output, metadata
        )

    return await prepare(checks())


confirm_case = confirming(prepare_case)


async def save_test_case(
    ctx: Ctx,
    prepared: Annotated[Prepared[CasePlan], Resolve(prepare_case)],
    confirmation: Annotated[Confirmation, Resolve(confirm_case)],
    id: Annotated[str | None, Field(description="Tela test case UUID, to change it; omit to create one")] = None,
    prompt_id: Annotated[str | None, Field(description="Tela prompt UUID (to create)")] = None,
    messages: list[Message] | None = None,
    variables_rich_content: dict[str, Any] | None = None,
    title: str | None = None,
    variables: dict[str, Any] | None = None,
    expected_output: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Annotated[CallToolResult, TelaTestCase]:
    """Create a Tela test case (prompt_id, messages), or change only the given fields of one."""

    async def send(plan: CasePlan) -> dict[str, Any]:
        tela = runtime(ctx).tela
        if plan.case_id is None:
            saved = await tela.create_test_case(plan.body)
        else:
            saved = await tela.update_test_case(plan.case_id, plan.body)
        log_write("saved Tela test case", id=saved.get("id") or plan.case_id, fields=",".join(plan.body))
        return saved

    return await written(ctx, "save_test_case", "tela", prepared, confirmation, send)


# --- draft_prompt_version (Tela) ---------------------------------------------------------------------------------


async def _prepare_prompt_draft(
    tela: TelaClient, base_version_id: str, changes: PromptChanges
) -> tuple[dict[str, Any], str]:
    checked = check_id(base_version_id, argument="base_version_id", provider="tela")
    if changes.content is None and changes.title is None:
        raise InvalidArgument("changes names nothing to change. Nothing was sent.", provider="tela")
    content = check_text(changes.content, "changes.content", "tela") if changes.content is not None else None
    title = check_name(changes.title, "changes.title", "tela") if changes.title is not None else None
    base = await tela.get_prompt_version(checked)
    prompt_id = base.get("promptId")
    if not isinstance(prompt_id, str) or not UUID.fullmatch(prompt_id):
        raise BadUpstreamResponse(
            f"Tela's prompt version '{checked}' names no promptId that is a UUID, so no draft of it can be made. "
            "Nothing was sent.",
            provider="tela",
            status=200,
        )
    text = content if content is not None else base.get("content")
    body: dict[str, Any] = {
        "promptId": prompt_id,
        "title": title or _draft_title(base.get("title")),
        "configuration": base.get("configuration"),
        "variables": base.get("variables"),
        "content": text,
        # A version holds one system message carrying the prompt text (docs.tela.com prompt-version-message).
        "message": {"role": "system", "content": text},
        "draft": True,
        "promoted": False,
    }
    changed = " and ".join(name for name in ("content", "title") if getattr(changes, name) is not None)
    question = (
        f"Create a new draft of Tela prompt {prompt_id} from version {checked}, changing its {changed} (titled "
        f"{quoted(body['title'])}; its configuration and variables as in {checked})? It is saved as a draft, never "
        "promoted or published."
    )
    return body, question


def _draft_title(base: object) -> str:
    """The base's title marked as a draft (once), at most 256 characters."""
    title = base if isinstance(base, str) and base.strip() else "Draft"
    return (title if title.endswith("(draft)") else f"{title} (draft)")[:MAX_NAME_CHARS]


async def prepare_prompt_draft(ctx: Ctx, base_version_id: str, changes: PromptChanges) -> Prepared[dict[str, Any]]:
    return await prepare(_prepare_prompt_draft(runtime(ctx).tela, base_version_id, changes))


confirm_prompt_draft = confirming(prepare_prompt_draft)


async def draft_prompt_version(
    base_version_id: Annotated[str, Field(description="Tela prompt version UUID to start from")],
    changes: PromptChanges,
    ctx: Ctx,
    prepared: Annotated[Prepared[dict[str, Any]], Resolve(prepare_prompt_draft)],
    confirmation: Annotated[Confirmation, Resolve(confirm_prompt_draft)],
) -> Annotated[CallToolResult, TelaPromptVersion]:
    """Draft a fix of a Tela prompt as a new version (draft, never promoted) from a base version."""

    async def send(body: dict[str, Any]) -> dict[str, Any]:
        version = await runtime(ctx).tela.create_prompt_version(body)
        log_write("drafted Tela prompt version", id=version.get("id"), prompt=body["promptId"], fields="content,title")
        return version

    return await written(ctx, "draft_prompt_version", "tela", prepared, confirmation, send)


TOOLS = (
    ToolSpec(save_test_case, "Save Tela test case", "tela", "edits"),
    ToolSpec(draft_prompt_version, "Draft Tela prompt version", "tela", "edits"),
)
