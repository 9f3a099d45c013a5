"""End to end: the real `python -m mcp_server` process over stdio, against a loopback HTTP server as the vendors."""

from __future__ import annotations

import ast
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import INVALID_REQUEST, PARSE_ERROR

from bench.fake_vendor import big_run
from mcp_server.config import CONFIG_ENV_VAR, ENV_VARS
from tests.conftest import CASE_ID, JOB_ID, RETELL_KEY, RETELL_RUN, TELA_CASE, TELA_KEY, TOOL_NAMES
from tests.loopback import LoopbackVendor, Reply, loopback_vendor


def route(path: str) -> Reply:
    """Retell and Tela on one port: real objects for the known IDs, the vendors' error shapes otherwise."""
    if path == f"/get-test-run/{JOB_ID}":
        return Reply(200, RETELL_RUN)
    if path == f"/test-case/{CASE_ID}":
        return Reply(200, TELA_CASE)
    if path == "/get-test-run/leaky":
        return Reply(401, {"status": "error", "message": f"API key {RETELL_KEY} is invalid"})
    if path == "/get-test-run/broken":
        return Reply(500, {"status": "error", "message": "Internal error"})
    if path == "/get-test-run/garbled":
        return Reply(200, b"<html>oops</html>")
    return Reply(404, {"status": "error", "message": "Not Found"})


@pytest.fixture
def vendor() -> Iterator[LoopbackVendor]:
    with loopback_vendor(route) as running:
        yield running


def server_env(vendor: LoopbackVendor, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*ENV_VARS.values(), CONFIG_ENV_VAR)}
    return {
        **env,
        "RETELL_API_KEY": RETELL_KEY,
        "TELA_API_KEY": TELA_KEY,
        "RETELL_BASE_URL": vendor.url,
        "TELA_BASE_URL": vendor.url,
        "RETELL_TELA_MCP_MAX_RETRIES": "0",
        **extra,
    }


