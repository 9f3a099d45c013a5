"""A misbehaving vendor on 127.0.0.1, written on raw sockets so it can break HTTP at the byte level.

A scenario name picks the behaviour: `status-404`, `hang-a`, `trickle`, ... (see `FaultVendor.respond`).
- A GET names it by its last path segment, except the reads a write makes first (`READ_ROUTES`: phone numbers, the
  agents (a POST), an agent, its LLM, a test definition, a Tela prompt version; and an agent's versions, which list
  the drafts made), which always answer a small fake record.
- A write (POST, PUT, PATCH; its body is read whole by its Content-Length) names it by its last path segment, or,
  on the routes that carry no ID (`WRITE_SCENARIOS`), by one body field: the first test definition of a batch, the
  name of a new test definition, the title of a new Tela case or prompt draft, the prompt version of a Tela run.
- A Tela ID must be a UUID: `vendor.uuid(scenario)` gives one that stands for the scenario wherever it appears.
- Agent `A` runs on the Retell LLM named after its `--` (agent `ok-1--status-500` makes its draft fine and then
  fails the change of its LLM, `status-500`), else on `ok-llm`: so either write of a draft can be faulted.
Scenario `ok-...` answers a good object: a run to a GET, the body echoed back with an `id` to a write (the agent
at `base_version + 1` to `create-agent-version`).

It runs its own asyncio loop in a thread, records every request (and counts writes apart, in `writes`), counts bytes
sent, and notes when a client hangs up on a request it is holding. Made `closed`, it holds its port without listening,
so every connection is refused until `open()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gzip
import json
import socket
import struct
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

GOOD_RUN: dict[str, Any] = {"status": "pass", "result_explanation": None, "transcript_snapshot": {"transcript": []}}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
PROMPT_ID = "33333333-3333-4333-8333-333333333333"  # the Tela prompt every fake prompt version belongs to
DEFAULT_LLM = "ok-llm"


def _first(values: object) -> object:
    return values[0] if isinstance(values, list) and values else None


# The write routes that carry no ID, and the body field that names the scenario on each.
WRITE_SCENARIOS: dict[str, Callable[[dict[str, Any]], object]] = {
    "/create-batch-test": lambda body: _first(body.get("test_case_definition_ids")),
    "/test-case/run-all": lambda body: body.get("promptVersionId"),
    "/create-test-case-definition": lambda body: body.get("name"),
    "/test-case": lambda body: body.get("title"),
    "/prompt-version": lambda body: body.get("title"),
}


def llm_of(agent_id: str) -> str:
    """The Retell LLM a fake agent runs on: what follows its `--`, else `ok-llm`."""
    return agent_id.partition("--")[2] or DEFAULT_LLM


def _fake_agent(agent_id: str, version: int) -> dict[str, Any]:
    engine = {"type": "retell-llm", "llm_id": llm_of(agent_id), "version": version}
    return {"agent_id": agent_id, "version": version, "is_published": False, "response_engine": engine}


def _fake_llm(llm_id: str, version: int) -> dict[str, Any]:
    return {"llm_id": llm_id, "version": version, "is_published": False, "general_prompt": "Be kind.", "states": []}


def _fake_definition(definition_id: str, version: int) -> dict[str, Any]:
    return {
        "test_case_definition_id": definition_id,
        "name": "Refund",
        "response_engine": {"type": "retell-llm", "llm_id": DEFAULT_LLM, "version": 1},
        "user_prompt": "Ask for a refund.",
        "metrics": ["The agent offers a refund."],
    }


def _fake_prompt_version(version_id: str, version: int) -> dict[str, Any]:
    return {
        "id": version_id,
        "promptId": PROMPT_ID,
        "title": "Support",
        "configuration": {"model": "gpt-4o", "type": "chat", "temperature": 0},
        "variables": [],
        "content": "Help the customer.",
        "draft": False,
        "promoted": True,
    }


def _fake_phone_numbers(_: str, version: int) -> dict[str, Any]:
    return {"items": [], "has_more": False, "pagination_key": None}


def _fake_agents(_: str, version: int) -> dict[str, Any]:
    """No other agent: the agent drafted is the workspace's only one (a survey counts it in by itself)."""
    return {"items": [], "has_more": False, "pagination_key": None}


# The reads a write makes first, by route prefix: each answers its fake record for the ID (and ?version=) asked.
# (An agent's versions are answered apart: they hold the drafts made.)
READ_ROUTES: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "/v2/list-phone-numbers": _fake_phone_numbers,
    "/v2/list-agents": _fake_agents,
    "/get-agent/": _fake_agent,
    "/get-retell-llm/": _fake_llm,
    "/get-test-case-definition/": _fake_definition,
    "/prompt-version/": _fake_prompt_version,
}


@dataclass
class Hit:
    scenario: str
    path: str
    headers: dict[str, str]
    at: float
    method: str = "GET"
    body: dict[str, Any] | None = None  # a write's JSON body (None when it was not a JSON object)

    @property
    def is_write(self) -> bool:
        """A POST, PUT or PATCH, but the POST that lists Retell's agents (a read)."""
        return self.method in WRITE_METHODS and not self.path.startswith("/v2/list-agents")


