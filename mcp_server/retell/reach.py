"""What live traffic can reach of one Retell agent, read from the whole workspace before a draft of it is made or
changed: every phone number's bindings, every agent's engine at every version a call can be served from, the
handoffs to other agents inside those engines, and the agent's own published versions. `Reach` holds what was read;
`drafts` decides from it whether an engine version may be patched.

Where each fact comes from (retell-sdk 6.2.13, paths inside its `retell/` package):
- A phone number binds agents in `inbound_agents`, `outbound_agents`, `inbound_sms_agents` and `outbound_sms_agents`,
  entries {agent_id, weight, agent_version: a number, "latest" (the largest version number), "latest_published", a
  tag (an unassigned tag resolves to latest) or null} (`types/phone_number_response.py`).
- `POST /v2/list-agents` lists every agent, voice and chat, without its engine (`types/agent_list_response.py`:
  `agent_id`, `channel`, `tags` {name: {version}}); `GET /get-agent/{id}` or, for a chat agent, `GET
  /get-chat-agent/{id}` (both `?version=`) give its `response_engine` (`types/agent_response.py`,
  `types/chat_agent_response.py`).
- An LLM's `agent_swap` tools (`general_tools`, a state's `tools`) and a flow's `agent_swap` nodes and subagent tools
  hand a call to `agent_id` at `agent_version`, "If not specified, will use the latest version"
  (`types/llm_response.py` GeneralToolAgentSwapTool, `types/conversation_flow_response.py` NodeAgentSwapNode); an
  agentic warm transfer names a `transfer_agent` {agent_id, agent_version} the same way; a flow node with
  `component_type: "shared"` runs the shared component `component_id`, read at `GET
  /get-conversation-flow-component/{id}`. Rather than follow each of these shapes (there are a dozen, and more will
  come), every object inside an engine that has an `agent_id` is read as a handoff at its `agent_version`, and the
  agent's ID anywhere else is a place this code does not understand: refused, never skipped.
- `GET /list-agent-versions/{id}` says which versions are published (`is_published` is required there, and optional
  on get-agent and on an LLM; flows carry none: `types/agent_list_versions_response.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio

from mcp_server.errors import BadUpstreamResponse, Forbidden, NotConfigured, Unauthorized, UnsafeEdit, UpstreamError
from mcp_server.retell.client import Engine, RetellClient
from mcp_server.text import quoted

T = TypeVar("T")

BINDING_LISTS = ("inbound_agents", "outbound_agents", "inbound_sms_agents", "outbound_sms_agents")
# Older Retell APIs bound one agent per direction; retell-sdk 6.2.13 has no such fields, but a workspace may still
# answer them. One naming the agent is refused: which of the two bindings Retell follows is not documented.
LEGACY_BINDINGS = (("inbound_agent_id", "inbound_agent_version"), ("outbound_agent_id", "outbound_agent_version"))
MAX_SERVED = 1000  # agent versions read in one survey: past this, nothing can be proven within one call
CONCURRENT_READS = 16  # a survey's reads in flight at once (the vendor pool bounds the connections too)


@dataclass(frozen=True)
class Route:
    """A way calls reach an agent: a phone number's binding or a handoff inside an engine, with the version it
    names as written (a number, "latest", "latest_published", a tag, or None)."""

    agent_id: str
    version: object
    where: str  # "phone number …0100 (inbound_agents)", "agent 'b' version 3 (retell-llm llm_2)"


@dataclass(frozen=True)
class Served:
    """An agent version a call can be served from, with the engine it runs (None: a custom LLM, which hands no call
    on that this server could read)."""

    agent_id: str
    version: int
    engine: Engine | None
    engine_version: int | None

    def __str__(self) -> str:
        return f"agent '{self.agent_id}' version {self.version}"


@dataclass
class Reach:
    """What a survey of the workspace found about `agent_id`: its versions as listed, every route to it, the other
    agents' servable versions that run its engine, and the engine each version of it that was read runs."""

    agent_id: str
    engine: Engine
    versions: list[dict[str, Any]]
    routes: list[Route] = field(default_factory=list)
    shared: list[Served] = field(default_factory=list)
    engines: dict[int, Served] = field(default_factory=dict)

    @property
    def numbers(self) -> set[int]:
        return {item["version"] for item in self.versions}

    @property
    def published(self) -> list[int]:
        return sorted(item["version"] for item in self.versions if item["is_published"])


