"""Streamable HTTP: the SDK's client against real uvicorn processes; raw requests for the security answers."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from mcp_server.cli import main
from mcp_server.config import AUTH_TOKEN_ENV_VAR, CONFIG_ENV_VAR, ENV_VARS
from tests.conftest import RETELL_KEY, TELA_KEY, TOOL_NAMES
from tests.faults import GOOD_RUN, fault_vendor

TOKEN = "tok_8c1f0e7a9b2d4c6e"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class Vendor(Protocol):
    @property
    def url(self) -> str: ...


class HeldVendor:
    """Both vendors on 127.0.0.1: each request is held until `release` is set (or for `hold` seconds), then answered
    with a good run named by its last path segment; `hung_up` is set when a client hangs up on a held request."""

    def __init__(self, hold: float | None = None) -> None:
        self.release = threading.Event()
        self.hung_up = threading.Event()
        self.paths: list[str] = []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                vendor.paths.append(self.path)
                deadline = time.monotonic() + hold if hold is not None else float("inf")
                while not vendor.release.is_set() and time.monotonic() < deadline:
                    readable, _, _ = select.select([self.connection], [], [], 0.02)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):  # EOF: the client hung up
                        vendor.hung_up.set()
                        return
                job_id = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                body = json.dumps({"test_case_job_id": job_id, **GOOD_RUN}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def wait_for(self, requests: int, timeout: float) -> bool:
        """Whether `requests` requests have arrived within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.paths) < requests:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def __enter__(self) -> HeldVendor:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a Streamable HTTP answer sent as server-sent events."""
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def healthy(url: str, process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether `url`'s `GET /healthz` answers 200 within `seconds`, while `process` (what serves it) keeps running."""
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    return False


@contextmanager
def http_server(
    *extra: str,
    token: str | None = None,
    logs: list[str] | None = None,
    vendor: Vendor | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """`retell-tela-mcp serve --transport http` on a free loopback port (or `port`), on the demo data or against
    `vendor` for both vendors, with `env` added to a clean environment; yields its base URL. Its stderr is appended to
    `logs` when the server has stopped."""
    port = port or free_port()
    added = env or {}
    env = {k: v for k, v in os.environ.items() if k not in (*ENV_VARS.values(), CONFIG_ENV_VAR, AUTH_TOKEN_ENV_VAR)}
    env |= added
    if token:
        env[AUTH_TOKEN_ENV_VAR] = token
    if vendor:
        env |= {"RETELL_API_KEY": RETELL_KEY, "TELA_API_KEY": TELA_KEY, "RETELL_TELA_MCP_TIMEOUT": "30"}
        env |= {"RETELL_BASE_URL": vendor.url, "TELA_BASE_URL": vendor.url}
    command = [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--port", str(port)]
    command += [] if vendor else ["--demo"]
    process = subprocess.Popen([*command, *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        assert healthy(url, process, 30), "server did not start"
        yield url
    finally:
        process.terminate()
        process.wait(10)
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        process.stderr.close()
        if logs is not None:
            logs.append(stderr)
        assert TOKEN not in stderr and TOKEN[4:12] not in stderr
        assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def guarded() -> Iterator[str]:
    """One token-guarded server shared by the tests that only send requests to it."""
    with http_server(token=TOKEN) as url:
        yield url


@pytest.mark.anyio
async def test_sdk_client_lists_and_calls_over_streamable_http() -> None:
    """The SDK's Streamable HTTP client initializes, lists both tools and calls one at /mcp."""
    with http_server() as url:
        async with Client(f"{url}/mcp") as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_failed"})
    assert tools == TOOL_NAMES
    assert result.structured_content is not None and result.structured_content["status"] == "fail"


def test_health_check_answers_without_a_token(guarded: str) -> None:
    """GET /healthz is open to load balancers even when a token guards /mcp."""
    response = httpx2.get(f"{guarded}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}"])
def test_requests_without_the_right_token_get_401(guarded: str, authorization: str | None) -> None:
    """No token, a wrong one, a longer one, or the token without the Bearer scheme: 401 with WWW-Authenticate."""
    headers = {**MCP_HEADERS, **({"authorization": authorization} if authorization else {})}
    response = httpx2.post(f"{guarded}/mcp", json=INIT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.anyio
async def test_sdk_client_with_the_token_is_served(guarded: str) -> None:
    """With `Authorization: Bearer <token>` the SDK client works as on an open server."""
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}) as http,
        Client(streamable_http_client(f"{guarded}/mcp", http_client=http)) as client,
    ):
        result = await client.call_tool("get_test_case", {"id": "550e8400-e29b-41d4-a716-446655440000"})
    assert result.is_error is False


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "https://attacker.test:8443"}, 403),
        ({"host": "evil.example"}, 421),
    ],
)
def test_foreign_origin_or_host_is_refused(guarded: str, headers: dict[str, str], status: int) -> None:
    """DNS-rebinding protection: a browser page from another origin, or a foreign Host name, is refused."""
    response = httpx2.post(
        f"{guarded}/mcp", json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN}", **headers}
    )
    assert response.status_code == status


