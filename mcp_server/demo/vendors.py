"""The demo's vendors: a stateful fake Retell and Tela answering the routes the server calls from the records
(`records`), with every run judged on the version it ran (`judge`); what a session makes (drafts, edited versions,
definitions, cases, batches) lives in that session's `DemoVendors`."""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2

from mcp_server.demo import calls
from mcp_server.demo.completions import completion_runs, listed_row, reply
from mcp_server.demo.judge import BASELINE_RUNS, BATCHES, RETELL_RUNS, Batch, judged_run
from mcp_server.demo.records import (
    AGENTS,
    DEFINITIONS,
    LLMS,
    PHONE_NUMBERS,
    PROMPT_VERSIONS,
    TELA_CASES,
    llm_engine,
    prompt_version,
)

# --- Request bodies: which fields each route takes, and their JSON types ----------------------------------------

Fields = dict[str, type | tuple[type, ...]]
# types/test_create_test_case_definition_params.py L22-75 (create: the first four required) and
# types/test_update_test_case_definition_params.py (update: the same seven, all optional).
DEFINITION_FIELDS: Fields = {
    "name": str,
    "response_engine": dict,
    "user_prompt": str,
    "metrics": list,
    "dynamic_variables": dict,
    "tool_mocks": list,
    "llm_model": str,
}
DEFINITION_REQUIRED = ("name", "response_engine", "user_prompt", "metrics")
# The body of update-retell-llm (resources/llm.py:update L455-477); `is_transfer_llm` "is ignored on update".
UNCHECKED_LLM_FIELDS = (
    "backup_model", "begin_after_user_silence_ms", "default_dynamic_variables", "general_tools", "is_transfer_llm",
    "kb_config", "knowledge_base_ids", "mcps", "model", "model_config", "model_high_priority", "model_temperature",
    "model_ultrafast", "s2s_model", "start_speaker", "starting_state", "tool_call_strict_mode",
)  # fmt: skip
LLM_FIELDS: Fields = {
    **dict.fromkeys(UNCHECKED_LLM_FIELDS, object),
    "general_prompt": (str, type(None)),
    "begin_message": (str, type(None)),
    "states": list,
}
# docs.tela.com prompt-version/create: four required; `message` from prompt-version-message/post-prompt-version-message.
PROMPT_VERSION_FIELDS: Fields = {
    "promptId": str,
    "title": str,
    "configuration": dict,
    "variables": list,
    "content": str,
    "markdownContent": str,
    "draft": bool,
    "promoted": bool,
    "messages": (dict, list),
    "message": dict,
}
PROMPT_VERSION_REQUIRED = ("promptId", "title", "configuration", "variables")
# docs.tela.com test-case/create (three required) and test-case/update (any of them).
CASE_FIELDS: Fields = {
    "promptId": str,
    "title": (str, type(None)),
    "messages": list,
    "variables": (dict, type(None)),
    "variablesRichContent": (dict, type(None)),
    "files": (list, type(None)),
    "expectedOutput": (str, type(None)),
    "metadata": (dict, type(None)),
    "promptApplicationId": (str, type(None)),
}
CASE_REQUIRED = ("promptId", "messages", "variablesRichContent")
CASE_ROLES = {"user", "system", "assistant", "function", "developer"}


def _problem(body: dict[str, Any], fields: Fields, required: tuple[str, ...] = ()) -> str | None:
    """What is wrong with a request body, if anything: a required field missing, a field the route does not take
    (the demo's own strictness, so a request the server should not send shows), or a value of the wrong JSON type."""
    missing = [name for name in required if name not in body]
    if missing:
        return f"Missing required field(s): {', '.join(missing)}"
    unknown = sorted(set(body) - set(fields))
    if unknown:
        return f"Unknown field(s): {', '.join(unknown)}"
    wrong = [name for name, value in body.items() if not isinstance(value, fields[name])]
    return f"Wrong type for field(s): {', '.join(wrong)}" if wrong else None


