"""Built-in sample records, served as a fake Retell and Tela for `--demo`, so the whole loop (find, summarize,
compare, diagnose, draft a fix, rerun, wait) works offline.

The story: agent `agent_demo_support` (Retell LLM `llm_demo_support`) has versions 1 and 2 published and 3, a
draft with a friendlier greeting, which lost version 2's refund rule. The baseline batch ran version 2, the latest
ran version 3: the greeting test was fixed, the refund test regressed, the human-handoff and address tests still
fail. Runs started in a session follow the prompts of the version they run on, so a draft that restores the rule
passes. Tela's prompt has a promoted version and a newer draft that dropped its refund guidance.

The demo swaps only the HTTP transport, so every request still goes through the real clients, validation,
error mapping and tools: what a newcomer sees in the demo is what they get with real keys. The records follow the
vendors' published shapes, cited where each is built: Retell's from retell-sdk 6.2.13 (paths inside its `retell/`
package), Tela's from docs.tela.com/api-reference.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
from pydantic import SecretStr

from mcp_server.config import Settings

DEMO_KEY = "demo-key-not-a-secret"

DEMO_AGENT_ID = "agent_demo_support"
DEMO_LLM_ID = "llm_demo_support"
DEMO_LIVE_AGENT_ID = "agent_demo_live"
DEMO_LIVE_LLM_ID = "llm_demo_live"
DEMO_PROMPT_ID = "550e8400-e29b-41d4-a716-446655440001"
DEMO_PROMPT_VERSION_ID = "550e8400-e29b-41d4-a716-446655440002"  # the draft under test
DEMO_PROMOTED_VERSION_ID = "550e8400-e29b-41d4-a716-446655440004"

# --- Retell LLMs: the prompts every run is judged on ------------------------------------------------------------

REFUND_RULE = "If an order is more than 7 days late, offer a refund or a replacement."
OLD_GREETING = "Thanks for calling Demo Shoes."
NEW_GREETING = "Thanks for calling Demo Shoes, how can I help you today?"
SUPPORT_PROMPT = (
    "You are the phone agent of Demo Shoes, an online shoe shop. The caller is {{customer_name}}.\n"
    "Be brief and polite, and never promise what you cannot do."
)
ORDER_HELP = "Ask for the order number and look it up with lookup_order.\nTell the caller the order's status and ETA."
FRIENDLY_ORDER_HELP = (  # version 3 rewrote the state for tone and dropped the refund line on the way
    "Warmly ask for the order number and look it up with lookup_order.\n"
    "Tell the caller the order's status and ETA, and thank them for their patience."
)
HANDOFF = (  # no version says to transfer the caller: why the human test fails throughout
    "The caller is upset or asks for something you cannot do.\nApologise, and explain what you can do yourself."
)
# GeneralToolEndCallTool (types/llm_response.py): name, type "end_call", description.
END_CALL = {
    "type": "end_call",
    "name": "end_call",
    "description": "End the call once the caller has no more questions.",
}


def _engine(llm_id: str, version: int) -> dict[str, Any]:
    """A retell-llm `response_engine` (types/agent_response.py L78-86)."""
    return {"type": "retell-llm", "llm_id": llm_id, "version": version}


def _state(name: str, prompt: str, edge_to: str, edge: str) -> dict[str, Any]:
    """A state with one edge (State L2987-3012, StateEdge L1689-1712 of types/llm_response.py)."""
    return {
        "name": name,
        "state_prompt": prompt,
        "edges": [{"description": edge, "destination_state_name": edge_to}],
        "tools": [],
    }


def _llm(
    llm_id: str,
    version: int,
    modified: int,
    *,
    published: bool,
    begin_message: str,
    general_prompt: str,
    order_help: str | None = None,
) -> dict[str, Any]:
    """A Retell LLM at one version (LlmResponse, types/llm_response.py L3015-3190); with `order_help`, the
    support agent's two states."""
    llm: dict[str, Any] = {
        "llm_id": llm_id,
        "version": version,
        "is_published": published,
        "last_modification_timestamp": modified,
        "model": "gpt-4.1",
        "general_prompt": general_prompt,
        "begin_message": begin_message,
        "start_speaker": "agent",
        "general_tools": [END_CALL],
        "states": [],
    }
    if order_help is not None:
        llm["starting_state"] = "order_help"  # "Required if states is not empty" (L3170)
        llm["states"] = [
            _state("order_help", order_help, "handoff", "The caller asks for a person, or is upset."),
            _state("handoff", HANDOFF, "order_help", "The caller wants to talk about the order again."),
        ]
    return llm


LIVE_PROMPT = "You are the front desk of Demo Shoes. Answer questions about opening hours and store locations."
# LLM ID -> version -> the LLM at that version. An agent and its LLM share version numbers here; Retell documents no
# such rule (`response_engine.version` is its own field), it only keeps the story easy to follow.
LLMS: dict[str, dict[int, dict[str, Any]]] = {
    DEMO_LLM_ID: {
        1: _llm(DEMO_LLM_ID, 1, 1729000000000, published=True, begin_message=OLD_GREETING,
                general_prompt=SUPPORT_PROMPT, order_help=ORDER_HELP),
        2: _llm(DEMO_LLM_ID, 2, 1730000000000, published=True, begin_message=OLD_GREETING,
                general_prompt=SUPPORT_PROMPT, order_help=f"{ORDER_HELP}\n{REFUND_RULE}"),
        3: _llm(DEMO_LLM_ID, 3, 1730900000000, published=False, begin_message=NEW_GREETING,
                general_prompt=SUPPORT_PROMPT, order_help=FRIENDLY_ORDER_HELP),
    },
    DEMO_LIVE_LLM_ID: {
        1: _llm(DEMO_LIVE_LLM_ID, 1, 1729000000000, published=True, begin_message="Demo Shoes front desk, hello!",
                general_prompt=LIVE_PROMPT),
        2: _llm(DEMO_LIVE_LLM_ID, 2, 1730000000000, published=False, begin_message="Demo Shoes front desk, hello!",
                general_prompt=f"{LIVE_PROMPT}\nKeep every answer under two sentences."),
    },
}  # fmt: skip

