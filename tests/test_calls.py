"""Retell production calls (issue 25, items 1-3, 5, 6): list_calls, get_call and draft_test_from_call against a
fake Retell that records every request, the `retell://calls/{call_id}` template, the `test_from_call` prompt, and
the privacy promises: the scrubbed transcript first, no link, no full phone number, in no answer and no log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx2
import pydantic_core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from mcp_server.retell.calls import MAX_CALL_BYTES, MOCK_OUTPUT_LIMIT, masked, number_shown
from mcp_server.server import build_server
from tests.conftest import FakeVendors, connect, error_of, json_response, make_settings

pytestmark = pytest.mark.anyio

AGENT = "agent_7f3a"
CALL_ID = "call_9b2c41d07e"
LLM = "llm_5e8d"
SIGNED = "https://dxc03zgurdly9.cloudfront.net/rec/call_9b2c41d07e.wav?Expires=1893456000&Signature=AbCdEf"


def words(text: str) -> list[dict[str, Any]]:
    return [{"word": word, "start": i * 0.3, "end": i * 0.3 + 0.3} for i, word in enumerate(text.split())]


def say(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": text, "words": words(text), "metadata": {"response_id": 3}}


# A call as retell-sdk 6.2.13 types it (types/phone_call_response.py): every kind of transcript entry, every link.
FULL_TURNS: list[dict[str, Any]] = [
    say("agent", "Hello, you reached Acme Travel."),
    say("user", "Hi, this is Dana Whitfield, I need to move my flight AB123 to Friday. My number is +1 415 555 0123."),
    {"role": "tool_call_invocation", "tool_call_id": "t1", "name": "find_booking", "type": "custom",
     "arguments": '{"booking": "AB123", "phone": "+14155550123"}', "thought_signature": "sig"},
    {"role": "tool_call_result", "tool_call_id": "t1", "content": '{"flight": "AB123", "day": "Wednesday"}',
     "successful": True},
    {"role": "node_transition", "former_node_id": "n1", "former_node_name": "Greeting", "new_node_id": "n2",
     "new_node_name": "Change booking", "transition_type": "normal"},
    say("agent", "I found AB123 on Wednesday. Friday has a seat at 9 am."),
    {"role": "dtmf", "digit": "1"},
    {"role": "tool_call_invocation", "tool_call_id": "t2", "name": "rebook", "type": "custom",
     "arguments": "not json at all"},
    {"role": "tool_call_result", "tool_call_id": "t2", "content": "rebook failed: no seats", "successful": False},
    {"role": "tool_call_invocation", "tool_call_id": "t3", "name": "transfer_call", "type": "transfer_call",
     "arguments": "{}"},
    {"role": "sms", "content": "Your booking link: https://acme.example.com/b/AB123?token=s3cr3t", "time_sec": 41.5,
     "multimedia": [{"url": "https://media.example.com/ticket.png?sig=zz", "summary": "a boarding pass"}]},
    {"role": "injected", "content": "Supervisor note: VIP customer", "time_sec": 42.0},
    say("user", "Okay."),
    say("user", "Okay."),
    say("user", "Thanks, that works."),
]  # fmt: skip
SCRUBBED_TURNS = json.loads(
    json.dumps(FULL_TURNS).replace("Dana Whitfield", "<name>").replace("+1 415 555 0123", "<phone_number>")
)
CALL: dict[str, Any] = {
    "call_id": CALL_ID,
    "agent_id": AGENT,
    "agent_version": 12,
    "agent_name": "Acme travel desk",
    "call_type": "phone_call",
    "direction": "inbound",
    "call_status": "ended",
    "from_number": "+14155550123",
    "to_number": "+12125559876",
    "start_timestamp": 1764547200000,  # 2025-12-01T00:00:00Z
    "end_timestamp": 1764547262500,
    "duration_ms": 62500,
    "disconnection_reason": "call_transfer",
    "transfer_destination": "sip:+13125554567@pbx.acme.example.com",
    "telephony_identifier": {"twilio_call_sid": "CA0123456789abcdef0123456789abcdef"},
    "data_storage_setting": "everything",
    "opt_in_signed_url": True,
    "recording_url": SIGNED,
    "recording_multi_channel_url": SIGNED + "&multi",
    "scrubbed_recording_url": SIGNED + "&scrubbed",
    "scrubbed_recording_multi_channel_url": SIGNED + "&scrubbed_multi",
    "public_log_url": "https://dxc03zgurdly9.cloudfront.net/log/call_9b2c41d07e.log?Signature=LoG",
    "knowledge_base_retrieved_contents_url": "https://kb.retellai.example.com/x?Signature=KB",
    "custom_sip_headers": {"X-Caller": "+14155550123"},
    "metadata": {"crm": "https://crm.example.com/c/1"},
    "retell_llm_dynamic_variables": {"customer_name": "Dana Whitfield", "booking": "AB123"},
    "collected_dynamic_variables": {"new_day": "Friday"},
    "call_analysis": {
        "call_summary": "Dana Whitfield asked to move flight AB123 to Friday; rebooking failed and the call was "
        "transferred. Call her back at 415-555-0123.",
        "user_sentiment": "Neutral",
        "call_successful": False,
        "in_voicemail": False,
        "custom_analysis_data": {"callback": "+14155550123", "reason": "rebook failed", "nested": {"a": [1, 2]}},
    },
    "latency": {"e2e": {"p50": 912.5, "p90": 1480.0, "values": [900, 1000]}, "llm": {"p50": 400}},
    "transcript": "Agent: Hello... User: Hi, this is Dana Whitfield",
    "transcript_object": [say("user", "Dana Whitfield")],
    "transcript_with_tool_calls": FULL_TURNS,
    "scrubbed_transcript_with_tool_calls": SCRUBBED_TURNS,
}
# What must never be in any answer or log line: every link, full number, token and scrubbed name above.
PRIVATE = ("https://", "cloudfront", "Signature", "s3cr3t", "sig=zz", "crm.example", "Dana", "Whitfield",
           "4155550123", "415 555 0123", "415-555-0123", "2125559876", "3125554567", "pbx.acme", "CA0123456789",
           '"words":', "thought_signature")  # fmt: skip


def agent_at(version: int, engine: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "agent_id": AGENT,
        "version": version,
        "agent_name": "Acme travel desk",
        "response_engine": engine or {"type": "retell-llm", "llm_id": LLM, "version": 7},
    }


def item(n: int, **extra: Any) -> dict[str, Any]:
    """A list-calls item (types/call_list_response.py ItemV3PhoneCallResponse): no transcripts, links included."""
    return {
        **{key: value for key, value in CALL.items() if "transcript" not in key},
        "call_id": f"call_{n:032x}",
        "start_timestamp": 1764547200000 - n * 60_000,
        **extra,
    }


def retell(pages: list[dict[str, Any]] | None = None, call: dict[str, Any] | None = None, **agents: Any) -> Any:
    """A fake Retell: list-calls answers `pages` in turn (by the pagination_key sent), get-call `call`, get-agent
    the agent at the version asked."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == "/v3/list-calls":
            key = json.loads(request.content).get("pagination_key")
            number = int(key[1:]) if isinstance(key, str) and key[1:].isdigit() else 0
            return json_response(200, (pages or [])[number])
        if path.startswith("/v2/get-call/"):
            return json_response(200, call or CALL)
        if path == f"/get-agent/{AGENT}":
            version = int(request.url.params["version"])
            return json_response(200, agents.get("agent") or agent_at(version))
        return json_response(404, {"status": "error", "message": "Not Found"})

    return handle


