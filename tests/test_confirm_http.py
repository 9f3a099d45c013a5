"""A write's confirmation across stateless HTTP replicas (issue 20, point 6): under protocol 2026-07-28 the question
comes back sealed in `requestState`, and the answer may reach another replica. Replicas that share
`request_state_key` take each other's answers; replicas with keys of their own refuse them, and nothing is sent.
Each answer sends one write, on whichever replica it is sent to, through the Redis they share
(`request_state_store`; issue 24, point 6); and a stateless server, which cannot know whether a handshake-era client
could be asked, refuses its writes as `unconfirmed` (issue 24, point 5).

Each replica serves the demo, whose vendors live in that process alone: a batch started on one is listed only there,
so "nothing was sent" is checked on both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitRequestParams, ElicitResult, InputRequiredResult, InputResponses

from mcp_server.config import ENV_VARS
from mcp_server.demo import DEMO_AGENT_ID
from tests.conftest import error_of
from tests.redis_server import redis_server
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
def replicas(keys: list[str | None], logs: list[list[str]], env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """Two `serve --demo --transport http --stateless --allow-runs` processes, each with its request-state key (None:
    unset, so the SDK makes one of the process's own) and `env`; yields their base URLs. Each one's stderr goes to its
    list."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                http_server(
                    "--stateless", "--allow-runs", env={**(env or {}), **({KEY_ENV: key} if key else {})}, logs=log
                )
            )
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


STORE_ENV = "RETELL_TELA_MCP_REQUEST_STATE_STORE"  # SPEC: configuration
REDIS_PASSWORD = "rp-4c8e1a7d3b9f2e6a0d5c"
FAILED_RUN = {"test_case_job_id": "tcj_demo_failed"}


async def accepting(asked: list[str]) -> Any:
    async def accept(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={})

    return accept


def assert_no_password(logs: list[list[str]]) -> None:
    text = "".join(logs[0] + logs[1])
    assert all(REDIS_PASSWORD[i : i + 8] not in text for i in range(len(REDIS_PASSWORD) - 7))


async def test_a_confirmation_sent_again_to_either_replica_is_declined_through_their_shared_redis(
    tmp_path: Path,
) -> None:
    """Replicas sharing a key and a real redis-server: one question's sealed state and yes, sent to the replica that
    asked and then again to each replica, starts one batch; every copy is `declined` ("this confirmation was already
    used") and nothing more starts anywhere. The store's password is in no log line (its masked form is)."""
    logs: list[list[str]] = [[], []]
    with (
        redis_server(tmp_path, REDIS_PASSWORD) as redis,
        replicas([SHARED_KEY, SHARED_KEY], logs, env={STORE_ENV: redis.url}) as urls,
    ):
        callback = await accepting([])
        async with (
            Client(f"{urls[0]}/mcp", mode="2026-07-28", elicitation_callback=callback) as one,
            Client(f"{urls[1]}/mcp", mode="2026-07-28", elicitation_callback=callback) as two,
        ):
            first = await one.session.call_tool("run_batch_test", RUN, allow_input_required=True)
            assert isinstance(first, InputRequiredResult) and first.input_requests and first.request_state
            answers: InputResponses = {key: ElicitResult(action="accept", content={}) for key in first.input_requests}
            results = [
                await client.call_tool(
                    "run_batch_test", RUN, input_responses=answers, request_state=first.request_state
                )
                for client in (one, two, one, two)
            ]
        started = {url: await reruns(url) for url in urls}
    assert results[0].is_error is False, results[0].content[0].text
    for again in results[1:]:
        error = error_of(again)
        assert error["code"] == "declined" and "this confirmation was already used" in error["message"]
    assert started == {urls[0]: ["tcbj_demo_rerun_1"], urls[1]: []}
    assert "kept in Redis at redis://:rp-4…0d5c@127.0.0.1:" in logs[0][0]
    assert_no_password(logs)