# --- Retell agents and phone numbers ----------------------------------------------------------------------------


def _agent(
    agent_id: str, name: str, llm_id: str, version: int, title: str, *, base: int | None = None
) -> dict[str, Any]:
    """An agent version (AgentResponse, types/agent_response.py L1553: `version`, `is_published`, `base_version`,
    `version_title` ...), running its LLM at the same version number."""
    llm = LLMS[llm_id][version]
    return {
        "agent_id": agent_id,
        "agent_name": name,
        "channel": "voice",
        "voice_id": "11labs-Adrian",
        "response_engine": _engine(llm_id, version),
        "version": version,
        "is_published": llm["is_published"],
        "base_version": base,  # "Null for initial versions" (L1647)
        "version_title": title,
        "version_description": None,
        "last_modification_timestamp": llm["last_modification_timestamp"],
    }


# Agent ID -> version -> the agent at that version.
AGENTS: dict[str, dict[int, dict[str, Any]]] = {
    DEMO_AGENT_ID: {
        1: _agent(DEMO_AGENT_ID, "Demo Shoes support", DEMO_LLM_ID, 1, "Initial agent"),
        2: _agent(DEMO_AGENT_ID, "Demo Shoes support", DEMO_LLM_ID, 2, "Refund policy", base=1),
        3: _agent(DEMO_AGENT_ID, "Demo Shoes support", DEMO_LLM_ID, 3, "Friendlier greeting", base=2),
    },
    DEMO_LIVE_AGENT_ID: {
        1: _agent(DEMO_LIVE_AGENT_ID, "Demo Shoes front desk", DEMO_LIVE_LLM_ID, 1, "Initial agent"),
        2: _agent(DEMO_LIVE_AGENT_ID, "Demo Shoes front desk", DEMO_LIVE_LLM_ID, 2, "Shorter answers", base=1),
    },
    "agent_demo_custom": {
        0: {
            "agent_id": "agent_demo_custom",
            "agent_name": "Demo custom-LLM agent",
            "channel": "voice",
            "voice_id": "11labs-Adrian",
            # The custom-llm variant has no `version` (types/agent_response.py L89-94).
            "response_engine": {"type": "custom-llm", "llm_websocket_url": "wss://llm.example.com/demo"},
            "version": 0,
            "is_published": False,
            "last_modification_timestamp": 1730000500000,
        }
    },
}


def _phone_number(number: str, pretty: str, nickname: str, agent_id: str, agent_version: int | str) -> dict[str, Any]:
    """PhoneNumberResponse (types/phone_number_response.py L132-225): one inbound agent, weight 1 ("Total weights
    must add up to 1"); `agent_version` a number or "latest" ("resolves to the most recently created version")."""
    return {
        "phone_number": number,
        "phone_number_pretty": pretty,
        "phone_number_type": "retell-twilio",
        "nickname": nickname,
        "inbound_agents": [{"agent_id": agent_id, "weight": 1, "agent_version": agent_version}],
        "outbound_agents": [],
        "last_modification_timestamp": 1730000000000,
    }


PHONE_NUMBERS = [
    # Pinned to a published version: drafting on agent_demo_support changes no live call.
    _phone_number("+14155550100", "(415) 555-0100", "Demo Shoes support line", DEMO_AGENT_ID, 2),
    # "latest" follows the newest version, draft or not: a draft of agent_demo_live would take live calls.
    _phone_number("+14155550199", "(415) 555-0199", "Demo Shoes front desk", DEMO_LIVE_AGENT_ID, "latest"),
]

# --- Retell test definitions, and how a run of each ends on a given LLM version -------------------------------