def bodies(vendors: FakeVendors) -> list[dict[str, Any]]:
    return [json.loads(request.content) for request in vendors.requests]


# --- list_calls -------------------------------------------------------------------------------------------------


async def test_list_calls_sends_one_post_with_every_filter_in_its_body(vendors: FakeVendors) -> None:
    """Every argument becomes Retell's filter_criteria, exactly as retell-sdk 6.2.13 types it: one POST
    /v3/list-calls, nothing in the query, newest first; sentiment as Retell spells it, repeats dropped."""
    vendors.retell = retell([{"items": [], "has_more": False, "pagination_key": None}])
    arguments = {
        "agent_id": AGENT,
        "version": [11, 12, 12],
        "since": "2025-12-01T09:30:00+01:00",
        "until": 1764633600000,
        "successful": False,
        "sentiment": ["negative", "Neutral", "NEGATIVE"],
        "disconnection_reason": ["user_hangup", "call_transfer"],
        "call_type": "phone_call",
        "limit": 50,
        "pagination_key": "opaque_key-1",
    }
    async with connect(vendors) as client:
        result = await client.call_tool("list_calls", arguments)
    assert result.structured_content == {"items": [], "has_more": False, "pagination_key": None}
    (request,) = vendors.requests
    assert (request.method, request.url.path, request.url.query) == ("POST", "/v3/list-calls", b"")
    assert json.loads(request.content) == {
        "filter_criteria": {
            "agent": [{"agent_id": AGENT, "version": [11, 12]}],
            "start_timestamp": {"op": "bt", "type": "range", "value": [1764577800000, 1764633600000]},
            "call_successful": {"op": "eq", "type": "boolean", "value": False},
            "user_sentiment": {"op": "in", "type": "enum", "value": ["Negative", "Neutral"]},
            "disconnection_reason": {"op": "in", "type": "enum", "value": ["user_hangup", "call_transfer"]},
            "call_type": {"op": "in", "type": "enum", "value": ["phone_call"]},
        },
        "limit": 50,
        "sort_order": "descending",
        "pagination_key": "opaque_key-1",
    }


@pytest.mark.parametrize(
    ("window", "sent"),
    [
        ({}, None),
        ({"since": "2025-12-01"}, {"op": "ge", "type": "number", "value": 1764547200000}),
        ({"until": "2025-12-01T00:00:00Z"}, {"op": "le", "type": "number", "value": 1764547200000}),
        ({"since": "2025-12-01T00:00:00.250Z"}, {"op": "ge", "type": "number", "value": 1764547200250}),
    ],
)
async def test_a_one_sided_window_is_one_bound_and_none_is_no_filter(
    vendors: FakeVendors, window: dict[str, str], sent: dict[str, Any] | None
) -> None:
    """since alone is `ge`, until alone `le` (a date alone is its midnight UTC), neither no start_timestamp at all;
    without other arguments the filter is the agent alone and the page 20 calls."""
    vendors.retell = retell([{"items": [], "has_more": False, "pagination_key": None}])
    async with connect(vendors) as client:
        await client.call_tool("list_calls", {"agent_id": AGENT, **window})
    (body,) = bodies(vendors)
    expected = {"agent": [{"agent_id": AGENT}], **({"start_timestamp": sent} if sent else {})}
    assert body == {"filter_criteria": expected, "limit": 20, "sort_order": "descending"}


