"""The tools, one module per concern in each vendor's room, each a module-level function declared by a `ToolSpec`.
`TOOLS` is the order `tools/list` gives them in: reads first, then what each opt-in level adds (`build_server` picks
by setting). What every tool shares is beside this module: `base` (declaring and answering) and `writes`."""

from __future__ import annotations

from mcp_server.retell import calls_tools as retell_calls
from mcp_server.retell import edits as retell_edits
from mcp_server.retell import tools as retell_tools
from mcp_server.retell import workflow as retell_workflow
from mcp_server.tela import edits as tela_edits
from mcp_server.tela import runs_tools as tela_runs
from mcp_server.tela import tools as tela_tools
from mcp_server.tools.base import LEVELS, ToolSpec

TOOLS: tuple[ToolSpec, ...] = tuple(
    sorted(
        (
            *retell_tools.TOOLS,
            *retell_workflow.TOOLS,
            *retell_calls.TOOLS,
            *tela_tools.TOOLS,
            *tela_runs.TOOLS,
            *retell_edits.TOOLS,
            *tela_edits.TOOLS,
        ),
        key=lambda spec: LEVELS.index(spec.level),
    )
)