def _definition(
    definition_id: str,
    name: str,
    user_prompt: str,
    metrics: list[str],
    *,
    variables: dict[str, str] | None = None,
    tool_mocks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A simulation test of the support agent's LLM (TestCaseDefinitionResponse, types/test_case_definition_response.py
    L98-167: every field required). Its engine names no version: a run's snapshot adds the version it ran."""
    return {
        "name": name,
        "response_engine": {"type": "retell-llm", "llm_id": DEMO_LLM_ID},
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


ORDER = {"customer_name": "John Doe", "order_id": "ORD-12345"}
# ToolMock (types/test_create_test_case_definition_params.py L126-153).
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
DEFINITIONS: dict[str, dict[str, Any]] = {
    definition["test_case_definition_id"]: definition for definition in (REFUND, GREETING, HUMAN, ADDRESS)
}


@dataclass(frozen=True)
class Outcome:
    """How a run ends: its status, the simulated conversation, and Retell's explanation."""

    status: str
    turns: list[dict[str, Any]]
    explanation: str | None = None


@dataclass(frozen=True)
class Judge:
    """What an LLM version must hold for a definition's run to pass, and how the run reads either way."""

    passes: Callable[[dict[str, Any]], bool]
    passed: Outcome
    failed: Outcome


def _says(phrase: str, *states: str) -> Callable[[dict[str, Any]], bool]:
    """Whether an LLM version's general prompt, or the prompt of one of `states` (of any state when none is named),
    says `phrase` (case aside)."""

    def check(llm: dict[str, Any]) -> bool:
        prompts = [llm.get("general_prompt")]
        prompts += [
            state.get("state_prompt")
            for state in llm.get("states") or []
            if isinstance(state, dict) and (not states or state.get("name") in states)
        ]
        return any(isinstance(prompt, str) and phrase in prompt.lower() for prompt in prompts)

    return check


def _greets(llm: dict[str, Any]) -> bool:
    begin = llm.get("begin_message")
    return isinstance(begin, str) and "how can i help" in begin.lower()


REFUND_ASK = {"role": "user", "content": "Hi, my order ORD-12345 never arrived. I want a refund."}
HUMAN_ASK = {"role": "user", "content": "This is the third time I call. Let me talk to a person."}
ADDRESS_ASK = {"role": "user", "content": "Please send order ORD-12345 to 1 Main Street instead."}
JUDGES: dict[str, Judge] = {
    "tcd_demo_refund": Judge(
        _says("offer a refund", "order_help"),
        Outcome("pass", [
            REFUND_ASK,
            *LOOKUP_TURNS,
            {"role": "agent", "content": "I'm sorry, order ORD-12345 is late. I can refund it now or send a "
             "replacement: which would you prefer?"},
            {"role": "user", "content": "A refund, please."},
            {"role": "agent", "content": "Done: the refund for ORD-12345 is on its way."},
        ]),
        Outcome("fail", [
            REFUND_ASK,
            *LOOKUP_TURNS,
            {"role": "agent", "content": "I'm sorry to hear that. The order shows as shipped, arriving in 9 days."},
            {"role": "user", "content": "That's too late. Can I get my money back?"},
            {"role": "agent", "content": "The order is still on its way, so please wait for it to arrive."},
        ], "Failed 'Agent offers a refund or a replacement': the agent only repeated the delivery estimate and "
           "never offered a refund or a replacement."),
    ),
    "tcd_demo_greeting": Judge(
        _greets,
        Outcome("pass", [{"role": "agent", "content": NEW_GREETING}, {"role": "user", "content": "Hello!"}]),
        Outcome("fail", [
            {"role": "agent", "content": OLD_GREETING},
            {"role": "user", "content": "Hello!"},
            {"role": "agent", "content": "Hello."},
        ], "Failed 'Agent asks how it can help': the agent greeted the caller but never asked how it could help."),
    ),
    "tcd_demo_human": Judge(
        _says("transfer the caller"),
        Outcome("pass", [
            HUMAN_ASK, {"role": "agent", "content": "I understand, John. I'll transfer you to a colleague now."}
        ]),
        Outcome("fail", [
            HUMAN_ASK,
            {"role": "agent", "content": "I can help you with anything a person could. What is the problem?"},
            {"role": "user", "content": "I said a person!"},
            {"role": "agent", "content": "I'm sorry, I cannot do that."},
        ], "Failed 'Agent offers to transfer the call to a person': the agent refused twice."),
    ),
    "tcd_demo_address": Judge(  # its update_address mock answers no output: the simulation stops, whatever the prompt
        lambda llm: False,
        Outcome("pass", [ADDRESS_ASK, {"role": "agent", "content": "Done: ORD-12345 now goes to 1 Main Street."}]),
        Outcome("error", [ADDRESS_ASK], "The simulation stopped: the mock for update_address returned no output."),
    ),
}  # fmt: skip


def _outcome(definition: dict[str, Any], llm: dict[str, Any]) -> Outcome:
    """How a run of `definition` on `llm` ends; a definition the demo has no judge for (one made in the session)
    passes."""
    judge = JUDGES.get(definition["test_case_definition_id"])
    if judge is None:
        greeting = llm.get("begin_message") or "Hello."
        return Outcome("pass", [{"role": "agent", "content": greeting}, {"role": "user", "content": "Thanks, bye."}])
    return judge.passed if judge.passes(llm) else judge.failed


def _run(job_id: str, definition: dict[str, Any], llm: dict[str, Any], created: int) -> dict[str, Any]:
    """A finished run of `definition` on `llm` (TestCaseJobResponse, types/test_case_job_response.py L12-44): its
    snapshot is the definition with the version it ran."""
    outcome = _outcome(definition, llm)
    snapshot = {**copy.deepcopy(definition), "response_engine": _engine(llm["llm_id"], llm["version"])}
    return {
        "test_case_job_id": job_id,
        "status": outcome.status,
        "test_case_definition_id": definition["test_case_definition_id"],
        "test_case_definition_snapshot": snapshot,
        "creation_timestamp": created,
        "user_modified_timestamp": created + 30000,
        # Retell names the snapshot's type but not its fields; the demo keeps the turns as `messages`, the name
        # retell-sdk gives a playground conversation's turns (PlaygroundCompletionParams / ...Response).
        "transcript_snapshot": {"messages": copy.deepcopy(outcome.turns)},
        "result_explanation": outcome.explanation,
    }


def _runs(version: int, runs: list[tuple[str, str, int]]) -> dict[str, dict[str, Any]]:
    """(job ID, definition ID, created) -> the finished runs of one batch on the support LLM at `version`."""
    llm = LLMS[DEMO_LLM_ID][version]
    return {job: _run(job, DEFINITIONS[definition], llm, created) for job, definition, created in runs}


# The latest batch, on draft version 3: refund fails, greeting passes, human fails, address errors.
RETELL_RUNS = _runs(3, [
    ("tcj_demo_failed", "tcd_demo_refund", 1731000000000),
    ("tcj_demo_passed", "tcd_demo_greeting", 1731000100000),
    ("tcj_demo_no_human", "tcd_demo_human", 1731000200000),
    ("tcj_demo_address_error", "tcd_demo_address", 1731000300000),
])  # fmt: skip
# The baseline batch, on published version 2: refund passes, greeting fails, human fails, address errors.
BASELINE_RUNS = _runs(2, [
    ("tcj_demo_baseline_refund", "tcd_demo_refund", 1730500000000),
    ("tcj_demo_baseline_greeting", "tcd_demo_greeting", 1730500100000),
    ("tcj_demo_baseline_human", "tcd_demo_human", 1730500200000),
    ("tcj_demo_baseline_address", "tcd_demo_address", 1730500300000),
])  # fmt: skip


@dataclass
class Batch:
    """A batch test as the demo keeps it: its runs in order, and, for one started in the session, the finished
    runs it will show at its second poll."""

    runs: list[str]
    created: int
    engine: dict[str, Any]
    polls: int | None = None  # None: finished before the session
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)


BATCHES: dict[str, Batch] = {
    "tcbj_demo_latest": Batch(list(RETELL_RUNS), 1731000000000, _engine(DEMO_LLM_ID, 3)),
    "tcbj_demo_baseline": Batch(list(BASELINE_RUNS), 1730500000000, _engine(DEMO_LLM_ID, 2)),
}

# --- Tela: a prompt's versions and test cases -------------------------------------------------------------------

