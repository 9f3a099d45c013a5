"""The demo's Tela completion runs, production requests to the demo prompt on its promoted version, and what a version
of that prompt answers (a run's output, a test case's generation): it does what the version's prompt text says.

The story: most runs went fine, one customer asked to cancel an order and the answer ignored it (no version says
anything about cancelling), one run failed and one is still running. The missed run carries a signed file link and a
webhook URL, which only get_completion_run may show.

Shapes (docs.tela.com): a run as `completion/get` shows it, snake_case; a listed row as `completion-run/
get-v1-completion-run` describes it, the same run with camelCase keys. The list's envelope and its rows' exact fields
are not documented: the demo answers a bare array of the runs, camelCased, and its generations are {id, output,
createdAt}, as the demo's test cases show them.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from mcp_server.demo.records import DEMO_PROMOTED_VERSION_ID, DEMO_PROMPT_ID, PROMPT_VERSIONS

DEMO_RUN_MISSED_ID = "6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f5"  # the customer asked to cancel; the answer ignored it
DEMO_RUN_IDS = (
    "6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f1",
    "6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f2",
    "6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f3",
    "6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f4",
    DEMO_RUN_MISSED_ID,
    "6f1c2d3e-4b5a-4c6d-8e7f-a0b1c2d3e4f6",
)
# Links that must never leave get_completion_run: a signed file link, and where the caller asked to be told.
SIGNED_FILE_URL = "https://vault.tela.invalid/files/order-ORD-67890.pdf?X-Signature=demo-signature-not-real"
WEBHOOK_URL = "https://hooks.demo-shoes.invalid/tela/completions?token=demo-token-not-real"


def reply(messages: list[Any], variables: dict[str, Any], content: str) -> str:
    """What a version whose prompt text is `content` answers to the customer's messages: a cancellation only if the
    prompt says to cancel, a refund only if it says to refund, otherwise a look-up of the order."""
    asked = " ".join(
        message["content"].lower()
        for message in messages
        if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"), str)
    )
    said = content.lower()
    names = str(variables.get("customer_name") or "there").split()
    name = names[0] if names else "there"
    mentioned = re.search(r"ORD-[0-9]+", " ".join(str(m.get("content")) for m in messages if isinstance(m, dict)))
    order = str(variables.get("order_id") or (mentioned.group(0) if mentioned else "your order"))
    if "cancel" in asked:
        if "cancel" in said:
            return f"Done, {name}: order {order} is cancelled and you will not be charged."
        return f"Hi {name}, order {order} is being prepared and ships tomorrow. Anything else I can help with?"
    if "refund" in asked or "money back" in asked:
        if "refund" in said:
            return f"I'm sorry, {name}. I've refunded order {order}; you'll see it in 3-5 days."
        return "Your order is on its way; please wait a few more days."
    return f"Sorry about that, {name}! Let me check order {order} for you right away."


def _run(
    run_id: str,
    status: str,
    created: str,
    updated: str,
    customer: str,
    order: str,
    asked: str,
    *,
    duration: float = 1.4,
    cost: float = 0.0012,
    files: list[dict[str, Any]] | None = None,
    webhook_url: str | None = None,
) -> dict[str, Any]:
    """A completion run of the demo prompt's promoted version (completion/get, ChatCompletionWebhookResponse)."""
    variables = {"customer_name": customer, "order_id": order}
    messages = [{"role": "user", "content": asked}]
    content = PROMPT_VERSIONS[DEMO_PROMOTED_VERSION_ID]["content"]
    finished = status in ("succeeded", "failed")
    output = (
        {
            "role": "assistant",
            "tool_calls": [],
            "information": {"duration": duration, "cost": cost, "input_tokens": 412, "output_tokens": 38},
            "has_structured_output": False,
            "content": reply(messages, variables, content),
            "input_messages": asked,
        }
        if status == "succeeded"
        else None
    )
    return {
        "id": run_id,
        "status": status,
        "input_content": {
            "variables": copy.deepcopy(variables),
            "messages": [{**message, "function_call": None} for message in messages],
            "files": files or [],
        },
        "output_content": output,
        "raw_input": {
            "version_id": None,
            "canvas_id": DEMO_PROMPT_ID,
            "application_id": None,
            "webhook_url": webhook_url,
            "variables": copy.deepcopy(variables),
            "messages": copy.deepcopy(messages),
            "override": None,
        },
        "raw_output": {} if finished else None,
        "compatibility_date": "2024-10-01T00:00:00.000Z",
        "prompt_version_id": DEMO_PROMOTED_VERSION_ID,
        "prompt_application_id": None,
        "workspace_id": "550e8400-e29b-41d4-a716-4466554400ff",
        "created_at": created,
        "updated_at": updated,
    }


RECEIPT = {
    "name": "order-ORD-67890.pdf",
    "used_at": "variables",
    "parsed_content": "Order ORD-67890: running shoes, size 42, 89.00 EUR.",
    "url": SIGNED_FILE_URL,
    "type": "document",
}


def _iso(stamp_ms: int) -> str:
    return datetime.fromtimestamp(stamp_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def completion_runs(now_ms: int) -> dict[str, dict[str, Any]]:
    """The demo prompt's runs, oldest first, dated back from `now_ms` over the last four days (GET /v1/completion-run
    answers newest updated first): created, and updated once the run ended (or started, for the running one)."""

    def at(hours: float, seconds: float = 2) -> tuple[str, str]:
        """Created `hours` ago, updated `seconds` later."""
        created = now_ms - int(hours * 3_600_000)
        return _iso(created), _iso(created + int(seconds * 1000))

    runs = (
        _run(DEMO_RUN_IDS[0], "succeeded", *at(98), "John Doe", "ORD-12345",
             "Where is my order ORD-12345? It was due on Monday."),
        _run(DEMO_RUN_IDS[1], "succeeded", *at(75), "Ana Silva", "ORD-24680",
             "Order ORD-24680 is two weeks late. I want my money back.", duration=1.9, cost=0.0015),
        _run(DEMO_RUN_IDS[2], "failed", *at(52, 30), "Li Wei", "ORD-11223", "Has order ORD-11223 shipped yet?"),
        _run(DEMO_RUN_IDS[3], "succeeded", *at(28), "Sam Okafor", "ORD-33445",
             "My order ORD-33445 still shows as processing. Any news?"),
        _run(DEMO_RUN_MISSED_ID, "succeeded", *at(5), "Maria Garcia", "ORD-67890",
             "Please cancel order ORD-67890 before it ships, I ordered the wrong size. The receipt is attached.",
             duration=1.6, cost=0.0014, files=[RECEIPT], webhook_url=WEBHOOK_URL),
        _run(DEMO_RUN_IDS[5], "running", *at(0.1, 1), "John Doe", "ORD-12345",
             "Can you change the delivery address of ORD-12345?"),
    )  # fmt: skip
    return {run["id"]: run for run in runs}


def _camel_key(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def listed_row(value: Any, key: str | None = None) -> Any:
    """A run as the list shows it: every key camelCased, but the names inside `variables` (the customer's)."""
    if isinstance(value, dict) and key != "variables":
        return {_camel_key(name): listed_row(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [listed_row(item, key) for item in value]
    return copy.deepcopy(value)