@pytest.mark.anyio
async def test_real_process_serves_tools_over_stdio_with_keys_kept_out_of_stderr(vendor: LoopbackVendor) -> None:
    """Over real stdio: tools list, a real fetch with the right key, contract errors; at DEBUG, no key on stderr."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server"], env=server_env(vendor, RETELL_TELA_MCP_LOG_LEVEL="DEBUG")
    )
    with tempfile.TemporaryFile("w+") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            assert client.server_info is not None and client.server_info.name == "retell-tela"
            names = [t.name for t in (await client.list_tools()).tools]
            run = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
            case = await client.call_tool("get_test_case", {"id": CASE_ID})
            errors = {
                job: json.loads((await client.call_tool("get_test_run", {"test_case_job_id": job})).content[0].text)
                for job in ("missing", "leaky", "broken", "garbled", "../etc")
            }
        errlog.seek(0)
        stderr = errlog.read()

    assert names == TOOL_NAMES
    assert run.structured_content == RETELL_RUN
    assert case.structured_content == TELA_CASE
    assert {job: e["error"]["code"] for job, e in errors.items()} == {
        "missing": "not_found",
        "leaky": "unauthorized",
        "broken": "upstream_error",
        "garbled": "bad_upstream_response",
        "../etc": "invalid_argument",
    }
    retell_auth = {s.headers["authorization"] for s in vendor.seen if s.path.startswith("/get-test-run/")}
    tela_auth = {s.headers["authorization"] for s in vendor.seen if s.path.startswith("/test-case/")}
    assert retell_auth == {f"Bearer {RETELL_KEY}"} and tela_auth == {f"Bearer {TELA_KEY}"}
    assert "DEBUG" in stderr and "tool=get_test_run" in stderr  # logging really ran at DEBUG
    everything = stderr + json.dumps(errors)
    for key in (RETELL_KEY, TELA_KEY):
        assert not [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in everything]


def jsonrpc(id_: int | None, method: str, params: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        message["id"] = id_
    if params is not None:
        message["params"] = params
    return json.dumps(message)


def test_stdout_is_only_json_rpc_bad_lines_do_not_end_the_server_and_eof_exits_0(vendor: LoopbackVendor) -> None:
    """Malformed input lines are answered with parse errors and do not end the server; every stdout line is
    JSON-RPC; EOF on stdin exits with 0."""
    with started(vendor) as process:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None

        def send(line: str) -> None:
            assert process.stdin is not None
            process.stdin.write((line + "\n").encode())
            process.stdin.flush()

        def answers(count: int = 1) -> list[dict[str, Any]]:
            messages = read_answers(process, count)  # any non-JSON line fails here, and a missing one in time
            assert all(message["jsonrpc"] == "2.0" for message in messages)
            return messages

        send(jsonrpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                       "clientInfo": {"name": "raw", "version": "0"}}))  # fmt: skip
        assert answers()[0]["result"]["serverInfo"]["name"] == "retell-tela"
        send(jsonrpc(None, "notifications/initialized"))
        send("this is not json")
        send('{"jsonrpc": "2.0", "id": 2, "method":')
        assert [(a["id"], a["error"]["code"]) for a in answers(2)] == [(None, PARSE_ERROR)] * 2
        send(jsonrpc(3, "tools/call", {"name": "get_test_run", "arguments": {"test_case_job_id": JOB_ID}}))
        assert answers()[0]["result"]["structuredContent"] == RETELL_RUN
        send(jsonrpc(4, "tools/call", {"name": "get_test_run", "arguments": {"test_case_job_id": "missing"}}))
        missing = answers()[0]["result"]
        assert missing["isError"] is True
        assert json.loads(missing["content"][0]["text"])["error"]["code"] == "not_found"
        process.stdin.close()
        assert process.wait(timeout=10) == 0
        assert process.stdout.read() == b""
        assert b"Traceback" not in process.stderr.read()


INITIALIZE = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
CALL = {"name": "get_test_run", "arguments": {"test_case_job_id": JOB_ID}}


@contextmanager
def started(vendor: LoopbackVendor, *python: str, cache_ttl: str = "600") -> Iterator[subprocess.Popen[bytes]]:
    """The server process (or `python` arguments that run it) on pipes; killed and its pipes closed at the end."""
    process = subprocess.Popen(
        [sys.executable, *(python or ("-m", "mcp_server"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env(vendor, RETELL_TELA_MCP_CACHE_TTL=cache_ttl),
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_a_library_writing_to_fd_1_cannot_corrupt_the_stream(vendor: LoopbackVendor) -> None:
    """A thread in the server process writes to fd 1 every millisecond from the moment the server's code is loaded
    (as a careless library, at import or later, or a child might): those bytes land on stderr, and stdout carries
    only the answers."""
    noisy = (
        "import os, sys, threading, time\n"
        "def noise():\n"
        "    while 'mcp_server.server' not in sys.modules: time.sleep(0.0005)\n"
        "    while True:\n"
        "        os.write(1, b'stray bytes\\n'); time.sleep(0.001)\n"
        "threading.Thread(target=noise, daemon=True).start()\n"
        "from mcp_server.cli import main; main()\n"
    )
    with started(vendor, "-c", noisy) as process:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        for message in (jsonrpc(1, "initialize", INITIALIZE), jsonrpc(None, "notifications/initialized")):
            process.stdin.write((message + "\n").encode())
        process.stdin.write((jsonrpc(2, "tools/call", CALL) + "\n").encode())
        process.stdin.flush()
        answers = [json.loads(process.stdout.readline()) for _ in range(2)]  # a stray line would not parse
        process.stdin.close()
        assert process.wait(timeout=10) == 0
        rest = process.stdout.read()
        stderr = process.stderr.read()
    assert [a["id"] for a in answers] == [1, 2] and answers[1]["result"]["structuredContent"] == RETELL_RUN
    assert rest == b""  # nor after the end of the session
    assert b"stray bytes" in stderr


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_an_overlong_input_line_is_dropped_without_being_held(vendor: LoopbackVendor) -> None:
    """64 MiB without a newline, then a request: the request is answered, and the server's peak memory grew by
    far less than the line (it is dropped as it arrives, past 4 MiB), where a line reader would hold it whole."""
    with started(vendor) as process:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        process.stdin.write((jsonrpc(1, "initialize", INITIALIZE) + "\n").encode())
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1
        before = status_kib(process.pid, "VmHWM")
        chunk = b"x" * (1024 * 1024)
        for _ in range(64):
            process.stdin.write(chunk)
        process.stdin.write(b"\n" + (jsonrpc(2, "tools/call", CALL) + "\n").encode())
        process.stdin.flush()
        answer = json.loads(process.stdout.readline())
        grew_mib = (status_kib(process.pid, "VmHWM") - before) / 1024
        process.stdin.close()
        assert process.wait(timeout=10) == 0
        stderr = process.stderr.read()
    assert answer["id"] == 2 and answer["result"]["structuredContent"] == RETELL_RUN
    assert grew_mib < 24, f"peak memory grew {grew_mib:.0f} MiB for a 64 MiB line"
    assert b"ignored an input line longer than" in stderr


def test_stdin_from_a_file_is_served_by_the_sdk_transport(vendor: LoopbackVendor, tmp_path: Path) -> None:
    """A regular file cannot be polled, so there the SDK's threaded transport serves (as on Windows): the request
    in the file is answered and its end ends the process with 0."""
    requests = tmp_path / "requests.jsonl"
    requests.write_text(jsonrpc(1, "initialize", INITIALIZE) + "\n")
    with requests.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "mcp_server"], stdin=stdin, capture_output=True, env=server_env(vendor), timeout=30
        )
    answers = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [a["id"] for a in answers] == [1] and answers[0]["result"]["serverInfo"]["name"] == "retell-tela"
    assert done.returncode == 0


def big_route(path: str) -> Reply:
    """Runs of ~9.6 MiB made of 110,000 small turns, each with its own text: the costliest shape once parsed."""
    job_id = path.rsplit("/", 1)[1]
    if not job_id.startswith("big-"):
        return route(path)
    return Reply(200, big_run(job_id))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_memory_returns_near_idle_after_concurrent_large_answers() -> None:
    """Four concurrent ~9.6 MiB answers, cache off: the server's memory afterwards is within 40 MiB of idle (the
    burst's peak is several hundred): the writer keeps no answer once written, glibc hands body-sized buffers back,
    and the JSON parser's string cache holds no values to pin pymalloc arenas."""
    with loopback_vendor(big_route) as vendor, started(vendor, cache_ttl="0") as process:
        assert process.stdin is not None and process.stdout is not None
        hello = [jsonrpc(1, "initialize", INITIALIZE), jsonrpc(None, "notifications/initialized")]
        process.stdin.write(("\n".join(hello) + "\n").encode())
        process.stdin.write((jsonrpc(2, "tools/call", CALL) + "\n").encode())
        process.stdin.flush()
        assert [json.loads(process.stdout.readline())["id"] for _ in range(2)] == [1, 2]
        idle = status_kib(process.pid, "VmRSS")
        for n in range(4):
            call = {"name": "get_test_run", "arguments": {"test_case_job_id": f"big-{n}"}}
            process.stdin.write((jsonrpc(10 + n, "tools/call", call) + "\n").encode())
        process.stdin.flush()
        answers = [json.loads(process.stdout.readline()) for _ in range(4)]
        assert sorted(a["id"] for a in answers) == [10, 11, 12, 13]
        runs = [a["result"]["structuredContent"] for a in answers]
        assert all(len(run["transcript_snapshot"]["transcript"]) == 110_000 for run in runs)
        del answers, runs
        time.sleep(0.5)
        peak, after = status_kib(process.pid, "VmHWM"), status_kib(process.pid, "VmRSS")
    assert peak - idle > 200 * 1024  # the burst was real
    assert after - idle < 40 * 1024, f"idle {idle // 1024} MiB, after {after // 1024} MiB"