PROMOTED_CONTENT = (
    "You are a helpful customer support assistant for Demo Shoes.\n"
    "Greet {{customer_name}} by name and look up order {{order_id}} before you answer.\n"
    "If an order is more than 7 days late, refund it and say the money arrives in 3-5 days."
)
DRAFT_CONTENT = (  # the draft dropped the refund line: why the refund case's generation misses its expectation
    "You are a friendly, upbeat customer support assistant for Demo Shoes.\n"
    "Greet {{customer_name}} by name and look up order {{order_id}} before you answer.\n"
    "Keep answers short and reassuring."
)
TELA_VARIABLES = [
    {"name": "customer_name", "type": "text", "required": True, "description": "The customer's full name"},
    {"name": "order_id", "type": "text", "required": True, "description": "The order the customer asks about"},
]


def _prompt_version(
    version_id: str,
    title: str,
    content: str,
    created: str,
    *,
    draft: bool,
    prompt_id: str = DEMO_PROMPT_ID,
    configuration: dict[str, Any] | None = None,
    variables: list[Any] | None = None,
    markdown: str | None = None,
) -> dict[str, Any]:
    """A prompt version as docs.tela.com `prompt-version/get-by-id` shows it (`messages` a single object, as in its
    example), plus the `message` the newer `prompt-version-message` pages say version resources expose. A draft is
    never promoted."""
    return {
        "id": version_id,
        "promptId": prompt_id,
        "title": title,
        "configuration": configuration
        or {"model": "gpt-4.1", "type": "chat", "temperature": 0.3, "structuredOutput": {"enabled": False}},
        "variables": copy.deepcopy(TELA_VARIABLES if variables is None else variables),
        "content": content,
        "markdownContent": content if markdown is None else markdown,
        "messages": {"role": "system", "content": content, "index": 0},
        "message": {"role": "system", "content": content},
        "promoted": not draft,
        "draft": draft,
        "createdAt": created,
        "updatedAt": created,
    }


# Oldest first: the order they were made in (history answers newest first).
PROMPT_VERSIONS: dict[str, dict[str, Any]] = {
    DEMO_PROMOTED_VERSION_ID: _prompt_version(
        DEMO_PROMOTED_VERSION_ID, "Support v1", PROMOTED_CONTENT, "2022-12-20T00:00:00.000Z", draft=False
    ),
    DEMO_PROMPT_VERSION_ID: _prompt_version(
        DEMO_PROMPT_VERSION_ID, "Support v2 (draft)", DRAFT_CONTENT, "2023-01-03T12:00:00.000Z", draft=True
    ),
}

# docs.tela.com test-case/get-by-id, plus the `generations` that the list route adds with includeGenerations.
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
        "promptId": DEMO_PROMPT_ID,
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
        "promptId": DEMO_PROMPT_ID,
        "expectedOutput": "I'm sorry, John. I've refunded order ORD-12345; you'll see it in 3-5 days.",
        "answers": None,
        "promptApplicationId": None,
        "metadata": {"source": "craft"},
        "createdAt": "2023-01-03T00:00:00.000Z",
        "updatedAt": "2023-01-03T00:00:00.000Z",
        "deletedAt": None,
        "generations": [
            {  # what the draft (no refund line) answered
                "id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
                "output": "Your order is on its way; please wait a few more days.",
                "createdAt": "2023-01-04T00:00:00.000Z",
            }
        ],
    },
}

# --- Request bodies: which fields each route takes, and their JSON types ----------------------------------------

Fields = dict[str, type | tuple[type, ...]]
# types/test_create_test_case_definition_params.py L22-75 (create: the first four required) and
# types/test_update_test_case_definition_params.py (update: the same seven, all optional).
DEFINITION_FIELDS: Fields = {
    "name": str,
    "response_engine": dict,
    "user_prompt": str,
    "metrics": list,
    "dynamic_variables": dict,
    "tool_mocks": list,
    "llm_model": str,
}
DEFINITION_REQUIRED = ("name", "response_engine", "user_prompt", "metrics")
# The body of update-retell-llm (resources/llm.py:update L455-477); `is_transfer_llm` "is ignored on update".
UNCHECKED_LLM_FIELDS = (
    "backup_model", "begin_after_user_silence_ms", "default_dynamic_variables", "general_tools", "is_transfer_llm",
    "kb_config", "knowledge_base_ids", "mcps", "model", "model_config", "model_high_priority", "model_temperature",
    "model_ultrafast", "s2s_model", "start_speaker", "starting_state", "tool_call_strict_mode",
)  # fmt: skip
LLM_FIELDS: Fields = {
    **dict.fromkeys(UNCHECKED_LLM_FIELDS, object),
    "general_prompt": (str, type(None)),
    "begin_message": (str, type(None)),
    "states": list,
}
# docs.tela.com prompt-version/create: four required; `message` from prompt-version-message/post-prompt-version-message.
PROMPT_VERSION_FIELDS: Fields = {
    "promptId": str,
    "title": str,
    "configuration": dict,
    "variables": list,
    "content": str,
    "markdownContent": str,
    "draft": bool,
    "promoted": bool,
    "messages": (dict, list),
    "message": dict,
}
PROMPT_VERSION_REQUIRED = ("promptId", "title", "configuration", "variables")
# docs.tela.com test-case/create (three required) and test-case/update (any of them).
CASE_FIELDS: Fields = {
    "promptId": str,
    "title": (str, type(None)),
    "messages": list,
    "variables": (dict, type(None)),
    "variablesRichContent": (dict, type(None)),
    "files": (list, type(None)),
    "expectedOutput": (str, type(None)),
    "metadata": (dict, type(None)),
    "promptApplicationId": (str, type(None)),
}
CASE_REQUIRED = ("promptId", "messages", "variablesRichContent")
CASE_ROLES = {"user", "system", "assistant", "function", "developer"}