async def test_every_page_is_asked_for_with_the_same_filters_and_retells_key(vendors: FakeVendors) -> None:
    """Paging: the key Retell answered goes back in the body beside the very same filter_criteria, and the last
    page says there is no more."""
    pages = [
        {"items": [item(1), item(2)], "has_more": True, "pagination_key": "p1"},
        {"items": [item(3)], "has_more": False, "pagination_key": None},
    ]
    vendors.retell = retell(pages)
    arguments = {"agent_id": AGENT, "successful": False, "limit": 2}
    async with connect(vendors) as client:
        first = (await client.call_tool("list_calls", arguments)).structured_content
        assert first is not None and first["has_more"] is True
        second = (
            await client.call_tool("list_calls", {**arguments, "pagination_key": first["pagination_key"]})
        ).structured_content
    assert second is not None and second["has_more"] is False and second["pagination_key"] is None
    assert [i["call_id"] for i in first["items"] + second["items"]] == [f"call_{n:032x}" for n in (1, 2, 3)]
    one, two = bodies(vendors)
    assert two == {**one, "pagination_key": "p1"}
    assert one["filter_criteria"]["call_successful"] == {"op": "eq", "type": "boolean", "value": False}


async def test_each_listed_call_is_compact_and_holds_no_link_or_full_number(vendors: FakeVendors) -> None:
    """An item is exactly the issue's fields: times as ISO 8601 UTC, numbers by their last four digits, the summary
    with its numbers masked; Retell's links, token, SIP headers and metadata are gone."""
    web = item(2, call_type="web_call", access_token="eyJhbGciOiJIUzI1NiJ9.tok.sig")
    for key in ("direction", "from_number", "to_number"):
        web.pop(key)
    vendors.retell = retell([{"items": [item(1), web], "has_more": False, "pagination_key": None}])
    async with connect(vendors) as client:
        result = await client.call_tool("list_calls", {"agent_id": AGENT})
    assert result.structured_content is not None
    phone, web_item = result.structured_content["items"]
    assert phone == {
        "call_id": f"call_{1:032x}",
        "agent_id": AGENT,
        "agent_version": 12,
        "call_type": "phone_call",
        "direction": "inbound",
        "call_status": "ended",
        "start": "2025-11-30T23:59:00.000Z",
        "end": "2025-12-01T00:01:02.500Z",
        "duration_ms": 62500,
        "disconnection_reason": "call_transfer",
        "call_successful": False,
        "user_sentiment": "Neutral",
        "call_summary": "Dana Whitfield asked to move flight AB123 to Friday; rebooking failed and the call was "
        "transferred. Call her back at …0123.",
        "from": "…0123",
        "to": "…9876",
    }
    assert (web_item["call_type"], web_item["direction"], web_item["from"], web_item["to"]) == ("web_call", None, None,
                                                                                                None)  # fmt: skip
    text = result.content[0].text
    assert not [part for part in ("https://", "Signature", "eyJhbGci", "4155550123", "CA0123") if part in text]


@pytest.mark.parametrize(("limit", "budget"), [(20, 12_000), (50, 32_000)])
async def test_a_page_of_20_answers_under_12_kb_and_of_50_under_32_kb(
    vendors: FakeVendors, limit: int, budget: int
) -> None:
    """Whatever Retell puts in the summaries (10,000 characters each, full of what JSON escapes), a page of 20 calls
    answers under 12 KB and one of 50 under 32 KB; summaries are clipped to one length, the calls all kept."""
    summary = ('"\\\n\u2028' + "é" * 20) * 500
    many = [item(n, call_analysis={**CALL["call_analysis"], "call_summary": summary}) for n in range(limit)]
    vendors.retell = retell([{"items": many, "has_more": True, "pagination_key": "p1"}])
    async with connect(vendors) as client:
        result = await client.call_tool("list_calls", {"agent_id": AGENT, "limit": limit})
    assert result.structured_content is not None
    assert len(result.content[0].text.encode()) < budget
    assert len(pydantic_core.to_json(result.structured_content)) < budget
    shown = result.structured_content["items"]
    assert len(shown) == limit and len({len(i["call_summary"]) for i in shown}) == 1
    assert all(i["call_summary"].endswith("…") for i in shown)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"agent_id": "agent/../x"}, "agent_id must be"),
        ({"since": "yesterday"}, "since must be ISO 8601"),
        ({"until": "2025-13-01"}, "until must be ISO 8601"),
        ({"since": "1764547200"}, "epoch seconds? give milliseconds"),
        ({"since": 1764547200}, "epoch seconds? give milliseconds"),
        ({"until": True}, None),  # neither a string nor an integer: the SDK's schema error
        ({"since": "2025-12-02", "until": "2025-12-01"}, "since is later than until"),
        ({"sentiment": ["angry"]}, "sentiment 'angry' is not one of Retell's values"),
        ({"sentiment": ["negatve"]}, "did you mean 'Negative'?"),
        ({"disconnection_reason": ["user_hungup"]}, "did you mean 'user_hangup'?"),
        ({"limit": 51}, "limit must be 1-50"),
        ({"limit": 0}, "limit must be 1-50"),
        ({"version": [-1]}, "version must list whole numbers"),
        ({"pagination_key": "has space"}, "pagination_key must be"),
    ],
)
async def test_bad_arguments_are_invalid_argument_and_nothing_is_sent(
    vendors: FakeVendors, arguments: dict[str, Any], says: str | None
) -> None:
    """A malformed agent ID or time, an unknown sentiment or disconnection reason, a limit over 50, a negative
    version: `invalid_argument` (naming the nearest known value, where there is one) and no request at all."""
    async with connect(vendors) as client:
        result = await client.call_tool("list_calls", {"agent_id": AGENT, **arguments})
    assert result.is_error is True
    if says is not None:
        error = error_of(result)
        assert error["code"] == "invalid_argument" and says in error["message"], error
        assert "Nothing was sent" in error["message"]
    assert vendors.requests == []