async def survey(retell: RetellClient, agent_id: str, engine: Engine, *, also: Iterable[int], deadline: float) -> Reach:
    """Read everything live that could reach `agent_id` (running `engine`), within `deadline`: every phone number and
    agent, every servable agent version's engine (each agent's latest and published versions, and every version a
    phone number, a tag or a handoff names, followed until nothing new is named), and the engine of the versions in
    `also` and of those they were made from. A workspace that cannot all be read is `unsafe_edit`: what cannot be
    proven safe is unsafe."""
    try:
        return await _Survey(retell, agent_id, engine, deadline).run(also)
    except (UnsafeEdit, NotConfigured, Unauthorized, Forbidden):
        raise
    except UpstreamError as error:
        raise UnsafeEdit(
            f"Could not prove that no live call reaches a draft of agent '{agent_id}': {error.message}",
            provider="retell",
            retryable=error.is_retryable,
        ) from None


class _Survey:
    def __init__(self, retell: RetellClient, agent_id: str, engine: Engine, deadline: float) -> None:
        self.retell = retell
        self.agent_id = agent_id
        self.engine = engine
        self.deadline = deadline
        self.channels: dict[str, object] = {}
        self.tags: dict[str, dict[str, object]] = {}
        self.version_lists: dict[str, list[dict[str, Any]]] = {}
        self.engines_read: dict[tuple[Engine, int], dict[str, Any]] = {}
        self.components_read: set[str] = set()
        self.routes: list[Route] = []
        self.limiter = anyio.CapacityLimiter(CONCURRENT_READS)

    async def run(self, also: Iterable[int]) -> Reach:
        agents, numbers, versions = await _all(
            [
                lambda: self.retell.list_agents(deadline=self.deadline),
                lambda: self.retell.list_phone_numbers(deadline=self.deadline),
                lambda: self._versions(self.agent_id),
            ]
        )
        for agent in agents:
            agent_key, channel, tags = agent.get("agent_id"), agent.get("channel"), agent.get("tags")
            if not isinstance(agent_key, str):
                raise BadUpstreamResponse("Retell listed an agent without an agent_id.", provider="retell", status=200)
            self.channels[agent_key] = channel
            self.tags[agent_key] = tags if isinstance(tags, dict) else {}
        self.channels.setdefault(self.agent_id, "voice")
        reach = Reach(self.agent_id, self.engine, versions)
        # Every agent's latest, and every published version of every agent: a call can pin any of them (a web call's
        # `agent_version`, an outbound call's `override_agent_version`, a chat's), and published means live.
        others = [agent for agent in self.channels if agent != self.agent_id]
        listed = await _all([partial(self._versions, agent) for agent in others])
        todo: set[tuple[str, int | None]] = {(agent, None) for agent in self.channels}
        todo |= {(agent, item["version"]) for agent, items in zip(others, listed, strict=True)
                 for item in items if item["is_published"]}  # fmt: skip
        also = set(also)
        bases = {whole(item.get("base_version")) for item in versions if item["version"] in also} - {None}
        todo |= {(self.agent_id, version) for version in {*reach.published, *also, *bases} if version is not None}
        for number in numbers:
            for route in phone_routes(number, self.agent_id):
                todo |= await self._targets(route)
        done: set[tuple[str, int | None]] = set()
        while todo - done:
            wave = sorted(todo - done, key=repr)
            done |= set(wave)
            if len(done) > MAX_SERVED:
                raise UnsafeEdit(
                    f"Could not prove that no live call reaches a draft of agent '{self.agent_id}': the workspace "
                    f"serves calls from more than {MAX_SERVED} agent versions, more than one call can read.",
                    provider="retell",
                )
            found = await _all([partial(self._serve, agent, version) for agent, version in wave])
            for served, handoffs in found:
                self._note(reach, served)
                for route in handoffs:
                    todo |= await self._targets(route)
        reach.routes = [route for route in self.routes if route.agent_id == self.agent_id]
        return reach

    def _note(self, reach: Reach, served: Served) -> None:
        if served.agent_id == self.agent_id:
            reach.engines[served.version] = served
        elif served.engine == self.engine and served not in reach.shared:
            reach.shared.append(served)

    async def _versions(self, agent_id: str) -> list[dict[str, Any]]:
        """An agent's versions, each with a whole `version` and a boolean `is_published` (both required)."""
        if agent_id not in self.version_lists:
            items = await self.retell.every_agent_version(agent_id, deadline=self.deadline)
            for item in items:
                version, published = item.get("version"), item.get("is_published")
                if whole(version) != version or not isinstance(published, bool):
                    raise BadUpstreamResponse(
                        f"Retell listed a version of agent '{agent_id}' without a whole version number and a "
                        "true or false is_published.",
                        provider="retell",
                        status=200,
                    )
            self.version_lists[agent_id] = items
        return self.version_lists[agent_id]

    async def _targets(self, route: Route) -> set[tuple[str, int | None]]:
        """The agent versions a route can serve a call from (None: the latest). A tag is the version it names now
        and the latest (where an unassigned tag goes), and, written as digits, that version too; `latest_published`
        is a published version (all of them are read anyway). A version of another shape cannot be read."""
        self.routes.append(route)
        version = route.version
        if version is None or version == "latest":
            return {(route.agent_id, None)}
        if (
            isinstance(version, bool)
            or not isinstance(version, int | float | str)
            or (isinstance(version, int | float) and whole(version) is None)
        ):
            raise UnsafeEdit(
                f"Retell's {route.where} names agent '{route.agent_id}' at a version this server does not understand "
                f"({quoted(repr(version), 40)}), so what it serves cannot be read.",
                provider="retell",
            )
        if (number := whole(version)) is not None:
            if route.agent_id == self.agent_id and number not in {
                item["version"] for item in await self._versions(self.agent_id)
            }:
                return set()  # no such version (yet): nothing to read, and `drafts` refuses what a new draft could take
            return {(route.agent_id, number)}
        if version == "latest_published":
            published = [item["version"] for item in await self._versions(route.agent_id) if item["is_published"]]
            return {(route.agent_id, max(published))} if published else set()
        assert isinstance(version, str)
        tag = self.tags.get(route.agent_id, {}).get(version)
        named = [whole(tag.get("version")) if isinstance(tag, dict) else None]
        named.append(int(version.strip()) if version.strip().isdigit() and version.strip().isascii() else None)
        return {(route.agent_id, None)} | {(route.agent_id, at) for at in named if at is not None}

    async def _serve(self, agent_id: str, version: int | None) -> tuple[Served, list[Route]]:
        """The agent at `version` (None: latest) and the handoffs its engine makes."""
        async with self.limiter:
            read = self.retell.get_chat_agent if self.channels.get(agent_id) == "chat" else self.retell.get_agent
            agent = await read(agent_id, version=version, deadline=self.deadline)
        at = whole(agent.get("version"))
        if agent.get("agent_id") != agent_id or at is None or (version is not None and at != version):
            asked = f"version {version}" if version is not None else "its latest version"
            raise BadUpstreamResponse(
                f"Retell answered a request for agent '{agent_id}' at {asked} with another agent or version.",
                provider="retell",
                status=200,
            )
        response_engine = agent.get("response_engine")
        kind = response_engine.get("type") if isinstance(response_engine, dict) else None
        if kind == "custom-llm":
            return Served(agent_id, at, None, None), []
        id_field = _ID_FIELDS.get(kind) if isinstance(kind, str) else None
        engine_id = response_engine.get(id_field) if isinstance(response_engine, dict) and id_field else None
        engine_version = whole(response_engine.get("version")) if isinstance(response_engine, dict) else None
        if not isinstance(engine_id, str):
            raise BadUpstreamResponse(
                f"Retell's agent '{agent_id}' version {at} has a response_engine this server does not know.",
                provider="retell",
                status=200,
            )
        engine = Engine("retell-llm" if kind == "retell-llm" else "conversation-flow", engine_id)
        if engine_version is None:
            raise UnsafeEdit(
                f"Agent '{agent_id}' version {at} runs {engine} without naming its version, so what it serves "
                "cannot be read.",
                provider="retell",
            )
        served = Served(agent_id, at, engine, engine_version)
        where = f"{served} ({engine} version {engine_version})"
        return served, await self._handoffs(await self._engine(engine, engine_version), where)

    async def _engine(self, engine: Engine, version: int) -> dict[str, Any]:
        if (engine, version) not in self.engines_read:
            async with self.limiter:
                found = await self.retell.get_engine(engine, version, deadline=self.deadline)
            self.engines_read[engine, version] = answered_for(found, engine, version)
        return self.engines_read[engine, version]

    async def _handoffs(self, document: object, where: str) -> list[Route]:
        """Every handoff inside an engine (or a shared component it runs), read from every object with an
        `agent_id`; the agent's own ID anywhere else is refused."""
        routes, components = handoffs(document, self.agent_id, where)
        for component in components:
            if component not in self.components_read:
                self.components_read.add(component)
                async with self.limiter:
                    shared = await self.retell.get_flow_component(component, deadline=self.deadline)
                routes += await self._handoffs(shared, f"{where}, shared component '{component}'")
        return routes