def test_oversized_body_gets_413() -> None:
    """A request body over 1 MiB is refused before it is parsed."""
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    with http_server(token=TOKEN) as url:
        response = httpx2.post(f"{url}/mcp", content=body, headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 413


def test_non_loopback_bind_without_token_refuses_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    """Binding beyond loopback with no token stops start-up with one line saying how to set one."""
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--transport", "http", "--host", "0.0.0.0", "--demo"])
    _, err = capsys.readouterr()
    assert caught.value.code == 2
    assert err.count("\n") == 1 and AUTH_TOKEN_ENV_VAR in err


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next replica in turn, like a load balancer without affinity."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.used: Counter[int] = Counter()
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self.ports[sum(self.used.values()) % len(self.ports)]
        self.used[port] += 1
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.anyio
async def test_stateless_replicas_serve_one_client_behind_a_round_robin_balancer() -> None:
    """With --stateless, two replicas share one client whose requests alternate between them."""
    with http_server("--stateless") as first, http_server("--stateless") as second:
        ports = [int(first.rsplit(":", 1)[1]), int(second.rsplit(":", 1)[1])]
        balancer = RoundRobin(ports)
        async with (
            httpx2.AsyncClient(transport=balancer) as http,
            Client(streamable_http_client(f"{first}/mcp", http_client=http)) as client,
        ):
            results = [
                await client.call_tool("get_test_run", {"test_case_job_id": job})
                for job in ("tcj_demo_failed", "tcj_demo_passed") * 3
            ]
    assert [r.structured_content["status"] for r in results if r.structured_content] == ["fail", "pass"] * 3
    assert min(balancer.used.values()) >= 3  # both replicas really served calls


@pytest.mark.anyio
async def test_completions_are_per_http_session_and_absent_when_stateless() -> None:
    """Stateful HTTP: each session is offered what it was shown, never another session's; a 2026-07-28 client opens
    no session, so it is offered nothing. Stateless HTTP: every request stands alone, so nothing is remembered and
    nothing is offered (said in the README)."""
    from mcp_types import PromptReference

    diagnose = PromptReference(type="ref/prompt", name="diagnose_test_run")
    argument = {"name": "test_case_job_id", "value": ""}
    with http_server() as url:
        async with (
            Client(streamable_http_client(f"{url}/mcp"), mode="legacy") as first,
            Client(streamable_http_client(f"{url}/mcp"), mode="legacy") as second,
        ):
            await first.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_failed"})
            mine = await first.complete(diagnose, argument)
            theirs = await second.complete(diagnose, argument)
        async with Client(streamable_http_client(f"{url}/mcp")) as modern:  # 2026-07-28: no session to remember in
            await modern.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_failed"})
            sessionless = await modern.complete(diagnose, argument)
    assert mine.completion.values == ["tcj_demo_failed"] and theirs.completion.values == []
    assert sessionless.completion.values == []
    with http_server("--stateless") as url:
        async with Client(streamable_http_client(f"{url}/mcp"), mode="legacy") as client:
            await client.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_failed"})
            stateless = await client.complete(diagnose, argument)
    assert stateless.completion.values == []


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_the_bearer_scheme_is_matched_case_insensitively(guarded: str, scheme: str) -> None:
    """RFC 7235: `bearer TOKEN` is the same credential as `Bearer TOKEN`; the token itself stays exact."""
    right = httpx2.post(f"{guarded}/mcp", json=INIT, headers={**MCP_HEADERS, "authorization": f"{scheme} {TOKEN}"})
    wrong = httpx2.post(
        f"{guarded}/mcp", json=INIT, headers={**MCP_HEADERS, "authorization": f"{scheme} {TOKEN.upper()}"}
    )
    assert right.status_code == 200 and wrong.status_code == 401


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sessions", "--stateless"])
async def test_session_ids_and_per_request_terminations_stay_out_of_the_info_log(mode: str) -> None:
    """At the default INFO level the log names no session ID, and a stateless server does not log "Terminating
    session" for every request."""
    logs: list[str] = []
    with http_server(*([mode] if mode.startswith("--") else []), logs=logs) as url:
        async with Client(streamable_http_client(f"{url}/mcp"), mode="legacy") as client:
            await client.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_failed"})
            await client.call_tool("get_test_run", {"test_case_job_id": "tcj_demo_passed"})
    assert "tool=get_test_run" in logs[0]  # the log is there: our own line per call
    import re

    assert "Terminating session" not in logs[0] and "session ID" not in logs[0], logs[0]
    assert not re.search(r"[0-9a-f]{32}", logs[0]), logs[0]  # the SDK's session IDs are 32 hex digits


def call_message(request_id: int, job_id: str) -> dict[str, object]:
    arguments = {"test_case_job_id": job_id}
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "get_test_run", "arguments": arguments},
    }


