"""Retell AI's test endpoints: the client and the models that document its objects."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mcp_server.upstream.http import VendorHTTP, require
from mcp_server.upstream.ids import check_id, check_token
from mcp_server.upstream.schema import VendorObject


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


class RetellTestRunPage(VendorObject):
    """One page of a batch's test runs, exactly as Retell returns it."""

    items: Any = Field(None, description="array of test runs, as get_test_run returns them")
    has_more: Any = Field(None, description="boolean: another page follows")
    pagination_key: Any = Field(None, description="string or null: pass it back to get the next page")


class RetellTestCaseDefinition(VendorObject):
    """A Retell test case definition, exactly as Retell returns it."""

    test_case_definition_id: Any = Field(None, description="string")
    name: Any = Field(None, description="string")
    user_prompt: Any = Field(None, description="string: what the simulated caller is told to do")
    metrics: Any = Field(None, description="array of strings: what the run is judged on")
    response_engine: Any = Field(None, description="object: the agent under test")
    tool_mocks: Any = Field(None, description="array: canned tool results")


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

    async def get_test_run(self, test_case_job_id: str, *, fresh: bool = False) -> dict[str, Any]:
        job_id = check_id(test_case_job_id, argument="test_case_job_id", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/get-test-run/{job_id}", subject=f"test run '{job_id}'", ttl=self._ttl, fresh=fresh
        )

    async def get_batch_test(self, test_case_batch_job_id: str) -> dict[str, Any]:
        batch_id = check_id(test_case_batch_job_id, argument="test_case_batch_job_id", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/get-batch-test/{batch_id}", subject=f"batch test '{batch_id}'"
        )

    async def list_test_runs(
        self, test_case_batch_job_id: str, *, limit: int = 50, pagination_key: str | None = None
    ) -> dict[str, Any]:
        batch_id = check_id(test_case_batch_job_id, argument="test_case_batch_job_id", provider="retell")
        params = {"limit": str(limit)}
        if pagination_key is not None:
            params["pagination_key"] = check_token(pagination_key, argument="pagination_key", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/v2/list-test-runs/{batch_id}", subject=f"batch test '{batch_id}'", params=params
        )

    async def get_test_case_definition(self, test_case_definition_id: str) -> dict[str, Any]:
        definition_id = check_id(test_case_definition_id, argument="test_case_definition_id", provider="retell")
        return await require(self._http, "retell").get_object(
            f"/get-test-case-definition/{definition_id}", subject=f"test case definition '{definition_id}'"
        )