_ID_FIELDS = {"retell-llm": "llm_id", "conversation-flow": "conversation_flow_id"}


def phone_routes(number: dict[str, Any], agent_id: str) -> list[Route]:
    """The routes a phone number makes, each agent it binds at the version the binding names. A binding list that is
    not a list of objects with an `agent_id` is the vendor's fault; `agent_id` under a key this code does not read
    (a legacy field included) is refused."""
    shown = f"phone number {last_four(number.get('phone_number'))}"
    routes: list[Route] = []
    for key in BINDING_LISTS:
        entries = number.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("agent_id"), str) for entry in entries
        ):
            raise BadUpstreamResponse(
                f"Retell's {shown} has a {key} that is not a list of agents, so what it serves cannot be read.",
                provider="retell",
                status=200,
            )
        for entry in entries:
            if mentions({name: value for name, value in entry.items() if name != "agent_id"}, agent_id):
                raise not_understood(f"{shown} ({key})", "beside the agent_id an entry binds", agent_id)
            routes.append(Route(entry["agent_id"], entry.get("agent_version"), f"{shown} ({key})"))
    for id_key, version_key in LEGACY_BINDINGS:
        bound = number.get(id_key)
        if isinstance(bound, str) and bound != agent_id:
            routes.append(Route(bound, number.get(version_key), f"{shown} ({id_key})"))
    known = {*BINDING_LISTS, *(key for key, _ in LEGACY_BINDINGS if number.get(key) != agent_id)}
    for key, value in number.items():
        if key not in known and mentions(value, agent_id):
            raise not_understood(shown, f"under {quoted(key)}", agent_id)
    return routes


