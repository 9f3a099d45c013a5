"""Built-in sample records, served as a fake Retell and Tela for `--demo`: an agent, its test definitions, two
batches (the latest with a failure), a Tela prompt's cases, and, with `--allow-runs`, a started batch that
finishes over a few polls, so the whole loop (find, summarize, diagnose, rerun, wait) works offline.

The demo swaps only the HTTP transport, so every request still goes through the real clients, validation,
error mapping and tools: what a newcomer sees in the demo is what they get with real keys. The records follow the
vendors' published shapes (the API pages in shared/upstream, Retell's SDK types for the rest).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from typing import Any

import httpx2
from pydantic import SecretStr

from mcp_server.config import Settings

DEMO_KEY = "demo-key-not-a-secret"

DEMO_AGENT_ID = "agent_demo_support"
DEMO_LLM_ID = "llm_demo_support"
DEMO_PROMPT_ID = "550e8400-e29b-41d4-a716-446655440001"
DEMO_PROMPT_VERSION_ID = "550e8400-e29b-41d4-a716-446655440002"
ENGINE = {"type": "retell-llm", "llm_id": DEMO_LLM_ID, "version": 3}


def _definition(
    definition_id: str,
    name: str,
    user_prompt: str,
    metrics: list[str],
    *,
    variables: dict[str, str] | None = None,
    tool_mocks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A simulation test of the demo agent's LLM, as Retell's test-case-definition object has it."""
    return {
        "name": name,
        "response_engine": ENGINE,
        "user_prompt": user_prompt,
        "metrics": metrics,
        "dynamic_variables": variables or {},
        "tool_mocks": tool_mocks or [],
        "llm_model": "gpt-4.1",
        "test_case_definition_id": definition_id,
        "type": "simulation",
        "creation_timestamp": 1730000000000,
        "user_modified_timestamp": 1730000500000,
    }


def _run(
    job_id: str, status: str, definition: dict[str, Any], created: int, turns: list[Any], explanation: str | None
) -> dict[str, Any]:
    """A finished test run (Retell's test-case-job object) of `definition`."""
    return {
        "test_case_job_id": job_id,
        "status": status,
        "test_case_definition_id": definition["test_case_definition_id"],
        "test_case_definition_snapshot": definition,
        "creation_timestamp": created,
        "user_modified_timestamp": created + 30000,
        # Retell names the snapshot's type but not its fields; the demo keeps the turns as `messages`, the name
        # retell-sdk gives a playground conversation's turns (PlaygroundCompletionParams / ...Response).
        "transcript_snapshot": {"messages": turns},
        "result_explanation": explanation,
    }


ORDER = {"customer_name": "John Doe", "order_id": "ORD-12345"}
LOOKUP_MOCK: dict[str, Any] = {
    "tool_name": "lookup_order",
    "input_match_rule": {"type": "any"},
    "output": '{"status": "shipped", "eta_days": 9}',
    "result": True,
}
# Tool calls appear in a transcript as Retell's playground messages do (retell-sdk, PlaygroundCompletionResponse).
LOOKUP_TURNS: list[dict[str, Any]] = [
    {
        "role": "tool_call_invocation",
        "tool_call_id": "call_demo_1",
        "name": "lookup_order",
        "type": "custom",
        "arguments": '{"order_id": "ORD-12345"}',
    },
    {"role": "tool_call_result", "tool_call_id": "call_demo_1", "content": LOOKUP_MOCK["output"], "successful": True},
]

REFUND = _definition(
    "tcd_demo_refund",
    "Caller asks for a refund on a late order",
    "You ordered shoes two weeks ago and they have not arrived. Ask for a refund.",
    ["Agent offers a refund or a replacement", "Agent confirms the order number"],
    variables=ORDER,
    tool_mocks=[LOOKUP_MOCK],
)
GREETING = _definition(
    "tcd_demo_greeting",
    "Agent greets and asks how it can help",
    "Call and say hello, then wait.",
    ["Agent greets the caller", "Agent asks how it can help"],
)
HUMAN = _definition(
    "tcd_demo_human",
    "Caller asks for a human",
    "You are upset about a late order. Ask to speak to a person.",
    ["Agent offers to transfer the call to a person", "Agent stays polite"],
    variables=ORDER,
)
ADDRESS = _definition(
    "tcd_demo_address",
    "Caller changes the delivery address",
    "Ask to send order ORD-12345 to 1 Main Street instead.",
    ["Agent updates the delivery address", "Agent reads the new address back"],
    variables=ORDER,
    tool_mocks=[{"tool_name": "update_address", "input_match_rule": {"type": "any"}, "output": "", "result": False}],
)