HELLO = [jsonrpc(1, "initialize", INITIALIZE), jsonrpc(None, "notifications/initialized")]
# The server's own command line, as a client on Windows runs it; `platform` plays that operating system's paths.
AS_WINDOWS = ("-c", "from mcp_server.cli import main; main(platform='win32')")


def read_lines(process: subprocess.Popen[bytes], count: int, timeout: float = 15.0) -> list[bytes]:
    """The next `count` lines of stdout, failing (not hanging) when they do not come within `timeout`."""
    assert process.stdout is not None
    fd, pending, lines = process.stdout.fileno(), b"", []
    end = time.monotonic() + timeout
    while len(lines) < count:
        if not select.select([fd], [], [], max(0.0, end - time.monotonic()))[0]:
            raise AssertionError(f"{len(lines)} of {count} answers within {timeout:g} s")
        chunk = os.read(fd, 65536)
        assert chunk, f"stdout closed after {len(lines)} of {count} answers"
        *complete, pending = (pending + chunk).split(b"\n")
        lines += complete
    assert len(lines) == count and not pending, f"more than {count} answers"
    return lines


def read_answers(process: subprocess.Popen[bytes], count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The next `count` lines of stdout as JSON, failing (not hanging) when they do not come within `timeout`."""
    return [json.loads(line) for line in read_lines(process, count, timeout)]


@contextmanager
def on_sockets(
    vendor: LoopbackVendor, stdin: socket.socket, stdout: socket.socket
) -> Iterator[subprocess.Popen[bytes]]:
    """The server process with these sockets as stdin and stdout (the same one twice is one socket for both); our
    copies of them are closed once the child has its own, and the process is killed at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server"],
        stdin=stdin.fileno(),
        stdout=stdout.fileno(),
        stderr=subprocess.PIPE,
        env=server_env(vendor),
    )
    stdin.close()
    stdout.close()
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()


