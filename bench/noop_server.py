"""The ceiling for any cache: a tool that returns a finished run from memory and does nothing else.

A cached read can be no faster than this on the same SDK and transport; the benchmark shows how close we are.
"""

from __future__ import annotations

import json
from typing import Any

from fake_vendor import run
from mcp.server.mcpserver import MCPServer

RUN = json.loads(run("finished-run"))
server = MCPServer("noop")


@server.tool()
async def get_test_run(test_case_job_id: str) -> dict[str, Any]:
    """Get a Retell test run (always the same one, from memory)."""
    return RUN


if __name__ == "__main__":
    server.run("stdio")
