"""A recording fake of a whole Retell workspace, for attacking the promise that a draft never changes anything live.

It holds agents (voice and chat) with their versions, Retell LLMs and conversation flows with theirs, shared flow
components and phone numbers, and answers the routes retell-sdk 6.2.13 documents for them (`resources/agent.py`,
`chat_agent.py`, `llm.py`, `conversation_flow.py`, `conversation_flow_component.py`, `phone_number.py`), paged the way
Retell pages ({items, has_more, pagination_key}). `live()` is what every live call would be served: each phone
number's binding resolved as Retell documents it ("latest" the largest version, "latest_published", a tag, a
number), every published version, every agent's latest but the one being drafted, and every handoff inside those
engines followed; a test takes it before and after a write and asserts the two are the same.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2

from tests.conftest import is_write, json_response

NOW_MS = 1_765_000_000_000


@dataclass
class Version:
    """One agent version: the engine it runs, at which engine version."""

    engine: tuple[str, str, int | None] | None  # ("retell-llm" | "conversation-flow", id, version); None: custom LLM
    published: bool = False
    base: int | None = None
    modified: int = NOW_MS - 86_400_000


@dataclass
class Agent:
    versions: dict[int, Version]
    channel: str = "voice"
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)


def llm(llm_id: str, version: int, *, published: bool = False, **fields: Any) -> dict[str, Any]:
    """A Retell LLM version (types/llm_response.py): a prompt and two states unless given."""
    states = [{"name": "order_help", "state_prompt": "Help with the order."},
              {"name": "handoff", "state_prompt": "Hand off."}]  # fmt: skip
    return {"llm_id": llm_id, "version": version, "is_published": published, "general_prompt": "Be kind.",
            "begin_message": "Hello!", "general_tools": [], "states": states, **fields}  # fmt: skip


def flow(flow_id: str, version: int, **fields: Any) -> dict[str, Any]:
    """A conversation flow version (types/conversation_flow_response.py): no is_published."""
    nodes = [{"id": "start", "type": "conversation", "instruction": {"type": "prompt", "text": "Greet."}}]
    return {"conversation_flow_id": flow_id, "version": version, "global_prompt": "Be brief.", "nodes": nodes,
            **fields}  # fmt: skip


def swap(agent_id: str, version: object = ..., name: str = "to_agent") -> dict[str, Any]:
    """An LLM's agent_swap tool (GeneralToolAgentSwapTool); `version` left out means no agent_version at all."""
    tool = {"type": "agent_swap", "name": name, "agent_id": agent_id, "post_call_analysis_setting": "both_agents"}
    return tool if version is ... else {**tool, "agent_version": version}


def phone(number: str, agent_id: str, version: object, key: str = "inbound_agents") -> dict[str, Any]:
    """A phone number (types/phone_number_response.py) binding one agent."""
    return {"phone_number": number, "phone_number_type": "retell-twilio", "last_modification_timestamp": 1,
            key: [{"agent_id": agent_id, "weight": 1, "agent_version": version}]}  # fmt: skip