def _finish(process: subprocess.Popen[bytes], timeout: float = 10) -> tuple[int, str]:
    """The exit code and stderr of a process whose pipes the test may already have closed."""
    code = process.wait(timeout=timeout)
    stderr = process.stderr.read().decode() if process.stderr is not None and not process.stderr.closed else ""
    return code, stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_on_windows_the_sdk_transport_serves_and_signals_stop_it_with_exit_0(
    vendor: LoopbackVendor, signum: signal.Signals
) -> None:
    """Windows' event loop has neither pipe polling nor `add_signal_handler`: played with `main(platform=...)`, the
    server serves on the SDK's threaded transport and takes signals through Python's own handlers (what Windows
    calls for Ctrl+C), so a request is answered and the signal ends it with 0 and no traceback."""
    with started(vendor, *AS_WINDOWS) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(("\n".join([*HELLO, jsonrpc(2, "tools/call", CALL)]) + "\n").encode())
        process.stdin.flush()
        answers = [json.loads(process.stdout.readline()) for _ in range(2)]
        threads = status_kib(process.pid, "Threads") if Path("/proc").exists() else None
        process.send_signal(signum)
        code, stderr = _finish(process)
    assert [a["id"] for a in answers] == [1, 2] and answers[1]["result"]["structuredContent"] == RETELL_RUN
    assert threads is None or threads > 1  # the SDK's transport reads stdin in a worker thread
    assert code == 0, stderr
    assert f"received {signum.name}; shutting down" in stderr
    assert "Traceback" not in stderr


def test_on_windows_eof_ends_the_server_with_exit_0(vendor: LoopbackVendor) -> None:
    """On the Windows paths, a client closing stdin ends the server as everywhere: exit 0, nothing more on stdout."""
    with started(vendor, *AS_WINDOWS) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write((HELLO[0] + "\n").encode())
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1
        process.stdin.close()
        code, stderr = _finish(process)
        assert process.stdout.read() == b""
    assert code == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("closes", ["both pipes", "stdout, then a request", "stdout, then stdin"])