def cancel_message(request_id: int) -> dict[str, object]:
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}}


@pytest.mark.anyio
async def test_a_stateless_client_giving_up_stops_the_vendor_request() -> None:
    """--stateless, 2026-07-28: the SDK's client gives up on a call (read timeout) by closing its stream; the vendor
    sees the hang-up at once, was asked once, and the next call is served."""
    with fault_vendor() as vendor, http_server("--stateless", vendor=vendor) as url:
        async with Client(f"{url}/mcp") as client:
            with pytest.raises(MCPError):
                await client.call_tool("get_test_run", {"test_case_job_id": "hang-auto"}, read_timeout_seconds=0.5)
            hung_up = await anyio.to_thread.run_sync(vendor.hung_up["hang-auto"].wait, 5)
            after = await client.call_tool("get_test_run", {"test_case_job_id": "ok-after"})
    assert hung_up, "the vendor request ran on after the client gave up"
    assert vendor.count("hang-auto") == 1 and after.is_error is False


@pytest.mark.anyio
async def test_a_stateless_legacy_client_stops_the_vendor_request_by_closing() -> None:
    """--stateless, 2025-11-25: the SDK's client that gives up POSTs `notifications/cancelled`, which stops nothing
    (without a session nothing ties it to the call), so the vendor request runs on while the client keeps its stream;
    the client closing stops it at once. The next call is served meanwhile."""
    with fault_vendor() as vendor, http_server("--stateless", vendor=vendor) as url:
        async with Client(streamable_http_client(f"{url}/mcp"), mode="legacy") as client:
            with pytest.raises(MCPError):
                await client.call_tool("get_test_run", {"test_case_job_id": "hang-legacy"}, read_timeout_seconds=0.5)
            after = await client.call_tool("get_test_run", {"test_case_job_id": "ok-after"})
            running = not vendor.hung_up["hang-legacy"].is_set()
        hung_up = await anyio.to_thread.run_sync(vendor.hung_up["hang-legacy"].wait, 5)
    assert running and hung_up, "the vendor request did not run until the client closed"
    assert vendor.count("hang-legacy") == 1 and after.is_error is False


