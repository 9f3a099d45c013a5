"""A Retell fix drafted as a new version that cannot go live by itself.

Retell's "latest" is live: a phone number may bind an agent to `latest` (the largest version number, so a new draft
is served at once), to a tag (an unassigned tag resolves to latest) or to no version, and calls that pin no version
(web calls, chats) use the newest one (retell-sdk 6.2.13 `types/phone_number_response.py`,
`types/chat_create_params.py`).
So before anything is made or changed, every phone number is read: any such binding of the agent, or one that pins
the very draft being edited, refuses the edit (`unsafe_edit`) naming the numbers by their last four digits. A
published version is never changed; every change names its version (without one Retell changes the latest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp_server.errors import InvalidArgument, UnsafeEdit, UpstreamError
from mcp_server.upstream.retell import Engine, RetellClient, engine_of
from mcp_server.workflow import EXPLANATION_LIMIT, clip

LIMIT = EXPLANATION_LIMIT  # characters of each changed text shown before and after, like a summary's explanations

# Bindings that always serve a fixed, published version: a draft is never what they serve.
SAFE_BINDINGS = frozenset({"latest_published"})
BINDING_LISTS = ("inbound_agents", "outbound_agents", "inbound_sms_agents", "outbound_sms_agents")
LIVE_NOTE = (
    "Calls that pin no agent_version (web calls, chats) use an agent's newest version, this draft included; "
    "phone numbers serve it only once it is published, which is done in Retell's dashboard."
)


@dataclass(frozen=True)
class Changes:
    """What a draft may change, and nothing else: a Retell LLM's general prompt, first message and states' prompts
    (by state name), or a conversation flow's global prompt and nodes' instructions (by node ID)."""

    general_prompt: str | None = None
    begin_message: str | None = None
    states: dict[str, str] = field(default_factory=dict)
    global_prompt: str | None = None
    nodes: dict[str, str] = field(default_factory=dict)

    def fields(self) -> list[str]:
        """The changed fields, as a question and the log line name them."""
        named = [name for name in ("general_prompt", "begin_message", "global_prompt") if getattr(self, name)]
        return named + [f"state {name}" for name in self.states] + [f"node {node}" for node in self.nodes]


@dataclass(frozen=True)
class DraftPlan:
    """A checked draft: of `agent_id`, either new from `base_version` or the existing `draft_version`."""

    agent_id: str
    base_version: int | None
    draft_version: int | None
    changes: Changes


async def prepare_draft(retell: RetellClient, plan: DraftPlan) -> tuple[DraftPlan, str]:
    """Check everything that can be checked before the user is asked: no live binding, the version to start from
    (or the draft) exists and fits the changes, and an existing draft is not published. Returns the question."""
    deadline = retell.deadline()
    await refuse_live_bindings(retell, plan, deadline)
    version = plan.base_version if plan.base_version is not None else plan.draft_version
    assert version is not None
    agent = await retell.get_agent(plan.agent_id, version=version, deadline=deadline)
    engine, engine_version = engine_of(agent.get("response_engine"), f"agent '{plan.agent_id}' version {version}")
    current = await retell.get_engine(engine, engine_version, deadline=deadline)
    _check_changes(plan.changes, engine, current)
    what = ", ".join(plan.changes.fields())
    if plan.draft_version is not None:
        _refuse_published(plan, agent, current, plan.draft_version)
        question = f"Change draft version {plan.draft_version} of Retell agent {plan.agent_id}: {what}?"
    else:
        question = f"Create a new draft of Retell agent {plan.agent_id} from version {version}, changing {what}?"
    return plan, f"{question} Nothing published changes; web calls and chats that pin no version use the new draft."


async def make_draft(retell: RetellClient, plan: DraftPlan) -> dict[str, Any]:
    """Make (or take) the draft and change only the named fields of its LLM or flow, at its version, within one
    deadline; the live bindings are checked again first, since time passed while the user was asked. An error
    once a draft was made names it, so it can be finished with `draft_version` rather than made again."""
    deadline = retell.deadline()
    await refuse_live_bindings(retell, plan, deadline)
    draft = plan.draft_version
    base = plan.base_version
    if base is not None:
        created = await retell.create_agent_version(plan.agent_id, base, deadline=deadline)
        draft = _version_of(created, plan)
    assert draft is not None
    try:
        agent = await retell.get_agent(plan.agent_id, version=draft, deadline=deadline)
        engine, version = engine_of(agent.get("response_engine"), f"agent '{plan.agent_id}' version {draft}")
        if version is None:
            raise UnsafeEdit(
                f"Retell's agent '{plan.agent_id}' version {draft} names no version of its {engine.type}, and a change "
                "without one would change the latest.",
                provider="retell",
            )
        current = await retell.get_engine(engine, version, deadline=deadline)
        _check_changes(plan.changes, engine, current)
        _refuse_published(plan, agent, current, draft)
        fields, changed = _patch(plan.changes, current)
        await retell.update_engine(engine, version, fields, deadline=deadline)
    except UpstreamError as error:
        if base is not None:
            error.message = (
                f"Draft version {draft} of agent '{plan.agent_id}' was created from version {base}; then: "
                f"{error.message} Finish it with draft_agent_version draft_version={draft}."
            )
        raise
    return {
        "agent_id": plan.agent_id,
        "version": draft,
        "base_version": base if base is not None else agent.get("base_version"),
        "engine": {**engine.fields(), "version": version},
        "changes": changed,
        "note": LIVE_NOTE,
    }


async def refuse_live_bindings(retell: RetellClient, plan: DraftPlan, deadline: float) -> None:
    """`unsafe_edit` when any phone number would serve the draft at once."""
    numbers = await retell.list_phone_numbers(deadline=deadline)
    live = live_numbers(numbers, plan.agent_id, plan.draft_version)
    if live:
        shown = ", ".join(f"…{number[-4:]}" for number in live)
        raise UnsafeEdit(
            f"Phone numbers {shown} send calls to agent '{plan.agent_id}' at 'latest', at a tag or at no version"
            + (f", or at draft version {plan.draft_version} itself" if plan.draft_version is not None else "")
            + ", so a draft could take live calls at once. Nothing was created or changed. Pin each number to a "
            "published version (a number, or latest_published) in Retell's dashboard, then draft again.",
            provider="retell",
        )


def live_numbers(numbers: list[dict[str, Any]], agent_id: str, draft: int | None) -> list[str]:
    """The phone numbers (as Retell names them) that bind `agent_id` so that a draft of it, or `draft` itself, would
    be served: to `latest`, a tag, no version, or the draft's own number."""
    live = []
    for number in numbers:
        for key in BINDING_LISTS:
            bindings = number.get(key)
            for binding in bindings if isinstance(bindings, list) else []:
                if not isinstance(binding, dict) or binding.get("agent_id") != agent_id:
                    continue
                version = binding.get("agent_version")
                pinned = isinstance(version, int) and not isinstance(version, bool)
                if (not pinned and version not in SAFE_BINDINGS) or (pinned and version == draft):
                    live.append(str(number.get("phone_number") or "unknown"))
    return sorted(set(live))


