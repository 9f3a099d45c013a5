"""A Retell fix drafted as a new version that cannot change anything live.

Before anything is made or changed, again after the user's answer, and once more right before the PATCH, the whole
workspace is read (`reach.survey`), and the patch is sent only once it is shown that
- no phone number or handoff would serve the draft at once: none names the agent at `latest`, a tag or no version
  ("latest" is the largest version number, an unassigned tag is latest: retell-sdk 6.2.13
  `types/phone_number_response.py`; a swap without `agent_version` "will use the latest version":
  `types/llm_response.py`), nor at the draft's own number (or, before the draft exists, a number it could take);
- no other agent serves calls from the same LLM or flow: a shared engine is changed where it is owned;
- the engine version to patch is none that a published version of the agent runs, nor the base version's, nor any
  version a binding pins, and an LLM that says it is published is never patched: nothing documents that
  `create-agent-version` gives the draft an LLM or flow version of its own (`resources/agent.py:create_version`).
Every change names its version (without one Retell changes the latest).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from mcp_server.errors import BadUpstreamResponse, InvalidArgument, UnsafeEdit, UpstreamError
from mcp_server.retell.client import Engine, RetellClient, engine_of
from mcp_server.retell.reach import Reach, Route, answered_for, survey, whole
from mcp_server.retell.summaries import EXPLANATION_LIMIT
from mcp_server.text import clip, quoted

logger = logging.getLogger(__name__)
T = TypeVar("T")

RECENT_SECONDS = 3600  # unpublished drafts from the same base this recent are named in the question
LIVE_NOTE = (
    "Calls that pin no agent_version (web calls, chats), inbound webhooks that pick the agent at call time, and calls "
    "that override the agent's LLM or flow without a version use the newest version, this draft included; phone "
    "numbers serve it only once it is published, which is done in Retell's dashboard."
)
TEXT_FIELDS = ("general_prompt", "begin_message", "global_prompt")


@dataclass(frozen=True)
class Changes:
    """What a draft may change, and nothing else: a Retell LLM's general prompt, first message and states' prompts
    (by state name), or a conversation flow's global prompt and nodes' instructions (by node ID)."""

    general_prompt: str | None = None
    begin_message: str | None = None
    states: dict[str, str] = field(default_factory=dict)
    global_prompt: str | None = None
    nodes: dict[str, str] = field(default_factory=dict)

    def sent(self) -> list[str]:
        """The fields the PATCH carries (`states` and `nodes` whole), as the INFO line names them."""
        named = [name for name in TEXT_FIELDS if getattr(self, name) is not None]
        return named + (["states"] if self.states else []) + (["nodes"] if self.nodes else [])

    def described(self) -> str:
        """Every field sent, as the question names it: the whole arrays with which entries change."""
        parts = [name for name in TEXT_FIELDS if getattr(self, name) is not None]
        if self.states:
            names = ", ".join(quoted(name) for name in self.states)
            parts.append(f"states (the state_prompt of {names}; every other state is sent back as it is)")
        if self.nodes:
            names = ", ".join(quoted(node) for node in self.nodes)
            parts.append(f"nodes (the instruction of {names}; every other node is sent back as it is)")
        return ", ".join(parts)


@dataclass(frozen=True)
class DraftPlan:
    """A checked draft: of `agent_id`, either new from `base_version` or the existing `draft_version`."""

    agent_id: str
    base_version: int | None
    draft_version: int | None
    changes: Changes


async def prepare_draft(
    retell: RetellClient, plan: DraftPlan, *, now: Callable[[], float] = time.time
) -> tuple[DraftPlan, str]:
    """Check everything that can be checked before the user is asked: the version to start from (or the draft)
    exists, names its engine's version and fits the changes, and nothing live could reach the draft. Returns the
    question, which names the unpublished drafts made from the same base in the last hour (a retry can finish one
    of them instead)."""
    deadline = retell.deadline()
    agent_id, changes = plan.agent_id, plan.changes.described()
    if plan.draft_version is not None:
        await _refusing(_checked_draft(retell, plan, plan.draft_version, None, deadline), NOTHING_CHANGED)
        question = f"Change draft version {plan.draft_version} of Retell agent {agent_id}: {changes}?"
        return plan, f"{question} Nothing published changes."
    assert plan.base_version is not None
    reach = await _refusing(_checked_base(retell, plan, deadline), NOTHING_MADE)
    question = (
        f"Create a new draft of Retell agent {agent_id} from version {plan.base_version}, changing {changes}? Nothing "
        "published changes; web calls and chats that pin no version use the new draft."
    )
    recent = _recent_drafts(reach, plan.base_version, now())
    if recent:
        question += (
            f" Unpublished drafts made from version {plan.base_version} in the last hour: "
            f"{', '.join(map(str, recent))} (to finish one instead, decline and give draft_version)."
        )
    return plan, question


async def make_draft(retell: RetellClient, plan: DraftPlan) -> dict[str, Any]:
    """Make (or take) the draft and change only the named fields of its LLM or flow, at its version, within one
    deadline; everything is checked again first, since time passed while the user was asked, and a new draft is
    checked as Retell made it right before the PATCH. An error once a draft was made names it and says nothing
    was patched; a call abandoned after it was made logs it."""
    deadline = retell.deadline()
    if plan.draft_version is not None:
        return await _refusing(_change(retell, plan, plan.draft_version, None, deadline), NOTHING_CHANGED)
    base = plan.base_version
    assert base is not None
    before = await _refusing(_checked_base(retell, plan, deadline), NOTHING_MADE)
    draft: int | None = None
    patching = False
    try:
        created = await retell.create_agent_version(plan.agent_id, base, deadline=deadline)
        answered = _version_of(created, plan)
        if answered in before.numbers:  # not a draft we made: never call it one, nor advise changing it
            raise UnsafeEdit(
                f"Asked for a new draft of agent '{plan.agent_id}' from version {base}, Retell answered version "
                f"{answered}, which existed before, so its answer cannot be trusted and nothing was patched. A new "
                f"draft may still have been made: see list_agent_versions agent_id={plan.agent_id}.",
                provider="retell",
                lasting=True,
            )
        draft = answered
        checked = await _checked_draft(retell, plan, draft, base, deadline)
        patching = True
        return await _patched(retell, plan, draft, base, checked, deadline)
    except UpstreamError as error:
        if draft is not None:
            error.message = _after_draft(error, plan.agent_id, draft, base, patching)
        raise
    except anyio.get_cancelled_exc_class():
        # Nobody will read an error: the log is where the draft can be found again.
        if draft is None:
            logger.info(
                "the call ended while Retell was making a new draft of agent %s from version %s: see "
                "list_agent_versions before drafting again",
                plan.agent_id,
                base,
            )
        else:
            logger.info(
                "made draft version %s of agent %s from version %s; the call ended %s (finish it with "
                "draft_version=%s)",
                draft,
                plan.agent_id,
                base,
                "while its engine version was being changed" if patching else "before it was changed",
                draft,
            )
        raise


def _after_draft(error: UpstreamError, agent_id: str, draft: int, base: int, patching: bool) -> str:
    """An error once a new draft exists: it names the draft, and says what to do with it. The PATCH's own error says
    whether the change may have reached Retell; before the PATCH nothing was patched, and the draft can be finished
    once the problem is dealt with, unless finishing it would be refused again (`lasting`)."""
    made = f"Draft version {draft} of agent '{agent_id}' was created from version {base}"
    if patching:
        return f"{made}; then: {error.message} Finish it with draft_agent_version draft_version={draft}."
    if isinstance(error, UnsafeEdit) and error.lasting:
        then = "Change that draft in Retell's dashboard, or delete it there."
    else:
        then = f"Once that is dealt with, finish it with draft_agent_version draft_version={draft}."
    return f"{made}, and nothing was patched in it: {error.message} {then}"


async def _refusing(work: Awaitable[T], said: str) -> T:
    """`work`, whose refusal ends by saying what was not done (`said`)."""
    try:
        return await work
    except UnsafeEdit as error:
        error.message += said
        raise


NOTHING_CHANGED = " Nothing was changed."
NOTHING_MADE = " Nothing was created or changed."


async def _checked_base(retell: RetellClient, plan: DraftPlan, deadline: float) -> Reach:
    """The base version's engine (which must name its version) fits the changes, and nothing live could serve a new
    draft of the agent; answers the survey."""
    assert plan.base_version is not None
    engine, _, current, _ = await _engine_at(retell, plan.agent_id, plan.base_version, deadline)
    _check_changes(plan.changes, engine, current)
    reach = await survey(retell, plan.agent_id, engine, also=[plan.base_version], deadline=deadline)
    _refuse(reach, draft=None, patched=None)
    return reach


async def _checked_draft(
    retell: RetellClient, plan: DraftPlan, draft: int, base: int | None, deadline: float
) -> tuple[Engine, int, dict[str, Any]]:
    """The draft (`base`: the version we made it from just now) may be patched: its engine names a version and fits
    the changes, it is not published, and nothing live could reach it or runs its engine version. Answers its
    engine, the engine version to patch, and the LLM or flow at that version."""
    engine, version, current, named_base = await _engine_at(retell, plan.agent_id, draft, deadline)
    _check_changes(plan.changes, engine, current)
    base = base if base is not None else named_base
    reach = await survey(retell, plan.agent_id, engine, also=[draft, *([base] if base is not None else [])],
                         deadline=deadline)  # fmt: skip
    if base is None:  # get-agent did not say: the list may (the survey read the engine of the base it names)
        listed = next((item for item in reach.versions if item["version"] == draft), {})
        base = whole(listed.get("base_version"))
    _refuse_published(reach, draft, (engine, version), current, base, new=plan.base_version is not None)
    _refuse(reach, draft=draft, patched=(engine, version))
    return engine, version, current


async def _change(
    retell: RetellClient, plan: DraftPlan, draft: int, base: int | None, deadline: float
) -> dict[str, Any]:
    checked = await _checked_draft(retell, plan, draft, base, deadline)
    return await _patched(retell, plan, draft, base, checked, deadline)


async def _patched(
    retell: RetellClient,
    plan: DraftPlan,
    draft: int,
    base: int | None,
    checked: tuple[Engine, int, dict[str, Any]],
    deadline: float,
) -> dict[str, Any]:
    """The PATCH of a checked draft's engine version, and what changed."""
    engine, version, current = checked
    fields, changed = _patch(plan.changes, current)
    await retell.update_engine(engine, version, fields, deadline=deadline)
    return {
        "agent_id": plan.agent_id,
        "version": draft,
        "base_version": base,
        "engine": {**engine.fields(), "version": version},
        "changes": changed,
        "note": LIVE_NOTE,
    }