def _problem(body: dict[str, Any], fields: Fields, required: tuple[str, ...] = ()) -> str | None:
    """What is wrong with a request body, if anything: a required field missing, a field the route does not take
    (the demo's own strictness, so a request the server should not send shows), or a value of the wrong JSON type."""
    missing = [name for name in required if name not in body]
    if missing:
        return f"Missing required field(s): {', '.join(missing)}"
    unknown = sorted(set(body) - set(fields))
    if unknown:
        return f"Unknown field(s): {', '.join(unknown)}"
    wrong = [name for name, value in body.items() if not isinstance(value, fields[name])]
    return f"Wrong type for field(s): {', '.join(wrong)}" if wrong else None


def _case_messages_problem(messages: object) -> str | None:
    if messages is None:
        return None
    good = isinstance(messages, list) and all(
        isinstance(message, dict) and message.get("role") in CASE_ROLES and isinstance(message.get("content"), str)
        for message in messages
    )
    return None if good else f"messages must be {{role, content}} objects, role one of {', '.join(sorted(CASE_ROLES))}"


def _states_problem(states: object) -> str | None:
    if states is None:
        return None
    good = isinstance(states, list) and all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in states)
    return None if good else "states must be objects with a name"


def _new_version_problem(body: dict[str, Any]) -> str | None:
    """What is wrong with a new Tela prompt version, if anything: its fields, a live version (refused: the demo's own
    rule, as the server must never make one), or other than one system message (`message`, or the deprecated
    `messages` as an object or a one-element array: prompt-version-message/post-prompt-version-message)."""
    problem = _problem(body, PROMPT_VERSION_FIELDS, PROMPT_VERSION_REQUIRED)
    if problem is not None:
        return problem
    if len(body["title"]) > 256:
        return "title must be at most 256 characters"
    if body.get("promoted") is True or body.get("draft") is False:
        return "The demo creates draft versions only: promoted must not be true, nor draft false"
    sent = body.get("message", body.get("messages"))
    if sent is None:
        return None
    messages = sent if isinstance(sent, list) else [sent]
    good = (
        len(messages) == 1
        and isinstance(messages[0], dict)
        and messages[0].get("role") == "system"
        and isinstance(messages[0].get("content"), str)
    )
    return None if good else "Send exactly one message, whose role is system"


# --- Answers ----------------------------------------------------------------------------------------------------


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


def _tela_error(status: int, message: str) -> httpx2.Response:
    return _json(status, {"message": message})


NOT_FOUND = {"status": "error", "message": "Not Found"}