def test_a_client_that_goes_away_ends_the_server_with_exit_0_and_no_traceback(
    vendor: LoopbackVendor, closes: str
) -> None:
    """A client that quits or crashes closes the server's pipes (or only stdout, as `| head` does): the server
    ends with 0 and writes no traceback into the client's log."""
    with started(vendor) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write((HELLO[0] + "\n").encode())
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1
        process.stdout.close()
        if closes == "stdout, then a request":
            process.stdin.write((jsonrpc(2, "tools/call", CALL) + "\n").encode())
            process.stdin.flush()
        else:
            process.stdin.close()
        code, stderr = _finish(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Error" not in stderr


def test_a_client_on_socket_pairs_that_quits_ends_the_server_with_exit_0() -> None:
    """Node clients (libuv) hand a child one socket pair for stdin and another for stdout; when the client process
    exits, both close at once: exit 0, no traceback."""
    ours_in, theirs_in = socket.socketpair()
    ours_out, theirs_out = socket.socketpair()
    with loopback_vendor(route) as vendor, on_sockets(vendor, theirs_in, theirs_out) as process:
        ours_in.sendall((jsonrpc(1, "initialize", INITIALIZE) + "\n").encode())
        assert json.loads(ours_out.makefile("rb").readline())["id"] == 1
        ours_in.close()
        ours_out.close()
        code, stderr = _finish(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_stdin_from_the_null_device_ends_at_once_with_exit_0() -> None:
    """`retell-tela-mcp --demo </dev/null | cat`: the null device cannot be polled (epoll refuses it), so the SDK's
    transport reads it, sees the end at once, and the server exits 0 instead of waiting for ever."""
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--demo"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"" and b"Traceback" not in done.stderr


def test_one_socket_for_stdin_and_stdout_serves_every_request() -> None:
    """socat `EXEC:`, inetd and systemd `Accept=yes` give the server one socket as both stdin and stdout: every
    request is answered (the next request is not taken for a hang-up), and the client's half-close ends it with 0."""
    ours, theirs = socket.socketpair()
    with loopback_vendor(route) as vendor, on_sockets(vendor, theirs, theirs) as process:
        replies = ours.makefile("rb")
        ours.sendall(("\n".join(HELLO) + "\n").encode())
        answers = [json.loads(replies.readline())]
        for n in range(2, 5):
            ours.sendall((jsonrpc(n, "tools/call", CALL) + "\n").encode())
            answers.append(json.loads(replies.readline()))
        ours.shutdown(socket.SHUT_WR)
        rest = replies.read()
        code, stderr = _finish(process)
        ours.close()
    assert [a["id"] for a in answers] == [1, 2, 3, 4]
    assert all(a["result"]["structuredContent"] == RETELL_RUN for a in answers[1:])
    assert rest == b""
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_a_closed_stderr_does_not_stop_the_server(vendor: LoopbackVendor) -> None:
    """Started with stderr closed (`2>&-`), the server still serves (its log lines go to the null device)."""
    process = subprocess.Popen(
        ["/bin/sh", "-c", 'exec "$0" -m mcp_server 2>&-', sys.executable],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=server_env(vendor),
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(("\n".join([*HELLO, jsonrpc(2, "tools/call", CALL)]) + "\n").encode())
        process.stdin.flush()
        answers = [json.loads(process.stdout.readline()) for _ in range(2)]
        process.stdin.close()
        code = process.wait(timeout=10)
    finally:
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()
    assert [a["id"] for a in answers] == [1, 2] and answers[1]["result"]["structuredContent"] == RETELL_RUN
    assert code == 0


def test_a_line_that_is_not_utf_8_is_answered_as_the_sdk_transport_answers_it(vendor: LoopbackVendor) -> None:
    """A request with a byte that is not UTF-8 is decoded with replacement and answered, on the thread-free path
    exactly as on the SDK's transport (the Windows paths): the two paths of one server answer alike."""
    bad = jsonrpc(2, "tools/call", {"name": "get_test_run", "arguments": {"test_case_job_id": "tcj_\udcff"}})
    lines = [*HELLO, bad.replace("\\udcff", "\udcff"), jsonrpc(3, "tools/call", CALL)]
    data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")
    assert b"tcj_\xff" in data
    answers = []
    for python in ((), AS_WINDOWS):
        with started(vendor, *python) as process:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(data)
            process.stdin.flush()
            answers.append(read_answers(process, 3))
    assert answers[0] == answers[1]
    assert [a["id"] for a in answers[0]] == [1, 2, 3]
    error = json.loads(answers[0][1]["result"]["content"][0]["text"])["error"]
    assert error["code"] == "invalid_argument" and "\ufffd" in error["message"]


def served_on_both_transports(vendor: LoopbackVendor, lines: list[str], count: int) -> list[list[bytes]]:
    """`lines` sent to the thread-free path and then to the SDK's transport (the Windows paths): the first `count`
    stdout lines of each; each process then sees EOF and must end with 0 and no traceback, having written nothing
    more and logged each line it answered as not a message."""
    outputs = []
    for python in ((), AS_WINDOWS):
        with started(vendor, *python) as process:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(("\n".join(lines) + "\n").encode())
            process.stdin.flush()
            outputs.append(read_lines(process, count, timeout=10))
            process.stdin.close()
            code, stderr = _finish(process)
            assert process.stdout.read() == b""
        assert code == 0, stderr
        assert "Traceback" not in stderr
        assert "answered an input line that is not a JSON-RPC message" in stderr
    return outputs


def by_id(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answers (to integer IDs) in a fixed order: tool calls answer concurrently, so in any order; `id: null` last."""
    return sorted(answers, key=lambda a: (a["id"] is None, a["id"] or 0, json.dumps(a, sort_keys=True)))


# A JSON string escape of a lone UTF-16 surrogate: what JavaScript's `JSON.stringify` writes for a string cut in the
# middle of an emoji. The JSON grammar allows it, but no UTF-8 text (RFC 8259 section 8.1) can carry what it stands
# for, and the SDK's JSON parser refuses the line.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def get_run(id_: int | str, job_id: str) -> str:
    """A `get_test_run` request as `json.dumps` writes it: a lone surrogate in `job_id` becomes its escape."""
    line = jsonrpc(0, "tools/call", {"name": "get_test_run", "arguments": {"test_case_job_id": job_id}})
    return line.replace('"id": 0', f'"id": {json.dumps(id_)}')


def test_a_lone_surrogate_escape_is_answered_with_a_parse_error_and_the_next_line_is_served(
    vendor: LoopbackVendor,
) -> None:
    """A request whose arguments hold a lone surrogate escape (a high one, or a low one, without its pair) is
    answered with -32700 under its own ID, not silence; one whose ID holds one gets `id: null` (an ID that cannot
    be written back as UTF-8). Every answer is valid UTF-8 JSON with no surrogate escaped in it, a valid pair is
    served as usual, the next request is answered, and both transports answer alike."""
    lines = [
        *HELLO,
        get_run(2, "tcj_\ud800"),
        get_run(3, "tcj_\udc00x"),
        get_run("req-\ud800", JOB_ID),
        get_run(5, "tcj_\U0001f600"),  # a surrogate pair: valid, and refused by the ID check as usual
        jsonrpc(6, "tools/call", CALL),
    ]
    assert all(SURROGATE_ESCAPE.search(line.encode()) for line in lines[2:6])
    outputs = served_on_both_transports(vendor, lines, 6)

    for output in outputs:
        for line in output:
            text = line.decode("utf-8")  # strict: the answer is UTF-8
            assert not SURROGATE_ESCAPE.search(line)
            json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8")  # and holds no lone surrogate
    thread_free, sdk = (by_id([json.loads(line) for line in output]) for output in outputs)
    assert thread_free == sdk
    assert [a["id"] for a in thread_free] == [1, 2, 3, 5, 6, None]
    _, high, low, pair, call, unreadable_id = thread_free
    assert [e["error"]["code"] for e in (high, low, unreadable_id)] == [PARSE_ERROR] * 3
    assert all(e["error"]["message"].startswith("Parse error") for e in (high, low, unreadable_id))
    refused = json.loads(pair["result"]["content"][0]["text"])["error"]
    assert refused["code"] == "invalid_argument" and "tcj_\U0001f600" in refused["message"]
    assert call["result"]["structuredContent"] == RETELL_RUN
    assert not [s.path for s in vendor.seen if not s.path.endswith(JOB_ID)]  # only the valid requests went out


def test_lines_that_are_not_json_rpc_messages_are_answered_as_json_rpc_2_says(vendor: LoopbackVendor) -> None:
    """JSON-RPC 2.0 answers what is not JSON with -32700 and JSON that is not a message with -32600: `id: null`
    unless the line is a request whose ID can be read (a response's ID names one of the server's own requests, so it
    is never answered under it). Blank lines are skipped; the next request is served; both transports alike."""
    lines = [
        *HELLO,
        "this is not json",
        '{"jsonrpc": "2.0", "id": 2, "method":',
        '{"jsonrpc": "2.0", "id": 3, "method": 7}',
        "[1, 2]",
        '{"jsonrpc": "2.0", "id": 4, "result": 5}',
        "",
        "   ",
        jsonrpc(5, "tools/call", CALL),
    ]
    outputs = served_on_both_transports(vendor, lines, 7)

    thread_free, sdk = (by_id([json.loads(line) for line in output]) for output in outputs)
    assert thread_free == sdk
    assert [(a["id"], a.get("error", {}).get("code")) for a in thread_free] == [
        (1, None),
        (3, INVALID_REQUEST),
        (5, None),
        (None, INVALID_REQUEST),
        (None, INVALID_REQUEST),
        (None, PARSE_ERROR),
        (None, PARSE_ERROR),
    ]
    assert thread_free[2]["result"]["structuredContent"] == RETELL_RUN


POSIX_ONLY = {"fcntl", "termios", "tty", "pty", "resource", "grp", "pwd", "syslog"}


def test_no_module_imports_at_load_time_what_windows_lacks() -> None:
    """Every module of the package loads on Windows: a POSIX-only module is imported only inside the code paths
    that run where it exists (a top-level `import fcntl` would stop the server starting there)."""
    package = Path(__file__).parent.parent / "mcp_server"
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {name}" for name in names if name.split(".")[0] in POSIX_ONLY]
    assert found == []


def _peak_rise_mib(job_ids: list[str]) -> float:
    """A fresh server (cache off) asked for these runs at once: how far its peak memory rose over idle, in MiB."""
    with loopback_vendor(big_route) as vendor, started(vendor, cache_ttl="0") as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(("\n".join([*HELLO, jsonrpc(2, "tools/call", CALL)]) + "\n").encode())
        process.stdin.flush()
        assert [json.loads(process.stdout.readline())["id"] for _ in range(2)] == [1, 2]
        idle = status_kib(process.pid, "VmRSS")
        for n, job_id in enumerate(job_ids):
            call = {"name": "get_test_run", "arguments": {"test_case_job_id": job_id}}
            process.stdin.write((jsonrpc(10 + n, "tools/call", call) + "\n").encode())
        process.stdin.flush()
        answers = [json.loads(process.stdout.readline()) for _ in job_ids]
        assert all(
            len(a["result"]["structuredContent"]["transcript_snapshot"]["transcript"]) == 110_000 for a in answers
        )
        del answers
        return (status_kib(process.pid, "VmHWM") - idle) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_four_large_answers_at_once_peak_near_one_alone() -> None:
    """An answer stays in the byte budget until its response is written, not only while its body is parsed (the
    parsed objects and their serialisation live that long): four ~9.6 MiB answers at once, each returned whole,
    raise the server's peak at most 1.3x as far over idle as one alone."""
    alone = _peak_rise_mib(["big-0"])
    four = _peak_rise_mib([f"big-{n}" for n in range(4)])
    assert four <= 1.3 * alone, f"one alone +{alone:.0f} MiB, four at once +{four:.0f} MiB"