def handoffs(document: object, agent_id: str, where: str) -> tuple[list[Route], list[str]]:
    """The handoffs inside an engine document (every object with a string `agent_id`, at its `agent_version`) and
    the shared components it runs; `agent_id` mentioned anywhere else is refused."""
    routes: list[Route] = []
    components: list[str] = []
    stack: list[object] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            if agent_id in node:
                raise not_understood(where, "in a list", agent_id)
            stack.extend(node)
        if not isinstance(node, dict):
            continue
        if "agent_id" in node:
            target = node["agent_id"]
            if not isinstance(target, str):
                raise BadUpstreamResponse(
                    f"Retell's {where} hands calls to an agent_id that is not a string.", provider="retell", status=200
                )
            routes.append(Route(target, node.get("agent_version"), where))
        if node.get("component_type") == "shared" and isinstance(node.get("component_id"), str):
            components.append(node["component_id"])
        for key, value in node.items():
            if key != "agent_id" and value == agent_id:
                raise not_understood(where, f"under {quoted(key)}", agent_id)
            if isinstance(value, dict | list):
                stack.append(value)
    return routes, components


def mentions(value: object, text: str) -> bool:
    """Whether `text` is `value`, or any string inside it."""
    stack = [value]
    while stack:
        node = stack.pop()
        if node == text:
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def not_understood(where: str, place: str, agent_id: str) -> UnsafeEdit:
    """A place naming the agent that this code does not read: refused, never skipped."""
    return UnsafeEdit(
        f"Retell's {where} names agent '{agent_id}' {place}, which this server does not know how to read, so it "
        "cannot show that it will not serve a draft.",
        provider="retell",
    )


def answered_for(found: dict[str, Any], engine: Engine, version: int) -> dict[str, Any]:
    """The LLM or flow Retell answered, once it is the one asked for (its ID and version): an answer about another
    version would prove nothing about this one."""
    if found.get(engine.id_field) != engine.id or whole(found.get("version")) != version:
        raise BadUpstreamResponse(
            f"Retell answered a request for {engine} version {version} with another engine or version.",
            provider="retell",
            status=200,
        )
    return found


def last_four(number: object) -> str:
    """A phone number as messages show it: its last four digits only."""
    digits = "".join(char for char in str(number or "") if char.isdigit())
    return f"…{digits[-4:]}" if digits else "(no number)"


def whole(value: object) -> int | None:
    """A JSON number that is a whole number, as an int (Retell types engine versions as floats); else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        return None
    return int(value)


async def _all(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the calls at once and answer their results in order; the first vendor error stops the others and is
    raised as it is (not wrapped in an exception group)."""
    results: dict[int, T] = {}
    failures: list[UpstreamError] = []

    async def one(index: int, call: Callable[[], Awaitable[T]], scope: anyio.CancelScope) -> None:
        try:
            results[index] = await call()
        except UpstreamError as error:
            failures.append(error)
            scope.cancel()

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(one, index, call, group.cancel_scope)
    if failures:
        raise failures[0]
    return [results[index] for index in range(len(calls))]