# --- get_call ---------------------------------------------------------------------------------------------------


async def test_get_call_shows_the_scrubbed_turns_in_order_with_tool_calls_and_transitions(vendors: FakeVendors) -> None:
    """One GET /v2/get-call/{id}; the turns are the scrubbed transcript's, in order, each kind in its own shape
    (word timings, metadata and the sms attachment's link left out); the analysis, variables, latency and
    durations are there, and what Retell scrubbed (the caller's name) is removed from the summary and variables."""
    vendors.retell = retell()
    async with connect(vendors) as client:
        result = await client.call_tool("get_call", {"call_id": CALL_ID})
    call = result.structured_content
    assert call is not None, result.content[0].text
    (request,) = vendors.requests
    assert (request.method, str(request.url)) == ("GET", f"https://api.retellai.com/v2/get-call/{CALL_ID}")
    assert call["transcript"] == "scrubbed" and "call_transcripts: scrubbed" in call["transcript_note"]
    assert call["turns"] == [
        {"role": "agent", "content": "Hello, you reached Acme Travel."},
        {"role": "user", "content": "Hi, this is <name>, I need to move my flight AB123 to Friday. My number is "
         "<phone_number>."},
        {"role": "tool_call_invocation", "tool_call_id": "t1", "name": "find_booking", "type": "custom",
         "arguments": '{"booking": "AB123", "phone": "…0123"}'},
        {"role": "tool_call_result", "tool_call_id": "t1", "content": '{"flight": "AB123", "day": "Wednesday"}',
         "successful": True},
        {"role": "node_transition", "former_node_id": "n1", "former_node_name": "Greeting", "new_node_id": "n2",
         "new_node_name": "Change booking", "transition_type": "normal"},
        {"role": "agent", "content": "I found AB123 on Wednesday. Friday has a seat at 9 am."},
        {"role": "dtmf", "digit": "1"},
        {"role": "tool_call_invocation", "tool_call_id": "t2", "name": "rebook", "type": "custom",
         "arguments": "not json at all"},
        {"role": "tool_call_result", "tool_call_id": "t2", "content": "rebook failed: no seats", "successful": False},
        {"role": "tool_call_invocation", "tool_call_id": "t3", "name": "transfer_call", "type": "transfer_call",
         "arguments": "{}"},
        {"role": "sms", "content": "Your booking link: [link removed]", "time_sec": 41.5,
         "attachments": ["a boarding pass"]},
        {"role": "injected", "content": "Supervisor note: VIP customer", "time_sec": 42.0},
        {"role": "user", "content": "Okay."},
        {"role": "user", "content": "Okay."},
        {"role": "user", "content": "Thanks, that works."},
    ]  # fmt: skip
    assert call["analysis"] == {
        "call_summary": "[removed] asked to move flight AB123 to Friday; rebooking failed and the call was "
        "transferred. Call her back at …0123.",
        "user_sentiment": "Neutral",
        "call_successful": False,
        "in_voicemail": False,
        "custom_analysis_data": {"callback": "…0123", "reason": "rebook failed", "nested": {"a": [1, 2]}},
    }
    assert call["dynamic_variables"] == {"customer_name": "[removed]", "booking": "AB123"}
    assert call["collected_dynamic_variables"] == {"new_day": "Friday"}
    assert (call["from"], call["to"], call["transfer_destination"]) == ("…0123", "…9876", "sip:…4567")
    assert (call["agent_id"], call["agent_version"], call["disconnection_reason"]) == (AGENT, 12, "call_transfer")
    assert (call["start"], call["end"], call["duration_ms"]) == ("2025-12-01T00:00:00.000Z", "2025-12-01T00:01:02.500Z",
                                                                 62500)  # fmt: skip
    assert call["latency_ms"] == {"e2e_p50": 912.5, "e2e_p90": 1480.0}
    assert f"Call History, call {CALL_ID}" in call["recording"] and "never shown" in call["recording"]
    assert (call["turns_total"], call["omitted_turns"], call["clipped"]) == (15, None, None)