async def test_with_the_store_unreachable_writes_are_unconfirmed_and_reads_are_served(tmp_path: Path) -> None:
    """Once the shared redis-server has stopped, a write the user accepts is `unconfirmed` (nothing is sent: used
    confirmations cannot be checked), while reads go on as before; the replica says why in its log."""
    logs: list[list[str]] = [[], []]
    asked: list[str] = []
    with (
        redis_server(tmp_path, REDIS_PASSWORD) as redis,
        replicas([SHARED_KEY, SHARED_KEY], logs, env={STORE_ENV: redis.url}) as urls,
    ):
        async with Client(f"{urls[0]}/mcp", mode="2026-07-28", elicitation_callback=await accepting(asked)) as client:
            before = await client.call_tool("run_batch_test", RUN)
            redis.stop()
            refused = await client.call_tool("run_batch_test", RUN)
            read = await client.call_tool("get_test_run", FAILED_RUN)
        started = {url: await reruns(url) for url in urls}
    assert before.is_error is False and len(asked) == 2
    error = error_of(refused)
    assert error["code"] == "unconfirmed" and "(request_state_store) cannot be reached" in error["message"]
    assert read.is_error is False and read.structured_content is not None
    assert read.structured_content["test_case_job_id"] == FAILED_RUN["test_case_job_id"]
    assert started == {urls[0]: ["tcbj_demo_rerun_1"], urls[1]: []}
    assert "request_state_store cannot be reached" in logs[0][0] and "tool=run_batch_test" in logs[0][0]
    assert "outcome=unconfirmed" in logs[0][0]
    assert_no_password(logs)


@pytest.mark.parametrize("declares", [True, False], ids=["declares elicitation", "declares none"])
async def test_a_stateless_server_refuses_a_handshake_era_write_as_unconfirmed(declares: bool) -> None:
    """--stateless, protocol 2025-11-25: the server never sees the client's `initialize`, so it cannot tell whether
    the client could be asked: the write is `unconfirmed`, nobody is asked, no batch starts, and the message says
    what works (protocol 2026-07-28, a stateful instance, or confirm_writes false). Reads are served."""
    asked: list[str] = []
    callback = await accepting(asked) if declares else None
    with http_server("--stateless", "--allow-runs") as url:
        async with Client(f"{url}/mcp", mode="legacy", elicitation_callback=callback) as client:
            result = await client.call_tool("run_batch_test", RUN)
            read = await client.call_tool("get_test_run", FAILED_RUN)
        started = await reruns(url)
    error = error_of(result)
    assert error["code"] == "unconfirmed" and error["retryable"] is False
    assert error["message"].startswith("Nothing was sent to Retell: over stateless HTTP")
    assert all(advice in error["message"] for advice in ("2026-07-28", "without --stateless", "confirm_writes"))
    assert asked == [] and started == [] and read.is_error is False


@pytest.mark.parametrize(
    ("extra", "env", "mode", "declares", "questions"),
    [
        (("--stateless",), {"RETELL_TELA_MCP_CONFIRM_WRITES": "false"}, "legacy", True, 0),
        (("--stateless",), {}, "2026-07-28", True, 1),
        (("--stateless",), {}, "2026-07-28", False, 0),
        ((), {}, "legacy", True, 1),
        ((), {}, "legacy", False, 0),
    ],
    ids=[
        "stateless, confirm_writes false",
        "stateless 2026-07-28",
        "stateless 2026-07-28, no elicitation",
        "sessions 2025-11-25",
        "sessions 2025-11-25, no elicitation",
    ],
)
async def test_where_the_server_knows_how_to_confirm_the_write_is_sent_once(
    extra: tuple[str, ...], env: dict[str, str], mode: Literal["legacy", "2026-07-28"], declares: bool, questions: int
) -> None:
    """With confirm_writes off nothing is asked anywhere, so nothing is refused; a 2026-07-28 request carries the
    client's capabilities, and a session remembers them: the user is asked where the client declared elicitation
    (else the opt-in is the consent, as before), and the batch starts once."""
    asked: list[str] = []
    callback = await accepting(asked) if declares else None
    with http_server(*extra, "--allow-runs", env=env) as url:
        async with Client(f"{url}/mcp", mode=mode, elicitation_callback=callback) as client:
            result = await client.call_tool("run_batch_test", RUN)
        started = await reruns(url)
    assert result.is_error is False, result.content[0].text
    assert len(asked) == questions and started == ["tcbj_demo_rerun_1"]
