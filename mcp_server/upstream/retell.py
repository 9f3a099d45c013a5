"""Retell AI's test endpoints: the client and the models that document its objects."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mcp_server.upstream.http import VendorHTTP, require
from mcp_server.upstream.ids import check_id
from mcp_server.upstream.schema import VendorObject


class RetellTestRun(VendorObject):
    """A Retell test case job, exactly as Retell returns it (unknown fields pass through)."""

    test_case_job_id: str | None = None
    status: str | None = Field(default=None, description="pending, in_progress, pass, fail or error")
    test_case_definition_id: str | None = None
    test_case_definition_snapshot: dict[str, Any] | None = None
    creation_timestamp: int | None = Field(default=None, description="ms since epoch")
    user_modified_timestamp: int | None = Field(default=None, description="ms since epoch")
    transcript_snapshot: dict[str, Any] | None = None
    result_explanation: str | None = None


class RetellClient:
    """Reads Retell test runs; `http` is None when no Retell key is configured."""

    def __init__(self, http: VendorHTTP | None) -> None:
        self._http = http

    async def get_test_run(self, test_case_job_id: str) -> dict[str, Any]:
        job_id = check_id(test_case_job_id, argument="test_case_job_id", provider="retell")
        return await require(self._http, "retell").get_object(f"/get-test-run/{job_id}", subject=f"test run '{job_id}'")