@pytest.mark.parametrize(
    ("setting", "present", "used", "says"),
    [
        ("scrubbed", ("transcript_with_tool_calls",), "full", "Retell gave no PII-scrubbed one"),
        ("full", ("transcript_with_tool_calls", "scrubbed_transcript_with_tool_calls"), "full", "transcripts: full"),
        ("full", ("scrubbed_transcript_with_tool_calls",), "scrubbed", "Retell gave no full one"),
        ("scrubbed", (), None, "Retell sent no transcript"),
    ],
)
async def test_the_answer_says_which_transcript_it_shows(
    vendors: FakeVendors, setting: str, present: tuple[str, ...], used: str | None, says: str
) -> None:
    """Scrubbed whenever Retell gives one (the default), else the full one, and the answer says which and why;
    `call_transcripts: full` shows the full one; with full turns shown nothing is taken out of the summary."""
    call = {key: value for key, value in CALL.items() if "transcript_with" not in key or key in present}
    vendors.retell = retell(call=call)
    settings = make_settings(RETELL_TELA_MCP_CALL_TRANSCRIPTS=setting)
    async with connect(vendors, settings) as client:
        shown = (await client.call_tool("get_call", {"call_id": CALL_ID})).structured_content
    assert shown is not None and shown["transcript"] == used and says in shown["transcript_note"]
    if used == "full":
        assert "Dana Whitfield" in shown["turns"][1]["content"]
        assert shown["analysis"]["call_summary"].startswith("Dana Whitfield")
    if used is None:
        assert shown["turns"] == [] and shown["turns_total"] == 0
    assert "+1 415 555 0123" not in json.dumps(shown) and "https://" not in json.dumps(shown)


def long_call(minutes: int) -> dict[str, Any]:
    """A call as dense as real speech: about 150 words a minute, a turn every five seconds, a tool call and its
    result every 90 seconds."""
    turns: list[dict[str, Any]] = []
    for n in range(minutes * 12):
        turns.append(say(("agent", "user")[n % 2], f"Turn {n}: " + " ".join(["well"] * 11) + " okay."))
        if n % 18 == 17:
            turns.append({"role": "tool_call_invocation", "tool_call_id": f"t{n}", "name": "lookup", "type": "custom",
                          "arguments": json.dumps({"booking": f"AB{n}", "detail": "x" * 80})})  # fmt: skip
            turns.append({"role": "tool_call_result", "tool_call_id": f"t{n}", "content": json.dumps({"ok": True,
                          "seats": list(range(20))})})  # fmt: skip
    return {**CALL, "transcript_with_tool_calls": turns, "scrubbed_transcript_with_tool_calls": turns}


async def test_a_30_minute_call_fits_whole_and_a_3_hour_one_says_what_was_left_out(vendors: FakeVendors) -> None:
    """A 30-minute call (360 turns, 20 tool calls) answers whole under 48 KB; a 3-hour one keeps its first turns
    (the caller's ask) and its last (how it ended), leaves the middle out, counts it, and says so, still under 48 KB.
    A turn of 100,000 characters is cut, and the answer says that too."""
    answers = {}
    for minutes in (30, 180):
        vendors.retell = retell(call=long_call(minutes))
        async with connect(vendors) as client:
            result = await client.call_tool("get_call", {"call_id": CALL_ID})
        assert result.structured_content is not None
        assert len(result.content[0].text.encode()) < MAX_CALL_BYTES
        answers[minutes] = result.structured_content
    whole, cut = answers[30], answers[180]
    assert whole["turns_total"] == len(whole["turns"]) == 360 + 2 * 20
    assert (whole["omitted_turns"], whole["clipped"]) == (None, None)
    total = 180 * 12 + 2 * 120
    omitted = cut["omitted_turns"]
    assert cut["turns_total"] == total and len(cut["turns"]) == total - omitted["count"] and omitted["count"] > 0
    assert cut["turns"][0]["content"].startswith("Turn 0:") and cut["turns"][-1]["tool_call_id"] == "t2159"
    assert (
        f"Turns {omitted['after'] + 1}-{omitted['after'] + omitted['count']} of {total} were left out"
        in (cut["clipped"])
    )
    vendors.retell = retell(call={**CALL, "scrubbed_transcript_with_tool_calls": [say("user", "y" * 100_000)]})
    async with connect(vendors) as client:
        huge = (await client.call_tool("get_call", {"call_id": CALL_ID})).structured_content
    assert huge is not None and len(huge["turns"][0]["content"]) == 2000
    assert huge["clipped"].startswith("1 long text was cut")


async def test_a_call_retell_cannot_find_is_not_found_and_a_bad_id_sends_nothing(vendors: FakeVendors) -> None:
    """Retell's 422 "Cannot find requested asset" is not_found; an ID with a slash never reaches the network."""
    vendors.retell = lambda request: json_response(422, {"status": "error", "message": "Cannot find requested asset"})
    async with connect(vendors) as client:
        missing = error_of(await client.call_tool("get_call", {"call_id": "call_gone"}))
        assert len(vendors.requests) == 1
        bad = error_of(await client.call_tool("get_call", {"call_id": "../v2/list-calls"}))
        drafted = error_of(await client.call_tool("draft_test_from_call", {"call_id": "a b"}))
    assert missing["code"] == "not_found" and "call 'call_gone'" in missing["message"]
    assert bad["code"] == drafted["code"] == "invalid_argument"
    assert len(vendors.requests) == 1


