"""Tela's test-case endpoints: the client and the models that document its objects.

Where each request and field is documented (Tela's API reference, docs.tela.com/api-reference/test-case/...):
- GET /test-case/{id}: shared/upstream/tela-get-test-case.txt (`get-by-id`); the includeGenerations flag is not
  documented on this route.
- GET /test-case?promptId=&promptVersionIds=(repeated)&includeGenerations=: `get` (a bare JSON array).
- POST /test-case/run-all {promptVersionId, testCaseIds}: `post-test-case-run-all` (cases already running are
  skipped; nothing left to run answers an empty `executionId`; counts towards the workspace's quota).
- GET /prompt-version/{id}: `prompt-version/get-by-id` (id, promptId, title, configuration, variables, content,
  markdownContent, messages, promoted, draft, createdAt, updatedAt; newer pages add a single `message`).
- GET /prompt-version/history?promptId=&limit=&offset=: `prompt-version/get-prompt-version-history` ("newest to
  oldest", limit default 20 and at most 100, lifecycle metadata such as `draft` and `promoted` but no content); it
  replaces the deprecated `GET /prompt-version?promptId=`, which answered a bare array.
- Writes (only with allow_edits): POST /test-case (`test-case/create`: promptId, messages, variablesRichContent
  required; title, variables, files, expectedOutput, metadata, promptApplicationId optional), PATCH /test-case/{id}
  (`test-case/update`: "Only include the fields you want to modify"), POST /prompt-version (`prompt-version/create`:
  promptId, title (at most 256 characters), configuration, variables required; content, markdownContent, draft,
  promoted, and `message`, one message of role system, preferred over the deprecated `messages`:
  `prompt-version-message/post-prompt-version-message`). Publishing (`environment/publish-by-name`) and promoting
  (`promoted: true`) exist too and are never sent.
- Completion runs (the `calls` toolset; what they hold and what Tela leaves undocumented: docs/upstream-facts.md):
  GET /v1/completion-run (`completion-run/get-v1-completion-run`: "a paginated list of completion runs in the
  authenticated workspace, most recently updated first", rows with camelCase keys; `limit` "Defaults to 10 and is
  clamped to 1–100"; the filters `promptApplicationId`, `promptVersionId` and `promptId` are named in its description,
  their definitions were not seen: sent as query parameters, like `limit`). Its pagination parameter, a status filter,
  its envelope and its rows' fields were not seen, so nothing else is sent and the answer is taken as an array or an
  object. GET /v2/chat/completions/{id} (`completion/get`: `id: string`, the run with snake_case keys, `status` one of
  created, running, succeeded, failed); its IDs are not documented to be UUIDs (`check_run_id`).
- GET /api-key: not in the public reference; shared/SPEC.md "Upstream facts" records that Tela's own integrations
  check a key with it, hence the fallback to the documented list route when it answers 404.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import Field

from mcp_server.errors import InvalidArgument, NotFound
from mcp_server.upstream.http import VendorHTTP, changed_effect, made_effect, require, run_effect
from mcp_server.upstream.ids import check_id
from mcp_server.upstream.schema import VendorObject

logger = logging.getLogger(__name__)

# A completion run's ID: Tela documents it as a string only, so any that stays one path segment (no '/', '?', '#',
# '%', whitespace or control character, never '.' or '..') is sent.
RUN_ID = re.compile(r"[A-Za-z0-9_~:.-]{1,128}")


def check_run_id(value: str, *, argument: str = "id") -> str:
    """`value` if it can be a Tela completion run's ID and names no other path than its own, else `InvalidArgument`."""
    if RUN_ID.fullmatch(value) and ".." not in value and value != ".":
        return value
    shown = "an empty string" if not value else (repr(value) if len(value) <= 40 else f"{value[:37]!r}…")
    raise InvalidArgument(
        f"{argument} must be a Tela completion run ID: 1-128 ASCII letters, digits, '-', '_', '.', '~' or ':' (no "
        f"'..'); got {shown}. Nothing was sent.",
        provider="tela",
    )


# A well-formed prompt ID that cannot exist: listing its cases needs a good key and nothing else.
PROBE_PROMPT_ID = "00000000-0000-0000-0000-000000000000"


