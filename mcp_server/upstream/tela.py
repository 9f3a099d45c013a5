"""Tela's test-case endpoint: the client and the models that document its objects."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mcp_server.upstream.http import VendorHTTP, require
from mcp_server.upstream.ids import check_id
from mcp_server.upstream.schema import VendorObject


class TelaTestCase(VendorObject):
    """A Tela test case, exactly as Tela returns it (camelCase names, nulls kept, unknown fields pass through)."""

    id: str | None = None
    title: str | None = None
    messages: list[dict[str, Any]] | None = None
    variables: dict[str, Any] | None = None
    variablesRichContent: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None
    promptId: str | None = None
    expectedOutput: str | None = None
    answers: dict[str, Any] | None = None
    promptApplicationId: str | None = None
    metadata: dict[str, Any] | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    deletedAt: str | None = None
    generations: list[Any] | None = Field(default=None, description="only with include_generations")


class TelaClient:
    """Reads Tela test cases; `http` is None when no Tela key is configured."""

    def __init__(self, http: VendorHTTP | None) -> None:
        self._http = http

    async def get_test_case(self, test_case_id: str, *, include_generations: bool = False) -> dict[str, Any]:
        case_id = check_id(test_case_id, argument="id", provider="tela")
        params = {"includeGenerations": "true"} if include_generations else None
        return await require(self._http, "tela").get_object(
            f"/test-case/{case_id}", subject=f"test case '{case_id}'", params=params
        )
