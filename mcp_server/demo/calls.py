"""The demo's production calls: what `agent_demo_support` (published version 2) heard in the last days, as Retell
records calls (retell-sdk 6.2.13 `types/phone_call_response.py` and `types/web_call_response.py`, paths inside its
`retell/` package), and the fake `POST /v3/list-calls` and `GET /v2/get-call/{call_id}` that serve them.

Most calls went fine. One went wrong: a caller asked to cancel an order and the agent could not (no version's prompt
says it may cancel, and no test covers it). Every call carries what must never reach an answer or a log: signed
recording and log links, the full transcript beside the scrubbed one, full phone numbers, a web call's access
token. The calls are dated back from when the demo starts, so "this week" means this week.
"""

from __future__ import annotations

import copy
import json
import operator
import re
from collections.abc import Callable
from typing import Any

import httpx2

from mcp_server.demo.records import DEMO_AGENT_ID, DEMO_LIVE_AGENT_ID

HOUR_MS = 3_600_000
SUPPORT_LINE = "+14155550100"  # the number that serves agent_demo_support at version 2 (records.PHONE_NUMBERS)
FRONT_DESK_LINE = "+14155550199"
CANCEL_CALL_ID = "call_demo_cancel"
CANCEL_ORDER = "ORD-20418"
# Retell's "without PII" transcript: the demo writes what was removed as a bracketed word (the format Retell uses is
# not documented).
SCRUBBED = {"Maria Lopez": "[name]", "650-555-0142": "[phone number]", "maria.lopez@example.com": "[email]"}

# Fields of a call that list-calls does not return (types/call_list_response.py: "List items carry no transcripts").
TRANSCRIPT_FIELDS = (
    "transcript",
    "transcript_object",
    "transcript_with_tool_calls",
    "scrubbed_transcript_with_tool_calls",
)


def _words(text: str, start: float) -> list[dict[str, Any]]:
    """Word timings (TranscriptWithToolCallUtteranceWord: word, start, end in seconds), a third of a second each."""
    return [
        {"word": word, "start": round(start + i / 3, 2), "end": round(start + (i + 1) / 3, 2)}
        for i, word in enumerate(text.split())
    ]


def _say(role: str, text: str, at: float) -> dict[str, Any]:
    """An utterance (TranscriptWithToolCallUtterance L1992-2006)."""
    return {"role": role, "content": text, "words": _words(text, at), "metadata": {"response_id": int(at)}}


