"""Tela's side of "what was tested": a prompt version's content, and a prompt's versions (issue 19, point 4)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tests.conftest import TELA_KEY, FakeVendors, connect, error_of, json_response, make_settings

pytestmark = pytest.mark.anyio

PROMPT_ID = "550e8400-e29b-41d4-a716-446655440001"
VERSION_ID = "550e8400-e29b-41d4-a716-446655440002"
VERSION = {"id": VERSION_ID, "promptId": PROMPT_ID, "title": "v2", "content": "You help with orders.",
           "configuration": {"model": "gpt-4.1", "type": "chat", "temperature": 0.2}, "variables": [],
           "messages": [{"role": "system", "content": "You help with orders."}], "promoted": False, "draft": True,
           "message": {"role": "system", "content": "You help with orders."}, "newField": None}  # fmt: skip
HISTORY = [
    {"id": VERSION_ID, "title": "v2", "draft": True, "promoted": False, "versionIndex": 2},
    {"id": "550e8400-e29b-41d4-a716-446655440004", "title": "v1", "draft": False, "promoted": True},
]


def tela(request: httpx2.Request) -> httpx2.Response:
    if request.url.path == f"/prompt-version/{VERSION_ID}":
        return json_response(200, VERSION)
    if request.url.path == "/prompt-version/history":
        return json_response(200, HISTORY)
    return json_response(404, {"message": "Not found"})


async def call(vendors: FakeVendors, tool: str, arguments: dict[str, Any], **settings: Any) -> Any:
    vendors.tela = tela
    async with connect(vendors, make_settings(settings or None)) as client:
        return await client.call_tool(tool, arguments)


async def test_a_prompt_version_is_returned_as_tela_sent_it(vendors: FakeVendors) -> None:
    """One authenticated GET to /prompt-version/{id}; every field, unknown ones and nulls included."""
    result = await call(vendors, "get_prompt_version", {"id": VERSION_ID})
    assert result.structured_content == VERSION and json.loads(result.content[0].text) == VERSION
    (request,) = vendors.requests
    assert str(request.url) == f"https://api.tela.com/prompt-version/{VERSION_ID}"
    assert request.headers["authorization"] == f"Bearer {TELA_KEY}"


async def test_a_prompts_versions_are_listed_newest_first_as_items(vendors: FakeVendors) -> None:
    """Tela's history (a bare array, newest first) comes back as {items}; limit and offset are sent as given."""
    result = await call(vendors, "list_prompt_versions", {"prompt_id": PROMPT_ID, "limit": 5, "offset": 10})
    assert result.structured_content == {"items": HISTORY}
    (request,) = vendors.requests
    assert str(request.url) == f"https://api.tela.com/prompt-version/history?promptId={PROMPT_ID}&limit=5&offset=10"


async def test_the_history_defaults_to_tela_s_own_page(vendors: FakeVendors) -> None:
    await call(vendors, "list_prompt_versions", {"prompt_id": PROMPT_ID})
    assert vendors.requests[0].url.params["limit"] == "20" and vendors.requests[0].url.params["offset"] == "0"


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("get_prompt_version", {"id": "v2"}),
        ("list_prompt_versions", {"prompt_id": "../prompt"}),
        ("list_prompt_versions", {"prompt_id": PROMPT_ID, "limit": 101}),
        ("list_prompt_versions", {"prompt_id": PROMPT_ID, "offset": -1}),
    ],
)
async def test_bad_arguments_never_reach_tela(vendors: FakeVendors, tool: str, arguments: dict[str, Any]) -> None:
    """A version or prompt ID that is no UUID, a page over Tela's 100, a negative offset: refused, nothing sent."""
    result = await call(vendors, tool, arguments)
    assert result.is_error is True and vendors.requests == []


async def test_an_unknown_version_is_not_found(vendors: FakeVendors) -> None:
    error = error_of(await call(vendors, "get_prompt_version", {"id": "550e8400-e29b-41d4-a716-446655440999"}))
    assert error["code"] == "not_found" and "prompt version '550e8400-e29b-41d4-a716-446655440999'" in error["message"]


async def test_versions_are_cached_only_when_the_user_opts_in(vendors: FakeVendors) -> None:
    """Drafts change, so like Tela's cases a version is read afresh each time unless cache_ttl_tela_seconds is set."""
    vendors.tela = tela
    for ttl, requests in ((0, 2), (60, 1)):
        vendors.requests.clear()
        async with connect(vendors, make_settings({"cache_ttl_tela_seconds": ttl})) as client:
            for _ in range(2):
                await client.call_tool("get_prompt_version", {"id": VERSION_ID})
        assert len(vendors.requests) == requests
