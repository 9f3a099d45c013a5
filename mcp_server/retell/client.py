"""Retell AI's test endpoints: the client and the models that document its objects.

Where each request and field is documented (Retell's official Python SDK, `retell-sdk` 6.2.13, is generated from
Retell's OpenAPI spec; paths below are inside its `retell/` package):
- GET /get-test-run/{id}: shared/upstream/retell-get-test-run.txt (the API page); also `resources/tests.py`.
- GET /get-batch-test/{id}, GET /v2/list-test-runs/{id} (limit, pagination_key), GET /get-test-case-definition/{id},
  GET /v2/list-batch-tests and GET /v2/list-test-case-definitions (type, llm_id | conversation_flow_id, version,
  limit, pagination_key), POST /create-batch-test: `resources/tests.py`; parameters in
  `types/test_list_batch_tests_params.py`, `types/test_list_test_case_definitions_params.py` and
  `types/test_create_batch_test_params.py`; the batch object in `types/batch_test_response.py`; pages
  ({items, has_more, pagination_key}) in `types/test_list_*_response.py`.
- GET /get-agent/{id}: `resources/agent.py`; `response_engine` (retell-llm,
  conversation-flow, custom-llm) in `types/agent_response.py`. Custom LLMs in tests: "Custom LLM is not supported"
  (`types/test_create_batch_test_params.py`).
- GET /get-agent/{id}?version=, GET /get-retell-llm/{id}?version= (`llm_id`, `version`, `is_published`,
  `general_prompt`, `states[]`, `begin_message`, ...), GET /get-conversation-flow/{id}?version= (`global_prompt`,
  `nodes[]`, ...; no `is_published`), all "latest" without a version: `resources/agent.py:retrieve`,
  `resources/llm.py:retrieve`, `resources/conversation_flow.py:retrieve`, their `*_retrieve_params.py` and
  `types/llm_response.py`, `types/conversation_flow_response.py`. An engine's `version` in `response_engine` is a
  number (`Optional[float]`, `types/agent_response.py`), absent meaning latest.
- GET /list-agent-versions/{agent_id} (limit, pagination_key, sort_order ascending|descending): `resources/agent.py:
  list_versions`, `types/agent_list_versions_params.py`; it answers {items, has_more, pagination_key}, items
  `version`, `is_published`, `base_version`, `version_title`, `version_description`, `last_modification_timestamp`
  (`types/agent_list_versions_response.py`).
- GET /v2/list-phone-numbers (limit, pagination_key) answers {items, has_more, pagination_key}, items `phone_number`
  and `inbound_agents` / `outbound_agents` / `inbound_sms_agents` / `outbound_sms_agents`, lists of {agent_id,
  weight, agent_version: int | str ("latest", "latest_published", a tag) | null}: `resources/phone_number.py:list`,
  `types/phone_number_response.py` (whose docstring says "latest" is the largest version number and an unassigned
  tag resolves to latest). Also the key check's probe.
- POST /v2/list-agents (query limit, pagination_key, sort_order; body {filter_criteria}, sent empty): every agent,
  voice and chat, items without an engine (`agent_id`, `channel`, `tags` {name: {version}}): `resources/agent.py:
  list`, `types/agent_list_response.py`. A chat agent is read at GET /get-chat-agent/{id}?version=
  (`resources/chat_agent.py:retrieve`, `types/chat_agent_response.py`); a shared flow component at GET
  /get-conversation-flow-component/{id} (`resources/conversation_flow_component.py:retrieve`, not versioned).
- Writes (only with allow_edits; `resources/tests.py`, `resources/agent.py`, `resources/llm.py`,
  `resources/conversation_flow.py`): POST /create-test-case-definition and PUT /update-test-case-definition/{id}
  (`types/test_create_test_case_definition_params.py`, `..._update_...`: name, response_engine, user_prompt, metrics,
  dynamic_variables, tool_mocks, llm_model); POST /create-agent-version/{agent_id} {base_version}
  (`types/agent_create_version_params.py`; answers the agent at the new draft version); PATCH
  /update-retell-llm/{llm_id}?version= and PATCH /update-conversation-flow/{id}?version= (the body's fields only;
  `states` and `nodes` are whole arrays: no per-state or per-node update exists). POST /publish-agent-version and
  every delete route exist too and are never called.
- Production calls (`resources/call.py`): POST /v3/list-calls (`list`, L171-238: everything in the JSON body,
  `filter_criteria`, `limit`, `pagination_key`, `sort_order` by `start_timestamp`; no query;
  `types/call_list_params.py`) answers {items, has_more, pagination_key} with no transcripts
  (`types/call_list_response.py` L1177-1190); GET /v2/get-call/{call_id} (`retrieve`, L62-101;
  `types/phone_call_response.py`, `types/web_call_response.py`). Both carry signed links and full phone numbers:
  `retell/calls.py` shapes what is shown of them.
All are also summarised in shared/SPEC.md, "Upstream facts"; docs/upstream-facts.md keeps the details read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from mcp_server.errors import BadUpstreamResponse, InvalidArgument
from mcp_server.upstream.http import Params, VendorHTTP, changed_effect, made_effect, require, run_effect
from mcp_server.upstream.ids import RETELL_ID, check_id, check_token
from mcp_server.upstream.schema import VendorObject

logger = logging.getLogger(__name__)


class RetellTestRun(VendorObject):
    """A Retell test case job, exactly as Retell returns it (unknown fields pass through)."""

    test_case_job_id: Any = Field(None, description="string")
    status: Any = Field(None, description="pending, in_progress, pass, fail or error (new values may appear)")
    test_case_definition_id: Any = Field(None, description="string")
    test_case_definition_snapshot: Any = Field(None, description="object: the test definition as run")
    creation_timestamp: Any = Field(None, description="integer, ms since epoch")
    user_modified_timestamp: Any = Field(None, description="integer, ms since epoch")
    transcript_snapshot: Any = Field(None, description="object or null: the simulated conversation")
    result_explanation: Any = Field(None, description="string or null: why the run passed or failed")


class RetellBatchTest(VendorObject):
    """A Retell batch test (a group of test runs), exactly as Retell returns it."""

    test_case_batch_job_id: Any = Field(None, description="string")
    status: Any = Field(None, description="string: where the batch stands")


class RetellPage(VendorObject):
    """One page of a Retell listing, exactly as Retell returns it: pass `pagination_key` back for the next."""

    has_more: Any = Field(None, description="boolean: another page follows")
    pagination_key: Any = Field(None, description="string or null: pass it back to get the next page")


class RetellTestRunPage(RetellPage):
    items: Any = Field(None, description="array of test runs, as get_test_run returns them")


class RetellBatchTestPage(RetellPage):
    items: Any = Field(None, description="array of batch tests, as get_batch_test returns them")


class RetellDefinitionPage(RetellPage):
    items: Any = Field(None, description="array of test case definitions")


class RetellTestCaseDefinition(VendorObject):
    """A Retell test case definition, exactly as Retell returns it."""

    test_case_definition_id: Any = Field(None, description="string")
    name: Any = Field(None, description="string")
    user_prompt: Any = Field(None, description="string: what the simulated caller is told to do")
    metrics: Any = Field(None, description="array of strings: what the run is judged on")
    response_engine: Any = Field(None, description="object: the agent under test")
    tool_mocks: Any = Field(None, description="array: canned tool results")


class RetellResponseEngine(VendorObject):
    """The engine a test ran against, and Retell's LLM or conversation flow at that version (exactly as Retell
    returns it: prompts, states, nodes, tools)."""

    response_engine: Any = Field(
        None, description="{type, llm_id or conversation_flow_id, version}: version as pinned, else Retell's latest"
    )
    engine: Any = Field(None, description="the Retell LLM or conversation flow object")


class RetellAgentVersionPage(RetellPage):
    items: Any = Field(None, description="array of {version, is_published, base_version, version_title, ...}")


EngineType = Literal["retell-llm", "conversation-flow"]


@dataclass(frozen=True)
class Engine:
    """The response engine Retell's tests run against: a Retell LLM or a conversation flow, by ID."""

    type: EngineType
    id: str

    @property
    def id_field(self) -> str:
        return "llm_id" if self.type == "retell-llm" else "conversation_flow_id"

    def fields(self) -> dict[str, str]:
        """How Retell names this engine, in a query and in a create-batch-test body alike."""
        return {"type": self.type, self.id_field: self.id}

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