def _body(request: httpx2.Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when it sent something else."""
    try:
        body = json.loads(request.content or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _page(items: list[Any], request: httpx2.Request) -> httpx2.Response:
    """Retell's paging: `limit` items from the offset the pagination key names; a key it never issued is a 400,
    as a real vendor would answer a key it does not know."""
    params = request.url.params
    limit, key = params.get("limit", "50"), params.get("pagination_key", "p0")
    if not re.fullmatch(r"p[0-9]{1,9}", key):
        return _retell_error(400, "Invalid pagination_key")
    if not re.fullmatch(r"[1-9][0-9]{0,3}", limit):
        return _retell_error(400, "Invalid limit")
    start, size = int(key[1:]), int(limit)
    more = start + size < len(items)
    return _json(200, {"items": items[start : start + size], "has_more": more, "pagination_key": f"p{start + size}"
                       if more else None})  # fmt: skip


def _sorted_page(items: list[dict[str, Any]], request: httpx2.Request, key: str) -> httpx2.Response:
    """A page of `items` in the `sort_order` asked for, by `key`. Retell documents no default order; the demo's is
    ascending."""
    order = request.url.params.get("sort_order", "ascending")
    if order not in ("ascending", "descending"):
        return _retell_error(400, "Invalid sort_order")
    return _page(sorted(items, key=lambda item: item[key], reverse=order == "descending"), request)


def _at(versions: dict[int, dict[str, Any]], version: str | None) -> dict[str, Any] | None:
    """The record at `version` (a query value), the latest when None; None when there is no such version."""
    if version is None:
        return versions[max(versions)]
    return versions.get(int(version)) if re.fullmatch(r"[0-9]{1,9}", version) else None


def _whole(value: object) -> int | None:
    """A JSON number that is a whole number (`response_engine.version` is typed float), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        return None
    return int(value)


def _iso(stamp: int) -> str:
    return datetime.fromtimestamp(stamp / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _without_generations(case: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in case.items() if key != "generations"}


Handler = Callable[[httpx2.Request, str], httpx2.Response]


class DemoVendors:
    """Both vendors, from the records above, plus what this session changed: drafts, edited versions, new test
    definitions, Tela versions and cases, and started batches, each in progress at its first get-batch-test and
    finished at its second, every run judged on the version it ran."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {**copy.deepcopy(RETELL_RUNS), **copy.deepcopy(BASELINE_RUNS)}
        self.batches = copy.deepcopy(BATCHES)
        self.agents = copy.deepcopy(AGENTS)
        self.llms = copy.deepcopy(LLMS)
        self.definitions = copy.deepcopy(DEFINITIONS)
        self.prompt_versions = copy.deepcopy(PROMPT_VERSIONS)
        self.cases = copy.deepcopy(TELA_CASES)
        self._serials: defaultdict[str, Iterator[int]] = defaultdict(lambda: itertools.count(1))
        self._clock = itertools.count(1)
        # (method, path) for fixed paths, (method, "/prefix/{}") for paths that end in an ID.
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/get-test-run/{}"): self._get_test_run,
            ("GET", "/get-batch-test/{}"): self._get_batch_test,
            ("GET", "/v2/list-test-runs/{}"): self._list_test_runs,
            ("GET", "/v2/list-batch-tests"): self._list_batch_tests,
            ("POST", "/create-batch-test"): self._create_batch_test,
            ("GET", "/get-test-case-definition/{}"): self._get_definition,
            ("GET", "/v2/list-test-case-definitions"): self._list_definitions,
            ("POST", "/create-test-case-definition"): self._create_definition,
            ("PUT", "/update-test-case-definition/{}"): self._update_definition,
            ("POST", "/v2/list-agents"): self._list_agents,
            ("GET", "/get-agent/{}"): self._get_agent,
            ("GET", "/list-agent-versions/{}"): self._list_agent_versions,
            ("POST", "/create-agent-version/{}"): self._create_agent_version,
            ("GET", "/get-retell-llm/{}"): self._get_llm,
            ("PATCH", "/update-retell-llm/{}"): self._update_llm,
            ("GET", "/v2/list-phone-numbers"): lambda request, _: _sorted_page(PHONE_NUMBERS, request, "phone_number"),
            ("GET", "/api-key"): lambda request, _: _json(200, {}),
            ("GET", "/test-case"): self._list_cases,
            ("POST", "/test-case"): self._create_case,
            ("GET", "/test-case/{}"): self._get_case,
            ("PATCH", "/test-case/{}"): self._update_case,
            ("POST", "/test-case/run-all"): self._run_all,
            ("GET", "/prompt-version/history"): self._prompt_history,
            ("GET", "/prompt-version/{}"): self._get_prompt_version,
            ("POST", "/prompt-version"): self._create_prompt_version,
        }

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer like Retell or Tela would."""
        path = request.url.path
        head, _, tail = path.rpartition("/")
        route = self._routes.get((request.method, path))
        if route is not None:
            return route(request, "")
        route = self._routes.get((request.method, f"{head}/{{}}"))
        if route is not None and tail:
            return route(request, tail)
        return _json(404, {"message": "Not Found"})

    def _serial(self, kind: str) -> int:
        """1, 2, 3... for each kind of thing the session makes."""
        return next(self._serials[kind])

    def _stamp(self) -> int:
        """Now, in ms since the epoch: a second later at each call, after every built-in record."""
        return 1732000000000 + next(self._clock) * 1000

    # --- Retell: runs and batches -------------------------------------------------------------------------------

    def _get_test_run(self, request: httpx2.Request, job_id: str) -> httpx2.Response:
        run = self.runs.get(job_id)
        return _json(200, run) if run else _json(404, NOT_FOUND)

    def _get_batch_test(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return _json(404, NOT_FOUND)
        if batch.polls is not None:  # a started batch runs at the first poll and has finished by the second
            batch.polls += 1
            for run_id in batch.runs:
                if batch.polls >= 2:
                    self.runs[run_id] = batch.finals[run_id]
                else:
                    self.runs[run_id]["status"] = "in_progress"
        return _json(200, self._batch_object(batch_id))

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        """BatchTestResponse (types/batch_test_response.py L54-79), counted from the batch's runs."""
        batch = self.batches[batch_id]
        statuses = [self.runs[run]["status"] for run in batch.runs]
        counts = {state: statuses.count(state) for state in ("pass", "fail", "error")}
        return {
            "test_case_batch_job_id": batch_id,
            "status": "complete" if sum(counts.values()) == len(statuses) else "in_progress",
            "response_engine": batch.engine,
            "pass_count": counts["pass"],
            "fail_count": counts["fail"],
            "error_count": counts["error"],
            "total_count": len(statuses),
            "creation_timestamp": batch.created,
            "user_modified_timestamp": batch.created + 60000,
        }

    def _list_test_runs(self, request: httpx2.Request, batch_id: str) -> httpx2.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return _json(404, NOT_FOUND)
        return _page([self.runs[run] for run in batch.runs], request)

    def _list_batch_tests(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """Newest first, of one LLM. retell-sdk says `version` "defaults to latest"; the demo lists every version's
        batches without one, and only that version's with one."""
        params = request.url.params
        version = params.get("version")
        found = [
            batch_id
            for batch_id, batch in self.batches.items()
            if params.get("type") == "retell-llm"
            and params.get("llm_id") == batch.engine["llm_id"]
            and version in (None, str(batch.engine["version"]))
        ]
        found.sort(key=lambda batch_id: self.batches[batch_id].created, reverse=True)
        return _page([self._batch_object(batch_id) for batch_id in found], request)

    def _engine_llm(self, engine: object) -> dict[str, Any] | None:
        """The LLM version a request's `response_engine` names (the latest when it names none), if the demo has it."""
        if not isinstance(engine, dict) or engine.get("type") != "retell-llm":
            return None
        llm_id = engine.get("llm_id")
        versions = self.llms.get(llm_id) if isinstance(llm_id, str) else None
        if versions is None:
            return None
        if engine.get("version") is None:
            return versions[max(versions)]
        version = _whole(engine.get("version"))
        return versions.get(version) if version is not None else None

    def _create_batch_test(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """types/test_create_batch_test_params.py L18-48: `response_engine` and `test_case_definition_ids`."""
        body = _body(request) or {}
        llm = self._engine_llm(body.get("response_engine"))
        if llm is None:
            return _retell_error(404, "Cannot find requested asset")
        definitions = body.get("test_case_definition_ids")
        if not isinstance(definitions, list) or not definitions:
            return _retell_error(400, "test_case_definition_ids must be a non-empty array")
        unknown = [definition for definition in definitions if definition not in self.definitions]
        if unknown:
            return _retell_error(400, f"Unknown test case definitions: {unknown}")
        number, created = self._serial("batch"), self._stamp()
        batch = Batch([], created, _engine(llm["llm_id"], llm["version"]), polls=0)
        for index, definition in enumerate(definitions, 1):
            run_id = f"tcj_demo_rerun_{number}_{index}"
            final = _run(run_id, self.definitions[definition], llm, created)
            batch.runs.append(run_id)
            batch.finals[run_id] = final
            self.runs[run_id] = {**final, "status": "pending", "transcript_snapshot": None, "result_explanation": None}
        batch_id = f"tcbj_demo_rerun_{number}"
        self.batches[batch_id] = batch
        return _json(201, self._batch_object(batch_id))

    # --- Retell: test definitions -------------------------------------------------------------------------------

    def _get_definition(self, request: httpx2.Request, definition_id: str) -> httpx2.Response:
        definition = self.definitions.get(definition_id)
        return _json(200, definition) if definition else _json(404, NOT_FOUND)

    def _list_definitions(self, request: httpx2.Request, _: str) -> httpx2.Response:
        params = request.url.params
        found = [
            definition
            for definition in self.definitions.values()
            if params.get("type") == "retell-llm" and params.get("llm_id") == definition["response_engine"]["llm_id"]
        ]
        return _page(found, request)

    def _definition_problem(self, body: dict[str, Any], required: tuple[str, ...]) -> httpx2.Response | None:
        """The error a definition body gets, if any: 400 for its fields, 404 for an engine the demo lacks."""
        problem = _problem(body, DEFINITION_FIELDS, required)
        if problem is not None:
            return _retell_error(400, problem)
        if "response_engine" in body and self._engine_llm(body["response_engine"]) is None:
            return _retell_error(404, "Cannot find requested asset")
        return None

    def _create_definition(self, request: httpx2.Request, _: str) -> httpx2.Response:
        body = _body(request)
        if body is None:
            return _retell_error(400, "The body must be a JSON object")
        error = self._definition_problem(body, DEFINITION_REQUIRED)
        if error is not None:
            return error
        definition_id, stamp = f"tcd_demo_new_{self._serial('definition')}", self._stamp()
        # Server-set fields (types/test_case_definition_response.py): ID, type, timestamps; the optional ones filled.
        self.definitions[definition_id] = {
            "dynamic_variables": {},
            "tool_mocks": [],
            "llm_model": "gpt-4.1",
            **body,
            "test_case_definition_id": definition_id,
            "type": "simulation",
            "creation_timestamp": stamp,
            "user_modified_timestamp": stamp,
        }
        return _json(201, self.definitions[definition_id])

    def _update_definition(self, request: httpx2.Request, definition_id: str) -> httpx2.Response:
        """PUT with any of the seven fields (all optional): the given ones replace the stored ones, the others stay
        (retell-sdk does not say which; the demo keeps them)."""
        definition = self.definitions.get(definition_id)
        if definition is None:
            return _json(404, NOT_FOUND)
        body = _body(request)
        if body is None:
            return _retell_error(400, "The body must be a JSON object")
        error = self._definition_problem(body, ())
        if error is not None:
            return error
        definition.update(body, user_modified_timestamp=self._stamp())
        return _json(200, definition)

    # --- Retell: agents and their LLMs --------------------------------------------------------------------------

    def _get_agent(self, request: httpx2.Request, agent_id: str) -> httpx2.Response:
        versions = self.agents.get(agent_id)
        agent = _at(versions, request.url.params.get("version")) if versions else None
        return _json(200, agent) if agent else _json(404, NOT_FOUND)

    def _list_agents(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """resources/agent.py:list, a POST whose query pages (`limit`, `pagination_key`, `sort_order`); items as
        types/agent_list_response.py L17-38 has them, without an engine."""
        items = [
            {
                "agent_id": agent_id,
                "agent_name": versions[max(versions)]["agent_name"],
                "channel": versions[max(versions)]["channel"],
                "is_suspended": False,
                "tags": {},
                "user_modified_timestamp": versions[max(versions)]["last_modification_timestamp"],
            }
            for agent_id, versions in self.agents.items()
        ]
        return _sorted_page(items, request, "agent_id")

    def _list_agent_versions(self, request: httpx2.Request, agent_id: str) -> httpx2.Response:
        """types/agent_list_versions_response.py L10-37: {items, has_more, pagination_key}."""
        versions = self.agents.get(agent_id)
        if versions is None:
            return _json(404, NOT_FOUND)
        keys = ("version", "is_published", "base_version", "version_title", "version_description")
        items = [
            {
                **{key: agent.get(key) for key in keys},
                "last_modification_timestamp": agent["last_modification_timestamp"],
            }
            for agent in versions.values()
        ]
        return _sorted_page(items, request, "version")

    def _create_agent_version(self, request: httpx2.Request, agent_id: str) -> httpx2.Response:
        """resources/agent.py:create_version: a new draft from `base_version` (201 on docs.retellai.com). Its LLM gets
        the same new number, a copy of the base's LLM version (the SDK does not say what Retell does here)."""
        versions = self.agents.get(agent_id)
        if versions is None:
            return _json(404, NOT_FOUND)
        base = (_body(request) or {}).get("base_version")
        if not isinstance(base, int) or isinstance(base, bool):  # `base_version: int`, required
            return _retell_error(400, "base_version is required and must be an integer")
        if base not in versions:
            return _json(404, NOT_FOUND)
        new, stamp = max(versions) + 1, self._stamp()
        draft = copy.deepcopy(versions[base])
        draft.update(version=new, is_published=False, base_version=base, version_title=None, version_description=None)
        draft["last_modification_timestamp"] = stamp
        engine = draft["response_engine"]
        if engine.get("type") == "retell-llm":
            llm_versions = self.llms[engine["llm_id"]]
            llm = copy.deepcopy(llm_versions[int(engine["version"])])
            llm.update(version=new, is_published=False, last_modification_timestamp=stamp)
            llm_versions[new] = llm
            draft["response_engine"] = _engine(engine["llm_id"], new)
        versions[new] = draft
        return _json(201, draft)

    def _get_llm(self, request: httpx2.Request, llm_id: str) -> httpx2.Response:
        versions = self.llms.get(llm_id)
        llm = _at(versions, request.url.params.get("version")) if versions else None
        return _json(200, llm) if llm else _json(404, NOT_FOUND)

    def _update_llm(self, request: httpx2.Request, llm_id: str) -> httpx2.Response:
        """resources/llm.py:update: the given fields replace the version's (`states` as a whole array; `model_config`
        key by key, as documented); no `version` edits the latest, as Retell documents. Refusing a published version
        is the demo's own rule: Retell documents no such message."""
        versions = self.llms.get(llm_id)
        llm = _at(versions, request.url.params.get("version")) if versions else None
        if llm is None:
            return _json(404, NOT_FOUND)
        if llm.get("is_published"):
            return _retell_error(400, "Cannot update a published version")
        body = _body(request)
        if body is None:
            return _retell_error(400, "The body must be a JSON object")
        problem = _problem(body, LLM_FIELDS) or _states_problem(body.get("states"))
        if problem is not None:
            return _retell_error(400, problem)
        body.pop("is_transfer_llm", None)
        if isinstance(body.get("model_config"), dict):
            body["model_config"] = {**(llm.get("model_config") or {}), **body["model_config"]}
        llm.update(body, last_modification_timestamp=self._stamp())
        return _json(200, llm)

    # --- Tela: test cases ---------------------------------------------------------------------------------------

    def _list_cases(self, request: httpx2.Request, _: str) -> httpx2.Response:
        params = request.url.params
        cases = [copy.deepcopy(case) for case in self.cases.values() if case["promptId"] == params.get("promptId")]
        if params.get("includeGenerations") != "true":
            cases = [_without_generations(case) for case in cases]
        return _json(200, cases)

    def _get_case(self, request: httpx2.Request, case_id: str) -> httpx2.Response:
        found = self.cases.get(case_id.lower())
        if found is None:
            return _tela_error(404, "Test case not found")
        # Tela documents includeGenerations on the list route only; the demo answers the by-ID route without
        # generations, so `get_test_case(include_generations=true)` takes the same path as against Tela.
        return _json(200, _without_generations(found))

    def _case_problem(self, body: dict[str, Any], required: tuple[str, ...]) -> httpx2.Response | None:
        problem = _problem(body, CASE_FIELDS, required) or _case_messages_problem(body.get("messages"))
        if problem is not None:
            return _tela_error(400, problem)
        if "promptId" in body and not self._has_prompt(body["promptId"]):
            return _tela_error(404, "Prompt not found")
        return None

    def _create_case(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """docs.tela.com test-case/create, one case per request (the form for several was not seen). The answer is
        the case as get-by-id shows it; the create response itself is not documented."""
        body = _body(request)
        if body is None:
            return _tela_error(400, "The body must be a JSON object")
        error = self._case_problem(body, CASE_REQUIRED)
        if error is not None:
            return error
        case_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-test-case-{self._serial('case')}"))
        now = _iso(self._stamp())
        absent = dict.fromkeys(("title", "variables", "files", "expectedOutput", "promptApplicationId", "metadata"))
        self.cases[case_id] = {
            "id": case_id,
            **absent,
            **body,
            "answers": None,
            "createdAt": now,
            "updatedAt": now,
            "deletedAt": None,
            "generations": [],
        }
        return _json(201, _without_generations(self.cases[case_id]))

    def _update_case(self, request: httpx2.Request, case_id: str) -> httpx2.Response:
        """docs.tela.com test-case/update: "Only include the fields you want to modify"."""
        case = self.cases.get(case_id.lower())
        if case is None:
            return _tela_error(404, "Test case not found")
        body = _body(request)
        if body is None:
            return _tela_error(400, "The body must be a JSON object")
        error = self._case_problem(body, ())
        if error is not None:
            return error
        case.update(body, updatedAt=_iso(self._stamp()))
        return _json(200, _without_generations(case))

    def _run_all(self, request: httpx2.Request, _: str) -> httpx2.Response:
        return _json(200, {"executionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-{self._serial('run-all')}"))})

    # --- Tela: prompt versions ----------------------------------------------------------------------------------

    def _has_prompt(self, prompt_id: object) -> bool:
        return any(version["promptId"] == prompt_id for version in self.prompt_versions.values())

    def _get_prompt_version(self, request: httpx2.Request, version_id: str) -> httpx2.Response:
        version = self.prompt_versions.get(version_id.lower())
        return _json(200, version) if version else _tela_error(404, "Prompt version not found")

    def _prompt_history(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """docs.tela.com prompt-version/get-prompt-version-history: newest to oldest, no content, `limit` (default
        20, at most 100) and `offset`. The envelope is not documented; the demo answers a bare array, as the listing it
        replaces did. `versionIndex` counts from 1 in creation order (its base is not documented either)."""
        params = request.url.params
        limit, offset = params.get("limit", "20"), params.get("offset", "0")
        if "promptId" not in params:
            return _tela_error(400, "promptId is required")
        if not re.fullmatch(r"[0-9]{1,3}", limit) or not 1 <= int(limit) <= 100:
            return _tela_error(400, "limit must be between 1 and 100")
        if not re.fullmatch(r"[0-9]{1,9}", offset):
            return _tela_error(400, "offset must be a whole number")
        mine = [version for version in self.prompt_versions.values() if version["promptId"] == params["promptId"]]
        keys = ("id", "promptId", "title", "draft", "promoted", "createdAt", "updatedAt")
        items = [
            {**{key: version[key] for key in keys}, "versionIndex": index} for index, version in enumerate(mine, 1)
        ]
        items.reverse()  # kept in creation order, so newest first is the reverse
        start = int(offset)
        return _json(200, items[start : start + int(limit)])

    def _create_prompt_version(self, request: httpx2.Request, _: str) -> httpx2.Response:
        """docs.tela.com prompt-version/create: always a draft; its content is the one sent, else its message's."""
        body = _body(request)
        if body is None:
            return _tela_error(400, "The body must be a JSON object")
        problem = _new_version_problem(body)
        if problem is not None:
            return _tela_error(400, problem)
        if not self._has_prompt(body["promptId"]):
            return _tela_error(404, "Prompt not found")
        sent = body.get("message", body.get("messages"))
        message = sent[0] if isinstance(sent, list) else sent
        content = body.get("content", message["content"] if message else "")
        version_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-prompt-version-{self._serial('prompt-version')}"))
        self.prompt_versions[version_id] = _prompt_version(
            version_id,
            body["title"],
            content,
            _iso(self._stamp()),
            draft=True,
            prompt_id=body["promptId"],
            configuration=body["configuration"],
            variables=body["variables"],
            markdown=body.get("markdownContent"),
        )
        return _json(201, self.prompt_versions[version_id])


def demo_transport() -> httpx2.MockTransport:
    """A fresh pair of demo vendors: what one session starts is seen by that session only."""
    return httpx2.MockTransport(DemoVendors().handle)