def _tool(call_id: str, name: str, arguments: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """A tool call and its result (L2050-2099): arguments "a stringified JSON object", the result as text."""
    return [
        {"role": "tool_call_invocation", "tool_call_id": call_id, "name": name, "type": "custom",
         "arguments": json.dumps(arguments)},
        {"role": "tool_call_result", "tool_call_id": call_id, "content": json.dumps(result), "successful": True},
    ]  # fmt: skip


def _scrub(text: str) -> str:
    for found, shown in SCRUBBED.items():
        text = text.replace(found, shown)
    return text


def _scrubbed(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    scrubbed = copy.deepcopy(turns)
    for turn in scrubbed:
        if isinstance(turn.get("content"), str):
            turn["content"] = _scrub(turn["content"])
            if "words" in turn:
                turn["words"] = _words(turn["content"], turn["words"][0]["start"] if turn["words"] else 0)
    return scrubbed


def _signed(call_id: str, name: str) -> str:
    """A signed, expiring link as Retell makes them when `opt_in_signed_url` is on (types/agent_response.py L1984)."""
    return (
        f"https://dxc03zgurdly9.cloudfront.net/demo/{call_id}/{name}?Expires=1893456000"
        f"&Signature=demoSig{call_id[-6:]}Zx9&Key-Pair-Id=KDEMO0000000"
    )


def _call(
    call_id: str,
    started: int,
    turns: list[dict[str, Any]],
    *,
    summary: str,
    successful: bool,
    sentiment: str,
    reason: str = "user_hangup",
    agent_id: str = DEMO_AGENT_ID,
    agent_version: int = 2,
    agent_name: str = "Demo Shoes support",
    caller: str | None = "+14155550123",
    line: str = SUPPORT_LINE,
    direction: str = "inbound",
    seconds: int = 60,
    variables: dict[str, str] | None = None,
    analysis: dict[str, Any] | None = None,
    voicemail: bool = False,
) -> dict[str, Any]:
    """A finished call (PhoneCallResponse L2191-2469; with `caller` None a WebCallResponse, L2180-)."""
    call: dict[str, Any] = {
        "call_id": call_id,
        "agent_id": agent_id,
        "agent_version": agent_version,
        "agent_name": agent_name,
        "call_status": "ended",
        "start_timestamp": started,
        "end_timestamp": started + seconds * 1000,
        "duration_ms": seconds * 1000,
        "disconnection_reason": reason,
        "data_storage_setting": "everything",
        "opt_in_signed_url": True,
        "recording_url": _signed(call_id, "recording.wav"),
        "recording_multi_channel_url": _signed(call_id, "recording_multichannel.wav"),
        "scrubbed_recording_url": _signed(call_id, "scrubbed_recording.wav"),
        "scrubbed_recording_multi_channel_url": _signed(call_id, "scrubbed_recording_multichannel.wav"),
        "public_log_url": _signed(call_id, "public.log"),
        "knowledge_base_retrieved_contents_url": _signed(call_id, "kb_retrieved_contents.txt"),
        "retell_llm_dynamic_variables": variables or {"customer_name": "John Doe"},
        "collected_dynamic_variables": {},
        "call_analysis": {
            "call_summary": summary,
            "user_sentiment": sentiment,
            "call_successful": successful,
            "in_voicemail": voicemail,
            "custom_analysis_data": analysis or {},
        },
        "latency": {
            "e2e": {"p50": 810.0, "p90": 1240.0, "p95": 1390.0, "p99": 1620.0, "min": 540.0, "max": 1710.0, "num": 6},
            "llm": {"p50": 430.0, "p90": 690.0},
        },
        "call_cost": {
            "combined_cost": round(seconds * 0.12, 2),
            "product_costs": [],
            "total_duration_seconds": seconds,
            "total_duration_unit_price": 0.12,
        },  # fmt: skip
        "transcript": "\n".join(f"{t['role'].title()}: {t['content']}" for t in turns if "words" in t),
        "transcript_object": [t for t in turns if "words" in t],
        "transcript_with_tool_calls": turns,
        "scrubbed_transcript_with_tool_calls": _scrubbed(turns),
        "metadata": {"crm_link": f"https://crm.example.com/calls/{call_id}"},
    }
    if caller is None:
        call |= {"call_type": "web_call", "access_token": f"eyJhbGciOiJIUzI1NiJ9.demo-web-call-{call_id}.c2lnbmF0dXJl"}
    else:
        inbound = direction == "inbound"
        call |= {
            "call_type": "phone_call",
            "direction": direction,
            "from_number": caller if inbound else line,
            "to_number": line if inbound else caller,
            "telephony_identifier": {"twilio_call_sid": f"CA{call_id.encode().hex()[:32]}"},
        }
    return call


GREETING = "Thanks for calling Demo Shoes."  # version 2's begin_message (records.OLD_GREETING)


def production_calls(now_ms: int) -> dict[str, dict[str, Any]]:
    """The demo's calls, newest first, dated back from `now_ms`: six of agent_demo_support version 2 and one of the
    front desk; only the cancellation (3 hours ago) and a voicemail (9 days ago) went wrong."""

    def at(hours: float) -> int:
        """`hours` ago."""
        return now_ms - int(hours * HOUR_MS)

    cancel = [
        _say("agent", GREETING, 0.4),
        _say(
            "user",
            f"Hi, this is Maria Lopez. I'd like to cancel my order {CANCEL_ORDER}, I ordered the wrong size.",
            2.1,
        ),  # fmt: skip
        *_tool("tc_cancel_1", "lookup_order", {"order_id": CANCEL_ORDER}, {"status": "processing", "eta_days": 5}),
        _say("agent", f"Order {CANCEL_ORDER} is being processed and should arrive in 5 days.", 9.8),
        _say(
            "user",
            "I don't want it anymore. Can you cancel it before it ships? You can reach me at 650-555-0142 "
            "or maria.lopez@example.com.",
            14.0,
        ),  # fmt: skip
        _say(
            "agent",
            "I'm sorry, I can't cancel orders. Your order will arrive in 5 days, and you can return it then.",
            22.5,
        ),  # fmt: skip
        _say("user", "That's not what I asked. Never mind, bye.", 29.0),
    ]
    refund = [
        _say("agent", GREETING, 0.4),
        _say("user", "Hello, my order ORD-12345 is two weeks late.", 2.0),
        *_tool("tc_refund_1", "lookup_order", {"order_id": "ORD-12345"}, {"status": "shipped", "eta_days": 9}),
        _say("agent", "I'm sorry, ORD-12345 is late. I can refund it or send a replacement: which do you prefer?", 8.0),
        _say("user", "A refund, please.", 13.0),
        _say("agent", "Done: the refund for ORD-12345 is on its way.", 15.5),
    ]
    status = [
        _say("agent", GREETING, 0.4),
        _say("user", "Where is my order ORD-30077?", 2.0),
        *_tool("tc_status_1", "lookup_order", {"order_id": "ORD-30077"}, {"status": "shipped", "eta_days": 2}),
        _say("agent", "ORD-30077 has shipped and arrives in 2 days.", 7.0),
        _say("user", "Great, thank you.", 10.0),
    ]
    sizes = [
        _say("agent", GREETING, 0.4),
        _say("user", "Do your running shoes run small? I usually wear a 42.", 2.0),
        _say("agent", "They run true to size, so a 42 should fit.", 6.0),
        _say("user", "Perfect, thanks.", 9.0),
    ]
    hours = [
        _say("agent", GREETING, 0.4),
        _say("user", "What time does the phone line open on Saturdays?", 2.0),
        _say("agent", "On Saturdays we answer from 9 am to 5 pm.", 5.0),
    ]
    voicemail = [_say("agent", "Hello, this is Demo Shoes calling about your order ORD-11002.", 1.0)]
    front = [
        _say("agent", "Demo Shoes front desk, hello!", 0.4),
        _say("user", "Are you open on Sunday?", 2.0),
        _say("agent", "Yes, from 11 am to 4 pm.", 4.0),
    ]
    calls = [
        _call(CANCEL_CALL_ID, at(3), cancel, seconds=34, caller="+16505550142", successful=False, sentiment="Negative",
              summary=f"The caller asked to cancel order {CANCEL_ORDER} before it ships, as she ordered the wrong "
              "size. The agent looked the order up but said it cannot cancel orders, and the caller hung up "
              "unhappy.", variables={"customer_name": "Maria Lopez"},
              analysis={"order_id": CANCEL_ORDER, "callback_number": "+16505550142", "resolved": False}),
        _call("call_demo_refund", at(7), refund, seconds=18, successful=True, sentiment="Positive",
              summary="The caller's order ORD-12345 was two weeks late; the agent offered a refund or a replacement "
              "and refunded it.", reason="agent_hangup"),
        _call("call_demo_front_desk", at(20), front, seconds=6, agent_id=DEMO_LIVE_AGENT_ID, agent_version=1,
              agent_name="Demo Shoes front desk", line=FRONT_DESK_LINE, successful=True, sentiment="Positive",
              summary="The caller asked about Sunday opening hours and got them."),
        _call("call_demo_status", at(26), status, seconds=12, caller="+12125550142", successful=True,
              sentiment="Neutral", summary="The caller asked where order ORD-30077 is; the agent said it has "
              "shipped and arrives in 2 days."),
        _call("call_demo_web_hours", at(50), hours, seconds=7, caller=None, successful=True, sentiment="Positive",
              summary="A web caller asked when the phone line opens on Saturdays and got the hours."),
        _call("call_demo_sizes", at(75), sizes, seconds=11, caller="+13105550177", successful=True,
              sentiment="Positive", summary="The caller asked whether running shoes run small; the agent said they "
              "run true to size."),
        _call("call_demo_voicemail", at(9 * 24), voicemail, seconds=9, caller="+13125550188", direction="outbound",
              successful=False, sentiment="Unknown", reason="voicemail_reached", voicemail=True,
              summary="An outbound call about order ORD-11002 reached voicemail."),
    ]  # fmt: skip
    return {call["call_id"]: call for call in calls}


# --- The fake routes ----------------------------------------------------------------------------------------------

BODY_KEYS = {"filter_criteria", "include_total", "limit", "pagination_key", "skip", "sort_order"}  # L217-227


def _json(status: int, body: object) -> httpx2.Response:
    return httpx2.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def _error(status: int, message: str) -> httpx2.Response:
    return _json(status, {"status": "error", "message": message})


def _enum_filter(condition: object, field: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], bool]:
    if not (isinstance(condition, dict) and condition.get("op") == "in" and condition.get("type") == "enum"
            and isinstance(condition.get("value"), list)):  # fmt: skip
        raise ValueError("an enum filter is {op: in, type: enum, value: [...]}")
    values = condition["value"]
    return lambda call: field(call) in values


def _number_filter(condition: object, field: str) -> Callable[[dict[str, Any]], bool]:
    """{op: eq|ne|gt|ge|lt|le, type: number, value} or {op: bt, type: range, value: [lower, upper]} (bounds kept)."""
    if not isinstance(condition, dict):
        raise ValueError(f"{field} must be a number or range filter")
    op, kind, value = condition.get("op"), condition.get("type"), condition.get("value")
    if op == "bt" and kind == "range" and isinstance(value, list) and len(value) == 2:
        low, high = value
        return lambda call: isinstance(call.get(field), int) and low <= call[field] <= high
    tests = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge, "lt": operator.lt,
             "le": operator.le}  # fmt: skip
    if kind == "number" and op in tests and isinstance(value, int | float):
        test = tests[op]
        return lambda call: isinstance(call.get(field), int) and bool(test(call[field], value))
    raise ValueError(f"{field} must be a number or range filter")