@dataclass(frozen=True)
class EngineChoice:
    """What the user named: an engine directly, or an agent whose engine Retell will tell us."""

    engine: Engine | None = None
    agent_id: str | None = None


def choose_engine(agent_id: str | None, llm_id: str | None, conversation_flow_id: str | None) -> EngineChoice:
    """Exactly one of the three IDs, each checked; raised as `InvalidArgument` before any request otherwise."""
    given = {
        name: value
        for name, value in (("agent_id", agent_id), ("llm_id", llm_id), ("conversation_flow_id", conversation_flow_id))
        if value is not None
    }
    if len(given) != 1:
        got = f"got {' and '.join(given)}" if given else "got none"
        raise InvalidArgument(
            f"Give exactly one of agent_id, llm_id or conversation_flow_id ({got}). Nothing was sent.",
            provider="retell",
        )
    ((name, value),) = given.items()
    checked = check_id(value, argument=name, provider="retell")
    if name == "agent_id":
        return EngineChoice(agent_id=checked)
    return EngineChoice(engine=Engine("retell-llm" if name == "llm_id" else "conversation-flow", checked))


# A run in one of these states never changes again, so it can be served from memory.
FINAL_STATUSES = frozenset({"pass", "fail", "error"})


class RetellClient:
    """Reads Retell test runs; `http` is None when no Retell key is configured.

    Finished runs may be cached for `final_ttl` seconds; pending or in-progress ones only for `unfinished_ttl`.
    """

    def __init__(self, http: VendorHTTP | None, *, final_ttl: float = 0.0, unfinished_ttl: float = 0.0) -> None:
        self._http = http
        self._final_ttl = final_ttl
        self._unfinished_ttl = unfinished_ttl

    def _ttl(self, run: dict[str, Any]) -> float:
        status = run.get("status")  # any JSON value: the vendor's object is not validated
        return self._final_ttl if isinstance(status, str) and status in FINAL_STATUSES else self._unfinished_ttl

    def deadline(self) -> float:
        """When a call starting now must end; tools that make several requests share it among them."""
        return require(self._http, "retell").deadline()

    async def get_test_run(
        self, test_case_job_id: str, *, fresh: bool = False, deadline: float | None = None
    ) -> dict[str, Any]:
        job_id = check_id(test_case_job_id, argument="test_case_job_id", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/get-test-run/{job_id}", subject=f"test run '{job_id}'", ttl=self._ttl, fresh=fresh, deadline=deadline
        )

    async def get_batch_test(self, test_case_batch_job_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        batch_id = check_id(test_case_batch_job_id, argument="test_case_batch_job_id", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/get-batch-test/{batch_id}", subject=f"batch test '{batch_id}'", deadline=deadline
        )

    async def list_test_runs(
        self,
        test_case_batch_job_id: str,
        *,
        limit: int = 50,
        pagination_key: str | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        batch_id = check_id(test_case_batch_job_id, argument="test_case_batch_job_id", provider="retell")
        params = _page(limit, pagination_key)
        return await require(self._http, "retell").get_object(
            f"/v2/list-test-runs/{batch_id}", subject=f"batch test '{batch_id}'", params=params, deadline=deadline
        )

    async def get_test_case_definition(
        self, test_case_definition_id: str, *, deadline: float | None = None
    ) -> dict[str, Any]:
        definition_id = check_id(test_case_definition_id, argument="test_case_definition_id", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/get-test-case-definition/{definition_id}",
            subject=f"test case definition '{definition_id}'",
            deadline=deadline,
        )

    async def get_agent(
        self, agent_id: str, *, version: int | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        checked = check_id(agent_id, argument="agent_id", provider="retell")
        at = f" version {version}" if version is not None else ""
        return await require(self._http, "retell").get_object(
            f"/get-agent/{checked}", subject=f"agent '{checked}'{at}", params=_version(version), deadline=deadline
        )

    async def resolve(self, choice: EngineChoice, deadline: float) -> Engine:
        """The engine itself, or the named agent's, read from its `response_engine` (agents change: not cached)."""
        if choice.engine is not None:
            return choice.engine
        assert choice.agent_id is not None
        agent = await self.get_agent(choice.agent_id, deadline=deadline)
        engine, _ = engine_of(agent.get("response_engine"), f"agent '{choice.agent_id}'")
        return engine

    async def get_response_engine(
        self,
        *,
        test_case_job_id: str | None = None,
        test_case_batch_job_id: str | None = None,
        agent_id: str | None = None,
        llm_id: str | None = None,
        conversation_flow_id: str | None = None,
        version: int | None = None,
    ) -> dict[str, Any]:
        """The Retell LLM or conversation flow a test ran against, at the version it ran: named by a test run (its
        definition snapshot's engine), a batch (its engine), an agent (at `version`), or the engine itself (at
        `version`); latest where nothing names a version. All of it within one deadline."""
        named = {
            key: value
            for key, value in (
                ("test_case_job_id", test_case_job_id),
                ("test_case_batch_job_id", test_case_batch_job_id),
                ("agent_id", agent_id),
                ("llm_id", llm_id),
                ("conversation_flow_id", conversation_flow_id),
            )
            if value is not None
        }
        if len(named) != 1:
            got = f"got {' and '.join(named)}" if named else "got none"
            raise InvalidArgument(
                "Give exactly one of test_case_job_id, test_case_batch_job_id, agent_id, llm_id or "
                f"conversation_flow_id ({got}). Nothing was sent.",
                provider="retell",
            )
        ((argument, value),) = named.items()
        if version is not None and argument in ("test_case_job_id", "test_case_batch_job_id"):
            raise InvalidArgument(
                f"version goes with agent_id, llm_id or conversation_flow_id only: a {_OWNERS[argument]} names the "
                "version it ran. Nothing was sent.",
                provider="retell",
            )
        checked = check_id(value, argument=argument, provider="retell")
        deadline = self.deadline()
        owner = f"{_OWNERS[argument]} '{checked}'"
        if argument == "test_case_job_id":
            run = await self.get_test_run(checked, deadline=deadline)
            snapshot = run.get("test_case_definition_snapshot")
            engine, pinned = engine_of(snapshot.get("response_engine") if isinstance(snapshot, dict) else None, owner)
        elif argument == "test_case_batch_job_id":
            batch = await self.get_batch_test(checked, deadline=deadline)
            engine, pinned = engine_of(batch.get("response_engine"), owner)
        elif argument == "agent_id":
            agent = await self.get_agent(checked, version=version, deadline=deadline)
            engine, pinned = engine_of(agent.get("response_engine"), owner)
        else:
            engine, pinned = Engine("retell-llm" if argument == "llm_id" else "conversation-flow", checked), version
        found = await self.get_engine(engine, pinned, deadline=deadline)
        answered = found.get("version")
        return {
            "response_engine": {**engine.fields(), "version": pinned if pinned is not None else answered},
            "engine": found,
        }

    async def get_engine(self, engine: Engine, version: int | None, *, deadline: float | None = None) -> dict[str, Any]:
        """A Retell LLM or conversation flow at `version` (latest when None). Not cached: a draft changes."""
        path = "/get-retell-llm" if engine.type == "retell-llm" else "/get-conversation-flow"
        at = f" version {version}" if version is not None else ""
        return await require(self._http, "retell").get_object(
            f"{path}/{engine.id}", subject=f"{engine}{at}", params=_version(version), deadline=deadline
        )

    async def list_agent_versions(
        self, agent_id: str, *, limit: int = 50, pagination_key: str | None = None
    ) -> dict[str, Any]:
        """One page of an agent's versions, newest first (Retell's order is asked for, not assumed)."""
        checked = check_id(agent_id, argument="agent_id", provider="retell")
        params = [*_page(limit, pagination_key), ("sort_order", "descending")]
        return await require(self._http, "retell").get_object(
            f"/list-agent-versions/{checked}", subject=f"agent '{checked}'", params=params
        )

    async def list_batch_tests(
        self,
        agent_id: str | None = None,
        llm_id: str | None = None,
        conversation_flow_id: str | None = None,
        *,
        version: int | None = None,
        limit: int = 50,
        pagination_key: str | None = None,
    ) -> dict[str, Any]:
        extra = [("version", str(version))] if version is not None else []
        page = _page(limit, pagination_key) + extra
        return await self._list_for_engine(
            "/v2/list-batch-tests", "batch tests", agent_id, llm_id, conversation_flow_id, page
        )

    async def list_test_case_definitions(
        self,
        agent_id: str | None = None,
        llm_id: str | None = None,
        conversation_flow_id: str | None = None,
        *,
        limit: int = 50,
        pagination_key: str | None = None,
    ) -> dict[str, Any]:
        page = _page(limit, pagination_key)
        return await self._list_for_engine(
            "/v2/list-test-case-definitions", "test case definitions", agent_id, llm_id, conversation_flow_id, page
        )

    async def _list_for_engine(
        self, path: str, what: str, agent_id: str | None, llm_id: str | None, flow_id: str | None, params: Params
    ) -> dict[str, Any]:
        """One page of an engine's listing: the engine's fields, then `params` (checked by the caller, like the IDs
        here, before the agent is looked up); the agent lookup and the listing share one deadline."""
        choice = choose_engine(agent_id, llm_id, flow_id)
        deadline = self.deadline()
        engine = await self.resolve(choice, deadline)
        return await require(self._http, "retell").get_object(
            path, subject=f"{what} of {engine}", params=[*engine.fields().items(), *params], deadline=deadline
        )

    async def create_batch_test(
        self, test_case_definition_ids: list[str], engine: Engine, version: int | None, *, deadline: float
    ) -> dict[str, Any]:
        """Start a batch test: one run per definition (checked by the caller), against the engine at `version`
        (its latest when None)."""
        response_engine: dict[str, Any] = engine.fields()
        if version is not None:
            response_engine["version"] = version
        batch = await require(self._http, "retell").write_object(
            "POST",
            "/create-batch-test",
            {"response_engine": response_engine, "test_case_definition_ids": test_case_definition_ids},
            subject=f"a batch test of {engine}",
            effect=run_effect(f"list_batch_tests for {engine.id_field}={engine.id}"),
            deadline=deadline,
        )
        logger.info(
            "started Retell batch test %s: %s, version %s, definitions %s",
            batch.get("test_case_batch_job_id"),
            engine,
            "latest" if version is None else version,
            ",".join(test_case_definition_ids),
        )
        return batch

    async def list_phone_numbers(self, *, deadline: float) -> list[dict[str, Any]]:
        """Every phone number, all pages (Retell's order), within `deadline`."""
        http = require(self._http, "retell")

        async def page(params: Params) -> dict[str, Any]:
            return await http.get_object("/v2/list-phone-numbers", subject="phone numbers", params=params,
                                         deadline=deadline)  # fmt: skip

        return await _every_page(page, "phone numbers")

    async def list_agents(self, *, deadline: float) -> list[dict[str, Any]]:
        """Every agent of the workspace, voice and chat (`channel`), all pages: `POST /v2/list-agents` with query
        `limit`, `pagination_key` and an empty filter body (`resources/agent.py:list`; items carry no engine,
        `types/agent_list_response.py`)."""
        http = require(self._http, "retell")

        async def page(params: Params) -> dict[str, Any]:
            return await http.post_read("/v2/list-agents", {}, subject="agents", params=params, deadline=deadline)

        return await _every_page(page, "agents")

    async def every_agent_version(self, agent_id: str, *, deadline: float) -> list[dict[str, Any]]:
        """All of an agent's versions (`GET /list-agent-versions/{agent_id}`, every page): `version`, `is_published`
        (required there, unlike on get-agent), `base_version`, `last_modification_timestamp`."""
        checked = check_id(agent_id, argument="agent_id", provider="retell")
        http = require(self._http, "retell")

        async def page(params: Params) -> dict[str, Any]:
            return await http.get_object(f"/list-agent-versions/{checked}", subject=f"agent '{checked}'",
                                         params=params, deadline=deadline)  # fmt: skip

        return await _every_page(page, f"versions of agent '{checked}'")

    async def get_chat_agent(
        self, agent_id: str, *, version: int | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        """A chat agent (`channel: chat` in list-agents), read at its own route: `GET /get-chat-agent/{agent_id}`
        (`resources/chat_agent.py:retrieve`), with the same `response_engine` as a voice agent."""
        checked = check_id(agent_id, argument="agent_id", provider="retell")
        at = f" version {version}" if version is not None else ""
        return await require(self._http, "retell").get_object(
            f"/get-chat-agent/{checked}", subject=f"chat agent '{checked}'{at}", params=_version(version),
            deadline=deadline,
        )  # fmt: skip

    async def get_flow_component(self, component_id: str, *, deadline: float) -> dict[str, Any]:
        """A shared conversation flow component (a flow's node with `component_type: shared` names it):
        `GET /get-conversation-flow-component/{id}` (`resources/conversation_flow_component.py:retrieve`; not
        versioned)."""
        checked = check_id(component_id, argument="component_id", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/get-conversation-flow-component/{checked}", subject=f"shared flow component '{checked}'",
            deadline=deadline,
        )  # fmt: skip

    async def create_test_case_definition(self, body: dict[str, Any], *, deadline: float) -> dict[str, Any]:
        engine = body["response_engine"]
        kind_id = engine.get("llm_id") or engine.get("conversation_flow_id")
        return await require(self._http, "retell").write_object(
            "POST",
            "/create-test-case-definition",
            body,
            subject=f"a new test case definition '{body['name']}'",
            effect=made_effect("the test definition", f"list_test_case_definitions for the engine {kind_id}"),
            deadline=deadline,
        )

    async def update_test_case_definition(
        self, definition_id: str, body: dict[str, Any], *, deadline: float
    ) -> dict[str, Any]:
        return await require(self._http, "retell").write_object(
            "PUT",
            f"/update-test-case-definition/{definition_id}",
            body,
            subject=f"test case definition '{definition_id}'",
            effect=changed_effect(
                "the test definition", f"get_test_case_definition test_case_definition_id={definition_id}"
            ),
            deadline=deadline,
        )

    async def create_agent_version(self, agent_id: str, base_version: int, *, deadline: float) -> dict[str, Any]:
        """A new draft of the agent from `base_version`: Retell answers the agent at the new version."""
        return await require(self._http, "retell").write_object(
            "POST",
            f"/create-agent-version/{agent_id}",
            {"base_version": base_version},
            subject=f"a new draft of agent '{agent_id}'",
            effect=made_effect(
                "a new draft",
                f"list_agent_versions agent_id={agent_id} (finish it with draft_agent_version draft_version=<its "
                "version> rather than making another)",
            ),
            deadline=deadline,
        )

    async def update_engine(
        self, engine: Engine, version: int, fields: dict[str, Any], *, deadline: float
    ) -> dict[str, Any]:
        """Change `fields` of the LLM or flow at `version`, always named: without it Retell changes the latest."""
        path = "/update-retell-llm" if engine.type == "retell-llm" else "/update-conversation-flow"
        return await require(self._http, "retell").write_object(
            "PATCH",
            f"{path}/{engine.id}",
            fields,
            params=[("version", str(version))],
            subject=f"{engine} version {version}",
            effect=changed_effect(
                f"{engine} version {version}", f"get_response_engine {engine.id_field}={engine.id} version={version}"
            ),
            deadline=deadline,
        )

    async def list_calls(self, body: dict[str, Any], *, deadline: float | None = None) -> dict[str, Any]:
        """One page of production calls: `POST /v3/list-calls` with `filter_criteria`, `limit`, `pagination_key` and
        `sort_order` all in the JSON body, none in the query (`resources/call.py:list` L217-229). A read, retried like
        one; never cached (its answer depends on the body). `body` is built and checked by `retell/calls.py`."""
        http = require(self._http, "retell")
        return await http.post_read(
            "/v3/list-calls", body, subject="calls", deadline=self.deadline() if deadline is None else deadline
        )

    async def get_call(self, call_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """One call, phone or web (`call_type` tells them apart): `GET /v2/get-call/{call_id}`, no query
        (`resources/call.py:retrieve` L62-101). Not cached: its analysis and transcripts arrive after it ends."""
        checked = check_id(call_id, argument="call_id", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/v2/get-call/{checked}", subject=f"call '{checked}'", deadline=deadline
        )

    async def check_key(self) -> None:
        """One cheap documented read that answers 200 only for an accepted key. (Listing agents, which this once used,
        is a POST in retell-sdk 6.2.13: `resources/agent.py:list`.)"""
        await require(self._http, "retell").get_object(
            "/v2/list-phone-numbers", subject="phone numbers", params=[("limit", "1")]
        )


PAGE_SIZE = 1000  # Retell documents no limit for these listings: the same page as the test listings
MAX_PAGES = 100


async def _every_page(page: Callable[[Params], Awaitable[dict[str, Any]]], what: str) -> list[dict[str, Any]]:
    """Every item of a Retell listing, page after page. Anything that does not read as a documented page ({items:
    [objects], has_more: bool, pagination_key}), or paging that does not end, is the vendor's fault: a partial
    list cannot prove anything."""
    items: list[dict[str, Any]] = []
    key: str | None = None
    for _ in range(MAX_PAGES):
        answer = await page([("limit", str(PAGE_SIZE)), *([("pagination_key", key)] if key else [])])
        found, more, next_key = answer.get("items"), answer.get("has_more"), answer.get("pagination_key")
        if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
            raise _bad_page(what, "has no items list of objects")
        if not isinstance(more, bool):
            raise _bad_page(what, "does not say whether more follow (has_more)")
        items += found
        if not more:
            return items
        if not isinstance(next_key, str) or not next_key or next_key == key:
            raise _bad_page(what, "says more follow but gives no new pagination_key")
        key = check_token(next_key, argument="pagination_key", provider="retell")
    raise _bad_page(what, f"did not end within {MAX_PAGES} pages")


def _bad_page(what: str, problem: str) -> BadUpstreamResponse:
    return BadUpstreamResponse(
        f"Retell's page of {what} {problem}, so they could not all be read.", provider="retell", status=200
    )


# What each kind of ID names, in messages.
_OWNERS = {
    "test_case_job_id": "test run",
    "test_case_batch_job_id": "batch test",
    "agent_id": "agent",
    "llm_id": "Retell LLM",
    "conversation_flow_id": "conversation flow",
}


def engine_of(response_engine: object, owner: str) -> tuple[Engine, int | None]:
    """The engine and version a `response_engine` object names. A custom LLM is `invalid_argument` (Retell's tests
    do not cover it); anything that names no usable engine, or a version that is not a whole number, is the
    vendor's fault. `owner` names where the object came from ("agent 'a1'")."""
    kind = response_engine.get("type") if isinstance(response_engine, dict) else None
    if kind == "custom-llm":
        raise InvalidArgument(
            f"Retell's {owner} uses a custom LLM, and Retell's tests do not cover custom-LLM agents.", provider="retell"
        )
    if isinstance(response_engine, dict) and kind in ("retell-llm", "conversation-flow"):
        id_value = response_engine.get("llm_id" if kind == "retell-llm" else "conversation_flow_id")
        version = response_engine.get("version")
        whole = isinstance(version, int | float) and not isinstance(version, bool) and float(version).is_integer()
        if isinstance(id_value, str) and RETELL_ID.fullmatch(id_value) and (version is None or whole):
            assert version is None or isinstance(version, int | float)
            return Engine(kind, id_value), None if version is None else int(version)
    raise BadUpstreamResponse(
        f"Retell's {owner} has no response_engine that names a Retell LLM or conversation flow (with a whole "
        "version number, if any); give llm_id or conversation_flow_id instead.",
        provider="retell",
        status=200,
    )


def _version(version: int | None) -> list[tuple[str, str]] | None:
    return [("version", str(version))] if version is not None else None


def _page(limit: int, pagination_key: str | None) -> list[tuple[str, str]]:
    params = [("limit", str(limit))]
    if pagination_key is not None:
        params.append(("pagination_key", check_token(pagination_key, argument="pagination_key", provider="retell")))
    return params
