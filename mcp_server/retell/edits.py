"""Retell's write tools (level `edits`): save a test definition, draft a fix of an agent as a new or existing
unpublished version. Every write is checked before anything is sent, confirmed by the user where the client can be
asked (`tools/writes.py`), and unable to change anything live (`retell/drafts.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver.resolve import Resolve
from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.errors import InvalidArgument
from mcp_server.retell.client import RetellClient, RetellTestCaseDefinition, choose_engine
from mcp_server.retell.drafts import Changes, DraftPlan, make_draft, prepare_draft
from mcp_server.text import quoted
from mcp_server.tools.base import AgentId, Ctx, FlowId, LlmId, ToolSpec, WriteVersion, runtime
from mcp_server.tools.writes import (
    Confirmation,
    Prepared,
    check_name,
    check_text,
    confirming,
    log_write,
    prepare,
    written,
)
from mcp_server.upstream.ids import check_id
from mcp_server.upstream.schema import VendorObject

# Fields of a Retell test definition that may be sent (retell-sdk 6.2.13
# `types/test_create_test_case_definition_params.py`); the rest of what Retell answers (its ID, timestamps, `type`)
# is Retell's own.
DEFINITION_FIELDS = (
    "name",
    "response_engine",
    "user_prompt",
    "metrics",
    "dynamic_variables",
    "tool_mocks",
    "llm_model",
)
MAX_METRIC_CHARS = 1000


# Every argument model refuses keys it does not know (`extra="forbid"`): a misspelt field sent nowhere would be a
# change the user believes was made.
class ToolMock(BaseModel):
    """A canned tool result (retell-sdk `ToolMock`); `output` must be a string (JSON text), `input_match_rule`
    {"type": "any"} or {"type": "partial_match", "args": {...}}."""

    model_config = ConfigDict(title="ToolMock", extra="forbid")

    tool_name: str
    input_match_rule: Any
    output: Any
    result: bool | None = None


class StateChange(BaseModel):
    model_config = ConfigDict(title="StateChange", extra="forbid")

    name: str
    state_prompt: str


class NodeChange(BaseModel):
    model_config = ConfigDict(title="NodeChange", extra="forbid")

    id: str
    instruction: str = Field(description="the node's new instruction text")


class DraftChanges(BaseModel):
    """LLM: general_prompt, begin_message, states. Flow: global_prompt, nodes."""

    model_config = ConfigDict(title="DraftChanges", extra="forbid")

    general_prompt: str | None = None
    begin_message: str | None = None
    states: list[StateChange] | None = None
    global_prompt: str | None = None
    nodes: list[NodeChange] | None = None


class RetellDraft(VendorObject):
    """The draft made or changed, and each changed text before and after."""

    agent_id: Any = None
    version: Any = Field(None, description="the draft's version")
    base_version: Any = None
    engine: Any = Field(None, description="{type, llm_id or conversation_flow_id, version}")
    changes: Any = Field(None, description="[{field, before, after}], clipped")
    note: Any = None


# --- save_test_case_definition ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefinitionPlan:
    definition_id: str | None
    body: dict[str, Any]


async def _prepare_definition(
    retell: RetellClient,
    definition_id: str | None,
    given: dict[str, Any],
    engine_ids: tuple[str | None, str | None, str | None],
    version: int | None,
) -> tuple[DefinitionPlan, str]:
    _check_definition_fields(given)
    deadline = retell.deadline()
    if any(engine_ids):
        engine = await retell.resolve(choose_engine(*engine_ids), deadline)
        given["response_engine"] = {**engine.fields(), **({"version": version} if version is not None else {})}
    elif version is not None:
        raise InvalidArgument(
            "version goes with agent_id, llm_id or conversation_flow_id. Nothing was sent.", provider="retell"
        )
    if definition_id is None:
        missing = [key for key in ("name", "user_prompt", "metrics", "response_engine") if key not in given]
        if missing:
            raise InvalidArgument(
                "A new test definition needs name, user_prompt, metrics and one of agent_id, llm_id or "
                f"conversation_flow_id (missing: {', '.join(missing)}). Nothing was sent.",
                provider="retell",
            )
        engine_shown = _engine_words(given["response_engine"])
        question = (
            f"Create the Retell test definition {quoted(given['name'])} for {engine_shown}, sending {', '.join(given)}?"
        )
        return DefinitionPlan(None, given), f"{question} Saving costs nothing; running it costs Retell credits."
    checked = check_id(definition_id, argument="test_case_definition_id", provider="retell")
    if not given:
        raise InvalidArgument("Give at least one field to change. Nothing was sent.", provider="retell")
    current = await retell.get_test_case_definition(checked, deadline=deadline)
    body = {key: current[key] for key in DEFINITION_FIELDS if key in current} | given
    question = (
        f"Change the Retell test definition {checked} ({quoted(body.get('name'))}): {', '.join(given)}? The whole "
        "definition is sent back with only these fields changed."
    )
    return DefinitionPlan(checked, body), f"{question} Saving costs nothing; running it costs Retell credits."


def _check_definition_fields(given: dict[str, Any]) -> None:
    if "name" in given:
        check_name(given["name"], "name", "retell")
    if "user_prompt" in given:
        check_text(given["user_prompt"], "user_prompt", "retell")
    if "metrics" in given:
        if not given["metrics"]:
            raise InvalidArgument("metrics must name at least one metric. Nothing was sent.", provider="retell")
        for metric in given["metrics"]:
            check_text(metric, "each metric", "retell", limit=MAX_METRIC_CHARS)
    for key, value in (given.get("dynamic_variables") or {}).items():
        check_name(key, "each dynamic variable's name", "retell")
        check_text(value, f"dynamic variable {key!r}", "retell")
    if "llm_model" in given:
        check_name(given["llm_model"], "llm_model", "retell")
    mocks = given.get("tool_mocks")
    if mocks is not None:
        given["tool_mocks"] = [_tool_mock(mock) for mock in mocks]


def _tool_mock(mock: ToolMock) -> dict[str, Any]:
    """A tool mock as Retell takes it, checked: a string output, and a match rule Retell knows."""
    check_name(mock.tool_name, "tool_mocks.tool_name", "retell")
    if not isinstance(mock.output, str):
        raise InvalidArgument(
            f"The output of the mock for {mock.tool_name!r} must be a string (JSON text, as the real tool would "
            "answer). Nothing was sent.",
            provider="retell",
        )
    check_text(mock.output, "tool_mocks.output", "retell")
    rule = mock.input_match_rule
    kind = rule.get("type") if isinstance(rule, dict) else None
    if kind not in ("any", "partial_match") or (kind == "partial_match" and not isinstance(rule.get("args"), dict)):
        raise InvalidArgument(
            f'The input_match_rule of the mock for {mock.tool_name!r} must be {{"type": "any"}} or '
            '{"type": "partial_match", "args": {...}}. Nothing was sent.',
            provider="retell",
        )
    shaped: dict[str, Any] = {"tool_name": mock.tool_name, "input_match_rule": rule, "output": mock.output}
    return shaped | ({"result": mock.result} if mock.result is not None else {})


def _engine_words(engine: dict[str, Any]) -> str:
    ident = engine.get("llm_id") or engine.get("conversation_flow_id")
    version = engine.get("version")
    return f"{engine.get('type')} {ident}" + (f" version {version}" if version is not None else " (latest version)")


async def prepare_definition(
    ctx: Ctx,
    test_case_definition_id: str | None,
    name: str | None,
    user_prompt: str | None,
    metrics: list[str] | None,
    dynamic_variables: dict[str, str] | None,
    tool_mocks: list[ToolMock] | None,
    llm_model: str | None,
    agent_id: str | None,
    llm_id: str | None,
    conversation_flow_id: str | None,
    version: int | None,
) -> Prepared[DefinitionPlan]:
    given = {
        key: value
        for key, value in (
            ("name", name),
            ("user_prompt", user_prompt),
            ("metrics", metrics),
            ("dynamic_variables", dynamic_variables),
            ("tool_mocks", tool_mocks),
            ("llm_model", llm_model),
        )
        if value is not None
    }
    engine_ids = (agent_id, llm_id, conversation_flow_id)
    work = _prepare_definition(runtime(ctx).retell, test_case_definition_id, given, engine_ids, version)
    return await prepare(work)


confirm_definition = confirming(prepare_definition)


async def save_test_case_definition(
    ctx: Ctx,
    prepared: Annotated[Prepared[DefinitionPlan], Resolve(prepare_definition)],
    confirmation: Annotated[Confirmation, Resolve(confirm_definition)],
    test_case_definition_id: Annotated[str | None, Field(description="to change it; omit to create one")] = None,
    name: str | None = None,
    user_prompt: Annotated[str | None, Field(description="what the simulated caller is told to do")] = None,
    metrics: list[str] | None = None,
    dynamic_variables: dict[str, str] | None = None,
    tool_mocks: list[ToolMock] | None = None,
    llm_model: str | None = None,
    agent_id: AgentId = None,
    llm_id: LlmId = None,
    conversation_flow_id: FlowId = None,
    version: WriteVersion = None,
) -> Annotated[CallToolResult, RetellTestCaseDefinition]:
    """Create a Retell test case definition, or change the given fields of one. A tool call that matches no
    tool_mock runs the real tool."""

    async def send(plan: DefinitionPlan) -> dict[str, Any]:
        retell = runtime(ctx).retell
        deadline = retell.deadline()
        if plan.definition_id is None:
            saved = await retell.create_test_case_definition(plan.body, deadline=deadline)
        else:
            saved = await retell.update_test_case_definition(plan.definition_id, plan.body, deadline=deadline)
        log_write(
            "saved Retell test case definition",
            id=saved.get("test_case_definition_id") or plan.definition_id,
            fields=",".join(plan.body),
        )
        return saved

    return await written(ctx, "save_test_case_definition", "retell", prepared, confirmation, send)


# --- draft_agent_version ---------------------------------------------------------------------------------------


async def _prepare_agent_draft(
    retell: RetellClient,
    agent_id: str,
    base_version: int | None,
    draft_version: int | None,
    changes: DraftChanges,
) -> tuple[DraftPlan, str]:
    checked = check_id(agent_id, argument="agent_id", provider="retell")
    if (base_version is None) == (draft_version is None):
        raise InvalidArgument(
            "Give exactly one of base_version (a new draft from it) or draft_version (an existing draft to change). "
            "Nothing was sent.",
            provider="retell",
        )
    plan = DraftPlan(checked, base_version, draft_version, _changes(changes))
    if not plan.changes.sent():
        raise InvalidArgument("changes names nothing to change. Nothing was sent.", provider="retell")
    return await prepare_draft(retell, plan)


def _changes(given: DraftChanges) -> Changes:
    """The changes, each text checked (none empty: a change to nothing would blank the prompt that is there) and
    each state or node named once."""
    texts = {
        name: check_text(value, f"changes.{name}", "retell", empty=False)
        for name in ("general_prompt", "begin_message", "global_prompt")
        if (value := getattr(given, name)) is not None
    }
    states = _by_name(
        [(state.name, state.state_prompt) for state in given.states or []], "changes.states.name", "state_prompt"
    )
    nodes = _by_name([(node.id, node.instruction) for node in given.nodes or []], "changes.nodes.id", "instruction")
    return Changes(**texts, states=states, nodes=nodes)


def _by_name(entries: list[tuple[str, str]], argument: str, text: str) -> dict[str, str]:
    """State or node changes by name, each name checked and given once."""
    changes: dict[str, str] = {}
    for name, value in entries:
        check_name(name, argument, "retell")
        if name in changes:
            raise InvalidArgument(f"{argument} names {quoted(name)} twice. Nothing was sent.", provider="retell")
        changes[name] = check_text(value, f"the {text} of {quoted(name)}", "retell", empty=False)
    return changes


async def prepare_agent_draft(
    ctx: Ctx, agent_id: str, base_version: int | None, draft_version: int | None, changes: DraftChanges
) -> Prepared[DraftPlan]:
    return await prepare(_prepare_agent_draft(runtime(ctx).retell, agent_id, base_version, draft_version, changes))


confirm_agent_draft = confirming(prepare_agent_draft)


async def draft_agent_version(
    agent_id: str,
    changes: DraftChanges,
    ctx: Ctx,
    prepared: Annotated[Prepared[DraftPlan], Resolve(prepare_agent_draft)],
    confirmation: Annotated[Confirmation, Resolve(confirm_agent_draft)],
    base_version: Annotated[
        int | None, Field(ge=0, strict=True, description="make a new draft from this version")
    ] = None,
    draft_version: Annotated[
        int | None, Field(ge=0, strict=True, description="change this existing draft instead")
    ] = None,
) -> Annotated[CallToolResult, RetellDraft]:
    """Draft a fix of a Retell agent as a new (or existing) unpublished version: only prompts, the first message,
    state prompts (by name) or node instructions (by ID) change. Refused when a phone number would serve it at
    once. Web calls and chats that pin no version use the newest version; publish it in Retell's dashboard."""

    async def send(plan: DraftPlan) -> dict[str, Any]:
        draft = await make_draft(runtime(ctx).retell, plan)
        log_write(
            "drafted Retell agent version",
            agent=plan.agent_id,
            version=draft["version"],
            base=plan.base_version,
            engine=f"{draft['engine'].get('type')}:{draft['engine'].get('version')}",
            fields=",".join(plan.changes.sent()),
            changed=",".join(change["field"] for change in draft["changes"]),
        )
        return draft

    return await written(ctx, "draft_agent_version", "retell", prepared, confirmation, send)


TOOLS = (
    ToolSpec(save_test_case_definition, "Save Retell test case definition", "retell", "edits"),
    ToolSpec(draft_agent_version, "Draft Retell agent version", "retell", "edits"),
)