async def test_the_call_template_reads_the_same_json_as_the_tool(vendors: FakeVendors) -> None:
    """`retell://calls/{call_id}` is listed, gives get_call's JSON, and a call Retell cannot find is -32602 in the
    tool's words."""
    vendors.retell = retell()
    async with connect(vendors) as client:
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        tool = await client.call_tool("get_call", {"call_id": CALL_ID})
        (content,) = (await client.read_resource(f"retell://calls/{CALL_ID}")).contents
        vendors.retell = lambda request: json_response(422, {"status": "error", "message": "Cannot find"})
        with pytest.raises(MCPError) as caught:
            await client.read_resource("retell://calls/call_gone")
    assert "retell://calls/{call_id}" in templates
    assert json.loads(content.text) == tool.structured_content  # type: ignore[union-attr]
    assert content.mime_type == "application/json"
    assert caught.value.error.code == -32602 and "call 'call_gone'" in caught.value.error.message


# --- draft_test_from_call ---------------------------------------------------------------------------------------


async def save_arguments() -> set[str]:
    """The arguments save_test_case_definition takes, from its input schema."""
    server = build_server(make_settings({"allow_edits": True}), transport=FakeVendors().transport())
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    return set(tools["save_test_case_definition"].input_schema["properties"])


async def test_a_drafted_test_is_save_test_case_definitions_arguments_at_the_calls_version(
    vendors: FakeVendors,
) -> None:
    """The call, then its agent at the version the call ran (its engine's ID and version); the definition holds only
    save_test_case_definition's arguments: a name from the summary, a user_prompt quoting the caller's turns in order
    (scrubbed), no metrics, the call's variables, a mock per tool result (partial_match on the arguments, any when
    they are no JSON object, none for a call with no result)."""
    vendors.retell = retell()
    async with connect(vendors) as client:
        result = await client.call_tool("draft_test_from_call", {"call_id": CALL_ID})
    drafted = result.structured_content
    assert drafted is not None, result.content[0].text
    assert [(r.method, str(r.url)) for r in vendors.requests] == [
        ("GET", f"https://api.retellai.com/v2/get-call/{CALL_ID}"),
        ("GET", f"https://api.retellai.com/get-agent/{AGENT}?version=12"),
    ]
    definition = drafted["definition"]
    assert set(definition) <= await save_arguments()
    assert (definition["llm_id"], definition["version"], definition["metrics"]) == (LLM, 7, [])
    # The summary's first sentence, without what Retell scrubbed, clipped to 120 characters.
    assert definition["name"] == (
        f"From call {CALL_ID}: [removed] asked to move flight AB123 to Friday; rebooking failed and the call was "
        "transferre…"
    )
    assert definition["user_prompt"] == (
        "You are calling Acme travel desk.\n"
        'Your goal, as you first put it: "Hi, this is <name>, I need to move my flight AB123 to Friday. My number is '
        '<phone_number>."\n'
        "Then say these, in this order and in your own words, when the agent asks or when it fits:\n"
        '1. "Thanks, that works."\n'
        "Stay on your goal: if the agent cannot do it, ask once more, then say goodbye."
    )
    assert definition["dynamic_variables"] == {"customer_name": "[removed]", "booking": "AB123"}
    assert definition["tool_mocks"] == [
        {"tool_name": "find_booking", "input_match_rule": {"type": "partial_match",
         "args": {"booking": "AB123", "phone": "…0123"}}, "output": '{"flight": "AB123", "day": "Wednesday"}'},
        {"tool_name": "rebook", "input_match_rule": {"type": "any"}, "output": "rebook failed: no seats"},
    ]  # fmt: skip
    assert (drafted["source_call_id"], drafted["agent_id"], drafted["agent_version"]) == (CALL_ID, AGENT, 12)
    assert drafted["transcript"] == "scrubbed"
    note = drafted["note"]
    assert "metrics is empty" in note and f"run_batch_test llm_id={LLM} version=7" in note and "fail first" in note
    assert "1 tool call(s) had arguments that are not a JSON object" in note and "[removed]" in note


async def test_a_drafted_test_with_its_metrics_is_saved_as_it_is(vendors: FakeVendors) -> None:
    """Passed on to save_test_case_definition with the metrics written, the draft is sent to Retell as it stands:
    its engine at the call's version, its prompt, variables and mocks unchanged."""
    vendors.retell = retell()
    async with connect(vendors, make_settings({"allow_edits": True})) as client:
        drafted = (await client.call_tool("draft_test_from_call", {"call_id": CALL_ID})).structured_content
        assert drafted is not None
        definition = {**drafted["definition"], "metrics": ["Agent rebooks the flight to Friday"]}
        vendors.retell = lambda request: json_response(200, {**json.loads(request.content), "test_case_definition_id":
                                                             "tcd_new"})  # fmt: skip
        saved = await client.call_tool("save_test_case_definition", definition)
    assert saved.structured_content is not None, saved.content[0].text
    sent = json.loads(vendors.requests[-1].content)
    assert vendors.requests[-1].url.path == "/create-test-case-definition"
    assert sent == {
        "name": definition["name"],
        "user_prompt": definition["user_prompt"],
        "metrics": ["Agent rebooks the flight to Friday"],
        "dynamic_variables": definition["dynamic_variables"],
        "tool_mocks": definition["tool_mocks"],
        "response_engine": {"type": "retell-llm", "llm_id": LLM, "version": 7},
    }


