"""Built-in sample records (the ones on the vendors' API pages), served as a fake vendor for `--demo`.

The demo swaps only the HTTP transport, so every request still goes through the real clients, validation,
error mapping and tools: what a newcomer sees in the demo is what they get with real keys.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx2
from pydantic import SecretStr

from mcp_server.config import Settings

DEMO_KEY = "demo-key-not-a-secret"

RETELL_RUNS: dict[str, dict[str, Any]] = {
    "tcj_demo_failed": {
        "test_case_job_id": "tcj_demo_failed",
        "status": "fail",
        "test_case_definition_id": "tcd_demo_refund",
        "test_case_definition_snapshot": {
            "name": "Caller asks for a refund on a late order",
            "response_engine": {"type": "retell-llm", "llm_id": "llm_demo_support", "version": 3},
            "user_prompt": "You ordered shoes two weeks ago and they have not arrived. Ask for a refund.",
            "metrics": ["Agent offers a refund or a replacement", "Agent confirms the order number"],
            "dynamic_variables": {"customer_name": "John Doe", "order_id": "ORD-12345"},
            "tool_mocks": [
                {
                    "tool_name": "lookup_order",
                    "input_match_rule": {"type": "any"},
                    "output": '{"status": "shipped", "eta_days": 9}',
                    "result": True,
                }
            ],
            "llm_model": "gpt-4.1",
            "test_case_definition_id": "tcd_demo_refund",
            "type": "simulation",
            "creation_timestamp": 1730000000000,
            "user_modified_timestamp": 1730000500000,
        },
        "creation_timestamp": 1731000000000,
        "user_modified_timestamp": 1731000042000,
        "transcript_snapshot": {
            "transcript": [
                {"role": "user", "content": "Hi, my order ORD-12345 never arrived. I want a refund."},
                {"role": "agent", "content": "I'm sorry to hear that. The order shows as shipped, arriving in 9 days."},
                {"role": "user", "content": "That's too late. Can I get my money back?"},
                {"role": "agent", "content": "The order is still on its way, so please wait for it to arrive."},
            ]
        },
        "result_explanation": "Failed 'Agent offers a refund or a replacement': the agent only repeated the "
        "delivery estimate and never offered a refund or a replacement.",
    },
    "tcj_demo_passed": {
        "test_case_job_id": "tcj_demo_passed",
        "status": "pass",
        "test_case_definition_id": "tcd_demo_greeting",
        "test_case_definition_snapshot": {
            "name": "Agent greets and asks how it can help",
            "response_engine": {"type": "retell-llm", "llm_id": "llm_demo_support", "version": 3},
            "user_prompt": "Call and say hello, then wait.",
            "metrics": ["Agent greets the caller", "Agent asks how it can help"],
            "dynamic_variables": {},
            "tool_mocks": [],
            "llm_model": "gpt-4.1",
            "test_case_definition_id": "tcd_demo_greeting",
            "type": "simulation",
            "creation_timestamp": 1730000000000,
            "user_modified_timestamp": 1730000000000,
        },
        "creation_timestamp": 1731000100000,
        "user_modified_timestamp": 1731000130000,
        "transcript_snapshot": {
            "transcript": [
                {"role": "agent", "content": "Thanks for calling Demo Shoes, how can I help you today?"},
                {"role": "user", "content": "Hello!"},
            ]
        },
        "result_explanation": None,
    },
}

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


def handle(request: httpx2.Request) -> httpx2.Response:
    """Answer like Retell or Tela would, from the sample records above."""
    path = request.url.path
    if path.startswith("/get-test-run/"):
        run = RETELL_RUNS.get(path.removeprefix("/get-test-run/"))
        if run is None:
            return _json(404, {"status": "error", "message": "Not Found"})
        return _json(200, run)
    if path.startswith("/test-case/"):
        case = TELA_CASES.get(path.removeprefix("/test-case/").lower())
        if case is None:
            return _json(404, {"message": "Test case not found"})
        case = copy.deepcopy(case)
        if request.url.params.get("includeGenerations") != "true":
            case.pop("generations", None)
        return _json(200, case)
    return _json(404, {"message": "Not Found"})


def demo_transport() -> httpx2.MockTransport:
    return httpx2.MockTransport(handle)