GREETING_TURNS = [
    {"role": "agent", "content": "Thanks for calling Demo Shoes, how can I help you today?"},
    {"role": "user", "content": "Hello!"},
]
PASSING_TURNS: dict[str, list[dict[str, Any]]] = {
    "tcd_demo_refund": [
        {"role": "user", "content": "Hi, my order ORD-12345 never arrived. I want a refund."},
        *LOOKUP_TURNS,
        {"role": "agent", "content": "I'm sorry, order ORD-12345 is late. I can refund it now or send a replacement: "
         "which would you prefer?"},
        {"role": "user", "content": "A refund, please."},
        {"role": "agent", "content": "Done: the refund for ORD-12345 is on its way."},
    ],
    "tcd_demo_greeting": GREETING_TURNS,
    "tcd_demo_human": [
        {"role": "user", "content": "This is the third time I call. Let me talk to a person."},
        {"role": "agent", "content": "I understand, John. I'll transfer you to a colleague now."},
    ],
    "tcd_demo_address": [
        {"role": "user", "content": "Please send order ORD-12345 to 1 Main Street instead."},
        {"role": "agent", "content": "Done: ORD-12345 now goes to 1 Main Street."},
    ],
}  # fmt: skip

RETELL_RUNS: dict[str, dict[str, Any]] = {
    "tcj_demo_failed": _run(
        "tcj_demo_failed",
        "fail",
        REFUND,
        1731000000000,
        [
            {"role": "user", "content": "Hi, my order ORD-12345 never arrived. I want a refund."},
            *LOOKUP_TURNS,
            {"role": "agent", "content": "I'm sorry to hear that. The order shows as shipped, arriving in 9 days."},
            {"role": "user", "content": "That's too late. Can I get my money back?"},
            {"role": "agent", "content": "The order is still on its way, so please wait for it to arrive."},
        ],
        "Failed 'Agent offers a refund or a replacement': the agent only repeated the delivery estimate and never "
        "offered a refund or a replacement.",
    ),
    "tcj_demo_passed": _run("tcj_demo_passed", "pass", GREETING, 1731000100000, GREETING_TURNS, None),
    "tcj_demo_no_human": _run(
        "tcj_demo_no_human",
        "fail",
        HUMAN,
        1731000200000,
        [
            {"role": "user", "content": "This is the third time I call. Let me talk to a person."},
            {"role": "agent", "content": "I can help you with anything a person could. What is the problem?"},
            {"role": "user", "content": "I said a person!"},
            {"role": "agent", "content": "I'm sorry, I cannot do that."},
        ],
        "Failed 'Agent offers to transfer the call to a person': the agent refused twice.",
    ),
    "tcj_demo_address_error": _run(
        "tcj_demo_address_error",
        "error",
        ADDRESS,
        1731000300000,
        [{"role": "user", "content": "Please send order ORD-12345 to 1 Main Street instead."}],
        "The simulation stopped: the mock for update_address returned no output.",
    ),
}

AGENTS: dict[str, dict[str, Any]] = {
    DEMO_AGENT_ID: {
        "agent_id": DEMO_AGENT_ID,
        "agent_name": "Demo Shoes support",
        "channel": "voice",
        "response_engine": ENGINE,
        "version": 3,
        "is_published": True,
        "user_modified_timestamp": 1730000500000,
    },
    "agent_demo_custom": {
        "agent_id": "agent_demo_custom",
        "agent_name": "Demo custom-LLM agent",
        "channel": "voice",
        "response_engine": {"type": "custom-llm", "llm_websocket_url": "wss://llm.example.com/demo"},
        "version": 0,
        "user_modified_timestamp": 1730000500000,
    },
}

DEFINITIONS: dict[str, dict[str, Any]] = {
    definition["test_case_definition_id"]: definition for definition in (REFUND, GREETING, HUMAN, ADDRESS)
}


def _passed_copy(run_id: str, definition_id: str, created: int) -> dict[str, Any]:
    """A passing run of a definition: what an earlier (or a fixed) agent answered."""
    return _run(run_id, "pass", DEFINITIONS[definition_id], created, PASSING_TURNS[definition_id], None)


BASELINE_RUNS = {
    "tcj_demo_baseline_refund": _passed_copy("tcj_demo_baseline_refund", "tcd_demo_refund", 1730500000000),
    "tcj_demo_baseline_greeting": _passed_copy("tcj_demo_baseline_greeting", "tcd_demo_greeting", 1730500000000),
}


def _batch(batch_id: str, runs: list[dict[str, Any]], created: int, status: str = "complete") -> dict[str, Any]:
    counts = {state: sum(run["status"] == state for run in runs) for state in ("pass", "fail", "error")}
    return {
        "test_case_batch_job_id": batch_id,
        "status": status,
        "response_engine": ENGINE,
        "pass_count": counts["pass"],
        "fail_count": counts["fail"],
        "error_count": counts["error"],
        "total_count": len(runs),
        "creation_timestamp": created,
        "user_modified_timestamp": created + 60000,
    }


