"""Shared test fixtures: a clean environment, fake vendors behind httpx2.MockTransport, and an in-memory client."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp_types import CallToolResult

from mcp_server.config import CONFIG_ENV_VAR, ENV_VARS, Settings, load_settings
from mcp_server.server import build_server
from mcp_server.upstream.clock import Clock

# Every tool, in the order tools/list gives them (the README table and manifest.json must match).
TOOL_NAMES = [
    "get_test_run",
    "get_batch_test",
    "list_test_runs",
    "get_test_case_definition",
    "list_batch_tests",
    "list_test_case_definitions",
    "get_response_engine",
    "list_agent_versions",
    "summarize_batch_test",
    "wait_for_test_run",
    "compare_batch_tests",
    "list_calls",
    "get_call",
    "draft_test_from_call",
    "get_test_case",
    "list_test_cases",
    "get_prompt_version",
    "list_prompt_versions",
    "list_completion_runs",
    "get_completion_run",
    "draft_test_case_from_run",
]
RUN_TOOL_NAMES = ["run_batch_test", "run_test_cases"]
# The read tools of the calls toolset (production calls and completion runs), listed only with it.
CALLS_TOOL_NAMES = [
    "list_calls",
    "get_call",
    "draft_test_from_call",
    "list_completion_runs",
    "get_completion_run",
    "draft_test_case_from_run",
]

RETELL_KEY = "key_retell_5f1c9a7d3e2b8046aa"
TELA_KEY = "tela_sk_93b7e1d4c6a2f0587b"

JOB_ID = "tcj_2f8a9c"
CASE_ID = "550e8400-e29b-41d4-a716-446655440000"

RETELL_RUN: dict[str, Any] = {
    "test_case_job_id": JOB_ID,
    "status": "fail",
    "test_case_definition_id": "tcd_77",
    "test_case_definition_snapshot": {
        "name": "refund",
        "response_engine": {"type": "retell-llm", "llm_id": "llm_1", "version": 0},
        "metrics": ["offers refund"],
        "type": "simulation",
    },
    "creation_timestamp": 1731000000000,
    "user_modified_timestamp": 1731000042000,
    "transcript_snapshot": {"transcript": [{"role": "agent", "content": "Hello"}]},
    "result_explanation": "No refund was offered.",
}

TELA_CASE: dict[str, Any] = {
    "id": CASE_ID,
    "title": "Customer Support Query Test",
    "messages": [{"role": "user", "content": "My order hasn't arrived yet."}],
    "variables": {"order_id": "ORD-12345"},
    "variablesRichContent": None,
    "files": None,
    "promptId": "550e8400-e29b-41d4-a716-446655440001",
    "expectedOutput": "I'll help you track down your order.",
    "answers": {"version1": {"good": [], "bad": [], "evals": []}},
    "promptApplicationId": None,
    "metadata": {"source": "craft"},
    "createdAt": "2023-01-01T00:00:00.000Z",
    "updatedAt": "2023-01-02T00:00:00.000Z",
    "deletedAt": None,
}

Handler = Callable[[httpx2.Request], httpx2.Response | Awaitable[httpx2.Response]]

# Reads that are POSTs: Retell lists agents and calls with one (retell-sdk 6.2.13 `resources/agent.py:list`,
# `resources/call.py:list`).
POST_READS = frozenset({"/v2/list-agents", "/v3/list-calls"})


def is_write(method: str, path: str) -> bool:
    """Whether a request to a vendor changes something there: anything but a GET or a POST that only reads."""
    return method != "GET" and path not in POST_READS


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json", **(headers or {})}
    )


def retell_ok(request: httpx2.Request) -> httpx2.Response:
    return json_response(200, {**RETELL_RUN, "test_case_job_id": request.url.path.rsplit("/", 1)[-1]})


GENERATIONS = [{"id": "8f14e45f-ceea-467f-a0e6-1a2b3c4d5e6f", "output": "Let me look up your order."}]


def tela_ok(request: httpx2.Request) -> httpx2.Response:
    """Tela's two read routes: one case by ID, or a prompt's cases as a bare array; generations when asked."""
    extra = {"generations": GENERATIONS} if request.url.params.get("includeGenerations") == "true" else {}
    if request.url.path == "/test-case":
        return json_response(200, [{**TELA_CASE, **extra}])
    return json_response(200, {**TELA_CASE, "id": request.url.path.rsplit("/", 1)[-1], **extra})


class FakeVendors:
    """Plays Retell (api.retellai.com) and Tela (api.tela.com): records every request, answers with a handler."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.retell: Handler = retell_ok
        self.tela: Handler = tela_ok

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        handler = self.retell if request.url.host == "api.retellai.com" else self.tela
        response = handler(request)
        return response if isinstance(response, httpx2.Response) else await response

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own keys or config file must never reach a test."""
    for name in [*ENV_VARS.values(), CONFIG_ENV_VAR]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Tests that run `main()` in-process configure logging for the process; undo it after each one."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def vendors() -> FakeVendors:
    return FakeVendors()


def make_settings(flags: dict[str, Any] | None = None, **env: str) -> Settings:
    """Settings with both keys configured; `flags` by dotted key, keyword arguments as environment variables."""
    return load_settings(flags, env={"RETELL_API_KEY": RETELL_KEY, "TELA_API_KEY": TELA_KEY, **env})


class FakeClock:
    """Time that moves only when slept on: waits and polls run in microseconds, yet see the time pass."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds
        await anyio.sleep(0)

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


@asynccontextmanager
async def connect(
    vendors: FakeVendors, settings: Settings | None = None, clock: FakeClock | None = None
) -> AsyncIterator[Client]:
    """The real server, reached through the SDK's in-memory client, with `vendors` in place of the network."""
    extra = {"clock": clock.clock()} if clock else {}
    server = build_server(settings or make_settings(), transport=vendors.transport(), **extra)
    async with Client(server) as client:
        yield client


def error_of(result: CallToolResult) -> dict[str, Any]:
    """The contract's error object: an error result whose only content is one text block of pure JSON."""
    assert result.is_error is True
    assert result.structured_content is None
    assert len(result.content) == 1 and result.content[0].type == "text"
    payload = json.loads(result.content[0].text)
    assert list(payload) == ["error"]
    error: dict[str, Any] = payload["error"]
    return error
