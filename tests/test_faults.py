"""Fault injection: the real server process over stdio against a vendor that misbehaves in every way we know.

Every case checks the exact error code, a useful message, how many requests were made, and that the same
session still answers the next call. The whole suite runs at DEBUG and checks that no piece of a key leaks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_server.config import CONFIG_ENV_VAR, ENV_VARS
from tests.conftest import RETELL_KEY, TELA_KEY
from tests.faults import FaultVendor, fault_vendor

pytestmark = pytest.mark.anyio

LIMIT = 1024 * 1024
TELA_FOUND = "00000000-0000-4000-8000-000000000000"
TELA_MISSING = "11111111-1111-4111-8111-111111111111"

# (id, expected code or "ok", requests the server must have made, words the message must contain)
CASES: list[tuple[str, str, int, list[str]]] = [
    ("status-400", "upstream_error", 1, ["HTTP 400", "simulated 400"]),
    ("status-401", "unauthorized", 1, ["rejected the API key", "RETELL_API_KEY"]),
    ("status-403", "forbidden", 1, ["refused access"]),
    ("status-404", "not_found", 1, ["Retell has no test run 'status-404' (HTTP 404)."]),
    ("status-422", "not_found", 1, ["has no test run"]),
    ("status-429", "rate_limited", 3, ["HTTP 429"]),
    ("status-500", "upstream_error", 3, ["HTTP 500", "simulated 500"]),
    ("status-502", "upstream_error", 3, ["HTTP 502"]),
    ("status-503", "upstream_error", 3, ["HTTP 503"]),
    ("status-504", "upstream_error", 3, ["HTTP 504"]),
    ("htmlerror", "upstream_error", 3, ["HTTP 502"]),
    ("retryafter-seconds", "ok", 2, []),
    ("retryafter-date", "ok", 2, []),
    ("retryafter-ms", "ok", 2, []),
    ("retryafter-long", "rate_limited", 1, ["HTTP 429", "slow down"]),
    ("recover-503", "ok", 2, []),
    ("midbody", "unreachable", 3, ["broke before the answer was complete"]),
    ("reset", "unreachable", 3, ["broke before the answer was complete"]),
    ("hang-suite", "timeout", 3, ["did not answer within 1 s (3 attempts)"]),
    ("trickle", "timeout", 3, ["did not answer within 1 s"]),
    ("invalidjson", "bad_upstream_response", 1, ["not valid JSON"]),
    ("empty", "bad_upstream_response", 1, ["an empty body"]),
    ("array", "bad_upstream_response", 1, ["a JSON array instead of an object"]),
    ("html", "bad_upstream_response", 1, ["not valid JSON"]),
    ("huge", "bad_upstream_response", 1, ["larger than the 1,048,576-byte limit"]),
    ("redirect", "upstream_error", 1, ["redirect (HTTP 302)", "not followed"]),
    ("badgzip-200", "bad_upstream_response", 1, ["gzip"]),
    ("badgzip-404", "bad_upstream_response", 1, ["HTTP 404"]),
    ("badgzip-stacked", "bad_upstream_response", 1, []),
    ("nonfinite-nan", "bad_upstream_response", 1, ["not valid JSON"]),
    ("nonfinite-overflow", "bad_upstream_response", 1, ["not valid JSON"]),
    ("insaneretry-inf", "ok", 2, []),
    ("insaneretry-huge", "ok", 2, []),
    ("insaneretry-digits", "ok", 2, []),
    ("insaneretry-year", "ok", 2, []),
]


def server_params(vendor: FaultVendor, *, timeout: str = "1") -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k not in (*ENV_VARS.values(), CONFIG_ENV_VAR)}
    env |= {
        "RETELL_API_KEY": RETELL_KEY,
        "TELA_API_KEY": TELA_KEY,
        "RETELL_BASE_URL": vendor.url,
        "TELA_BASE_URL": vendor.url,
        "RETELL_TELA_MCP_TIMEOUT": timeout,
        "RETELL_TELA_MCP_LOG_LEVEL": "DEBUG",
    }
    args = ["-m", "mcp_server", "--max-response-bytes", str(LIMIT)]
    return StdioServerParameters(command=sys.executable, args=args, env=env)


@asynccontextmanager
async def session(params: StdioServerParameters, errlog: Any) -> AsyncIterator[Client]:
    async with Client(stdio_client(params, errlog=errlog)) as client:
        yield client


def server_rss_kib() -> int | None:
    """Resident memory of our `python -m mcp_server` child, from /proc (None where there is no /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"mcp_server" in cmdline:
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    return None


class RawServer:
    """The real server process driven line by line, for what the SDK client hides (cancellation, signals, EOF)."""

    def __init__(self, vendor: FaultVendor) -> None:
        params = server_params(vendor, timeout="30")
        self.process = subprocess.Popen(
            [params.command, *params.args],
            env=params.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        message: dict[str, Any] = json.loads(self.process.stdout.readline())
        return message

    def start_call(self, request_id: int, job_id: str, vendor: FaultVendor) -> None:
        """Initialize, then send a call and wait until the vendor holds its request."""
        hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
        self.send({"id": 1, "method": "initialize", "params": hello})
        assert self.receive()["id"] == 1
        self.send({"method": "notifications/initialized"})
        self.send({"id": request_id, "method": "tools/call",
                   "params": {"name": "get_test_run", "arguments": {"test_case_job_id": job_id}}})  # fmt: skip
        deadline = time.monotonic() + 10
        while vendor.count(job_id) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert vendor.count(job_id) == 1

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()


@pytest.fixture
def vendors() -> Iterator[tuple[FaultVendor, FaultVendor]]:
    """The faulty vendor, and a second origin its redirect points at."""
    with fault_vendor() as elsewhere, fault_vendor(redirect_to=elsewhere.url) as vendor:
        yield vendor, elsewhere


async def test_every_fault_gets_its_code_and_the_session_keeps_serving(
    vendors: tuple[FaultVendor, FaultVendor],
) -> None:
    """All faults at once in one session: exact codes, useful messages, bounded requests, the next call works."""
    vendor, elsewhere = vendors
    outcomes: dict[str, tuple[dict[str, Any], float, bool]] = {}
    with tempfile.TemporaryFile("w+") as errlog:
        async with session(server_params(vendor), errlog) as client:
            warm = await client.call_tool("get_test_run", {"test_case_job_id": "ok-warmup"})
            assert warm.is_error is False
            rss_before = server_rss_kib()

            async def exercise(job_id: str, index: int) -> None:
                started = time.monotonic()
                result = await client.call_tool("get_test_run", {"test_case_job_id": job_id})
                took = time.monotonic() - started
                after = await client.call_tool("get_test_run", {"test_case_job_id": f"ok-{index}"})
                body = result.structured_content if not result.is_error else json.loads(result.content[0].text)
                outcomes[job_id] = (body or {}, took, after.is_error is False)

            async with anyio.create_task_group() as tg:
                for index, (job_id, *_) in enumerate(CASES):
                    tg.start_soon(exercise, job_id, index)
            rss_after = server_rss_kib()
            tela_found = await client.call_tool("get_test_case", {"id": TELA_FOUND})
            tela_missing = await client.call_tool("get_test_case", {"id": TELA_MISSING})
        errlog.seek(0)
        stderr = errlog.read()

    failures = []
    for job_id, code, requests, words in CASES:
        body, took, next_ok = outcomes[job_id]
        got = "ok" if "error" not in body else body["error"]["code"]
        message = body.get("error", {}).get("message", "")
        if got != code or vendor.count(job_id) != requests or not next_ok or not all(w in message for w in words):
            failures.append((job_id, got, vendor.count(job_id), next_ok, message))
    assert failures == []

    gaps = {job: vendor.times(job)[1] - vendor.times(job)[0] for job in ("retryafter-seconds", "retryafter-ms")}
    assert gaps["retryafter-seconds"] >= 0.95 and gaps["retryafter-ms"] >= 0.38
    assert vendor.times("retryafter-date")[1] - vendor.times("retryafter-date")[0] >= 0.9
    long_wait, took, _ = outcomes["retryafter-long"]
    assert long_wait["error"]["retry_after_seconds"] == 3600 and took < 10  # answered at once, not after an hour
    assert outcomes["status-500"][0]["error"]["retryable"] is True
    assert outcomes["status-404"][0]["error"]["retryable"] is False

    # The huge body is cut off near the limit: we stop reading, so neither the vendor nor our memory goes far.
    assert vendor.bytes_sent["huge"] < 64 * 1024 * 1024  # of the 512 MiB it would send to a reader
    if rss_before is not None and rss_after is not None:
        assert rss_after - rss_before < 48 * 1024

    # The redirect was reported, never followed: the other origin saw nothing, so no key went there.
    assert elsewhere.hits == []

    # Both vendors are impersonated: Tela answers and Tela's error body come through as well.
    assert tela_found.structured_content == {"id": TELA_FOUND, "title": "t"}
    assert json.loads(tela_missing.content[0].text)["error"]["code"] == "not_found"
    assert {h.headers["authorization"] for h in vendor.hits if h.path.startswith("/test-case/")} == {
        f"Bearer {TELA_KEY}"
    }
    assert {h.headers["authorization"] for h in vendor.hits if h.path.startswith("/get-test-run/")} == {
        f"Bearer {RETELL_KEY}"
    }

    # Secrets: every error path ran at DEBUG; no 8-character piece of either key is in the logs or any result.
    assert "DEBUG" in stderr
    everything = stderr + json.dumps([o[0] for o in outcomes.values()])
    for key in (RETELL_KEY, TELA_KEY):
        assert [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in everything] == []
    assert "Traceback" not in stderr


async def test_each_vendor_fault_is_one_log_line_at_info(vendors: tuple[FaultVendor, FaultVendor]) -> None:
    """At the default level every fault above, all at once, leaves exactly one line per call (its outcome and the
    vendor's status), nothing else: no traceback, no warning, no retry chatter."""
    vendor, _ = vendors
    params = server_params(vendor)
    assert params.env is not None
    params.env["RETELL_TELA_MCP_LOG_LEVEL"] = "INFO"
    with tempfile.TemporaryFile("w+") as errlog:
        async with session(params, errlog) as client, anyio.create_task_group() as tg:
            for job_id, *_ in CASES:
                tg.start_soon(client.call_tool, "get_test_run", {"test_case_job_id": f"{job_id}-info"})
        errlog.seek(0)
        *lines, last = errlog.read().splitlines()
    assert last.endswith("INFO mcp_server: stopped")
    expected = sorted(f"outcome={code}" for _, code, *_ in CASES)
    outcomes = sorted(line.split(" outcome=")[1].split()[0] for line in lines if " outcome=" in line)
    assert [f"outcome={o}" for o in outcomes] == expected
    assert len(lines) == len(CASES)
    assert all(" INFO mcp_server.tools: tool=get_test_run vendor=retell outcome=" in line for line in lines), lines


async def test_client_timeout_cancels_the_upstream_request_at_once(vendors: tuple[FaultVendor, FaultVendor]) -> None:
    """When the client gives up on a call, the server aborts the upstream request: the vendor sees the hang-up."""
    vendor, _ = vendors
    with tempfile.TemporaryFile("w+") as errlog:
        async with session(server_params(vendor, timeout="30"), errlog) as client:
            with pytest.raises(MCPError):
                await client.call_tool("get_test_run", {"test_case_job_id": "hang-timeout"}, read_timeout_seconds=0.5)
            hung_up = await anyio.to_thread.run_sync(vendor.hung_up["hang-timeout"].wait, 5)
            after = await client.call_tool("get_test_run", {"test_case_job_id": "ok-after"})
    assert hung_up, "the upstream connection stayed open after the client cancelled"
    assert vendor.count("hang-timeout") == 1  # cancelled, not retried
    assert after.is_error is False


def test_cancelled_notification_aborts_upstream_and_the_request_is_never_answered(
    vendors: tuple[FaultVendor, FaultVendor],
) -> None:
    """`notifications/cancelled` closes the upstream connection, and nothing is ever written for that request."""
    vendor, _ = vendors
    server = RawServer(vendor)
    try:
        server.start_call(7, "hang-cancel", vendor)
        server.send({"method": "notifications/cancelled", "params": {"requestId": 7, "reason": "user gave up"}})
        assert vendor.hung_up["hang-cancel"].wait(5), "the upstream connection stayed open after cancellation"
        time.sleep(0.5)  # room for a stray late answer to id 7, which must not come
        server.send({"id": 8, "method": "ping"})
        assert server.receive() == {"jsonrpc": "2.0", "id": 8, "result": {}}
        assert server.process.stdin is not None and server.process.stdout is not None
        server.process.stdin.close()
        assert server.process.wait(timeout=5) == 0
        assert server.process.stdout.read() == ""  # and nothing for id 7, ever
    finally:
        server.close()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "EOF"])
def test_shutdown_is_prompt_and_clean_and_closes_in_flight_requests(
    vendors: tuple[FaultVendor, FaultVendor], how: str
) -> None:
    """With a call in flight, SIGTERM, SIGINT or EOF end the process within 2 s, exit 0, no traceback, and the
    upstream request's connection is closed."""
    vendor, _ = vendors
    server = RawServer(vendor)
    job = f"hang-{how.lower()}"
    try:
        server.start_call(2, job, vendor)
        started = time.monotonic()
        if how == "EOF":
            assert server.process.stdin is not None
            server.process.stdin.close()
        else:
            server.process.send_signal(getattr(signal, how))
        code = server.process.wait(timeout=10)
        took = time.monotonic() - started
        assert server.process.stderr is not None
        stderr = server.process.stderr.read()
    finally:
        server.close()
    assert code == 0, stderr
    assert took < 2.0
    assert "Traceback" not in stderr
    assert vendor.hung_up[job].wait(2), "the in-flight upstream connection was left open"
    # The event loop ran to its end and the last line was logged: no `os._exit` cut the process short.
    assert stderr.rstrip().endswith("INFO mcp_server: stopped"), stderr