def _version_of(created: dict[str, Any], plan: DraftPlan) -> int:
    version = created.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    raise UnsafeEdit(
        f"Retell made a new draft of agent '{plan.agent_id}' but did not say its version, so nothing was changed in "
        f"it. Find it with list_agent_versions agent_id={plan.agent_id} and finish it with draft_version.",
        provider="retell",
    )


def _refuse_published(plan: DraftPlan, agent: dict[str, Any], current: dict[str, Any], draft: int) -> None:
    if agent.get("is_published") is True or current.get("is_published") is True:
        raise UnsafeEdit(
            f"Version {draft} of agent '{plan.agent_id}' is published, and published versions are never changed. "
            "Make a new draft from it instead (base_version).",
            provider="retell",
        )


def _check_changes(changes: Changes, engine: Engine, current: dict[str, Any]) -> None:
    """The changes fit the engine: LLM fields for an LLM, flow fields for a flow, and every state or node named
    exists (and a node has an instruction to change)."""
    if engine.type == "retell-llm":
        if changes.global_prompt is not None or changes.nodes:
            raise _wrong_kind("a Retell LLM", "global_prompt and nodes belong to conversation flows")
        known = {state.get("name") for state in _items(current, "states")}
        unknown = [name for name in changes.states if name not in known]
        if unknown:
            states = ", ".join(sorted(map(str, known))) or "none"
            raise InvalidArgument(
                f"{engine} has no state named {unknown[0]!r} (its states: {states}). Nothing was sent.",
                provider="retell",
            )
        return
    if changes.general_prompt is not None or changes.begin_message is not None or changes.states:
        raise _wrong_kind("a conversation flow", "general_prompt, begin_message and states belong to Retell LLMs")
    nodes = {node.get("id"): node for node in _items(current, "nodes")}
    for node_id in changes.nodes:
        node = nodes.get(node_id)
        if node is None:
            raise InvalidArgument(f"{engine} has no node with ID {node_id!r}. Nothing was sent.", provider="retell")
        if not isinstance(node.get("instruction"), dict):
            raise InvalidArgument(
                f"Node {node_id!r} of {engine} has no instruction to change (a {node.get('type')} node). Nothing was "
                "sent.",
                provider="retell",
            )


def _wrong_kind(kind: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"This agent's engine is {kind}: {why}. Nothing was sent.", provider="retell")


def _items(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = obj.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _patch(changes: Changes, current: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The PATCH body (the changed fields only: `states` and `nodes` as whole arrays, Retell taking no part of
    one, with only the named entries' text replaced) and each change's text before and after, clipped."""
    fields: dict[str, Any] = {}
    changed: list[dict[str, Any]] = []

    def note(name: str, before: object, after: str) -> None:
        changed.append(
            {"field": name, "before": clip(before, EXPLANATION_LIMIT), "after": clip(after, EXPLANATION_LIMIT)}
        )

    for name in ("general_prompt", "begin_message", "global_prompt"):
        value = getattr(changes, name)
        if value is not None:
            fields[name] = value
            note(name, current.get(name), value)
    if changes.states:
        states = [dict(state) for state in _items(current, "states")]
        for state in states:
            if state.get("name") in changes.states:
                new = changes.states[state["name"]]
                note(f"states.{state['name']}.state_prompt", state.get("state_prompt"), new)
                state["state_prompt"] = new
        fields["states"] = states
    if changes.nodes:
        nodes = [dict(node) for node in _items(current, "nodes")]
        for node in nodes:
            if node.get("id") in changes.nodes:
                new = changes.nodes[node["id"]]
                note(f"nodes.{node['id']}.instruction", node["instruction"].get("text"), new)
                node["instruction"] = {**node["instruction"], "text": new}
        fields["nodes"] = nodes
    return fields, changed
