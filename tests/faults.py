"""A misbehaving vendor on 127.0.0.1, written on raw sockets so it can break HTTP at the byte level.

The ID in the request path picks the behaviour: `status-404`, `hang-a`, `trickle`, ... (see `FaultVendor.respond`).
It runs its own asyncio loop in a thread, records every request, counts bytes sent, and notes when a client
hangs up on a request it is holding.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import socket
import struct
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

GOOD_RUN = {"status": "pass", "result_explanation": None, "transcript_snapshot": {"transcript": []}}


@dataclass
class Hit:
    scenario: str
    path: str
    headers: dict[str, str]
    at: float


class FaultVendor:
    def __init__(self, redirect_to: str = "") -> None:
        self.redirect_to = redirect_to
        self.hits: list[Hit] = []
        self.counts: Counter[str] = Counter()
        self.bytes_sent: Counter[str] = Counter()
        self.hung_up: dict[str, threading.Event] = defaultdict(threading.Event)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()  # each connection's `finally` closes its socket
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    def start(self) -> FaultVendor:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, scenarios: list[str], timeout: float) -> bool:
        """Whether every scenario has been asked for within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not all(self.count(s) for s in scenarios):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def count(self, scenario: str) -> int:
        return self.counts[scenario]

    def times(self, scenario: str) -> list[float]:
        return [hit.at for hit in self.hits if hit.scenario == scenario]

    # -- HTTP ------------------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                path = request_line.split(" ")[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                scenario = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                self.hits.append(Hit(scenario, path, headers, time.monotonic()))
                self.counts[scenario] += 1
                if not await self.respond(scenario, reader, writer):
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        scenario: str,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> bool:
        head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", "content-type: application/json"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        writer.write(data)
        await writer.drain()
        self.bytes_sent[scenario] += len(data)
        return True

    async def _hold_until_hangup(self, scenario: str, reader: asyncio.StreamReader) -> bool:
        with contextlib.suppress(ConnectionError):
            await reader.read()  # returns b"" when the client closes its side
        self.hung_up[scenario].set()
        return False

    async def respond(self, scenario: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return False to close the connection."""
        kind, _, rest = scenario.partition("-")
        arg = rest.partition("-")[0]  # `status-404-again`: the same fault under a fresh ID
        seen = self.count(scenario)

        def error(status: int, message: str) -> bytes:
            return json.dumps({"status": "error", "message": message}).encode()

        good = json.dumps({"test_case_job_id": scenario, **GOOD_RUN}).encode()
        if kind == "ok":
            return await self._send(writer, scenario, 200, good)
        if kind == "status":
            status = int(arg)
            message = "Cannot find requested asset" if status == 422 else f"simulated {status}"
            return await self._send(writer, scenario, status, error(status, message))
        if kind == "htmlerror":
            return await self._send(writer, scenario, 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
        if kind == "retryafter":
            if seen > 1:
                return await self._send(writer, scenario, 200, good)
            waits = {
                "seconds": {"retry-after": "1"},
                "date": {"retry-after": email.utils.formatdate(time.time() + 2, usegmt=True)},
                "ms": {"retry-after-ms": "400"},
                "long": {"retry-after": "3600"},
            }
            return await self._send(writer, scenario, 429, error(429, "slow down"), waits[arg])
        if kind == "flaky429":
            if seen > 1:
                return await self._send(writer, scenario, 200, good)
            return await self._send(writer, scenario, 429, error(429, "slow down"), {"retry-after-ms": "50"})
        if kind == "recover":
            if seen > 1:
                return await self._send(writer, scenario, 200, good)
            return await self._send(writer, scenario, 503, error(503, "warming up"))
        if kind == "midbody":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\ncontent-type: application/json\r\n\r\n")
            writer.write(b'{"status": "pass", "transcript": "' + b"x" * 100)
            await writer.drain()
            return False
        if kind == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
            return False
        if kind == "hang":
            return await self._hold_until_hangup(scenario, reader)
        if kind in ("invalidjson", "empty", "array", "html"):
            bodies = {"invalidjson": b'{"status": "pass",,}', "empty": b"", "array": b"[1, 2, 3]", "html": b"<html/>"}
            return await self._send(writer, scenario, 200, bodies[kind])
        if kind == "huge":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n[")
            chunk = b"1234567," * 8192  # 64 KiB
            try:
                for _ in range(8192):  # up to 512 MiB, if anyone kept reading
                    writer.write(chunk)
                    await writer.drain()
                    self.bytes_sent[scenario] += len(chunk)
            except ConnectionError:
                pass
            return False
        if kind == "trickle":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{")
            try:
                for _ in range(1200):  # two minutes of one byte every 100 ms
                    await asyncio.sleep(0.1)
                    writer.write(b" ")
                    await writer.drain()
            except ConnectionError:
                pass
            self.hung_up[scenario].set()
            return False
        if kind == "badgzip":  # says gzip (or a stack of codings) over a body that is plain JSON
            codings = {"200": (200, "gzip"), "404": (404, "gzip"), "stacked": (200, "gzip, br, deflate")}
            status, coding = codings[arg]
            return await self._send(writer, scenario, status, good, {"content-encoding": coding})
        if kind == "nonfinite":
            bodies = {"nan": b'{"status": "pass", "score": NaN}', "overflow": b'{"status": "pass", "score": 1e999}'}
            return await self._send(writer, scenario, 200, bodies[arg])
        if kind == "insaneretry":  # a Retry-After no one can wait for: ignored, the usual backoff applies
            if seen > 1:
                return await self._send(writer, scenario, 200, good)
            waits = {
                "inf": {"retry-after": "inf"},
                "huge": {"retry-after-ms": "1e400"},
                "digits": {"retry-after": "9" * 300},
                "year": {"retry-after": "Fri, 31 Dec 99999 23:59:59 GMT"},
            }
            return await self._send(writer, scenario, 503, error(503, "busy"), waits[arg])
        if kind == "redirect":
            return await self._send(writer, scenario, 302, b"", {"location": f"{self.redirect_to}/get-test-run/ok-2"})
        if kind in ("00000000", "11111111"):  # Tela UUIDs: 0000... is found, 1111... is missing
            if kind == "00000000":
                return await self._send(writer, scenario, 200, json.dumps({"id": scenario, "title": "t"}).encode())
            return await self._send(writer, scenario, 404, json.dumps({"message": "Test case not found"}).encode())
        return await self._send(writer, scenario, 404, error(404, "Not Found"))


@contextmanager
def fault_vendor(redirect_to: str = "") -> Iterator[FaultVendor]:
    vendor = FaultVendor(redirect_to).start()
    try:
        yield vendor
    finally:
        vendor.stop()