# Batch ID -> the IDs of its runs, newest batch first (the order list-batch-tests answers in here).
BATCH_RUNS: dict[str, list[str]] = {
    "tcbj_demo_latest": ["tcj_demo_failed", "tcj_demo_passed", "tcj_demo_no_human", "tcj_demo_address_error"],
    "tcbj_demo_baseline": list(BASELINE_RUNS),
}
BATCH_CREATED = {"tcbj_demo_latest": 1731000000000, "tcbj_demo_baseline": 1730500000000}

TELA_CASES: dict[str, dict[str, Any]] = {
    "550e8400-e29b-41d4-a716-446655440000": {
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "title": "Customer Support Query Test",
        "messages": [
            {"role": "system", "content": "You are a helpful customer support assistant."},
            {"role": "user", "content": "My order hasn't arrived yet."},
        ],
        "variables": {"customer_name": "John Doe", "order_id": "ORD-12345"},
        "variablesRichContent": None,
        "files": None,
        "promptId": "550e8400-e29b-41d4-a716-446655440001",
        "expectedOutput": "I'll help you track down your order, John. Let me look up order ORD-12345 for you.",
        "answers": {"version1": {"good": [], "bad": [], "evals": []}},
        "promptApplicationId": None,
        "metadata": {"source": "craft"},
        "createdAt": "2023-01-01T00:00:00.000Z",
        "updatedAt": "2023-01-02T00:00:00.000Z",
        "deletedAt": None,
        "generations": [
            {
                "id": "8f14e45f-ceea-467f-a0e6-1a2b3c4d5e6f",
                "output": "Sorry about that, John! Let me check order ORD-12345 for you right away.",
                "createdAt": "2023-01-02T00:00:00.000Z",
            }
        ],
    },
    "550e8400-e29b-41d4-a716-446655440003": {
        "id": "550e8400-e29b-41d4-a716-446655440003",
        "title": "Refund request for a late order",
        "messages": [
            {"role": "system", "content": "You are a helpful customer support assistant."},
            {"role": "user", "content": "Order ORD-12345 is two weeks late. I want my money back."},
        ],
        "variables": {"customer_name": "John Doe", "order_id": "ORD-12345"},
        "variablesRichContent": None,
        "files": None,
        "promptId": "550e8400-e29b-41d4-a716-446655440001",
        "expectedOutput": "I'm sorry, John. I've refunded order ORD-12345; you'll see it in 3-5 days.",
        "answers": None,
        "promptApplicationId": None,
        "metadata": {"source": "craft"},
        "createdAt": "2023-01-03T00:00:00.000Z",
        "updatedAt": "2023-01-03T00:00:00.000Z",
        "deletedAt": None,
        "generations": [
            {
                "id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
                "output": "Your order is on its way; please wait a few more days.",
                "createdAt": "2023-01-04T00:00:00.000Z",
            }
        ],
    },
}


def demo_settings(settings: Settings) -> Settings:
    """The same settings with placeholder keys, so both vendors count as configured."""
    vendors = {
        name: getattr(settings, name).model_copy(update={"api_key": SecretStr(DEMO_KEY)}) for name in ("retell", "tela")
    }
    demo = settings.model_copy(update=vendors)
    demo._sources.update(settings._sources)
    return demo


def _json(status: int, body: object) -> httpx2.Response:
    return httpx2.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def _retell_error(status: int, message: str) -> httpx2.Response:
    return _json(status, {"status": "error", "message": message})


def _page(items: list[Any], request: httpx2.Request) -> httpx2.Response:
    """Retell's paging: `limit` items from the offset the pagination key names; a key it never issued is a 400,
    as a real vendor would answer a key it does not know."""
    params = request.url.params
    limit = int(params.get("limit", "50"))
    key = params.get("pagination_key", "p0")
    if not re.fullmatch(r"p[0-9]{1,9}", key):
        return _retell_error(400, "Invalid pagination_key")
    start = int(key[1:])
    more = start + limit < len(items)
    return _json(200, {"items": items[start : start + limit], "has_more": more, "pagination_key": f"p{start + limit}"
                       if more else None})  # fmt: skip