class TelaTestCase(VendorObject):
    """A Tela test case, exactly as Tela returns it (camelCase names, nulls kept, unknown fields pass through)."""

    id: Any = Field(None, description="UUID")
    title: Any = Field(None, description="string")
    messages: Any = Field(None, description="array of {role, content}, or null")
    variables: Any = Field(None, description="object or null")
    variablesRichContent: Any = Field(None, description="object or null")
    files: Any = Field(None, description="array of file objects, or null")
    promptId: Any = Field(None, description="UUID")
    expectedOutput: Any = Field(None, description="string or null")
    answers: Any = Field(None, description="object or null: evaluation answers")
    promptApplicationId: Any = Field(None, description="UUID or null")
    metadata: Any = Field(None, description="object or null")
    createdAt: Any = Field(None, description="ISO 8601 timestamp")
    updatedAt: Any = Field(None, description="ISO 8601 timestamp")
    deletedAt: Any = Field(None, description="ISO 8601 timestamp or null")
    generations: Any = Field(None, description="array; only with include_generations")


class TelaTestCaseList(VendorObject):
    """A prompt's test cases: Tela answers a bare array, returned as `items` (a structured result is an object)."""

    items: Any = Field(None, description="array of test cases, as get_test_case returns them")


class TelaPromptVersion(VendorObject):
    """A Tela prompt version, exactly as Tela returns it."""

    id: Any = Field(None, description="UUID")
    promptId: Any = Field(None, description="UUID")
    title: Any = Field(None, description="string")
    configuration: Any = Field(None, description="object: model, type, temperature, structuredOutput")
    variables: Any = Field(None, description="array of {name, type, required, ...}")
    content: Any = Field(None, description="string: the prompt text")
    messages: Any = Field(None, description="the prompt's messages")
    promoted: Any = Field(None, description="boolean: the version in production")
    draft: Any = Field(None, description="boolean")


class TelaPromptVersionList(VendorObject):
    """A prompt's versions, newest first, without their content (get_prompt_version has it)."""

    items: Any = Field(None, description="array of versions: id, title, draft, promoted, ...")


class TelaRunAll(VendorObject):
    """Tela's answer to run-all, exactly as Tela returns it."""

    executionId: Any = Field(
        None, description="string; empty when every case already had a generation in progress (nothing started)"
    )


class TelaCompletionRun(VendorObject):
    """A Tela completion run, exactly as GET /v2/chat/completions/{id} returns it (snake_case names)."""

    id: Any = Field(None, description="string")
    status: Any = Field(None, description="created, running, succeeded or failed")
    input_content: Any = Field(None, description="object: variables, messages, files")
    output_content: Any = Field(
        None, description="object: content, tool_calls, information {duration, cost, input_tokens, output_tokens}"
    )
    raw_input: Any = Field(None, description="object: what the caller sent (version_id, canvas_id, variables, ...)")
    raw_output: Any = Field(None, description="object")
    prompt_version_id: Any = Field(None, description="string")
    prompt_application_id: Any = Field(None, description="string")
    created_at: Any = Field(None, description="ISO 8601 timestamp")
    updated_at: Any = Field(None, description="ISO 8601 timestamp")


