"""The HTTP front door, over real server processes: which Host and Origin names are served, and slow request bodies."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.test_http import INIT, MCP_HEADERS, TOKEN, HeldVendor, call_message, free_port, http_server

ALLOWED_HOST = "mcp.example.internal"
ALLOWED_ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def named() -> Iterator[str]:
    """One token-guarded server that allows one extra Host name and one extra browser Origin."""
    with http_server("--allowed-host", ALLOWED_HOST, "--allowed-origin", ALLOWED_ORIGIN, token=TOKEN) as url:
        yield url


def post_init(url: str, headers: dict[str, str]) -> int:
    response = httpx2.post(
        f"{url}/mcp", json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {TOKEN}", **headers}
    )
    return response.status_code


@pytest.mark.parametrize(
    "host",
    [
        "localhost",  # port 80 behind a local reverse proxy: no port at all
        "LOCALHOST:8000",
        "127.0.0.1",
        "[::1]:8000",
        "mcp.example.internal",
        "MCP.Example.Internal:8000",
        "mcp.example.internal:443",
    ],
)
def test_loopback_and_allowed_host_names_are_served_in_any_case_with_or_without_a_port(named: str, host: str) -> None:
    """Host names compare case-insensitively, and a name matches with any port or none."""
    assert post_init(named, {"host": host}) == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "localhost.evil.com",
        "127.0.0.1.nip.io",
        "mcp.example.internal.evil.com",
        "evil-mcp.example.internal",
        "localhost:abc",
        "localhost:99999",
    ],
)
def test_dns_rebinding_host_names_get_421(named: str, host: str) -> None:
    """A name that only starts or ends like an allowed one, or a port that is not a port, is refused."""
    assert post_init(named, {"host": host}) == 421


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost",
        "https://localhost:8443",
        "HTTP://LocalHost:3000",
        "http://127.0.0.1:5173",
        "https://[::1]",
        "https://APP.example.com",
        "https://app.example.com:443",
    ],
)
def test_loopback_and_allowed_origins_are_served_over_http_or_https(named: str, origin: str) -> None:
    """Browser pages on loopback (http or https, any port or none) and the allowed origin, in any case, are served."""
    assert post_init(named, {"origin": origin}) == 200


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://localhost.evil.com",
        "https://127.0.0.1.nip.io",
        "null",
        "http://app.example.com",
        "https://app.example.com:8443",
        "ftp://localhost",
    ],
)
def test_foreign_origins_get_403(named: str, origin: str) -> None:
    """Any other page, `null` (sandboxed or file pages), another scheme or port of the allowed origin: refused."""
    assert post_init(named, {"origin": origin}) == 403


def test_health_check_answers_whatever_the_host(named: str) -> None:
    """A balancer's health check may name the replica by address: GET /healthz is never refused for its Host."""
    response = httpx2.get(f"{named}/healthz", headers={"host": "10.0.0.7:8000"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("flag", "value"), [("--allowed-host", "https://mcp.example.internal"), ("--allowed-origin", "app.example.com")]
)
def test_an_allowed_name_that_can_never_match_refuses_to_start(flag: str, value: str) -> None:
    """A Host given as a URL, or an Origin without its scheme, would silently match nothing: start-up stops instead,
    with one line naming the flag."""
    command = [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--demo", "--port", str(free_port())]
    done = subprocess.run([*command, flag, value], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and flag in done.stderr and value in done.stderr


def short_timeouts(tmp_path: Path, max_connections: int = 200) -> str:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"http_header_timeout_seconds": 1, "http_max_connections": max_connections}))
    return str(config)


def trickle_until_closed(socks: list[socket.socket], every: float, limit: float) -> list[float]:
    """Send each socket one byte every `every` seconds until the server closes it; the seconds each stayed open.
    Fails if one is still open after `limit` seconds."""
    started = time.monotonic()
    closed_at: dict[int, float] = {}
    try:
        while len(closed_at) < len(socks):
            assert time.monotonic() - started < limit, f"{len(socks) - len(closed_at)} connection(s) still held"
            for n, sock in enumerate(socks):
                if n in closed_at:
                    continue
                readable, _, _ = select.select([sock], [], [], 0)
                try:
                    if readable and not sock.recv(65536):  # EOF; else an answer to an earlier request, now read
                        raise ConnectionResetError
                    sock.sendall(b" ")
                except OSError:
                    closed_at[n] = time.monotonic() - started
            time.sleep(every)
    finally:
        for sock in socks:
            sock.close()
    return [closed_at[n] for n in range(len(socks))]


SLOW_POST = (
    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    b"accept: application/json, text/event-stream\r\ncontent-length: 1000\r\n\r\n{"
)


def test_a_request_body_sent_slowly_is_cut_off_and_frees_its_connection(tmp_path: Path) -> None:
    """Against a cap of 5 connections and a 1 s request timeout, 5 clients send their headers at once, then one body
    byte every 0.2 s (one of them pipelined behind a GET on a kept-alive connection): each is closed within the
    timeout of its request's start, where uvicorn let them hold the cap for as long as they trickled. Then the
    health check and a real client are served."""
    with http_server("--config", short_timeouts(tmp_path, max_connections=5)) as url:
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        socks = [socket.create_connection(address) for _ in range(5)]
        for sock in socks[:4]:
            sock.sendall(SLOW_POST)
        socks[4].sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + SLOW_POST)
        held_for = trickle_until_closed(socks, every=0.2, limit=4)
        assert max(held_for) < 2.5, held_for
        assert httpx2.get(f"{url}/healthz").status_code == 200
        assert httpx2.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS).status_code == 200


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (a `content-length` or chunked body), leaving the connection open."""
    sock.settimeout(10)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next((int(line[15:]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")), None)
    while (len(body) < length) if length is not None else not body.endswith(b"0\r\n\r\n"):
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_prompt_body_and_a_slow_answer_are_not_cut_off(tmp_path: Path) -> None:
    """With a 1 s request timeout, on one kept-alive connection: a tool call whose body comes in two pieces 0.4 s
    apart, and whose vendor takes 2.5 s, gets its whole answer (only the time the client takes to send counts); the
    next request on that connection is served too."""
    with (
        HeldVendor(hold=2.5) as vendor,
        http_server("--stateless", "--config", short_timeouts(tmp_path), vendor=vendor) as url,
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock,
    ):
        head = SLOW_POST.removesuffix(b"{").replace(b"content-length: 1000", b"content-length: %d")
        call = json.dumps(call_message(2, "tcj_slow")).encode()
        sock.sendall(head % len(call) + call[:10])
        time.sleep(0.4)
        started = time.monotonic()
        sock.sendall(call[10:])
        slow = read_response(sock)
        took = time.monotonic() - started
        init = json.dumps(INIT).encode()
        sock.sendall(head % len(init) + init)
        after = read_response(sock)
    assert slow.startswith(b"HTTP/1.1 200") and took > 2
    assert b'"test_case_job_id":"tcj_slow"' in slow.replace(b" ", b"") and b'"id":2' in slow.replace(b" ", b"")
    assert after.startswith(b"HTTP/1.1 200") and b'"serverInfo"' in after and len(vendor.paths) == 1
