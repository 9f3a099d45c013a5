"""The demo's records: Retell agents and their versions, LLMs, phone numbers and test definitions, Tela prompt
versions and test cases, each in the vendor's published shape (cited where each is built: Retell's from
retell-sdk 6.2.13, paths inside its `retell/` package; Tela's from docs.tela.com/api-reference)."""

from __future__ import annotations

import copy
from typing import Any

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


def llm_engine(llm_id: str, version: int) -> dict[str, Any]:
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
        "response_engine": llm_engine(llm_id, version),
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


def prompt_version(
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
    DEMO_PROMOTED_VERSION_ID: prompt_version(
        DEMO_PROMOTED_VERSION_ID, "Support v1", PROMOTED_CONTENT, "2022-12-20T00:00:00.000Z", draft=False
    ),
    DEMO_PROMPT_VERSION_ID: prompt_version(
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