async def test_a_flow_agent_gives_its_flow_and_long_tool_results_are_cut_and_said(vendors: FakeVendors) -> None:
    """An agent on a conversation flow gives conversation_flow_id and its version; a tool result longer than the
    mock keeps is cut to it, and the note says so; identical tool calls make one mock."""
    flow = {"type": "conversation-flow", "conversation_flow_id": "cf_1", "version": 3}
    repeat = [
        {"role": "tool_call_invocation", "tool_call_id": f"r{n}", "name": "lookup", "arguments": '{"id": 1}'}
        for n in range(2)
    ]
    turns = [repeat[0], {"role": "tool_call_result", "tool_call_id": "r0", "content": "z" * 10_000}, repeat[1],
             {"role": "tool_call_result", "tool_call_id": "r1", "content": "again"}]  # fmt: skip
    vendors.retell = retell(call={**CALL, "scrubbed_transcript_with_tool_calls": turns}, agent=agent_at(12, flow))
    async with connect(vendors) as client:
        drafted = (await client.call_tool("draft_test_from_call", {"call_id": CALL_ID})).structured_content
    assert drafted is not None
    definition = drafted["definition"]
    assert (definition["conversation_flow_id"], definition["version"]) == ("cf_1", 3) and "llm_id" not in definition
    (mock,) = definition["tool_mocks"]
    assert len(mock["output"]) == MOCK_OUTPUT_LIMIT and mock["output"].endswith("…")
    assert "1 mock output(s) were cut" in drafted["note"]
    assert "caller said nothing" in definition["user_prompt"]


@pytest.mark.parametrize(
    ("call", "agent", "code", "says"),
    [
        ({**CALL, "call_status": "ongoing", "transcript_with_tool_calls": None,
          "scrubbed_transcript_with_tool_calls": None}, None, "invalid_argument", "no transcript yet (status ongoing)"),
        (CALL, agent_at(12, {"type": "custom-llm", "llm_websocket_url": "wss://x"}), "invalid_argument",
         "custom LLM"),
        (CALL, agent_at(11), "bad_upstream_response", "another agent or version"),
        ({**CALL, "agent_version": "12"}, None, "bad_upstream_response", "names no agent_id and agent_version"),
    ],
)  # fmt: skip
async def test_a_call_that_cannot_make_a_test_says_why(
    vendors: FakeVendors, call: dict[str, Any], agent: dict[str, Any] | None, code: str, says: str
) -> None:
    """A call without a transcript yet, an agent on a custom LLM (Retell's tests cannot run it), an agent answered
    at another version than the call's, or a call naming no agent version: an error that says which."""
    vendors.retell = retell(call=call, **({"agent": agent} if agent else {}))
    async with connect(vendors) as client:
        error = error_of(await client.call_tool("draft_test_from_call", {"call_id": CALL_ID}))
    assert error["code"] == code and says in error["message"], error


# --- Privacy in answers and logs ------------------------------------------------------------------------------


async def test_no_answer_or_log_line_holds_a_link_a_full_number_or_transcript_text(
    vendors: FakeVendors, caplog: pytest.LogCaptureFixture
) -> None:
    """Listing, reading (tool and template) and drafting, with every log record kept at DEBUG: no link, no full
    phone number, no scrubbed name, no word timing in any answer; the log lines name requests and outcomes only,
    never a link of the call, a number or what was said."""
    caplog.set_level(logging.DEBUG)
    vendors.retell = retell([{"items": [item(1), item(2)], "has_more": False, "pagination_key": None}])
    async with connect(vendors) as client:
        texts = [
            (await client.call_tool("list_calls", {"agent_id": AGENT})).content[0].text,
            (await client.call_tool("get_call", {"call_id": CALL_ID})).content[0].text,
            (await client.call_tool("draft_test_from_call", {"call_id": CALL_ID})).content[0].text,
            (await client.read_resource(f"retell://calls/{CALL_ID}")).contents[0].text,  # type: ignore[union-attr]
        ]
    for text in texts:
        assert [part for part in PRIVATE if part in text] == [] or text == texts[0], text
    # A listing has no transcripts to tell what Retell scrubbed: the summary stays Retell's, numbers and links aside.
    assert [part for part in PRIVATE if part in texts[0]] == ["Dana", "Whitfield"]
    logged = "\n".join(record.getMessage() for record in caplog.records).replace("https://api.retellai.com/", "")
    assert "tool=get_call" in logged and "tool=draft_test_from_call" in logged
    assert [part for part in (*PRIVATE, "move my flight", "rebook failed", "AB123") if part in logged] == []


def test_masking_finds_numbers_and_links_but_leaves_ids_and_times_alone() -> None:
    """Phone numbers in any common form become their last four digits and links "[link removed]"; order numbers,
    epoch milliseconds, UUIDs and ISO times stay as they are."""
    assert masked("call +1 (415) 555-0123, 415.555.0199, 4155550100 or +44 20 7946 0958") == (
        "call …0123, …0199, …0100 or …0958"
    )
    assert masked("see https://x.example.com/a?b=c now") == "see [link removed] now"
    kept = "ORD-20418 at 1764547200000 id 550e8400-e29b-41d4-a716-446655440000 on 2025-12-01T10:00:00Z, 9 am"
    assert masked(kept) == kept
    assert (number_shown("+14155550123"), number_shown("sip:+13125554567@pbx"), number_shown("")) == (
        "…0123", "sip:…4567", None)  # fmt: skip


