"""Toolsets: a user of one vendor lists only that vendor's tools, prompts, resource templates and completions, and
stops paying for the other's tool definitions on every turn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import PromptReference, ResourceTemplateReference

from mcp_server.config import ConfigError, load_settings
from mcp_server.server import build_server
from tests.conftest import JOB_ID, FakeVendors, make_settings

pytestmark = pytest.mark.anyio


async def listing(settings: Any) -> dict[str, Any]:
    """Everything a client is shown, as the wire JSON of each listing."""
    async with Client(build_server(settings, transport=FakeVendors().transport())) as client:
        return {
            "tools": [t.model_dump(mode="json", by_alias=True) for t in (await client.list_tools()).tools],
            "prompts": [p.name for p in (await client.list_prompts()).prompts],
            "templates": [t.uri_template for t in (await client.list_resource_templates()).resource_templates],
            "resources": [r.uri for r in (await client.list_resources()).resources],
            "instructions": client.instructions,
        }


@pytest.mark.parametrize("allow_runs", [False, True])
async def test_one_toolset_lists_exactly_that_vendors_part_of_the_whole(allow_runs: bool) -> None:
    """With one toolset, tools/list is the full list's tools of that vendor, byte for byte and in order; the
    prompts, templates and view pages of the other vendor are gone too."""
    runs = {"allow_runs": allow_runs}
    both = await listing(make_settings(runs))
    retell = await listing(make_settings({**runs, "toolsets": ["retell", "calls"]}))
    tela = await listing(make_settings({**runs, "toolsets": ["tela", "calls"]}))
    tela_names = {"get_test_case", "list_test_cases", "get_prompt_version", "list_prompt_versions", "run_test_cases",
                  "list_completion_runs", "get_completion_run", "draft_test_case_from_run"}  # fmt: skip
    assert retell["tools"] == [t for t in both["tools"] if t["name"] not in tela_names]
    assert tela["tools"] == [t for t in both["tools"] if t["name"] in tela_names]
    assert {t["name"] for t in tela["tools"]} == tela_names - (set() if allow_runs else {"run_test_cases"})
    assert (retell["prompts"], tela["prompts"]) == (
        ["diagnose_test_run", "compare_batches", "test_from_call"],
        ["review_test_case", "test_from_completion_run"],
    )
    assert all(uri.startswith("retell://") for uri in retell["templates"]) and retell["templates"]
    assert tela["templates"] == ["tela://test-cases/{id}"]
    assert "Tela" not in retell["instructions"] and "Retell" not in tela["instructions"]
    assert both["templates"] == [*retell["templates"][:1], *tela["templates"], *retell["templates"][1:]]


async def test_a_toolset_left_out_completes_nothing() -> None:
    """Completions follow the toolsets: the served vendor's prompt completes the IDs its tools showed, and the
    template of the vendor left out completes nothing."""
    settings = make_settings({"toolsets": ["retell"]})
    async with Client(build_server(settings, transport=FakeVendors().transport()), mode="legacy") as client:
        await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
        run = await client.complete(
            PromptReference(name="diagnose_test_run"), {"name": "test_case_job_id", "value": ""}
        )
        case = await client.complete(
            ResourceTemplateReference(uri="tela://test-cases/{id}"), {"name": "id", "value": ""}
        )
    assert run.completion.values == [JOB_ID]
    assert case.completion.values == []


@pytest.mark.parametrize(
    ("env", "flags", "expected"),
    [
        ({}, {}, ["retell", "tela", "calls"]),
        ({"RETELL_TELA_MCP_TOOLSETS": "tela"}, {}, ["tela"]),
        ({"RETELL_TELA_MCP_TOOLSETS": "calls,tela"}, {}, ["tela", "calls"]),
        ({"RETELL_TELA_MCP_TOOLSETS": " tela , retell,tela"}, {}, ["retell", "tela"]),
        ({"RETELL_TELA_MCP_TOOLSETS": "tela"}, {"toolsets": "retell"}, ["retell"]),
    ],
)
def test_toolsets_come_from_a_comma_list_in_env_or_flag(
    env: dict[str, str], flags: dict[str, Any], expected: list[str]
) -> None:
    """A comma list (spaces and repeats forgiven), the flag above the variable; kept in one order."""
    assert load_settings(flags, env=env).toolsets == expected


@pytest.mark.parametrize(
    ("env", "file", "words"),
    [
        ({"RETELL_TELA_MCP_TOOLSETS": "retell,tella"}, None, "RETELL_TELA_MCP_TOOLSETS (toolsets): unknown toolset"),
        ({"RETELL_TELA_MCP_TOOLSETS": ","}, None, "names no vendor's toolset"),
        ({"RETELL_TELA_MCP_TOOLSETS": "calls"}, None, "names no vendor's toolset"),
        ({}, {"toolsets": ["jira"]}, "key 'toolsets': unknown toolset 'jira' (known: retell, tela, calls)"),
        ({}, {"toolsets": "retell"}, "key 'toolsets': input should be a valid list"),
    ],
)
def test_an_unknown_or_empty_toolset_stops_start_up_with_one_line(
    tmp_path: Path, env: dict[str, str], file: dict[str, Any] | None, words: str
) -> None:
    """An unknown name, or no vendor's toolset (`calls` alone lists nothing), is a one-line config error naming where
    it came from."""
    path = tmp_path / "config.json"
    if file is not None:
        path.write_text(json.dumps(file))
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env, config_path=path if file is not None else None)
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_the_cli_takes_toolsets_and_check_shows_them() -> None:
    """`--toolsets` reaches the settings, and `check` shows the value and where it came from."""
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server", "check", "--demo", "--toolsets", "tela"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("toolsets ")]
    assert row.split() == ["toolsets", "tela", "flag"]
    bad = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--toolsets", "nope"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown toolset 'nope'" in bad.stderr


def test_check_shows_which_call_transcript_is_shown_and_where_that_came_from() -> None:
    """`call_transcripts` is `scrubbed` by default; `full` from the environment; anything else stops start-up."""
    env = {**os.environ, "RETELL_TELA_MCP_CALL_TRANSCRIPTS": "full"}
    for extra, expected in (
        ({}, ["call_transcripts", "scrubbed", "default"]),
        (env, ["call_transcripts", "full", "env"]),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "mcp_server", "check", "--demo"],
            capture_output=True,
            text=True,
            timeout=30,
            env=extra or None,
        )
        (row,) = [line for line in done.stdout.splitlines() if line.startswith("call_transcripts ")]
        assert row.split() == expected
    with pytest.raises(ConfigError, match="call_transcripts"):
        load_settings(env={"RETELL_TELA_MCP_CALL_TRANSCRIPTS": "raw"})