class TelaClient:
    """Reads Tela test cases and, when allowed, runs them; `http` is None when no Tela key is configured.

    People edit test cases, so they are cached only when the user sets `ttl`.
    """

    def __init__(self, http: VendorHTTP | None, *, ttl: float = 0.0) -> None:
        self._http = http
        self._ttl = ttl

    async def get_test_case(self, test_case_id: str, *, include_generations: bool = False) -> dict[str, Any]:
        """The case; with `include_generations`, always with its generations: Tela documents the flag on the list
        route only, so when the by-ID answer has none they come from the prompt's list, which has them."""
        case_id = check_id(test_case_id, argument="id", provider="tela")
        params = [("includeGenerations", "true")] if include_generations else None
        http = require(self._http, "tela")
        deadline = http.deadline()  # one for both requests
        case = await http.get_object(
            f"/test-case/{case_id}",
            subject=f"test case '{case_id}'",
            params=params,
            ttl=lambda case: self._ttl,
            deadline=deadline,
        )
        prompt_id = case.get("promptId")
        if not include_generations or "generations" in case or not isinstance(prompt_id, str):
            return case
        listed = await self.list_test_cases(prompt_id, include_generations=True, deadline=deadline)
        for item in listed["items"]:
            if isinstance(item, dict) and item.get("id") == case.get("id") and "generations" in item:
                return {**case, "generations": item["generations"]}  # a copy: a cached case stays as Tela sent it
        return case

    async def list_test_cases(
        self,
        prompt_id: str,
        *,
        include_generations: bool = False,
        prompt_version_ids: list[str] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        checked = check_id(prompt_id, argument="prompt_id", provider="tela")
        params = [("promptId", checked)]
        params += [
            ("promptVersionIds", check_id(version, argument="prompt_version_ids", provider="tela"))
            for version in prompt_version_ids or []
        ]
        if include_generations:
            params.append(("includeGenerations", "true"))
        return await require(self._http, "tela").get_object(
            "/test-case",
            subject=f"prompt '{checked}'",
            params=params,
            items=True,
            ttl=lambda cases: self._ttl,
            deadline=deadline,
        )

    async def get_prompt_version(self, prompt_version_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        version = check_id(prompt_version_id, argument="id", provider="tela")
        return await require(self._http, "tela").get_object(
            f"/prompt-version/{version}",
            subject=f"prompt version '{version}'",
            ttl=lambda version: self._ttl,
            deadline=deadline,
        )

    async def list_prompt_versions(self, prompt_id: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        checked = check_id(prompt_id, argument="prompt_id", provider="tela")
        params = [("promptId", checked), ("limit", str(limit)), ("offset", str(offset))]
        return await require(self._http, "tela").get_object(
            "/prompt-version/history",
            subject=f"prompt '{checked}'",
            params=params,
            items=True,
            ttl=lambda versions: self._ttl,
        )

    def deadline(self) -> float:
        """When a call starting now must be answered: the one deadline a tool making several requests hands each."""
        return require(self._http, "tela").deadline()

    async def list_completion_runs(
        self,
        *,
        prompt_id: str | None = None,
        prompt_version_id: str | None = None,
        prompt_application_id: str | None = None,
        limit: int = 20,
    ) -> dict[str, Any]:
        """One page of the workspace's completion runs, newest updated first, as Tela answers it (a bare array comes
        back as `items`); each filter given is sent under Tela's name."""
        params = [
            (name, check_id(value, argument=argument, provider="tela"))
            for name, argument, value in (
                ("promptId", "prompt_id", prompt_id),
                ("promptVersionId", "prompt_version_id", prompt_version_id),
                ("promptApplicationId", "prompt_application_id", prompt_application_id),
            )
            if value is not None
        ]
        params.append(("limit", str(limit)))
        return await require(self._http, "tela").get_object(
            "/v1/completion-run",
            subject="completion runs",
            params=params,
            envelope=True,
            ttl=lambda runs: self._ttl,
        )

    async def get_completion_run(
        self, run_id: str, *, argument: str = "id", deadline: float | None = None
    ) -> dict[str, Any]:
        checked = check_run_id(run_id, argument=argument)
        return await require(self._http, "tela").get_object(
            f"/v2/chat/completions/{checked}",
            subject=f"completion run '{checked}'",
            ttl=lambda run: self._ttl,
            deadline=deadline,
        )

    async def create_test_case(self, body: dict[str, Any]) -> dict[str, Any]:
        return await require(self._http, "tela").write_object(
            "POST",
            "/test-case",
            body,
            subject=f"a new test case of prompt '{body['promptId']}'",
            effect=made_effect("the test case", f"list_test_cases prompt_id={body['promptId']}"),
        )

    async def update_test_case(self, case_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await require(self._http, "tela").write_object(
            "PATCH",
            f"/test-case/{case_id}",
            body,
            subject=f"test case '{case_id}'",
            effect=changed_effect("the test case", f"get_test_case id={case_id}"),
        )

    async def create_prompt_version(self, body: dict[str, Any]) -> dict[str, Any]:
        return await require(self._http, "tela").write_object(
            "POST",
            "/prompt-version",
            body,
            subject=f"a new draft of prompt '{body['promptId']}'",
            effect=made_effect("the draft", f"list_prompt_versions prompt_id={body['promptId']}"),
        )

    async def run_test_cases(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start generations for a prompt version's cases: `{promptVersionId, testCaseIds?}`, checked by the caller
        (without `testCaseIds` every case of the prompt runs)."""
        version = body["promptVersionId"]
        answer = await require(self._http, "tela").write_object(
            "POST",
            "/test-case/run-all",
            body,
            subject=f"a run of prompt version '{version}'",
            effect=run_effect("the cases' generations (get_test_case with include_generations)"),
        )
        logger.info(
            "started Tela run %s: prompt version %s, cases %s",
            answer.get("executionId") or "(none: every case was already running)",
            version,
            ",".join(body.get("testCaseIds", [])) or "all",
        )
        return answer

    async def check_key(self) -> None:
        """What Tela's own integrations use to check a key, falling back to the documented list route when an
        older deployment has no `/api-key` (a 404 there and on the list means a wrong base URL, not a good key)."""
        http = require(self._http, "tela")
        deadline = http.deadline()
        try:
            await http.get_object("/api-key", subject="the API key", deadline=deadline)
        except NotFound:
            await http.get_object(
                "/test-case",
                subject="test cases",
                params=[("promptId", PROBE_PROMPT_ID)],
                items=True,
                deadline=deadline,
            )