async def _engine_at(
    retell: RetellClient, agent_id: str, version: int, deadline: float
) -> tuple[Engine, int, dict[str, Any], int | None]:
    """The engine an agent version runs, at the engine version it names (one that names none is refused: a change
    without a version would change the latest), the LLM or flow at that version, and the version it was based on."""
    agent = await retell.get_agent(agent_id, version=version, deadline=deadline)
    if agent.get("agent_id") != agent_id or whole(agent.get("version")) != version:
        raise BadUpstreamResponse(
            f"Retell answered a request for agent '{agent_id}' version {version} with another agent or version.",
            provider="retell",
            status=200,
        )
    engine, engine_version = engine_of(agent.get("response_engine"), f"agent '{agent_id}' version {version}")
    if engine_version is None:
        raise UnsafeEdit(
            f"Retell's agent '{agent_id}' version {version} runs {engine} without naming its version, and a change "
            "without one would change its latest.",
            provider="retell",
            lasting=True,
        )
    base = agent.get("base_version")
    current = answered_for(await retell.get_engine(engine, engine_version, deadline=deadline), engine, engine_version)
    return engine, engine_version, current, base if isinstance(base, int) and not isinstance(base, bool) else None


def _refuse(reach: Reach, *, draft: int | None, patched: tuple[Engine, int] | None) -> None:
    """`unsafe_edit` when a route would serve the draft (`draft`: its number; None before it exists) or the engine
    version to patch, or another agent serves calls from the same engine."""
    for route in reach.routes:
        problem = _route_problem(route, reach, draft)
        if problem is not None:
            where = "in Retell's dashboard" if route.where.startswith("phone number") else "in that LLM or flow"
            raise UnsafeEdit(
                f"{problem} Pin it to a published version (a number, or latest_published) {where}.", provider="retell"
            )
        pinned = whole(route.version)
        served = reach.engines.get(pinned) if pinned is not None else None
        if patched is not None and served is not None and (served.engine, served.engine_version) == patched:
            engine, at = patched
            raise UnsafeEdit(
                f"Retell's {route.where} sends calls to agent '{reach.agent_id}' at version {served.version}, which "
                f"runs {engine} version {at}, the version the change would patch.",
                provider="retell",
                lasting=True,
            )
    if reach.shared:
        first = reach.shared[0]
        others = f" (and {len(reach.shared) - 1} more)" if len(reach.shared) > 1 else ""
        kind = "LLM" if reach.engine.type == "retell-llm" else "conversation flow"
        raise UnsafeEdit(
            f"{first}{others} also serves calls from {reach.engine}, so a change to it would reach that agent's "
            f"callers too: a shared {kind} is changed where it is owned, in Retell's dashboard.",
            provider="retell",
        )


