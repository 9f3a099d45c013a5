"""Context cost: tokens a client spends on this server's tool list and on typical results.

    .venv/bin/python bench/tokens.py

Counts with Anthropic's published Claude tokenizer (npm `@anthropic-ai/tokenizer`, an approximation of current
models' tokenizers) when Node is installed, else estimates 1 token per 4 bytes. Compares the tool list as sent
on the wire with the SDK floor's and the Node peer's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from bench.run import install_peer  # noqa: E402
from mcp_server.config import load_settings  # noqa: E402
from mcp_server.demo import demo_settings, demo_transport  # noqa: E402
from mcp_server.server import build_server  # noqa: E402

TOKENIZER = "@anthropic-ai/tokenizer@0.0.4"
TOKENIZER_DIR = Path.home() / ".cache" / "retell-tela-mcp" / "bench-tokenizer"


def count(texts: list[str]) -> tuple[list[int], str]:
    if shutil.which("node") and shutil.which("npm"):
        if not (TOKENIZER_DIR / "node_modules" / "@anthropic-ai" / "tokenizer").exists():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(TOKENIZER_DIR),
                            TOKENIZER], check=True, capture_output=True)  # fmt: skip
        script = TOKENIZER_DIR / "count_tokens.mjs"
        shutil.copy(HERE / "count_tokens.mjs", script)
        done = subprocess.run(
            ["node", str(script)], input=json.dumps(texts), capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout), "Claude tokenizer"
    return [len(t.encode()) // 4 for t in texts], "estimate: bytes / 4"


def model_visible(tools_list: str) -> str:
    """What a model is shown of each tool: its name, description and input schema (not titles, annotations or
    output schemas, which clients keep for themselves)."""
    tools = json.loads(tools_list)["tools"]
    keep = ("name", "description", "inputSchema")
    return json.dumps([{key: tool[key] for key in keep if key in tool} for tool in tools], separators=(",", ":"))


def wire(model: object) -> str:
    return json.dumps(model.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":"))  # type: ignore[attr-defined]


async def tools_list_of(command: list[str], env: dict[str, str]) -> str:
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull), mode="legacy") as client:
            return wire(await client.list_tools())


# What the README promises of the model-visible tool list, in bytes (tokens vary by model; bytes do not): every read
# tool, each vendor's alone (calls included: the default), and without the calls toolset.
BUDGETS = {"reads, both vendors": 8000, "reads, Retell alone": 5800, "reads, Tela alone": 2400}
SURFACES: dict[str, dict[str, Any]] = {
    "reads, both vendors": {},
    "reads, Retell alone": {"toolsets": ["retell", "calls"]},
    "reads, Tela alone": {"toolsets": ["tela", "calls"]},
    "reads, without calls": {"toolsets": ["retell", "tela"]},
    "reads and runs (allow_runs)": {"allow_runs": True},
    "reads, runs and edits (allow_runs, allow_edits)": {"allow_runs": True, "allow_edits": True},
}


async def tools_list(flags: dict[str, Any]) -> str:
    """tools/list as the wire carries it, from the demo server with these settings."""
    server = build_server(demo_settings(load_settings(flags, env={})), transport=demo_transport())
    async with Client(server, mode="legacy") as client:
        return wire(await client.list_tools())


async def model_visible_surfaces() -> dict[str, tuple[int, str]]:
    """Each surface's model-visible tool list: (tool count, text)."""
    surfaces = {}
    for name, flags in SURFACES.items():
        listed = await tools_list(flags)
        surfaces[name] = (len(json.loads(listed)["tools"]), model_visible(listed))
    return surfaces


async def main() -> None:
    texts = {
        f"model-visible tools, {name} ({tools} tools)": text
        for name, (tools, text) in (await model_visible_surfaces()).items()
    }
    ours = await tools_list({})
    everything = await tools_list(SURFACES["reads, runs and edits (allow_runs, allow_edits)"])
    server = build_server(demo_settings(load_settings(env={})), transport=demo_transport())
    async with Client(server, mode="legacy") as client:
        run = await client.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_failed"})
        case = await client.call_tool("get_test_case", {"id": "550e8400-e29b-41d4-a716-446655440000"})
        missing = await client.call_tool("get_test_run", {"test_case_job_id": "nope"})
    env = {**os.environ, "RETELL_API_KEY": "key_tokens_0123456789", "RETELL_BASE_URL": "http://127.0.0.1:9"}
    texts |= {
        f"tools/list on the wire (reads, {len(json.loads(ours)['tools'])} tools, with output schemas)": ours,
        f"tools/list on the wire (everything, {len(json.loads(everything)['tools'])} tools)": everything,
        "tools/list (SDK floor, 1 tool)": await tools_list_of([sys.executable, str(HERE / "floor_server.py")], env),
        "result text: failed Retell run (demo)": run.content[0].text,
        "result text: Tela test case (demo)": case.content[0].text,
        "error text: not_found": missing.content[0].text,
    }
    peer = install_peer()
    if peer is not None:
        texts["tools/list (Node peer)"] = await tools_list_of(["node", peer], env)
    tokens, how = count(list(texts.values()))
    sys.stdout.write(f"| what | bytes | tokens ({how}) |\n|---|---|---|\n")
    for (name, text), n in zip(texts.items(), tokens, strict=True):
        sys.stdout.write(f"| {name} | {len(text.encode()):,} | {n:,} |\n")


if __name__ == "__main__":
    anyio.run(main)
