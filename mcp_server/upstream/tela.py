"""Tela's test-case endpoint: the client and the models that document its objects."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mcp_server.upstream.http import VendorHTTP, require
from mcp_server.upstream.ids import check_id
from mcp_server.upstream.schema import VendorObject


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


class TelaClient:
    """Reads Tela test cases; `http` is None when no Tela key is configured.

    People edit test cases, so they are cached only when the user sets `ttl`.
    """

    def __init__(self, http: VendorHTTP | None, *, ttl: float = 0.0) -> None:
        self._http = http
        self._ttl = ttl

    async def get_test_case(self, test_case_id: str, *, include_generations: bool = False) -> dict[str, Any]:
        case_id = check_id(test_case_id, argument="id", provider="tela")
        params = {"includeGenerations": "true"} if include_generations else None
        return await require(self._http, "tela").get_object(
            f"/test-case/{case_id}", subject=f"test case '{case_id}'", params=params, ttl=lambda case: self._ttl
        )

    async def list_test_cases(self, prompt_id: str, *, include_generations: bool = False) -> dict[str, Any]:
        checked = check_id(prompt_id, argument="prompt_id", provider="tela")
        params = {"promptId": checked, **({"includeGenerations": "true"} if include_generations else {})}
        return await require(self._http, "tela").get_object(
            "/test-case", subject=f"prompt '{checked}'", params=params, items=True, ttl=lambda cases: self._ttl
        )