def _agent_filter(condition: object) -> Callable[[dict[str, Any]], bool]:
    """[{agent_id, version: [numbers]}], connected by OR; no versions (or none listed) means every version."""
    if not isinstance(condition, list) or not all(isinstance(c, dict) and isinstance(c.get("agent_id"), str)
                                                   for c in condition):  # fmt: skip
        raise ValueError("agent must be a list of {agent_id, version}")
    return lambda call: any(
        call["agent_id"] == wanted["agent_id"]
        and (not wanted.get("version") or call["agent_version"] in wanted["version"])
        for wanted in condition
    )


FILTERS: dict[str, Callable[[object], Callable[[dict[str, Any]], bool]]] = {
    "agent": _agent_filter,
    "start_timestamp": lambda c: _number_filter(c, "start_timestamp"),
    "call_successful": lambda c: _boolean_filter(c, lambda call: call["call_analysis"].get("call_successful")),
    "user_sentiment": lambda c: _enum_filter(c, lambda call: call["call_analysis"].get("user_sentiment")),
    "disconnection_reason": lambda c: _enum_filter(c, lambda call: call.get("disconnection_reason")),
    "call_type": lambda c: _enum_filter(c, lambda call: call.get("call_type")),
}


def _boolean_filter(condition: object, field: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], bool]:
    if not (isinstance(condition, dict) and condition.get("op") == "eq" and condition.get("type") == "boolean"
            and isinstance(condition.get("value"), bool)):  # fmt: skip
        raise ValueError("a boolean filter is {op: eq, type: boolean, value: true|false}")
    return lambda call: field(call) is condition["value"]