def _case_messages_problem(messages: object) -> str | None:
    if messages is None:
        return None
    good = isinstance(messages, list) and all(
        isinstance(message, dict) and message.get("role") in CASE_ROLES and isinstance(message.get("content"), str)
        for message in messages
    )
    return None if good else f"messages must be {{role, content}} objects, role one of {', '.join(sorted(CASE_ROLES))}"


def _states_problem(states: object) -> str | None:
    if states is None:
        return None
    good = isinstance(states, list) and all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in states)
    return None if good else "states must be objects with a name"


def _new_version_problem(body: dict[str, Any]) -> str | None:
    """What is wrong with a new Tela prompt version, if anything: its fields, a live version (refused: the demo's own
    rule, as the server must never make one), or other than one system message (`message`, or the deprecated
    `messages` as an object or a one-element array: prompt-version-message/post-prompt-version-message)."""
    problem = _problem(body, PROMPT_VERSION_FIELDS, PROMPT_VERSION_REQUIRED)
    if problem is not None:
        return problem
    if len(body["title"]) > 256:
        return "title must be at most 256 characters"
    if body.get("promoted") is True or body.get("draft") is False:
        return "The demo creates draft versions only: promoted must not be true, nor draft false"
    sent = body.get("message", body.get("messages"))
    if sent is None:
        return None
    messages = sent if isinstance(sent, list) else [sent]
    good = (
        len(messages) == 1
        and isinstance(messages[0], dict)
        and messages[0].get("role") == "system"
        and isinstance(messages[0].get("content"), str)
    )
    return None if good else "Send exactly one message, whose role is system"


# --- Answers ----------------------------------------------------------------------------------------------------


def _json(status: int, body: object) -> httpx2.Response:
    return httpx2.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def _retell_error(status: int, message: str) -> httpx2.Response:
    return _json(status, {"status": "error", "message": message})


def _tela_error(status: int, message: str) -> httpx2.Response:
    return _json(status, {"message": message})


NOT_FOUND = {"status": "error", "message": "Not Found"}


