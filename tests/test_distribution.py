"""What users install and read: README snippets, registry and bundle files, real third-party clients, logs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_server import __version__
from mcp_server.config import ENV_VARS
from mcp_server.demo import RETELL_RUNS, TELA_CASES
from mcp_server.server import WEBSITE_URL, build_server
from tests.conftest import TOOL_NAMES, FakeVendors, connect, make_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SERVER_JSON = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
MANIFEST = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))
NPM_TOOLS = {"@modelcontextprotocol/inspector": "2.12.0", "@anthropic-ai/mcpb": "2.1.2"}


async def listed_tools() -> list[Any]:
    async with connect(FakeVendors()) as client:
        return list((await client.list_tools()).tools)


def test_every_json_snippet_in_the_readme_parses() -> None:
    """Each ```json block is valid JSON, and each client config names an absolute command for the server."""
    blocks = re.findall(r"```json\n(.*?)```", README, re.S)
    assert len(blocks) >= 4
    configs = [json.loads(block) for block in blocks]
    servers = [c.get("mcpServers", c.get("servers", {})).get("retell-tela") for c in configs]
    commands = [s["command"] for s in servers if s]
    assert len(commands) == 3 and all(c.startswith("/") and c.endswith("retell-tela-mcp") for c in commands)


@pytest.mark.anyio
async def test_readme_tool_tables_match_the_server_at_every_level_and_toolset() -> None:
    """The README's tool tables list exactly what the server lists, in order: the reads by default, the run tools'
    table after them with allow_runs, the edit tools' after those with allow_edits; and each toolset's tools are
    the rows whose upstream is that vendor's."""
    section = README.split("## Tools\n", 1)[1].split("\n## ", 1)[0]
    reads, rest = section.split("### Starting runs", 1)
    runs, edits = rest.split("### Writing tests and drafting fixes", 1)
    rows = {name: re.findall(r"^\| `([a-z_]+)` \| [^|]* \| ([A-Za-z]+)", table, re.M)
            for name, table in (("reads", reads), ("runs", runs), ("edits", edits))}  # fmt: skip
    names = {level: [tool for tool, _ in found] for level, found in rows.items()}
    for flags, expected in (({}, names["reads"]), ({"allow_runs": True}, names["reads"] + names["runs"]),
                            ({"allow_runs": True, "allow_edits": True}, [*names["reads"], *names["runs"],
                                                                         *names["edits"]])):  # fmt: skip
        async with connect(FakeVendors(), make_settings(flags)) as client:
            assert expected == [t.name for t in (await client.list_tools()).tools], flags
    every = dict(found for table in rows.values() for found in table)
    flags = {"allow_runs": True, "allow_edits": True}
    for toolset, vendor in (("retell", "Retell"), ("tela", "Tela")):
        async with connect(FakeVendors(), make_settings({**flags, "toolsets": [toolset, "calls"]})) as client:
            listed = [t.name for t in (await client.list_tools()).tools]
        assert listed and all(every[name] == vendor for name in listed), (toolset, listed)
        assert sorted(listed) == sorted(name for name, owner in every.items() if owner == vendor)


@pytest.mark.anyio
async def test_initialize_carries_version_instructions_and_website() -> None:
    """The server introduces itself: name, version, one paragraph of instructions, a website URL."""
    async with Client(build_server(make_settings())) as client:
        info = client.server_info
        instructions = client.instructions
    assert info is not None and (info.name, info.version, info.website_url) == ("retell-tela", __version__, WEBSITE_URL)
    assert instructions is not None and "\n" not in instructions and "UUID" in instructions


def test_server_json_follows_the_registry_rules_and_the_package() -> None:
    """server.json: reverse-DNS name, description <= 100 chars, exact versions equal to the package's, PyPI stdio
    package, both keys as secret environment variables; the README carries the ownership marker."""
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", SERVER_JSON["name"])
    assert 1 <= len(SERVER_JSON["description"]) <= 100
    assert SERVER_JSON["version"] == PYPROJECT["project"]["version"]
    (package,) = SERVER_JSON["packages"]
    assert set(package) <= {"registryType", "registryBaseUrl", "identifier", "version", "runtimeHint", "transport",
                            "environmentVariables", "packageArguments", "runtimeArguments", "fileSha256"}  # fmt: skip
    assert (package["registryType"], package["registryBaseUrl"]) == ("pypi", "https://pypi.org")
    assert package["identifier"] == PYPROJECT["project"]["name"]
    assert package["version"] == PYPROJECT["project"]["version"]
    assert package["transport"] == {"type": "stdio"}
    variables = {v["name"]: v for v in package["environmentVariables"]}
    assert set(variables) == {ENV_VARS["retell.api_key"], ENV_VARS["tela.api_key"]}
    assert all(v["isSecret"] is True for v in variables.values())
    assert f"mcp-name: {SERVER_JSON['name']}" in README


@pytest.mark.anyio
async def test_bundle_manifest_matches_the_package_and_marks_keys_sensitive() -> None:
    """manifest.json: same name, version and tools as the server; each key a sensitive user setting wired to its
    environment variable."""
    assert (MANIFEST["name"], MANIFEST["version"]) == (PYPROJECT["project"]["name"], PYPROJECT["project"]["version"])
    tools = await listed_tools()
    assert [(t["name"], t["description"]) for t in MANIFEST["tools"]] == [(t.name, t.description) for t in tools]
    assert all(setting["sensitive"] is True for setting in MANIFEST["user_config"].values())
    assert MANIFEST["server"]["mcp_config"]["env"] == {
        "RETELL_API_KEY": "${user_config.retell_api_key}",
        "TELA_API_KEY": "${user_config.tela_api_key}",
    }


@pytest.fixture(scope="session")
def npm_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned Inspector and bundle tool from the npm registry, installed once into a per-user cache."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed: the Inspector CLI and mcpb tests need them")
    tag = "-".join(f"{name.rsplit('/', 1)[1]}{version}" for name, version in NPM_TOOLS.items())
    prefix = Path.home() / ".cache" / "retell-tela-mcp" / f"npm-{tag}"
    bin_dir = prefix / "node_modules" / ".bin"
    if not (bin_dir / "mcp-inspector").exists() or not (bin_dir / "mcpb").exists():
        specs = [f"{name}@{version}" for name, version in NPM_TOOLS.items()]
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(prefix), *specs],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            reason = f"npm install failed: {done.stderr.strip()[-300:]}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
    return bin_dir


def test_bundle_manifest_passes_mcpb_validate(npm_bin: Path) -> None:
    """The bundle tool itself accepts manifest.json."""
    done = subprocess.run([str(npm_bin / "mcpb"), "validate", str(ROOT / "manifest.json")], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passes" in done.stdout


def inspector(npm_bin: Path, *method: str) -> Any:
    """Run the MCP Inspector's CLI against our server (demo data) over stdio; return the JSON it prints."""
    script = Path(sys.executable).parent / "retell-tela-mcp"
    if not script.exists():
        pytest.skip(f"the console script is not installed next to {sys.executable}")
    done = subprocess.run(
        [str(npm_bin / "mcp-inspector"), "--cli", str(script), "--demo", "--method", *method],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_inspector_cli_lists_tools_and_templates(npm_bin: Path) -> None:
    """The official MCP Inspector, as a real third-party client, sees both tools and both resource templates."""
    tools = inspector(npm_bin, "tools/list")["tools"]
    assert [t["name"] for t in tools] == TOOL_NAMES
    assert all(t["annotations"]["readOnlyHint"] is True for t in tools)
    templates = inspector(npm_bin, "resources/templates/list")["resourceTemplates"]
    assert [t["uriTemplate"] for t in templates][:2] == [
        "retell://test-runs/{test_case_job_id}",
        "tela://test-cases/{id}",
    ]


def test_inspector_cli_calls_both_tools(npm_bin: Path) -> None:
    """Through the Inspector, each tool returns the demo record as structuredContent and as compact text."""
    run = inspector(
        npm_bin, "tools/call", "--tool-name", "get_test_run", "--tool-arg", "test_case_job_id=tcj_demo_failed"
    )
    assert run["structuredContent"] == RETELL_RUNS["tcj_demo_failed"]
    case_id = "550e8400-e29b-41d4-a716-446655440000"
    case = inspector(npm_bin, "tools/call", "--tool-name", "get_test_case", "--tool-arg", f"id={case_id}")
    assert json.loads(case["content"][0]["text"]) == {
        k: v for k, v in TELA_CASES[case_id].items() if k != "generations"
    }


def test_each_call_logs_one_json_line_with_its_outcome_and_never_a_body() -> None:
    """At INFO with --log-format json, a call logs one line: tool, vendor, outcome, status, ms, cache; no body."""
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server", "call", "--demo", "--log-level", "INFO", "--log-format", "json",
         "get_test_run", "test_case_job_id=tcj_demo_failed"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    calls = [line for line in lines if line.get("tool")]
    assert len(calls) == 1
    assert {k: calls[0][k] for k in ("tool", "vendor", "outcome", "status", "cache")} == {
        "tool": "get_test_run", "vendor": "retell", "outcome": "ok", "status": 200, "cache": "miss"
    }  # fmt: skip
    assert isinstance(calls[0]["ms"], float) and calls[0]["level"] == "INFO"
    assert "refund" not in done.stderr  # the run's content stays out of the logs
