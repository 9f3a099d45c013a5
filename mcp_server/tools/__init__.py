"""The tools, one module per concern, each a module-level function declared by a `ToolSpec`. `TOOLS` is the order
`tools/list` gives them in: reads first, then what each opt-in level adds (`build_server` picks by setting)."""

from __future__ import annotations

from mcp_server.tools import edits, retell, tela, workflow
from mcp_server.tools.base import LEVELS, ToolSpec

TOOLS: tuple[ToolSpec, ...] = tuple(
    sorted((*retell.TOOLS, *workflow.TOOLS, *tela.TOOLS, *edits.TOOLS), key=lambda spec: LEVELS.index(spec.level))
)