@pytest.mark.anyio
async def test_a_session_client_giving_up_stops_the_vendor_request() -> None:
    """With sessions, 2025-11-25: the SDK's client that gives up POSTs `notifications/cancelled` under its session
    ID, which names its own call; the vendor sees the hang-up at once, and the next call is served."""
    with fault_vendor() as vendor, http_server(vendor=vendor) as url:
        async with Client(streamable_http_client(f"{url}/mcp"), mode="legacy") as client:
            with pytest.raises(MCPError):
                await client.call_tool("get_test_run", {"test_case_job_id": "hang-session"}, read_timeout_seconds=0.5)
            hung_up = await anyio.to_thread.run_sync(vendor.hung_up["hang-session"].wait, 5)
            after = await client.call_tool("get_test_run", {"test_case_job_id": "ok-after"})
    assert hung_up, "the vendor request ran on after the client cancelled it"
    assert vendor.count("hang-session") == 1 and after.is_error is False


def test_a_stateless_client_closing_its_stream_stops_the_vendor_request() -> None:
    """A raw client that drops the response stream of a stateless call: the vendor sees the hang-up at once."""
    with fault_vendor() as vendor, http_server("--stateless", vendor=vendor) as url:
        with (
            pytest.raises(httpx2.ReadTimeout),
            httpx2.stream(
                "POST", f"{url}/mcp", json=call_message(3, "hang-drop"), headers=MCP_HEADERS, timeout=1
            ) as response,
        ):
            assert response.status_code == 200
            response.read()
        assert vendor.hung_up["hang-drop"].wait(5), "the vendor request ran on after the client hung up"


def test_a_stateless_cancellation_cannot_stop_another_clients_call() -> None:
    """--stateless, two clients with one token from one address (what a server behind a balancer sees): B's
    `notifications/cancelled` for ID 7 is accepted (202) and stops nothing; A's call 7 runs on, the vendor sees no
    hang-up, and A gets its whole answer."""
    with (
        HeldVendor() as vendor,
        ThreadPoolExecutor(1) as pool,
        http_server("--stateless", token=TOKEN, vendor=vendor) as url,
    ):
        post = partial(
            httpx2.post, f"{url}/mcp", headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        call = pool.submit(post, json=call_message(7, "tcj_held_a"))
        assert vendor.wait_for(1, 10)
        assert post(json=cancel_message(7)).status_code == 202
        assert not vendor.hung_up.wait(1), "client B's cancellation hung up client A's vendor request"
        vendor.release.set()
        answer = call.result(10)
    assert answer.status_code == 200
    (message,) = sse_messages(answer.text)
    assert message["id"] == 7 and message["result"]["structuredContent"]["test_case_job_id"] == "tcj_held_a"
    assert len(vendor.paths) == 1


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it is still open after `timeout` s."""
    sock.settimeout(timeout)
    received = b""
    with sock:
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_slow_clients_are_cut_off_and_connections_are_capped(tmp_path: Path) -> None:
    """50 clients that open a connection and never finish their headers: past `http_max_connections` (20 here)
    each is answered 503 and closed at once, the rest are closed after `http_header_timeout_seconds` (1 s here);
    a kept-alive connection that stalls in its second request's headers is closed the same way. Then a real
    client is served. (uvicorn alone holds all of them open for ever.)"""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"http_header_timeout_seconds": 1, "http_max_connections": 20}))
    with http_server("--config", str(config)) as url:
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        kept_alive = socket.create_connection(address)
        kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while b"}" not in first:  # the whole first answer, headers and body
            first += kept_alive.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        slow = [socket.create_connection(address) for _ in range(49)]
        for sock in [*slow, kept_alive]:
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        answers = [read_until_closed(sock, timeout=5) for sock in [*slow, kept_alive]]  # raises if left open
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert len(refused) >= 30 and all(b'"busy"' in a for a in refused)
        assert answers.count(b"") == 50 - len(refused)  # the others were closed without a word
        assert answers[-1] == b""  # the kept-alive one was held to the same rule on its second request
        response = httpx2.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS)
        assert response.status_code == 200
