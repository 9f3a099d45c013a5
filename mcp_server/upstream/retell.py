"""Retell AI's test endpoints: the client and the models that document its objects."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mcp_server.upstream.http import VendorHTTP, require
from mcp_server.upstream.ids import check_id
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


class RetellClient:
    """Reads Retell test runs; `http` is None when no Retell key is configured."""

    def __init__(self, http: VendorHTTP | None) -> None:
        self._http = http

    async def get_test_run(self, test_case_job_id: str) -> dict[str, Any]:
        job_id = check_id(test_case_job_id, argument="test_case_job_id", provider="retell")
        return await require(self._http, "retell").get_object(f"/get-test-run/{job_id}", subject=f"test run '{job_id}'")
