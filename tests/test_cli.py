"""The command line: `call` on the demo data, exit codes, --version and --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mcp_server import __version__
from mcp_server.cli import main, parse_arguments
from mcp_server.demo import RETELL_RUNS, TELA_CASES


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    out, err = capsys.readouterr()
    code = caught.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_call_demo_prints_the_run_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """`call --demo get_test_run` prints the sample run's JSON on stdout and exits 0; nothing else on stdout."""
    code, out, err = run_main(capsys, "call", "--demo", "get_test_run", "test_case_job_id=tcj_demo_failed")
    assert code == 0
    assert json.loads(out) == RETELL_RUNS["tcj_demo_failed"]
    assert err == ""


def test_call_demo_types_arguments_by_the_tools_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`include_generations=true` becomes a boolean, so generations come back; the ID stays a string."""
    case_id = "550e8400-e29b-41d4-a716-446655440000"
    code, out, _ = run_main(capsys, "call", "--demo", "get_test_case", f"id={case_id}", "include_generations=true")
    assert code == 0
    assert json.loads(out) == TELA_CASES[case_id]
    code, out, _ = run_main(capsys, "call", "--demo", "get_test_case", f"id={case_id}")
    assert "generations" not in json.loads(out)


def test_call_demo_unknown_id_is_not_found_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """An ID the demo does not have gets the normal not_found error JSON on stdout, and exit code 1."""
    code, out, _ = run_main(capsys, "call", "--demo", "get_test_run", "test_case_job_id=nope")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "not_found"


def test_call_without_keys_is_not_configured_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --demo and without keys, the call explains how to configure the vendor."""
    code, out, _ = run_main(capsys, "call", "get_test_run", "test_case_job_id=abc")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "not_configured"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["call", "--demo", "no_such_tool"], "unknown tool 'no_such_tool' (tools: get_test_run, get_batch_test, "),
        (
            ["call", "--demo", "get_test_run", "job=1"],
            "unknown argument 'job' (expected: test_case_job_id, include_transcript)",
        ),
        (["call", "--demo", "get_test_run", "test_case_job_id"], "is not name=value"),
    ],
)
def test_call_usage_mistakes_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    """A wrong tool or argument name is a usage error: exit 2, one line on stderr, nothing on stdout."""
    code, out, err = run_main(capsys, *argv)
    assert (code, out) == (2, "")
    assert words in err and err.count("\n") == 1


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the version; --help shows the commands and examples."""
    code, out, _ = run_main(capsys, "--version")
    assert (code, out.strip()) == (0, f"retell-tela-mcp {__version__}")
    code, out, _ = run_main(capsys, "--help")
    assert code == 0 and "call" in out and "examples:" in out and "RETELL_API_KEY" in out


def test_module_entry_point_runs_the_cli() -> None:
    """`python -m mcp_server call --demo ...` works as the console script does."""
    process = subprocess.run(
        [sys.executable, "-m", "mcp_server", "call", "--demo", "get_test_run", "test_case_job_id=tcj_demo_passed"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["status"] == "pass"


def test_call_keeps_optional_string_arguments_as_text() -> None:
    """A numeric-looking value for a `string | null` argument (pagination_key=123) is sent as the text "123"."""
    schema = {"properties": {"pagination_key": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                             "limit": {"type": "integer"}, "flag": {"type": "boolean"}}}  # fmt: skip
    assert parse_arguments(["pagination_key=123", "limit=5", "flag=true"], schema) == {
        "pagination_key": "123",
        "limit": 5,
        "flag": True,
    }


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_call_pretty_prints_on_a_terminal_and_stays_compact_when_piped() -> None:
    """The Quick start's first command prints indented JSON to a terminal, and one compact line to a pipe (what a
    script or `| jq` reads), the same object either way."""
    import pty  # POSIX only, like this test

    command = [sys.executable, "-m", "mcp_server", "call", "--demo", "get_test_run", "test_case_job_id=tcj_demo_failed"]
    piped = subprocess.run(command, capture_output=True, timeout=60)
    main_fd, terminal = pty.openpty()
    with subprocess.Popen(command, stdout=terminal, stderr=subprocess.DEVNULL) as process:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=60) == 0
    os.close(main_fd)
    assert piped.stdout.count(b"\n") == 1
    assert shown.count(b"\n") > 20 and shown.startswith(b'{\r\n  "test_case_job_id"')
    assert json.loads(shown.replace(b"\r\n", b"\n")) == json.loads(piped.stdout)
