"""A write's confirmation across stateless HTTP replicas (issue 20, point 6): under protocol 2026-07-28 the question
comes back sealed in `requestState`, and the answer may reach another replica. Replicas that share
`request_state_key` take each other's answers; replicas with keys of their own refuse them, and nothing is sent.

Each replica serves the demo, whose vendors live in that process alone: a batch started on one is listed only there,
so "nothing was sent" is checked on both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitRequestParams, ElicitResult

from mcp_server.config import ENV_VARS
from mcp_server.demo import DEMO_AGENT_ID
from tests.test_http import RoundRobin, http_server

pytestmark = pytest.mark.anyio

KEY_ENV = ENV_VARS["request_state_key"]
SHARED_KEY = "5b0e7c1f9a2d4e6b8c3a1f0e9d7c5b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c"
RUN = {"test_case_definition_ids": ["tcd_demo_refund"], "agent_id": DEMO_AGENT_ID, "version": 2}
QUESTION = "Start 1 Retell test on agent agent_demo_support (retell-llm llm_demo_support), version 2?"


class Rounds(RoundRobin):
    """The round-robin balancer, noting which replica took each tools/call round and whether it carried the
    question's sealed `requestState` back (the answer's round)."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(ports)
        self.rounds: list[tuple[int, bool]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        message = json.loads(request.content) if request.method == "POST" and request.content else {}
        response = await super().handle_async_request(request)  # sends it to the next replica's port
        if isinstance(message, dict) and message.get("method") == "tools/call":
            self.rounds.append((request.url.port or 0, "requestState" in (message.get("params") or {})))
        return response


@contextmanager
def replicas(keys: list[str | None], logs: list[list[str]]) -> Iterator[list[str]]:
    """Two `serve --demo --transport http --stateless --allow-runs` processes, each with its request-state key (None:
    unset, so the SDK makes one of the process's own); yields their base URLs. Each one's stderr goes to its list."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(http_server("--stateless", "--allow-runs", env={KEY_ENV: key} if key else {}, logs=log))
            for key, log in zip(keys, logs, strict=True)
        ]


async def call_through_balancer(urls: list[str], asked: list[str]) -> tuple[Rounds, Any]:
    """run_batch_test from one 2026-07-28 client whose user accepts, every request going to the next replica in
    turn; returns the balancer and the result (or the MCPError raised)."""

    async def accept(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={})

    balancer = Rounds([int(url.rsplit(":", 1)[1]) for url in urls])
    async with (
        httpx2.AsyncClient(transport=balancer) as http,
        Client(
            streamable_http_client(f"{urls[0]}/mcp", http_client=http), mode="2026-07-28", elicitation_callback=accept
        ) as client,
    ):
        try:
            result: Any = await client.call_tool("run_batch_test", RUN)
        except MCPError as error:
            result = error
    return balancer, result


async def reruns(url: str) -> list[str]:
    """The batches started on this replica (the demo names them `tcbj_demo_rerun_<n>`)."""
    async with Client(f"{url}/mcp") as client:
        listed = await client.call_tool("list_batch_tests", {"agent_id": DEMO_AGENT_ID})
    assert listed.structured_content is not None
    ids = [item["test_case_batch_job_id"] for item in listed.structured_content["items"]]
    return [batch for batch in ids if batch.startswith("tcbj_demo_rerun_")]


async def test_replicas_sharing_a_request_state_key_take_each_others_confirmation_answers() -> None:
    """Asked on one replica and answered on the other, the write is sent once, by the replica that got the answer."""
    logs: list[list[str]] = [[], []]
    asked: list[str] = []
    with replicas([SHARED_KEY, SHARED_KEY], logs) as urls:
        balancer, result = await call_through_balancer(urls, asked)
        started = {url: await reruns(url) for url in urls}
    first, second = balancer.ports
    assert balancer.rounds == [(first, False), (second, True)]  # the question's round, then the answer's elsewhere
    assert len(asked) == 1 and asked[0].startswith(QUESTION)
    assert not isinstance(result, MCPError) and result.is_error is False, result
    assert result.structured_content["test_case_batch_job_id"] == "tcbj_demo_rerun_1"
    assert started == {urls[0]: [], urls[1]: ["tcbj_demo_rerun_1"]}
    assert SHARED_KEY not in "".join(logs[0] + logs[1]) and SHARED_KEY[:8] not in "".join(logs[0] + logs[1])


@pytest.mark.parametrize("keys", [[None, None], [SHARED_KEY, SHARED_KEY[::-1]]], ids=["unset", "one-each"])
async def test_replicas_without_a_shared_key_refuse_the_answer_and_send_nothing(keys: list[str | None]) -> None:
    """Without one key on both (unset, or each its own), the replica that gets the answer cannot open the question's
    sealed state: the call fails as invalid params, the user is not asked again, and no batch starts anywhere."""
    logs: list[list[str]] = [[], []]
    asked: list[str] = []
    with replicas(keys, logs) as urls:
        balancer, result = await call_through_balancer(urls, asked)
        started = {url: await reruns(url) for url in urls}
    first, second = balancer.ports
    assert balancer.rounds == [(first, False), (second, True)]
    assert len(asked) == 1
    assert isinstance(result, MCPError)
    assert (result.error.code, result.error.message) == (-32602, "Invalid or expired requestState")
    assert started == {urls[0]: [], urls[1]: []}
    # The replica that got the answer says why in its own log; the one that asked saw nothing wrong.
    assert "requestState rejected on tools/call: unknown key" in logs[1][0]
    assert "requestState rejected" not in logs[0][0]
