"""The demo's judge: how a run of a test definition ends on a given LLM version (the prompts must say what the
test checks), and the batches that ran before the session, judged the same way."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp_server.demo.records import (
    DEFINITIONS,
    DEMO_LLM_ID,
    LLMS,
    LOOKUP_TURNS,
    NEW_GREETING,
    OLD_GREETING,
    llm_engine,
)


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

CANCEL_ASK = {"role": "user", "content": "Hi, I'd like to cancel my order ORD-20418, I ordered the wrong size."}
CANCEL_LOOKUP: list[dict[str, Any]] = [
    {
        "role": "tool_call_invocation",
        "tool_call_id": "call_demo_2",
        "name": "lookup_order",
        "type": "custom",
        "arguments": '{"order_id": "ORD-20418"}',
    },
    {
        "role": "tool_call_result",
        "tool_call_id": "call_demo_2",
        "content": '{"status": "processing", "eta_days": 5}',
        "successful": True,
    },
]
# Definitions made in the session have new IDs, so these judge them by what their caller asks: a test drawn from the
# demo's call that went wrong (`demo/calls.py`) passes only on a version whose prompts let the agent cancel an order.
CONTENT_JUDGES: list[tuple[Callable[[dict[str, Any]], bool], Judge]] = [
    (
        lambda definition: "cancel" in str(definition.get("user_prompt", "")).lower(),
        Judge(
            _says("cancel"),
            Outcome("pass", [
                CANCEL_ASK,
                *CANCEL_LOOKUP,
                {"role": "agent", "content": "ORD-20418 has not shipped yet, so I have cancelled it. You'll get a "
                 "confirmation email."},
            ]),
            Outcome("fail", [
                CANCEL_ASK,
                *CANCEL_LOOKUP,
                {"role": "agent", "content": "Order ORD-20418 is being processed and should arrive in 5 days."},
                {"role": "user", "content": "Please cancel it before it ships."},
                {"role": "agent", "content": "I'm sorry, I can't cancel orders. You can return it once it arrives."},
            ], "Failed: asked to cancel order ORD-20418 before it ships, the agent said it cannot cancel orders and "
               "only repeated the delivery estimate."),
        ),
    ),
]  # fmt: skip


def _outcome(definition: dict[str, Any], llm: dict[str, Any]) -> Outcome:
    """How a run of `definition` on `llm` ends; a definition the demo has no judge for (one made in the session that
    no content judge recognises) passes."""
    judge = JUDGES.get(definition["test_case_definition_id"]) or next(
        (judge for asks, judge in CONTENT_JUDGES if asks(definition)), None
    )
    if judge is None:
        greeting = llm.get("begin_message") or "Hello."
        return Outcome("pass", [{"role": "agent", "content": greeting}, {"role": "user", "content": "Thanks, bye."}])
    return judge.passed if judge.passes(llm) else judge.failed


def judged_run(job_id: str, definition: dict[str, Any], llm: dict[str, Any], created: int) -> dict[str, Any]:
    """A finished run of `definition` on `llm` (TestCaseJobResponse, types/test_case_job_response.py L12-44): its
    snapshot is the definition with the version it ran."""
    outcome = _outcome(definition, llm)
    snapshot = {**copy.deepcopy(definition), "response_engine": llm_engine(llm["llm_id"], llm["version"])}
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
    return {job: judged_run(job, DEFINITIONS[definition], llm, created) for job, definition, created in runs}


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
    "tcbj_demo_latest": Batch(list(RETELL_RUNS), 1731000000000, llm_engine(DEMO_LLM_ID, 3)),
    "tcbj_demo_baseline": Batch(list(BASELINE_RUNS), 1730500000000, llm_engine(DEMO_LLM_ID, 2)),
}
