"""The floor: the least an MCP server on the same SDK can do for get_test_run.

One MCPServer tool that GETs the URL with one shared httpx2.AsyncClient and returns the JSON: no validation,
no retries, no error mapping, no caching. Our server is measured against this.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.server.mcpserver import Context, MCPServer


@asynccontextmanager
async def lifespan(server: MCPServer[httpx2.AsyncClient]) -> AsyncIterator[httpx2.AsyncClient]:
    headers = {"Authorization": f"Bearer {os.environ['RETELL_API_KEY']}"}
    async with httpx2.AsyncClient(base_url=os.environ["RETELL_BASE_URL"], headers=headers) as client:
        yield client


server: MCPServer[httpx2.AsyncClient] = MCPServer("floor", lifespan=lifespan)


@server.tool()
async def get_test_run(test_case_job_id: str, ctx: Context[httpx2.AsyncClient, Any]) -> dict[str, Any]:
    """Get a Retell test run."""
    response = await ctx.request_context.lifespan_context.get(f"/get-test-run/{test_case_job_id}")
    result: dict[str, Any] = response.json()
    return result


if __name__ == "__main__":
    server.run("stdio")