# --- Toolset, prompt, completions ---------------------------------------------------------------------------------


async def test_without_the_calls_toolset_nothing_of_calls_is_listed(vendors: FakeVendors) -> None:
    """With toolsets [retell, tela] no call tool, template or prompt is listed and the instructions do not mention
    them; by default all three tools, the template and the prompt are, and one sentence of instructions says so."""
    seen = {}
    for name, flags in {"default": {}, "without": {"toolsets": ["retell", "tela"]}}.items():
        async with Client(build_server(make_settings(flags), transport=vendors.transport())) as client:
            seen[name] = (
                {tool.name for tool in (await client.list_tools()).tools},
                {t.uri_template for t in (await client.list_resource_templates()).resource_templates},
                {prompt.name for prompt in (await client.list_prompts()).prompts},
                client.instructions or "",
            )
    calls = {"list_calls", "get_call", "draft_test_from_call"}
    tools, templates, prompts, instructions = seen["default"]
    assert calls <= tools and "retell://calls/{call_id}" in templates and "test_from_call" in prompts
    assert "list_calls finds an agent's production calls" in instructions
    tools, templates, prompts, instructions = seen["without"]
    assert not calls & tools and "retell://calls/{call_id}" not in templates and "test_from_call" not in prompts
    assert "list_calls" not in instructions


@pytest.mark.parametrize(
    ("flags", "named", "not_named"),
    [
        ({}, ["get_call", "draft_test_from_call", "allow_edits is off"], ["save_test_case_def", "run_batch_test"]),
        ({"allow_edits": True}, ["save_test_case_definition", "allow_runs is off"], ["run_batch_test", "fix_failing"]),
        ({"allow_edits": True, "allow_runs": True},
         ["save_test_case_definition", "run_batch_test", "summarize_batch_test", "fail as the call did",
          "fix_failing_test"], ["is off"]),
    ],
)  # fmt: skip
async def test_the_prompt_names_saving_and_running_only_where_the_server_allows_them(
    vendors: FakeVendors, flags: dict[str, Any], named: list[str], not_named: list[str]
) -> None:
    """test_from_call is listed at read level; its steps go as far as the server's levels allow, and say where they
    stop and why. A malformed call ID is -32602."""
    async with connect(vendors, make_settings(flags)) as client:
        prompt = await client.get_prompt("test_from_call", {"call_id": CALL_ID})
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("test_from_call", {"call_id": "no/such"})
    text = prompt.messages[0].content.text  # type: ignore[union-attr]
    assert all(word in text for word in named), text
    assert not [word for word in not_named if word in text], text
    assert f"get_call call_id={CALL_ID}" in text
    assert caught.value.error.code == -32602 and vendors.requests == []


async def test_call_ids_shown_complete_the_prompt_and_the_template(vendors: FakeVendors) -> None:
    """A call ID list_calls showed completes test_from_call's call_id and the template's."""
    vendors.retell = retell([{"items": [item(1)], "has_more": False, "pagination_key": None}])
    async with Client(build_server(make_settings(), transport=vendors.transport()), mode="legacy") as client:
        await client.call_tool("list_calls", {"agent_id": AGENT})
        prompt = await client.complete(PromptReference(name="test_from_call"), {"name": "call_id", "value": "call_"})
        template = await client.complete(
            ResourceTemplateReference(uri="retell://calls/{call_id}"), {"name": "call_id", "value": ""}
        )
    assert prompt.completion.values == template.completion.values == [f"call_{1:032x}"]


# --- Whatever Retell sends --------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
turn_values = st.dictionaries(
    st.sampled_from(["role", "content", "arguments", "tool_call_id", "name", "successful", "multimedia", "digit"]),
    json_values | st.sampled_from(["user", "agent", "tool_call_invocation", "tool_call_result", "sms"]),
)
call_objects = st.dictionaries(
    st.sampled_from([*CALL, "items", "has_more"]),
    json_values | st.lists(turn_values | json_values, max_size=6),
    max_size=14,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(call_objects, min_size=3, max_size=3))
def test_whatever_retell_sends_each_call_tool_answers_or_says_why(objects: list[dict[str, Any]]) -> None:
    """Any JSON object as a call, a page or an agent: each tool answers something its output schema accepts, or a
    contract error (never a crash, never a traceback), and nothing of a link is in it."""
    bodies = iter(json.dumps(obj).encode() for obj in objects for _ in range(4))
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, content=next(bodies, b"{}")))

    async def scenario() -> None:
        async with Client(build_server(make_settings(), transport=transport)) as client:
            await client.list_tools()  # so the client validates structuredContent against each output schema
            for _ in objects:
                for tool, arguments in (("list_calls", {"agent_id": AGENT}), ("get_call", {"call_id": CALL_ID}),
                                        ("draft_test_from_call", {"call_id": CALL_ID})):  # fmt: skip
                    result = await client.call_tool(tool, arguments)
                    if result.is_error:
                        assert error_of(result)["code"] in ("bad_upstream_response", "invalid_argument", "not_found")
                    else:
                        assert result.structured_content is not None
                        assert len(result.content[0].text.encode()) < MAX_CALL_BYTES

    anyio.run(scenario)