def list_calls(calls: dict[str, dict[str, Any]], request: httpx2.Request) -> httpx2.Response:
    """resources/call.py:list: everything in the body (a query is refused: the demo's check that nothing goes there),
    filters ANDed, sorted by start_timestamp (descending unless asked: docs.retellai.com's default), `limit` 50 by
    default and at most 1000 (docs.retellai.com), items without transcripts."""
    if request.url.query:
        return _error(400, "list-calls takes its parameters in the body")
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        return _error(400, "The body must be JSON")
    if not isinstance(body, dict) or set(body) - BODY_KEYS:
        return _error(400, "Unknown field(s) in the body")
    criteria = body.get("filter_criteria", {})
    if not isinstance(criteria, dict):
        return _error(400, "filter_criteria must be an object")
    unknown = sorted(set(criteria) - set(FILTERS))
    if unknown:
        return _error(400, f"The demo does not filter by {', '.join(unknown)}")
    try:
        tests = [FILTERS[key](condition) for key, condition in criteria.items()]
    except ValueError as error:
        return _error(400, str(error))
    limit, key, order = body.get("limit", 50), body.get("pagination_key", "p0"), body.get("sort_order", "descending")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        return _error(400, "limit must be 1-1000")
    if not isinstance(key, str) or not re.fullmatch(r"p[0-9]{1,9}", key):
        return _error(400, "Invalid pagination_key")
    if order not in ("ascending", "descending"):
        return _error(400, "Invalid sort_order")
    found = [call for call in calls.values() if all(test(call) for test in tests)]
    found.sort(key=lambda call: call["start_timestamp"], reverse=order == "descending")
    start = int(key[1:])
    page = [{k: v for k, v in call.items() if k not in TRANSCRIPT_FIELDS} for call in found[start : start + limit]]
    more = start + limit < len(found)
    return _json(200, {"items": page, "has_more": more, "pagination_key": f"p{start + limit}" if more else None})


def get_call(calls: dict[str, dict[str, Any]], call_id: str) -> httpx2.Response:
    """resources/call.py:retrieve; an unknown call is Retell's 422 "cannot find requested asset" (get-call.md)."""
    call = calls.get(call_id)
    return _json(200, call) if call else _error(422, "Cannot find requested asset")