def _body(request: httpx2.Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when it sent something else."""
    try:
        body = json.loads(request.content or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _page(items: list[Any], request: httpx2.Request) -> httpx2.Response:
    """Retell's paging: `limit` items from the offset the pagination key names; a key it never issued is a 400,
    as a real vendor would answer a key it does not know."""
    params = request.url.params
    limit, key = params.get("limit", "50"), params.get("pagination_key", "p0")
    if not re.fullmatch(r"p[0-9]{1,9}", key):
        return _retell_error(400, "Invalid pagination_key")
    if not re.fullmatch(r"[1-9][0-9]{0,3}", limit):
        return _retell_error(400, "Invalid limit")
    start, size = int(key[1:]), int(limit)
    more = start + size < len(items)
    return _json(200, {"items": items[start : start + size], "has_more": more, "pagination_key": f"p{start + size}"
                       if more else None})  # fmt: skip


def _sorted_page(items: list[dict[str, Any]], request: httpx2.Request, key: str) -> httpx2.Response:
    """A page of `items` in the `sort_order` asked for, by `key`. Retell documents no default order; the demo's is
    ascending."""
    order = request.url.params.get("sort_order", "ascending")
    if order not in ("ascending", "descending"):
        return _retell_error(400, "Invalid sort_order")
    return _page(sorted(items, key=lambda item: item[key], reverse=order == "descending"), request)


def _at(versions: dict[int, dict[str, Any]], version: str | None) -> dict[str, Any] | None:
    """The record at `version` (a query value), the latest when None; None when there is no such version."""
    if version is None:
        return versions[max(versions)]
    return versions.get(int(version)) if re.fullmatch(r"[0-9]{1,9}", version) else None


def _whole(value: object) -> int | None:
    """A JSON number that is a whole number (`response_engine.version` is typed float), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        return None
    return int(value)


def _iso(stamp: int) -> str:
    return datetime.fromtimestamp(stamp / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _without_generations(case: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in case.items() if key != "generations"}


Handler = Callable[[httpx2.Request, str], httpx2.Response]


class DemoVendors:
    """Both vendors, from the records above, plus what this session changed: drafts, edited versions, new test
    definitions, Tela versions and cases, and started batches, each in progress at its first get-batch-test and
    finished at its second, every run judged on the version it ran."""

    def __init__(self, *, now_ms: int | None = None) -> None:
        # Production calls are dated back from now (`now_ms`, tests fix it), so "this week" finds this week's.
        self.calls = calls.production_calls(int(time.time() * 1000) if now_ms is None else now_ms)
        self.runs: dict[str, dict[str, Any]] = {**copy.deepcopy(RETELL_RUNS), **copy.deepcopy(BASELINE_RUNS)}
        self.batches = copy.deepcopy(BATCHES)
        self.agents = copy.deepcopy(AGENTS)
        self.llms = copy.deepcopy(LLMS)
        self.definitions = copy.deepcopy(DEFINITIONS)
        self.prompt_versions = copy.deepcopy(PROMPT_VERSIONS)
        self.cases = copy.deepcopy(TELA_CASES)
        self.completion_runs = completion_runs(int(time.time() * 1000) if now_ms is None else now_ms)
        self._serials: defaultdict[str, Iterator[int]] = defaultdict(lambda: itertools.count(1))
        self._clock = itertools.count(1)
        # (method, path) for fixed paths, (method, "/prefix/{}") for paths that end in an ID.
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/get-test-run/{}"): self._get_test_run,
            ("GET", "/get-batch-test/{}"): self._get_batch_test,
            ("GET", "/v2/list-test-runs/{}"): self._list_test_runs,
            ("GET", "/v2/list-batch-tests"): self._list_batch_tests,
            ("POST", "/create-batch-test"): self._create_batch_test,
            ("GET", "/get-test-case-definition/{}"): self._get_definition,
            ("GET", "/v2/list-test-case-definitions"): self._list_definitions,
            ("POST", "/create-test-case-definition"): self._create_definition,
            ("PUT", "/update-test-case-definition/{}"): self._update_definition,
            ("POST", "/v2/list-agents"): self._list_agents,
            ("GET", "/get-agent/{}"): self._get_agent,
            ("GET", "/list-agent-versions/{}"): self._list_agent_versions,
            ("POST", "/create-agent-version/{}"): self._create_agent_version,
            ("GET", "/get-retell-llm/{}"): self._get_llm,
            ("PATCH", "/update-retell-llm/{}"): self._update_llm,
            ("GET", "/v2/list-phone-numbers"): lambda request, _: _sorted_page(PHONE_NUMBERS, request, "phone_number"),
            ("GET", "/api-key"): lambda request, _: _json(200, {}),
            ("GET", "/test-case"): self._list_cases,
            ("POST", "/test-case"): self._create_case,
            ("GET", "/test-case/{}"): self._get_case,
            ("PATCH", "/test-case/{}"): self._update_case,
            ("POST", "/test-case/run-all"): self._run_all,
            ("GET", "/prompt-version/history"): self._prompt_history,
            ("GET", "/prompt-version/{}"): self._get_prompt_version,
            ("POST", "/prompt-version"): self._create_prompt_version,
            ("GET", "/v1/completion-run"): self._list_completion_runs,
            ("GET", "/v2/chat/completions/{}"): self._get_completion_run,
            ("POST", "/v3/list-calls"): lambda request, _: calls.list_calls(self.calls, request),
            ("GET", "/v2/get-call/{}"): lambda request, call_id: calls.get_call(self.calls, call_id),
        }

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer like Retell or Tela would."""
        path = request.url.path
        head, _, tail = path.rpartition("/")
        route = self._routes.get((request.method, path))
        if route is not None:
            return route(request, "")
        route = self._routes.get((request.method, f"{head}/{{}}"))
        if route is not None and tail:
            return route(request, tail)
        return _json(404, {"message": "Not Found"})

    def _serial(self, kind: str) -> int:
        """1, 2, 3... for each kind of thing the session makes."""
        return next(self._serials[kind])

    def _stamp(self) -> int:
        """Now, in ms since the epoch: a second later at each call, after every built-in record."""
        return 1732000000000 + next(self._clock) * 1000

    # --- Retell: runs and batches -------------------------------------------------------------------------------

    def _get_test_run(self, request: httpx2.Request, job_id: str) -> httpx2.Response:
        run = self.runs.get(job_id)
        return _json(200, run) if run else _json(404, NOT_FOUND)

    def _get_batch_test(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return _json(404, NOT_FOUND)
        if batch.polls is not None:  # a started batch runs at the first poll and has finished by the second
            batch.polls += 1
            for run_id in batch.runs:
                if batch.polls >= 2:
                    self.runs[run_id] = batch.finals[run_id]
                else:
                    self.runs[run_id]["status"] = "in_progress"
        return _json(200, self._batch_object(batch_id))

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        """BatchTestResponse (types/batch_test_response.py L54-79), counted from the batch's runs."""
        batch = self.batches[batch_id]
        statuses = [self.runs[run]["status"] for run in batch.runs]
        counts = {state: statuses.count(state) for state in ("pass", "fail", "error")}
        return {
            "test_case_batch_job_id": batch_id,
            "status": "complete" if sum(counts.values()) == len(statuses) else "in_progress",
            "response_engine": batch.engine,
            "pass_count": counts["pass"],
            "fail_count": counts["fail"],
            "error_count": counts["error"],
            "total_count": len(statuses),
            "creation_timestamp": batch.created,
            "user_modified_timestamp": batch.created + 60000,
        }

    def _list_test_runs(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return _json(404, NOT_FOUND)
        return _page([self.runs[run] for run in batch.runs], request)

    def _list_batch_tests(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """Newest first, of one LLM. retell-sdk says `version` "defaults to latest"; the demo lists every version's
        batches without one, and only that version's with one."""
        params = request.url.params
        version = params.get("version")
        found = [
            batch_id
            for batch_id, batch in self.batches.items()
            if params.get("type") == "retell-llm"
            and params.get("llm_id") == batch.engine["llm_id"]
            and version in (None, str(batch.engine["version"]))
        ]
        found.sort(key=lambda batch_id: self.batches[batch_id].created, reverse=True)
        return _page([self._batch_object(batch_id) for batch_id in found], request)

    def _engine_llm(self, engine: object) -> dict[str, Any] | None:
        """The LLM version a request's `response_engine` names (the latest when it names none), if the demo has it."""
        if not isinstance(engine, dict) or engine.get("type") != "retell-llm":
            return None
        llm_id = engine.get("llm_id")
        versions = self.llms.get(llm_id) if isinstance(llm_id, str) else None
        if versions is None:
            return None
        if engine.get("version") is None:
            return versions[max(versions)]
        version = _whole(engine.get("version"))
        return versions.get(version) if version is not None else None

    def _create_batch_test(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """types/test_create_batch_test_params.py L18-48: `response_engine` and `test_case_definition_ids`."""
        body = _body(request) or {}
        llm = self._engine_llm(body.get("response_engine"))
        if llm is None:
            return _retell_error(404, "Cannot find requested asset")
        definitions = body.get("test_case_definition_ids")
        if not isinstance(definitions, list) or not definitions:
            return _retell_error(400, "test_case_definition_ids must be a non-empty array")
        unknown = [definition for definition in definitions if definition not in self.definitions]
        if unknown:
            return _retell_error(400, f"Unknown test case definitions: {unknown}")
        number, created = self._serial("batch"), self._stamp()
        batch = Batch([], created, llm_engine(llm["llm_id"], llm["version"]), polls=0)
        for index, definition in enumerate(definitions, 1):
            run_id = f"tcj_demo_rerun_{number}_{index}"
            final = judged_run(run_id, self.definitions[definition], llm, created)
            batch.runs.append(run_id)
            batch.finals[run_id] = final
            self.runs[run_id] = {**final, "status": "pending", "transcript_snapshot": None, "result_explanation": None}
        batch_id = f"tcbj_demo_rerun_{number}"
        self.batches[batch_id] = batch
        return _json(201, self._batch_object(batch_id))

    # --- Retell: test definitions -------------------------------------------------------------------------------

    def _get_definition(self, request: httpx2.Request, definition_id: str) -> httpx2.Response:
        definition = self.definitions.get(definition_id)
        return _json(200, definition) if definition else _json(404, NOT_FOUND)

    def _list_definitions(self, request: httpx2.Request, _: str) -> httpx2.Response:
        params = request.url.params
        found = [
            definition
            for definition in self.definitions.values()
            if params.get("type") == "retell-llm" and params.get("llm_id") == definition["response_engine"]["llm_id"]
        ]
        return _page(found, request)

    def _definition_problem(self, body: dict[str, Any], required: tuple[str, ...]) -> httpx2.Response | None:
        """The error a definition body gets, if any: 400 for its fields, 404 for an engine the demo lacks."""
        problem = _problem(body, DEFINITION_FIELDS, required)
        if problem is not None:
            return _retell_error(400, problem)
        if "response_engine" in body and self._engine_llm(body["response_engine"]) is None:
            return _retell_error(404, "Cannot find requested asset")
        return None

    def _create_definition(self, request: httpx2.Request, _: str) -> httpx2.Response:
        body = _body(request)
        if body is None:
            return _retell_error(400, "The body must be a JSON object")
        error = self._definition_problem(body, DEFINITION_REQUIRED)
        if error is not None:
            return error
        definition_id, stamp = f"tcd_demo_new_{self._serial('definition')}", self._stamp()
        # Server-set fields (types/test_case_definition_response.py): ID, type, timestamps; the optional ones filled.
        self.definitions[definition_id] = {
            "dynamic_variables": {},
            "tool_mocks": [],
            "llm_model": "gpt-4.1",
            **body,
            "test_case_definition_id": definition_id,
            "type": "simulation",
            "creation_timestamp": stamp,
            "user_modified_timestamp": stamp,
        }
        return _json(201, self.definitions[definition_id])

    def _update_definition(self, request: httpx2.Request, definition_id: str) -> httpx2.Response:
        """PUT with any of the seven fields (all optional): the given ones replace the stored ones, the others stay
        (retell-sdk does not say which; the demo keeps them)."""
        definition = self.definitions.get(definition_id)
        if definition is None:
            return _json(404, NOT_FOUND)
        body = _body(request)
        if body is None:
            return _retell_error(400, "The body must be a JSON object")
        error = self._definition_problem(body, ())
        if error is not None:
            return error
        definition.update(body, user_modified_timestamp=self._stamp())
        return _json(200, definition)

    # --- Retell: agents and their LLMs --------------------------------------------------------------------------

    def _get_agent(self, request: httpx2.Request, agent_id: str) -> httpx2.Response:
        versions = self.agents.get(agent_id)
        agent = _at(versions, request.url.params.get("version")) if versions else None
        return _json(200, agent) if agent else _json(404, NOT_FOUND)

    def _list_agents(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """resources/agent.py:list, a POST whose query pages (`limit`, `pagination_key`, `sort_order`); items as
        types/agent_list_response.py L17-38 has them, without an engine."""
        items = [
            {
                "agent_id": agent_id,
                "agent_name": versions[max(versions)]["agent_name"],
                "channel": versions[max(versions)]["channel"],
                "is_suspended": False,
                "tags": {},
                "user_modified_timestamp": versions[max(versions)]["last_modification_timestamp"],
            }
            for agent_id, versions in self.agents.items()
        ]
        return _sorted_page(items, request, "agent_id")

    def _list_agent_versions(self, request: httpx2.Request, agent_id: str) -> httpx2.Response:
        """types/agent_list_versions_response.py L10-37: {items, has_more, pagination_key}."""
        versions = self.agents.get(agent_id)
        if versions is None:
            return _json(404, NOT_FOUND)
        keys = ("version", "is_published", "base_version", "version_title", "version_description")
        items = [
            {
                **{key: agent.get(key) for key in keys},
                "last_modification_timestamp": agent["last_modification_timestamp"],
            }
            for agent in versions.values()
        ]
        return _sorted_page(items, request, "version")

    def _create_agent_version(self, request: httpx2.Request, agent_id: str) -> httpx2.Response:
        """resources/agent.py:create_version: a new draft from `base_version` (201 on docs.retellai.com). Its LLM gets
        the same new number, a copy of the base's LLM version (the SDK does not say what Retell does here)."""
        versions = self.agents.get(agent_id)
        if versions is None:
            return _json(404, NOT_FOUND)
        base = (_body(request) or {}).get("base_version")
        if not isinstance(base, int) or isinstance(base, bool):  # `base_version: int`, required
            return _retell_error(400, "base_version is required and must be an integer")
        if base not in versions:
            return _json(404, NOT_FOUND)
        new, stamp = max(versions) + 1, self._stamp()
        draft = copy.deepcopy(versions[base])
        draft.update(version=new, is_published=False, base_version=base, version_title=None, version_description=None)
        draft["last_modification_timestamp"] = stamp
        engine = draft["response_engine"]
        if engine.get("type") == "retell-llm":
            llm_versions = self.llms[engine["llm_id"]]
            llm = copy.deepcopy(llm_versions[int(engine["version"])])
            llm.update(version=new, is_published=False, last_modification_timestamp=stamp)
            llm_versions[new] = llm
            draft["response_engine"] = llm_engine(engine["llm_id"], new)
        versions[new] = draft
        return _json(201, draft)

    def _get_llm(self, request: httpx2.Request, llm_id: str) -> httpx2.Response:
        versions = self.llms.get(llm_id)
        llm = _at(versions, request.url.params.get("version")) if versions else None
        return _json(200, llm) if llm else _json(404, NOT_FOUND)

    def _update_llm(self, request: httpx2.Request, llm_id: str) -> httpx2.Response:
        """resources/llm.py:update: the given fields replace the version's (`states` as a whole array; `model_config`
        key by key, as documented); no `version` edits the latest, as Retell documents. Refusing a published version
        is the demo's own rule: Retell documents no such message."""
        versions = self.llms.get(llm_id)
        llm = _at(versions, request.url.params.get("version")) if versions else None
        if llm is None:
            return _json(404, NOT_FOUND)
        if llm.get("is_published"):
            return _retell_error(400, "Cannot update a published version")
        body = _body(request)
        if body is None:
            return _retell_error(400, "The body must be a JSON object")
        problem = _problem(body, LLM_FIELDS) or _states_problem(body.get("states"))
        if problem is not None:
            return _retell_error(400, problem)
        body.pop("is_transfer_llm", None)
        if isinstance(body.get("model_config"), dict):
            body["model_config"] = {**(llm.get("model_config") or {}), **body["model_config"]}
        llm.update(body, last_modification_timestamp=self._stamp())
        return _json(200, llm)

    # --- Tela: test cases ---------------------------------------------------------------------------------------

    def _list_cases(self, request: httpx2.Request, _: str) -> httpx2.Response:
        params = request.url.params
        cases = [copy.deepcopy(case) for case in self.cases.values() if case["promptId"] == params.get("promptId")]
        if params.get("includeGenerations") != "true":
            cases = [_without_generations(case) for case in cases]
        return _json(200, cases)

    def _get_case(self, request: httpx2.Request, case_id: str) -> httpx2.Response:
        found = self.cases.get(case_id.lower())
        if found is None:
            return _tela_error(404, "Test case not found")
        # Tela documents includeGenerations on the list route only; the demo answers the by-ID route without
        # generations, so `get_test_case(include_generations=true)` takes the same path as against Tela.
        return _json(200, _without_generations(found))

    def _case_problem(self, body: dict[str, Any], required: tuple[str, ...]) -> httpx2.Response | None:
        problem = _problem(body, CASE_FIELDS, required) or _case_messages_problem(body.get("messages"))
        if problem is not None:
            return _tela_error(400, problem)
        if "promptId" in body and not self._has_prompt(body["promptId"]):
            return _tela_error(404, "Prompt not found")
        return None

    def _create_case(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """docs.tela.com test-case/create, one case per request (the form for several was not seen). The answer is
        the case as get-by-id shows it; the create response itself is not documented."""
        body = _body(request)
        if body is None:
            return _tela_error(400, "The body must be a JSON object")
        error = self._case_problem(body, CASE_REQUIRED)
        if error is not None:
            return error
        case_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-test-case-{self._serial('case')}"))
        now = _iso(self._stamp())
        absent = dict.fromkeys(("title", "variables", "files", "expectedOutput", "promptApplicationId", "metadata"))
        self.cases[case_id] = {
            "id": case_id,
            **absent,
            **body,
            "answers": None,
            "createdAt": now,
            "updatedAt": now,
            "deletedAt": None,
            "generations": [],
        }
        return _json(201, _without_generations(self.cases[case_id]))

    def _update_case(self, request: httpx2.Request, case_id: str) -> httpx2.Response:
        """docs.tela.com test-case/update: "Only include the fields you want to modify"."""
        case = self.cases.get(case_id.lower())
        if case is None:
            return _tela_error(404, "Test case not found")
        body = _body(request)
        if body is None:
            return _tela_error(400, "The body must be a JSON object")
        error = self._case_problem(body, ())
        if error is not None:
            return error
        case.update(body, updatedAt=_iso(self._stamp()))
        return _json(200, _without_generations(case))

    def _run_all(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """Each case run (`testCaseIds`, else every case of the version's prompt) gets a finished generation: what
        the version answers (`completions.reply`). Generations are asynchronous in Tela; here they end at once."""
        body = _body(request) or {}
        version = self.prompt_versions.get(str(body.get("promptVersionId", "")).lower())
        wanted = body.get("testCaseIds")
        chosen = {str(case_id).lower() for case_id in wanted} if isinstance(wanted, list) else None
        for case in self.cases.values():
            if version is None or case["promptId"] != version["promptId"]:
                continue
            if chosen is None or case["id"] in chosen:
                output = reply(case.get("messages") or [], case.get("variables") or {}, version["content"])
                serial = self._serial("generation")
                generation = {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-generation-{serial}")),
                    "output": output,
                    "createdAt": _iso(self._stamp()),
                }
                case.setdefault("generations", []).append(generation)
        return _json(200, {"executionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-{self._serial('run-all')}"))})

    # --- Tela: completion runs ----------------------------------------------------------------------------------

    def _list_completion_runs(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """completion-run/get-v1-completion-run: newest updated first (then ID), `limit` 10 by default and clamped to
        1-100; a filter naming a prompt or version the workspace does not have is a 404. Its envelope is not
        documented: the demo answers a bare array of camelCased runs."""
        params = request.url.params
        limit = params.get("limit", "10")
        if not re.fullmatch(r"-?[0-9]{1,9}", limit):
            return _tela_error(400, "limit must be an integer")
        runs = list(self.completion_runs.values())
        prompt_id, version_id = params.get("promptId"), params.get("promptVersionId")
        if prompt_id is not None:
            if not self._has_prompt(prompt_id):
                return _tela_error(404, "Prompt not found")
            versions = {key for key, version in self.prompt_versions.items() if version["promptId"] == prompt_id}
            runs = [run for run in runs if run["prompt_version_id"] in versions]
        if version_id is not None:
            if version_id.lower() not in self.prompt_versions:
                return _tela_error(404, "Prompt version not found")
            runs = [run for run in runs if run["prompt_version_id"] == version_id.lower()]
        if params.get("promptApplicationId") is not None:
            return _tela_error(404, "Prompt application not found")  # the demo has no Workstation apps
        runs.sort(key=lambda run: (run["updated_at"], run["id"]), reverse=True)
        return _json(200, [listed_row(run) for run in runs[: min(max(int(limit), 1), 100)]])

    def _get_completion_run(self, request: httpx2.Request, run_id: str) -> httpx2.Response:
        run = self.completion_runs.get(run_id.lower())
        return _json(200, run) if run else _tela_error(404, "Completion run not found")

    # --- Tela: prompt versions ----------------------------------------------------------------------------------

    def _has_prompt(self, prompt_id: object) -> bool:
        return any(version["promptId"] == prompt_id for version in self.prompt_versions.values())

    def _get_prompt_version(self, request: httpx2.Request, version_id: str) -> httpx2.Response:
        version = self.prompt_versions.get(version_id.lower())
        return _json(200, version) if version else _tela_error(404, "Prompt version not found")

    def _prompt_history(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """docs.tela.com prompt-version/get-prompt-version-history: newest to oldest, no content, `limit` (default
        20, at most 100) and `offset`. The envelope is not documented; the demo answers a bare array, as the listing it
        replaces did. `versionIndex` counts from 1 in creation order (its base is not documented either)."""
        params = request.url.params
        limit, offset = params.get("limit", "20"), params.get("offset", "0")
        if "promptId" not in params:
            return _tela_error(400, "promptId is required")
        if not re.fullmatch(r"[0-9]{1,3}", limit) or not 1 <= int(limit) <= 100:
            return _tela_error(400, "limit must be between 1 and 100")
        if not re.fullmatch(r"[0-9]{1,9}", offset):
            return _tela_error(400, "offset must be a whole number")
        mine = [version for version in self.prompt_versions.values() if version["promptId"] == params["promptId"]]
        keys = ("id", "promptId", "title", "draft", "promoted", "createdAt", "updatedAt")
        items = [
            {**{key: version[key] for key in keys}, "versionIndex": index} for index, version in enumerate(mine, 1)
        ]
        items.reverse()  # kept in creation order, so newest first is the reverse
        start = int(offset)
        return _json(200, items[start : start + int(limit)])

    def _create_prompt_version(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """docs.tela.com prompt-version/create: always a draft; its content is the one sent, else its message's."""
        body = _body(request)
        if body is None:
            return _tela_error(400, "The body must be a JSON object")
        problem = _new_version_problem(body)
        if problem is not None:
            return _tela_error(400, problem)
        if not self._has_prompt(body["promptId"]):
            return _tela_error(404, "Prompt not found")
        sent = body.get("message", body.get("messages"))
        message = sent[0] if isinstance(sent, list) else sent
        content = body.get("content", message["content"] if message else "")
        version_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-prompt-version-{self._serial('prompt-version')}"))
        self.prompt_versions[version_id] = prompt_version(
            version_id,
            body["title"],
            content,
            _iso(self._stamp()),
            draft=True,
            prompt_id=body["promptId"],
            configuration=body["configuration"],
            variables=body["variables"],
            markdown=body.get("markdownContent"),
        )
        return _json(201, self.prompt_versions[version_id])