class DemoVendors:
    """Both vendors, from the records above, plus what this session started: each started batch is in progress at
    its first get-batch-test and finished at its second, every run passing (the "fixed" agent)."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {**copy.deepcopy(RETELL_RUNS), **copy.deepcopy(BASELINE_RUNS)}
        self.batch_runs = {batch: list(runs) for batch, runs in BATCH_RUNS.items()}
        self.batch_created = dict(BATCH_CREATED)
        self.polls: dict[str, int] = {}  # started batch -> polls seen so far
        self._numbers = itertools.count(1)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer like Retell or Tela would."""
        path, params = request.url.path, request.url.params
        head, _, tail = path.rpartition("/")
        if request.method == "POST":
            if path == "/create-batch-test":
                return self._start_batch(json.loads(request.content))
            if path == "/test-case/run-all":
                return _json(200, {"executionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-{next(self._numbers)}"))})
            return _json(404, {"message": "Not Found"})
        if head == "/get-test-run":
            run = self.runs.get(tail)
            return _json(200, run) if run else _retell_error(404, "Not Found")
        if head == "/get-batch-test":
            return self._batch(tail)
        if head == "/v2/list-test-runs":
            if tail not in self.batch_runs:
                return _retell_error(404, "Not Found")
            return _page([self.runs[run] for run in self.batch_runs[tail]], request)
        if head == "/get-test-case-definition":
            definition = DEFINITIONS.get(tail)
            return _json(200, definition) if definition else _retell_error(404, "Not Found")
        if head == "/get-agent":
            agent = AGENTS.get(tail)
            return _json(200, agent) if agent else _retell_error(404, "Not Found")
        if path == "/v2/list-agents":
            return _page(list(AGENTS.values()), request)
        if path in ("/v2/list-batch-tests", "/v2/list-test-case-definitions"):
            if params.get("type") != "retell-llm" or params.get("llm_id") != DEMO_LLM_ID:
                return _page([], request)
            if path.endswith("definitions"):
                return _page(list(DEFINITIONS.values()), request)
            newest_first = sorted(self.batch_runs, key=self.batch_created.__getitem__, reverse=True)
            return _page([self._batch_object(batch) for batch in newest_first], request)
        if path == "/api-key":
            return _json(200, {})
        if path == "/test-case":
            prompt = params.get("promptId")
            cases = [copy.deepcopy(case) for case in TELA_CASES.values() if case["promptId"] == prompt]
            if params.get("includeGenerations") != "true":
                for case in cases:
                    case.pop("generations", None)
            return _json(200, cases)
        if head == "/test-case":
            found = TELA_CASES.get(tail.lower())
            if found is None:
                return _json(404, {"message": "Test case not found"})
            # Tela documents includeGenerations on the list route only; the demo answers the by-ID route without
            # generations, so `get_test_case(include_generations=true)` takes the same path as against Tela.
            return _json(200, {key: value for key, value in found.items() if key != "generations"})
        return _json(404, {"message": "Not Found"})

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        runs = [self.runs[run] for run in self.batch_runs[batch_id]]
        finished = all(run["status"] in ("pass", "fail", "error") for run in runs)
        return _batch(batch_id, runs, self.batch_created[batch_id], "complete" if finished else "in_progress")

    def _batch(self, batch_id: str) -> httpx2.Response:
        if batch_id not in self.batch_runs:
            return _retell_error(404, "Not Found")
        if batch_id in self.polls:  # a started batch runs at the first poll and has finished by the second
            self.polls[batch_id] += 1
            for run_id in self.batch_runs[batch_id]:
                run = self.runs[run_id]
                if self.polls[batch_id] >= 2:
                    self.runs[run_id] = _passed_copy(run_id, run["test_case_definition_id"], run["creation_timestamp"])
                else:
                    run["status"] = "in_progress"
        return _json(200, self._batch_object(batch_id))

    def _start_batch(self, body: dict[str, Any]) -> httpx2.Response:
        engine = body.get("response_engine") or {}
        if engine.get("type") != "retell-llm" or engine.get("llm_id") != DEMO_LLM_ID:
            return _retell_error(404, "Cannot find requested asset")
        definitions = body.get("test_case_definition_ids") or []
        unknown = [definition for definition in definitions if definition not in DEFINITIONS]
        if not definitions or unknown:
            return _retell_error(400, f"Unknown test case definitions: {unknown}")
        number = next(self._numbers)
        batch_id = f"tcbj_demo_rerun_{number}"
        created = 1732000000000 + number * 1000
        run_ids = []
        for index, definition in enumerate(definitions, 1):
            run_id = f"tcj_demo_rerun_{number}_{index}"
            run = _passed_copy(run_id, definition, created)
            self.runs[run_id] = {**run, "status": "pending", "transcript_snapshot": None, "result_explanation": None}
            run_ids.append(run_id)
        self.batch_runs[batch_id] = run_ids
        self.batch_created[batch_id] = created
        self.polls[batch_id] = 0
        return _json(201, self._batch_object(batch_id))


def demo_transport() -> httpx2.MockTransport:
    """A fresh pair of demo vendors: what one session starts is seen by that session only."""
    return httpx2.MockTransport(DemoVendors().handle)
