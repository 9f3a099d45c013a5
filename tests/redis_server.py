"""A real redis-server (Debian's package, as `.ci/run` installs it) on a free loopback port, for the tests of replicas
that share used write confirmations; a test that needs one skips, saying why, where it is not installed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.test_http import free_port


class RedisServer:
    """One redis-server process: its URL (with the password it requires) and a way to stop it mid-test."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, password: str) -> None:
        self.process = process
        self.port = port
        self.password = password

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        """Whether it answers an authenticated PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                received = b""
                while received.count(b"\r\n") < 2:
                    chunk = connection.recv(256)
                    if not chunk:
                        return False
                    received += chunk
        except OSError:
            return False
        return received == b"+OK\r\n+PONG\r\n"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@contextmanager
def redis_server(directory: Path, password: str) -> Iterator[RedisServer]:
    """redis-server on 127.0.0.1 and a free port, requiring `password`, keeping nothing on disk; stopped on exit."""
    binary = shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server",) if Path(p).exists()), None)
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server): this test needs a real one")
    port = free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password]
    command += ["--save", "", "--appendonly", "no", "--dir", str(directory), "--daemonize", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(process, port, password)
    try:
        deadline = time.monotonic() + 20
        while not server.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("redis-server did not start")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()