class Workspace:
    """See the module docstring. Every request is recorded in `requests`; `hooks` (by path prefix) may answer a
    request instead (a fault) or change the workspace first (a change while the user is asked)."""

    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}
        self.llms: dict[str, dict[int, dict[str, Any]]] = {}
        self.flows: dict[str, dict[int, dict[str, Any]]] = {}
        self.components: dict[str, dict[str, Any]] = {}
        self.phones: list[dict[str, Any]] = []
        self.requests: list[httpx2.Request] = []
        self.page_size = 1000
        self.new_engine_version = True  # create-agent-version gives the draft an engine version of its own
        self.answer_version: int | None = None  # create-agent-version answers this number instead of the new one
        self.hooks: dict[str, Callable[[httpx2.Request], Awaitable[httpx2.Response | None]]] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay = 0.0  # seconds each read takes
        self.hide_base = False  # get-agent leaves out base_version (optional there); list-agent-versions still has it

    # --- building ------------------------------------------------------------------------------------------------

    def add_llm_agent(
        self, agent_id: str, llm_id: str, versions: dict[int, tuple[int, bool]], *, channel: str = "voice",
        **llm_fields: Any,
    ) -> None:  # fmt: skip
        """An agent whose version N runs `llm_id` at the LLM version given, published or not; the LLM versions are
        made with `llm_fields` unless they exist."""
        agent = self.agents.setdefault(agent_id, Agent({}, channel=channel))
        for number, (llm_version, published) in versions.items():
            agent.versions[number] = Version(("retell-llm", llm_id, llm_version), published, base=number - 1 or None)
            self.llms.setdefault(llm_id, {}).setdefault(llm_version, llm(llm_id, llm_version, **llm_fields))

    def add_flow_agent(self, agent_id: str, flow_id: str, versions: dict[int, tuple[int, bool]], **fields: Any) -> None:
        agent = self.agents.setdefault(agent_id, Agent({}))
        for number, (flow_version, published) in versions.items():
            agent.versions[number] = Version(
                ("conversation-flow", flow_id, flow_version), published, number - 1 or None
            )
            self.flows.setdefault(flow_id, {}).setdefault(flow_version, flow(flow_id, flow_version, **fields))

    def writes(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests if is_write(r.method, r.url.path)]

    # --- what is live --------------------------------------------------------------------------------------------

    def live(self, drafted: str) -> dict[str, str]:
        """What every live call would be served, as JSON text by the agent version serving it: every phone number's
        bindings, every published version, every agent's latest but `drafted`'s (its latest is the draft, as the
        SPEC says), and every handoff inside those engines, followed."""
        todo = [(agent_id, None) for agent_id in self.agents if agent_id != drafted]
        todo += [(agent_id, n) for agent_id, agent in self.agents.items() for n, v in agent.versions.items()
                 if v.published]  # fmt: skip
        for number in self.phones:
            for key in ("inbound_agents", "outbound_agents", "inbound_sms_agents", "outbound_sms_agents"):
                entries = number.get(key)
                todo += [(entry["agent_id"], entry.get("agent_version")) for entry in entries
                         if isinstance(entry, dict)] if isinstance(entries, list) else []  # fmt: skip
        served: dict[str, str] = {}
        while todo:
            agent_id, reference = todo.pop()
            number = self.resolve(agent_id, reference)
            if number is None or f"{agent_id}@{number}" in served:
                continue
            content = self.engine_content(self.agents[agent_id].versions[number].engine)
            served[f"{agent_id}@{number}"] = json.dumps(content, sort_keys=True)
            todo += [(target, version) for target, version in _handoffs(content, self.components)]
        return served

    def resolve(self, agent_id: str, reference: object) -> int | None:
        """An agent version reference as Retell documents it (types/phone_number_response.py)."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return None
        if reference is None or reference == "latest":
            return max(agent.versions)
        if reference == "latest_published":
            published = [n for n, v in agent.versions.items() if v.published]
            return max(published) if published else None
        if isinstance(reference, str):
            tagged = agent.tags.get(reference, {}).get("version")
            return tagged if isinstance(tagged, int) else max(agent.versions)
        return int(reference) if isinstance(reference, int | float) and int(reference) in agent.versions else None

    def engine_content(self, engine: tuple[str, str, int | None] | None) -> dict[str, Any]:
        if engine is None:
            return {}
        kind, engine_id, version = engine
        versions = self.llms[engine_id] if kind == "retell-llm" else self.flows[engine_id]
        return versions[version if version is not None else max(versions)]

    # --- the vendor ----------------------------------------------------------------------------------------------

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        for prefix, hook in list(self.hooks.items()):
            if request.url.path.startswith(prefix):
                hooked = await hook(request)
                if hooked is not None:
                    return hooked
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay and not is_write(request.method, request.url.path):
                await anyio.sleep(self.delay)
            return self.answer(request)
        finally:
            self.in_flight -= 1

    def answer(self, request: httpx2.Request) -> httpx2.Response:
        path, method, params = request.url.path, request.method, request.url.params
        head, _, tail = path.rpartition("/")
        version = params.get("version")
        if (method, path) == ("POST", "/v2/list-agents"):
            items = [{"agent_id": agent_id, "agent_name": agent_id, "channel": agent.channel, "is_suspended": False,
                      "tags": agent.tags, "user_modified_timestamp": 1}
                     for agent_id, agent in self.agents.items()]  # fmt: skip
            return self.page(items, request)
        if (method, path) == ("GET", "/v2/list-phone-numbers"):
            return self.page(self.phones, request)
        if method == "GET" and head in ("/get-agent", "/get-chat-agent"):
            agent = self.agents.get(tail)
            if agent is None or (agent.channel == "chat") != (head == "/get-chat-agent"):
                return json_response(404, {"status": "error", "message": "Not Found"})
            number = max(agent.versions) if version is None else int(version)
            if number not in agent.versions:
                return json_response(404, {"status": "error", "message": "Not Found"})
            return json_response(200, self.agent_object(tail, number))
        if method == "GET" and head == "/list-agent-versions":
            agent = self.agents[tail]
            items = [{"version": n, "is_published": v.published, "base_version": v.base,
                      "last_modification_timestamp": v.modified}
                     for n, v in sorted(agent.versions.items())]  # fmt: skip
            return self.page(items, request)
        if method == "GET" and head in ("/get-retell-llm", "/get-conversation-flow"):
            versions = (self.llms if head == "/get-retell-llm" else self.flows).get(tail)
            if not versions:
                return json_response(404, {"status": "error", "message": "Not Found"})
            found = versions.get(int(version) if version is not None else max(versions))
            return json_response(200, found) if found else json_response(404, {"status": "error", "message": "x"})
        if method == "GET" and head == "/get-conversation-flow-component":
            return json_response(200, self.components[tail])
        if method == "POST" and head == "/create-agent-version":
            return self.create_version(tail, json.loads(request.content)["base_version"])
        if method == "PATCH" and head in ("/update-retell-llm", "/update-conversation-flow"):
            versions = (self.llms if head == "/update-retell-llm" else self.flows)[tail]
            target = versions[int(version) if version is not None else max(versions)]
            target.update(json.loads(request.content))
            return json_response(200, target)
        return json_response(404, {"status": "error", "message": "Not Found"})

    def agent_object(self, agent_id: str, number: int) -> dict[str, Any]:
        """The agent at a version (types/agent_response.py)."""
        found = self.agents[agent_id].versions[number]
        if found.engine is None:
            engine: dict[str, Any] = {"type": "custom-llm", "llm_websocket_url": "wss://example.com/llm"}
        else:
            kind, engine_id, engine_version = found.engine
            engine = {"type": kind, ("llm_id" if kind == "retell-llm" else "conversation_flow_id"): engine_id}
            engine |= {"version": engine_version} if engine_version is not None else {}
        base = {} if self.hide_base else {"base_version": found.base}
        return {"agent_id": agent_id, "version": number, "is_published": found.published, **base,
                "response_engine": engine, "last_modification_timestamp": found.modified}  # fmt: skip

    def create_version(self, agent_id: str, base: int) -> httpx2.Response:
        """A new draft from `base`; its engine gets a version of its own (a copy) unless `new_engine_version` is off."""
        agent = self.agents[agent_id]
        number = max(agent.versions) + 1
        engine = agent.versions[base].engine
        if engine is not None and self.new_engine_version:
            kind, engine_id, engine_version = engine
            versions = self.llms[engine_id] if kind == "retell-llm" else self.flows[engine_id]
            new = max(versions) + 1
            versions[new] = {**copy.deepcopy(versions[engine_version or max(versions)]), "version": new}
            versions[new].pop("is_published", None) if kind == "conversation-flow" else None
            if kind == "retell-llm":
                versions[new]["is_published"] = False
            engine = (kind, engine_id, new)
        agent.versions[number] = Version(engine, False, base, NOW_MS)
        answered = self.agent_object(agent_id, number)
        if self.answer_version is not None:
            answered["version"] = self.answer_version
        return json_response(201, answered)

    def page(self, items: list[dict[str, Any]], request: httpx2.Request) -> httpx2.Response:
        size = min(int(request.url.params.get("limit", "1000")), self.page_size)
        start = int(request.url.params.get("pagination_key", "0"))
        more = start + size < len(items)
        return json_response(200, {"items": items[start : start + size], "has_more": more,
                                   "pagination_key": str(start + size) if more else None})  # fmt: skip


def _handoffs(document: object, components: dict[str, dict[str, Any]]) -> list[tuple[str, object]]:
    """Every (agent_id, agent_version) a document hands calls to, shared components included."""
    found: list[tuple[str, object]] = []
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if isinstance(node.get("agent_id"), str):
                found.append((node["agent_id"], node.get("agent_version")))
            if node.get("component_type") == "shared" and node.get("component_id") in components:
                stack.append(components[node["component_id"]])
            stack.extend(node.values())
    return found