def _route_problem(route: Route, reach: Reach, draft: int | None) -> str | None:
    """Why a route to the agent would serve the draft (`draft`: its number; None before it exists), or None."""
    version = route.version
    sends = f"Retell's {route.where} sends calls to agent '{reach.agent_id}'"
    if version is None or version == "latest":
        return f"{sends} at {'latest' if version else 'no version (the latest)'}, so a draft would take them at once."
    if version == "latest_published":
        if not reach.published:  # what Retell serves then is not documented: perhaps the latest
            return f"{sends} at latest_published, and no version of it is published."
        return None  # a published version: its engine version is among the published ones checked
    if isinstance(version, str):
        return f"{sends} at the tag {quoted(version)}, which can point at a draft (an unassigned tag is latest)."
    number = whole(version)
    if number is None:
        return f"{sends} at a version this server does not understand ({quoted(repr(version), 40)})."
    if number == draft:
        return f"{sends} at version {number}, the draft itself."
    if draft is None and number not in reach.numbers:
        return f"{sends} at version {number}, which does not exist yet: a new draft could take that number."
    return None


def _refuse_published(
    reach: Reach, draft: int, patched: tuple[Engine, int], current: dict[str, Any], base: int | None, *, new: bool
) -> None:
    """`unsafe_edit` when the draft is published (as Retell lists it; `new`: we have just made it), or the engine
    version to patch is the one a published version or the base runs, or the LLM at that version says it is
    published."""
    listed = next((item for item in reach.versions if item["version"] == draft), None)
    if listed is None:
        raise UnsafeEdit(
            f"Retell does not list version {draft} among agent '{reach.agent_id}''s versions, so it cannot be shown to "
            "be an unpublished draft.",
            provider="retell",
        )
    if listed["is_published"]:
        if new:
            raise UnsafeEdit(f"Retell lists version {draft}, which it has just made, as published.",
                             provider="retell", lasting=True)  # fmt: skip
        raise UnsafeEdit(
            f"Version {draft} of agent '{reach.agent_id}' is published, and a published version is never changed. "
            f"Make a new draft from it instead: draft_agent_version base_version={draft}.",
            provider="retell",
        )
    engine, version = patched
    runs = f"Draft version {draft} runs {engine} version {version}"
    protected = [(number, f"published version {number}", "what is live") for number in reach.published]
    if base is not None:
        protected.append((base, f"its base version {base}", f"version {base} too"))
    for number, what, changes in protected:
        served = reach.engines.get(number)
        if served is None:  # the survey reads each of them: an answer that named another version proves nothing
            raise UnsafeEdit(f"Which engine version {what} runs could not be read.", provider="retell")
        if (served.engine, served.engine_version) == patched:
            raise UnsafeEdit(f"{runs}, the same as {what}, so changing it would change {changes}.",
                             provider="retell", lasting=True)  # fmt: skip
    if engine.type == "retell-llm" and current.get("is_published") is True:
        raise UnsafeEdit(f"{runs}, which Retell says is published.", provider="retell", lasting=True)