class FaultVendor:
    def __init__(self, redirect_to: str = "", *, closed: bool = False) -> None:
        self.redirect_to = redirect_to
        self.closed = closed
        self.hits: list[Hit] = []
        self.counts: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.aliases: dict[str, str] = {}
        self.drafts: set[tuple[str, int]] = set()  # (agent, version) of each draft made
        self._server: asyncio.Server | None = None
        self.bytes_sent: Counter[str] = Counter()
        self.hung_up: dict[str, threading.Event] = defaultdict(threading.Event)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        # Bound but not listening, a port refuses every connection: that is `closed` until `open()`.
        starting = asyncio.start_server(self._serve, sock=sock, start_serving=not self.closed)
        server = self._server = self._loop.run_until_complete(starting)
        self.port = sock.getsockname()[1]
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

    def open(self) -> None:
        """Start listening (a `closed` vendor refused every connection until now)."""
        assert self._server is not None
        asyncio.run_coroutine_threadsafe(self._server.start_serving(), self._loop).result(5)
        self.closed = False

    def uuid(self, scenario: str) -> str:
        """A UUID that stands for `scenario` wherever a request carries it (Tela's IDs must be UUIDs)."""
        alias = str(uuid.uuid5(uuid.NAMESPACE_URL, scenario))
        self.aliases[alias] = scenario
        return alias

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
                method, path = request_line.split(" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                hit = Hit("", path, headers, time.monotonic(), method)
                if method in WRITE_METHODS:
                    try:
                        hit.body = _json_object(await reader.readexactly(int(headers.get("content-length") or 0)))
                    except asyncio.IncompleteReadError:
                        return
                hit.scenario = self._scenario(hit)
                self.hits.append(hit)
                self.counts[hit.scenario] += 1
                if hit.is_write:
                    self.writes[hit.scenario] += 1
                if not await self.respond(hit, reader, writer):
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    def _scenario(self, hit: Hit) -> str:
        route = hit.path.split("?")[0].rstrip("/")
        named: object = route.rsplit("/", 1)[-1]
        if hit.method in WRITE_METHODS and route in WRITE_SCENARIOS:
            named = WRITE_SCENARIOS[route](hit.body or {})
        named = named if isinstance(named, str) else ""  # a write without its field: the 404 of no scenario
        return self.aliases.get(named, named)

    def _read_record(self, hit: Hit) -> dict[str, Any] | None:
        """The fake record a write's preparing read gets, or None for any other read."""
        route, _, query = hit.path.partition("?")
        version = parse_qs(query).get("version", ["1"])[0]
        if route.startswith("/list-agent-versions/"):
            agent = route.rsplit("/", 1)[-1]
            made = sorted(number for made_by, number in self.drafts if made_by == agent)
            items = [{"version": number, "is_published": False, "base_version": None if number == 1 else 1,
                      "last_modification_timestamp": 1} for number in [1, *made]]  # fmt: skip
            return {"items": items, "has_more": False, "pagination_key": None}
        for prefix, record in READ_ROUTES.items():
            if route.startswith(prefix):
                return record(route.rsplit("/", 1)[-1], int(version) if version.isdigit() else 1)
        return None

    def _good(self, hit: Hit) -> bytes:
        """A good answer: a run to a GET; to a write its body echoed with an `id`, or the new draft of an agent."""
        if not hit.is_write:
            return json.dumps({"test_case_job_id": hit.scenario, **GOOD_RUN}).encode()
        body = hit.body or {}
        if hit.path.startswith("/create-agent-version/"):
            base = body.get("base_version")
            draft = (base if isinstance(base, int) else 0) + 1
            self.drafts.add((hit.scenario, draft))
            return json.dumps(_fake_agent(hit.scenario, draft)).encode()
        return json.dumps({**body, "id": hit.scenario}).encode()

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

    async def respond(self, hit: Hit, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return False to close the connection."""
        scenario = hit.scenario
        if not hit.is_write and (record := self._read_record(hit)) is not None:
            return await self._send(writer, scenario, 200, json.dumps(record).encode())
        kind, _, rest = scenario.partition("-")
        arg = rest.partition("-")[0]  # `status-404-again`: the same fault under a fresh ID
        # Which time this scenario is asked: writes count apart, since a write's own reads may carry its ID.
        seen = self.writes[scenario] if hit.method in WRITE_METHODS else self.count(scenario)

        def error(status: int, message: str) -> bytes:
            return json.dumps({"status": "error", "message": message}).encode()

        good = self._good(hit)
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
        if kind == "flaky429":  # once 429 (`flaky429-0`: with Retry-After 0, else 50 ms), then good
            if seen > 1:
                return await self._send(writer, scenario, 200, good)
            wait = {"retry-after": "0"} if arg == "0" else {"retry-after-ms": "50"}
            return await self._send(writer, scenario, 429, error(429, "slow down"), wait)
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
        if kind == "gzipcut":  # a whole HTTP message whose gzip stream lacks its last 4 bytes (the size trailer)
            return await self._send(writer, scenario, 200, gzip.compress(good)[:-4], {"content-encoding": "gzip"})
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


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


@contextmanager
def fault_vendor(redirect_to: str = "", *, closed: bool = False) -> Iterator[FaultVendor]:
    vendor = FaultVendor(redirect_to, closed=closed).start()
    try:
        yield vendor
    finally:
        vendor.stop()
