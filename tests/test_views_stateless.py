"""MCP App views over `serve --transport http --stateless`: offered only where they can be given. A handshake-era
request there reaches a fresh session that never saw the client's `initialize`; a 2026-07-28 request carries the
client's capabilities itself."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_server.views import BATCH_URI, COMPARE_URI, RUN_URI, TOOL_VIEWS
from tests.test_http import http_server
from tests.test_views import APP_MIME, UI, apps_extension

pytestmark = pytest.mark.anyio

ALL_OF_THEM = (
    {tool: {"ui": {"resourceUri": uri}} for tool, uri in TOOL_VIEWS.items()},
    [BATCH_URI, COMPARE_URI, RUN_URI],
    {UI: {}},
)
NONE_OF_THEM: tuple[dict[str, Any], list[str], None] = ({}, [], None)


async def views_seen(url: str, mode: Literal["legacy", "auto"]) -> tuple[dict[str, Any], list[str], Any]:
    """What a client that declared the extension is shown: the tools' view links, the `ui://` pages listed and the
    server's extensions (from `initialize`, or from `server/discover` under 2026-07-28)."""
    async with Client(streamable_http_client(f"{url}/mcp"), mode=mode, extensions=[apps_extension()]) as client:
        capabilities = client.server_capabilities
        links = {tool.name: tool.meta for tool in (await client.list_tools()).tools if tool.meta}
        resources = (await client.list_resources()).resources
        pages = sorted(resource.uri for resource in resources if resource.mime_type == APP_MIME)
        for uri in pages:  # a listed page can be read, on a request of its own
            (content,) = (await client.read_resource(uri)).contents
            assert content.mime_type == APP_MIME
        return links, pages, capabilities.extensions if capabilities else None


async def test_stateless_handshake_era_clients_are_not_promised_views_they_cannot_get() -> None:
    """--stateless, protocol 2025-11-25: a client that declared the extension in `initialize` is not told the server
    has it, and no tool links a view and no page is listed: the same as for a client that declared nothing, since
    its later requests cannot show that it declared anything."""
    with http_server("--stateless") as url:
        assert await views_seen(url, "legacy") == NONE_OF_THEM


@pytest.mark.parametrize(
    ("extra", "mode"),
    [(("--stateless",), "auto"), ((), "legacy")],
    ids=["stateless 2026-07-28", "sessions 2025-11-25"],
)
async def test_views_are_advertised_and_given_where_each_request_knows_its_client(
    extra: tuple[str, ...], mode: Literal["legacy", "auto"]
) -> None:
    """Under 2026-07-28 each request carries the client's capabilities, so a stateless server shows the views; with
    sessions the handshake is remembered: either way the extension, the four links and the three pages."""
    with http_server(*extra) as url:
        assert await views_seen(url, mode) == ALL_OF_THEM