def _recent_drafts(reach: Reach, base: int, now: float) -> list[int]:
    """Unpublished versions made from `base` within `RECENT_SECONDS` of `now` (seconds since the epoch; Retell's
    timestamps are milliseconds)."""
    since = (now - RECENT_SECONDS) * 1000
    return sorted(
        item["version"]
        for item in reach.versions
        if item.get("base_version") == base
        and not item["is_published"]
        and isinstance(item.get("last_modification_timestamp"), int | float)
        and item["last_modification_timestamp"] >= since
    )


def _version_of(created: dict[str, Any], plan: DraftPlan) -> int:
    version = created.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    raise UnsafeEdit(
        f"Retell made a new draft of agent '{plan.agent_id}' but did not say its version, so nothing was changed in "
        f"it. Find it with list_agent_versions agent_id={plan.agent_id} and finish it with draft_version.",
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
            states = ", ".join(quoted(name) for name in sorted(map(str, known))) or "none"
            raise InvalidArgument(
                f"{engine} has no state named {quoted(unknown[0])} (its states: {states}). Nothing was sent.",
                provider="retell",
            )
        return
    if changes.general_prompt is not None or changes.begin_message is not None or changes.states:
        raise _wrong_kind("a conversation flow", "general_prompt, begin_message and states belong to Retell LLMs")
    nodes = {node.get("id"): node for node in _items(current, "nodes")}
    for node_id in changes.nodes:
        node = nodes.get(node_id)
        if node is None:
            raise InvalidArgument(
                f"{engine} has no node with ID {quoted(node_id)}. Nothing was sent.", provider="retell"
            )
        if not isinstance(node.get("instruction"), dict):
            raise InvalidArgument(
                f"Node {quoted(node_id)} of {engine} has no instruction to change (a {quoted(node.get('type'), 40)} "
                "node). Nothing was sent.",
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

    for name in TEXT_FIELDS:
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
