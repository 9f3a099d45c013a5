"""Production calls shaped for a model to read: a compact page of an agent's calls, one call's turns in order, and a
test definition drafted from a call. Nothing shown holds a link or a full phone number.

What each field is (retell-sdk 6.2.13, paths inside its `retell/` package; docs/upstream-facts.md section 10a):
- `POST /v3/list-calls` (`resources/call.py:list` L171-238) takes everything in its JSON body: `filter_criteria`
  (`types/call_list_params.py` `FilterCriteria` L812-893, every condition ANDed), `limit`, `pagination_key` and
  `sort_order` (by `start_timestamp`, L101-102). The filters sent here: `agent` `[{agent_id, version: [numbers]}]`
  (L105-110), `start_timestamp` `{op: ge|le, type: number, value}` or `{op: bt, type: range, value: [lo, hi]}` in
  epoch ms (L714-738), `call_successful` `{op: eq, type: boolean, value}` (L165-172), `user_sentiment`,
  `disconnection_reason` and `call_type` `{op: in, type: enum, value: [...]}` (L803-809, L395-445, L175-181). Its
  answer is `{items, has_more, pagination_key}`, items without transcripts (`types/call_list_response.py`
  L1177-1190).
- `GET /v2/get-call/{call_id}` (`resources/call.py:retrieve` L62-101) answers a `PhoneCallResponse` or a
  `WebCallResponse` (`types/phone_call_response.py` L2191-2469, `types/web_call_response.py` L2180-): `agent_id`,
  `agent_version`, `call_status`, `from_number` / `to_number` (phone), `start_timestamp` / `end_timestamp` (ms),
  `duration_ms`, `disconnection_reason`, `transfer_destination` ("a phone number or a SIP URI", L2456),
  `call_analysis` (`call_summary`, `user_sentiment`, `call_successful`, `custom_analysis_data`, `in_voicemail`,
  L114-138), `retell_llm_dynamic_variables`, `collected_dynamic_variables`, `latency.e2e` (`p50`, `p90` in ms,
  L201-227), `data_storage_setting`, and `transcript_with_tool_calls` / `scrubbed_transcript_with_tool_calls`
  (L2449, L2420; "without PII"), whose entries (L1992-2188, told apart by `role`) are utterances (`agent`, `user`,
  `transfer_target`: `content`, `words`), `tool_call_invocation` (`tool_call_id`, `name`, `arguments` "a
  stringified JSON object", `type`), `tool_call_result` (`tool_call_id`, `content`, `successful`),
  `node_transition` (node IDs and names, `transition_type`), `dtmf` (`digit`), `sms` (`content`, `time_sec`,
  `multimedia[{url, summary}]`) and `injected` (`content`, `time_sec`). No call transcript has a state transition.
- Links on a call, all left out: `recording_url`, `recording_multi_channel_url`, `scrubbed_recording_url`,
  `scrubbed_recording_multi_channel_url`, `public_log_url` (signed and expiring when `opt_in_signed_url`),
  `knowledge_base_retrieved_contents_url`, and an sms entry's `multimedia[].url`; a web call's `access_token`
  ("Access token to enter the web call room") too. Only the fields below are ever copied, and every vendor string
  copied has its web addresses and phone numbers masked.
- A test definition's fields are `save_test_case_definition`'s (`types/test_create_test_case_definition_params.py`):
  `tool_mocks` `{tool_name, input_match_rule: {type: partial_match, args}, output}` ("Only the fields you list here
  are checked ... a subset match"; `output` "Should be a JSON string"), and the engine the call ran on is the agent's
  `response_engine` at the call's `agent_version` (`GET /get-agent/{id}?version=N`).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pydantic_core
from pydantic import Field

from mcp_server.errors import BadUpstreamResponse, InvalidArgument
from mcp_server.retell.client import RetellClient, engine_of
from mcp_server.retell.reach import last_four, whole
from mcp_server.retell.summaries import EXPLANATION_LIMIT
from mcp_server.text import clip
from mcp_server.upstream.ids import RETELL_ID, check_id, check_token
from mcp_server.upstream.schema import VendorObject

Transcripts = Literal["scrubbed", "full"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
SENTIMENTS = ("Negative", "Positive", "Neutral", "Unknown")  # types/call_list_params.py L803-809, capitalised
CALL_TYPES = ("web_call", "phone_call")
# types/call_list_params.py L395-445 (and the call's own field, types/phone_call_response.py L2264-2311).
DISCONNECTION_REASONS = (
    "user_hangup", "agent_hangup", "user_requested_dnc", "user_requested_callback", "call_transfer",
    "voicemail_reached", "ivr_reached", "inactivity", "max_duration_reached", "concurrency_limit_reached",
    "no_concurrency_fallback", "no_valid_payment", "credit_exhausted", "budget_reached", "scam_detected", "dial_busy",
    "dial_failed", "dial_no_answer", "invalid_destination", "telephony_provider_permission_denied",
    "telephony_provider_unavailable", "sip_routing_error", "marked_as_spam", "network_blocked", "user_declined",
    "error_llm_websocket_open", "error_llm_websocket_lost_connection", "error_llm_websocket_runtime",
    "error_llm_websocket_corrupt_payload", "error_no_audio_received", "error_asr", "error_retell", "error_unknown",
    "error_user_not_joined", "registered_call_timeout", "transfer_bridged", "transfer_cancelled", "manual_stopped",
    "call_take_over",
)  # fmt: skip
EARLIEST_MS = 946_684_800_000  # 2000-01-01: a smaller epoch value is seconds, not the milliseconds Retell counts
LATEST_MS = 4_102_444_800_000  # 2100-01-01
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SUMMARY_LIMIT = EXPLANATION_LIMIT  # a call summary is clipped like a run's explanation
ITEM_BYTES = 580  # a page of 20 answers under 12 KB, and of 50 under 32 KB, whatever the summaries hold
PAGE_OVERHEAD_BYTES = 200
TURN_LIMIT = 2000  # characters of one turn's text (an utterance, tool arguments or a result)
VALUE_LIMIT = 500  # characters of a dynamic variable or an analysis value
ENTRIES_KEPT = 50  # entries of a dynamic-variable map or an analysis object or list
MAX_CALL_BYTES = 48 * 1024  # a call's answer: a 30-minute call fits whole; longer ones lose turns from the middle
MOCK_OUTPUT_LIMIT = 4000  # characters of a tool result kept as a mock's output
MOCKS_KEPT = 50
FACTS_KEPT = 20  # caller turns quoted in a drafted user_prompt
FACT_LIMIT = 300
NAME_LIMIT = 120

# Web addresses (a signed recording link, a log, any link a tool answered) and phone numbers (E.164, or ten digits
# grouped the North American way) inside any vendor string: shown as "[link removed]" and the last four digits.
_LINK = re.compile(r"(?i)\b(?:https?|wss?|ftp)://[^\s\"'<>]+")
_E164 = re.compile(r"(?<![\w+])\+\d(?:[ .()-]{0,2}\d){7,14}(?!\w)")
_NANP = re.compile(r"(?<![\w+])(?:1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}(?!\w)")
LINK_SHOWN = "[link removed]"


def masked(text: str) -> str:
    """A vendor string without web addresses, and with every phone number shown by its last four digits."""
    if not any(char.isdigit() for char in text) and "://" not in text:
        return text
    text = _LINK.sub(LINK_SHOWN, text)
    return _NANP.sub(_last_four, _E164.sub(_last_four, text))


def _last_four(match: re.Match[str]) -> str:
    return last_four(match.group())


def number_shown(value: object) -> str | None:
    """A phone number (or a transfer's SIP URI, `sip:user@host`) by its last four digits; None when there is none."""
    if not isinstance(value, str) or not value:
        return None
    scheme, sep, rest = value.partition(":")
    if sep and scheme.lower() in ("sip", "sips", "tel"):
        user = rest.split("@", 1)[0]
        return f"{scheme.lower()}:{last_four(user)}"
    return last_four(value)


# --- list_calls -------------------------------------------------------------------------------------------------


def epoch_ms(value: str | int, argument: str) -> int:
    """An instant given as ISO 8601 (a zone-less time or a bare date is UTC) or as epoch milliseconds."""
    ms: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        ms = value
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?[0-9]{1,16}", text):
            ms = int(text)
        else:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                ms = (parsed - EPOCH) // timedelta(milliseconds=1)
    if ms is None:
        raise InvalidArgument(
            f"{argument} must be ISO 8601 (2026-12-01T09:00:00Z) or epoch milliseconds; got {_shown(value)}. "
            "Nothing was sent.",
            provider="retell",
        )
    if not EARLIEST_MS <= ms <= LATEST_MS:
        hint = " (epoch seconds? give milliseconds)" if 0 < ms < EARLIEST_MS else ""
        raise InvalidArgument(
            f"{argument} must fall between 2000 and 2100; {_shown(value)} does not{hint}. Nothing was sent.",
            provider="retell",
        )
    return ms


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _one_of(values: list[str], known: tuple[str, ...], argument: str, *, any_case: bool = False) -> list[str]:
    """Each value as Retell spells it (case aside, with `any_case`), once, in the order given; an unknown one is
    `invalid_argument`, naming the nearest known value."""
    spelt = {value.lower(): value for value in known} if any_case else {value: value for value in known}
    chosen: list[str] = []
    for value in values:
        found = spelt.get(value.lower() if any_case else value) if isinstance(value, str) else None
        if found is None:
            near = difflib.get_close_matches(str(value), known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InvalidArgument(
                f"{argument} {_shown(value)} is not one of Retell's values{hint}: {', '.join(known)}. "
                "Nothing was sent.",
                provider="retell",
            )
        if found not in chosen:
            chosen.append(found)
    return chosen


def _enum(values: list[str]) -> dict[str, Any]:
    return {"op": "in", "type": "enum", "value": values}


def list_calls_body(
    agent_id: str,
    *,
    version: list[int] | None = None,
    since: str | int | None = None,
    until: str | int | None = None,
    successful: bool | None = None,
    sentiment: list[str] | None = None,
    disconnection_reason: list[str] | None = None,
    call_type: str | None = None,
    limit: int = DEFAULT_LIMIT,
    pagination_key: str | None = None,
) -> dict[str, Any]:
    """The JSON body of one `POST /v3/list-calls`, newest first, every argument checked before anything is sent."""
    agent: dict[str, Any] = {"agent_id": check_id(agent_id, argument="agent_id", provider="retell")}
    if version:
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in version):
            raise InvalidArgument("version must list whole numbers of 0 or more. Nothing was sent.", provider="retell")
        agent["version"] = list(dict.fromkeys(version))
    criteria: dict[str, Any] = {"agent": [agent]}
    start = epoch_ms(since, "since") if since is not None else None
    end = epoch_ms(until, "until") if until is not None else None
    if start is not None and end is not None:
        if start > end:
            raise InvalidArgument("since is later than until. Nothing was sent.", provider="retell")
        criteria["start_timestamp"] = {"op": "bt", "type": "range", "value": [start, end]}
    elif start is not None:
        criteria["start_timestamp"] = {"op": "ge", "type": "number", "value": start}
    elif end is not None:
        criteria["start_timestamp"] = {"op": "le", "type": "number", "value": end}
    if successful is not None:
        criteria["call_successful"] = {"op": "eq", "type": "boolean", "value": successful}
    if sentiment:
        criteria["user_sentiment"] = _enum(_one_of(sentiment, SENTIMENTS, "sentiment", any_case=True))
    if disconnection_reason:
        reasons = _one_of(disconnection_reason, DISCONNECTION_REASONS, "disconnection_reason")
        criteria["disconnection_reason"] = _enum(reasons)
    if call_type is not None:
        criteria["call_type"] = _enum(_one_of([call_type], CALL_TYPES, "call_type"))
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be 1-{MAX_LIMIT}; got {limit!r}. Nothing was sent.", provider="retell")
    body: dict[str, Any] = {"filter_criteria": criteria, "limit": limit, "sort_order": "descending"}
    if pagination_key is not None:
        body["pagination_key"] = check_token(pagination_key, argument="pagination_key", provider="retell")
    return body


def iso(ms: object) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC (`2026-12-01T09:00:00.000Z`); None for anything else."""
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return None
    try:
        moment = EPOCH + timedelta(milliseconds=ms)
    except (OverflowError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: object) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _word(value: object, limit: int = 64) -> str | None:
    """A status, a reason or a type: short vendor words, clipped."""
    shown = clip(value, limit)
    return masked(shown) if shown is not None else None


def _ident(value: object) -> str | None:
    """An ID as Retell gave it (clipped, never masked: masking could turn it into another ID)."""
    return clip(value, 128)


def _analysis(call: dict[str, Any]) -> dict[str, Any]:
    analysis = call.get("call_analysis")
    return analysis if isinstance(analysis, dict) else {}


def call_item(call: object) -> dict[str, Any]:
    """One call of a listing, compactly: who, when, how it ended, its summary; no transcript, link or number."""
    found = call if isinstance(call, dict) else {}
    analysis = _analysis(found)
    summary = clip(analysis.get("call_summary"), SUMMARY_LIMIT)
    return {
        "call_id": _ident(found.get("call_id")),
        "agent_id": _ident(found.get("agent_id")),
        "agent_version": whole(found.get("agent_version")),
        "call_type": _word(found.get("call_type")),
        "direction": _word(found.get("direction")),
        "call_status": _word(found.get("call_status")),
        "start": iso(found.get("start_timestamp")),
        "end": iso(found.get("end_timestamp")),
        "duration_ms": _number(found.get("duration_ms")),
        "disconnection_reason": _word(found.get("disconnection_reason")),
        "call_successful": _flag(analysis.get("call_successful")),
        "user_sentiment": _word(analysis.get("user_sentiment")),
        "call_summary": masked(summary) if summary is not None else None,
        "from": number_shown(found.get("from_number")),
        "to": number_shown(found.get("to_number")),
    }


def _size(value: object) -> int:
    return len(pydantic_core.to_json(value))


def calls_page(page: dict[str, Any]) -> dict[str, Any]:
    """Retell's page of calls as compact items, within ITEM_BYTES a call: when the summaries would make it larger,
    every summary is clipped to the same (largest) length that fits."""
    found = page.get("items")
    if not isinstance(found, list):
        raise BadUpstreamResponse("Retell's page of calls has no items list.", provider="retell", status=200)
    items = [call_item(call) for call in found]
    answer = {"items": items, "has_more": _flag(page.get("has_more")), "pagination_key": page.get("pagination_key")}
    if not isinstance(answer["pagination_key"], str):
        answer["pagination_key"] = None
    budget = PAGE_OVERHEAD_BYTES + ITEM_BYTES * max(1, len(items))
    if _size(answer) <= budget:
        return answer
    summaries = [item["call_summary"] for item in items]
    low, high = 0, SUMMARY_LIMIT
    while low < high:  # the longest summary length at which the page fits
        middle = (low + high + 1) // 2
        for item, summary in zip(items, summaries, strict=True):
            item["call_summary"] = clip(summary, middle) if middle else None
        if _size(answer) <= budget:
            low = middle
        else:
            high = middle - 1
    for item, summary in zip(items, summaries, strict=True):
        item["call_summary"] = clip(summary, low) if low else None
    return answer


class RetellCallItem(VendorObject):
    call_id: Any = None
    agent_id: Any = None
    agent_version: Any = Field(None, description="integer: the agent version that took the call")
    call_type: Any = Field(None, description="web_call or phone_call")
    direction: Any = Field(None, description="inbound or outbound (phone calls)")
    call_status: Any = Field(None, description="registered, not_connected, ongoing, ended or error")
    start: Any = Field(None, description="ISO 8601 UTC")
    end: Any = Field(None, description="ISO 8601 UTC")
    duration_ms: Any = None
    disconnection_reason: Any = Field(None, description="Retell's, such as user_hangup or agent_hangup")
    call_successful: Any = Field(None, description="boolean: Retell's post-call analysis")
    user_sentiment: Any = Field(None, description="Negative, Positive, Neutral or Unknown")
    call_summary: Any = Field(None, description=f"Retell's summary, clipped to at most {SUMMARY_LIMIT} characters")
    from_: Any = Field(None, alias="from", description="the caller's number: its last four digits")
    to: Any = Field(None, description="the callee's number: its last four digits")


class RetellCallPage(VendorObject):
    """One page of an agent's calls, newest first: pass `pagination_key` back for the next."""

    items: list[RetellCallItem] | None = None
    has_more: Any = Field(None, description="boolean: another page follows")
    pagination_key: Any = Field(None, description="string or null: pass it back to get the next page")


async def list_calls(retell: RetellClient, body: dict[str, Any]) -> dict[str, Any]:
    return calls_page(await retell.list_calls(body))


# --- get_call ---------------------------------------------------------------------------------------------------


PII_SHOWN = "[removed]"
_EDGES = ".,;:!?\"'()[]{}<>"
SPANS_KEPT = 200


def scrubbed_away(full: list[Any], scrubbed: list[Any]) -> tuple[str, ...]:
    """What Retell's scrubbing took out of a transcript (names, numbers, addresses), longest first: the words of the
    full transcript's turns that the scrubbed ones replaced, as runs and as single words, but for those the scrubbed
    transcript still holds (common words the diff caught in passing)."""
    kept = " ".join(_texts(scrubbed))
    found: set[str] = set()
    for whole_turn, scrubbed_turn in zip(full, scrubbed, strict=False):
        if not isinstance(whole_turn, dict) or not isinstance(scrubbed_turn, dict):
            continue
        for key in ("content", "arguments"):
            before, after = whole_turn.get(key), scrubbed_turn.get(key)
            if not isinstance(before, str) or not isinstance(after, str) or before == after:
                continue
            words = before.split()
            matcher = difflib.SequenceMatcher(None, words, after.split(), autojunk=False)
            for tag, start, end, _, _ in matcher.get_opcodes():
                if tag in ("replace", "delete"):
                    gone = [word.strip(_EDGES) for word in words[start:end]]
                    for candidate in (" ".join(word for word in gone if word), *gone):
                        if len(candidate) >= 3 and candidate not in kept:
                            found.add(candidate)
    return tuple(sorted(found, key=lambda span: (-len(span), span)))[:SPANS_KEPT]


def _texts(entries: list[Any]) -> list[str]:
    return [
        value
        for entry in entries
        if isinstance(entry, dict)
        for value in (entry.get("content"), entry.get("arguments"))
        if isinstance(value, str)
    ]


@dataclass
class _Shaper:
    """Copies vendor strings into an answer: clipped, masked (links, phone numbers, and what Retell scrubbed from the
    transcript shown, `pii`), and counted when they had to be cut."""

    pii: tuple[str, ...] = ()
    cut: int = 0
    removed: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.pii:
            spans = "|".join(re.escape(span) for span in self.pii)
            self._pattern = re.compile(rf"(?i)(?<!\w)(?:{spans})(?!\w)")

    def clean(self, text: str) -> str:
        text = masked(text)
        if self._pattern is not None:
            text, count = self._pattern.subn(PII_SHOWN, text)
            self.removed += count
        return text

    def text(self, value: object, limit: int = TURN_LIMIT) -> str | None:
        if value is None:
            return None
        shown = value if isinstance(value, str) else pydantic_core.to_json(value).decode()
        if len(shown) > limit:
            self.cut += 1
            shown = shown[: limit - 1] + "…"
        return self.clean(shown)

    def value(self, value: object, depth: int = 0) -> object:
        """A free-form vendor value (dynamic variables, custom analysis data) bounded in size and depth."""
        if isinstance(value, str):
            return self.text(value, VALUE_LIMIT)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth >= 3:
            return self.text(value, VALUE_LIMIT)
        if isinstance(value, dict):
            kept = list(value.items())[:ENTRIES_KEPT]
            self.cut += len(value) > ENTRIES_KEPT
            return {self.clean(clip(str(key), 64) or ""): self.value(item, depth + 1) for key, item in kept}
        if isinstance(value, list):
            self.cut += len(value) > ENTRIES_KEPT
            return [self.value(item, depth + 1) for item in value[:ENTRIES_KEPT]]
        return self.text(value, VALUE_LIMIT)


def _turn(entry: object, shape: _Shaper) -> dict[str, Any]:
    """One transcript entry without its word timings and metadata (and an sms without its attachments' links)."""
    if not isinstance(entry, dict):
        return {"role": "unknown", "content": shape.text(entry)}
    role = entry.get("role")
    if role in ("agent", "user", "transfer_target"):
        return {"role": role, "content": shape.text(entry.get("content"))}
    turn: dict[str, Any]
    if role == "tool_call_invocation":
        turn = {"role": role, "tool_call_id": _ident(entry.get("tool_call_id")), "name": _word(entry.get("name"), 200)}
        if entry.get("type") is not None:
            turn["type"] = _word(entry.get("type"))
        return {**turn, "arguments": shape.text(entry.get("arguments"))}
    if role == "tool_call_result":
        turn = {
            "role": role,
            "tool_call_id": _ident(entry.get("tool_call_id")),
            "content": shape.text(entry.get("content")),
        }
        if isinstance(entry.get("successful"), bool):
            turn["successful"] = entry["successful"]
        return turn
    if role == "node_transition":
        keys = ("former_node_id", "former_node_name", "new_node_id", "new_node_name", "transition_type")
        return {"role": role, **{key: _word(entry.get(key), 200) for key in keys if entry.get(key) is not None}}
    if role == "dtmf":
        return {"role": role, "digit": _word(entry.get("digit"), 8)}
    if role in ("sms", "injected"):
        turn = {"role": role, "content": shape.text(entry.get("content")), "time_sec": _number(entry.get("time_sec"))}
        media = entry.get("multimedia")
        if role == "sms" and isinstance(media, list) and media:
            turn["attachments"] = [
                shape.text(item.get("summary"), VALUE_LIMIT) if isinstance(item, dict) else None for item in media
            ][:ENTRIES_KEPT]
        return turn
    return {"role": _word(role, 40) or "unknown", "content": shape.text(entry.get("content"))}


def chosen_transcript(
    call: dict[str, Any], transcripts: Transcripts
) -> tuple[list[Any], Literal["scrubbed", "full"] | None]:
    """The transcript to show and which it is: Retell's PII-scrubbed one whenever it gives one (setting
    `call_transcripts: scrubbed`, the default), else the full one; with `full`, the full one where there is one."""
    scrubbed, full = call.get("scrubbed_transcript_with_tool_calls"), call.get("transcript_with_tool_calls")
    order: list[tuple[object, Literal["scrubbed", "full"]]] = [(scrubbed, "scrubbed"), (full, "full")]
    if transcripts == "full":
        order.reverse()
    for entries, kind in order:
        if isinstance(entries, list) and entries:
            return entries, kind
    for entries, kind in order:
        if isinstance(entries, list):
            return entries, kind
    return [], None


def shaper_for(call: dict[str, Any], used: Literal["scrubbed", "full"] | None) -> _Shaper:
    """The shaper of a call's answer: with the scrubbed transcript shown, what Retell scrubbed from it is removed
    from every other string of the answer too (a summary or a dynamic variable can name the caller)."""
    full, scrubbed = call.get("transcript_with_tool_calls"), call.get("scrubbed_transcript_with_tool_calls")
    if used == "scrubbed" and isinstance(full, list) and isinstance(scrubbed, list):
        return _Shaper(scrubbed_away(full, scrubbed))
    return _Shaper()


TRANSCRIPT_WORDS = {
    ("scrubbed", "scrubbed"): f"Retell's PII-scrubbed transcript (setting call_transcripts: scrubbed); what it "
    f"removed is {PII_SHOWN} everywhere else in this answer too.",
    ("scrubbed", "full"): "The full transcript: Retell gave no PII-scrubbed one for this call (its agent's data "
    "storage setting decides).",
    ("full", "full"): "The full transcript (setting call_transcripts: full).",
    ("full", "scrubbed"): "Retell's PII-scrubbed transcript: Retell gave no full one for this call.",
}


def _latency(call: dict[str, Any]) -> dict[str, Any] | None:
    latency = call.get("latency")
    e2e = latency.get("e2e") if isinstance(latency, dict) else None
    if not isinstance(e2e, dict):
        return None
    return {"e2e_p50": _number(e2e.get("p50")), "e2e_p90": _number(e2e.get("p90"))}


def _recording(call: dict[str, Any], call_id: str | None) -> str:
    links = [key for key in ("recording_url", "scrubbed_recording_url", "public_log_url") if call.get(key)]
    where = f"Retell's dashboard (Call History, call {call_id})"
    if links:
        return f"The recording and the call's log are in {where}; their links are never shown here."
    return f"Retell sent no recording link for this call; see {where}."


def call_view(call: dict[str, Any], transcripts: Transcripts) -> dict[str, Any]:
    """One call for a model to read: who, when, how it ended, its analysis, its variables and its turns in order,
    under MAX_CALL_BYTES (turns from the middle go first, and `clipped` says so); no link, no full number."""
    analysis = _analysis(call)
    entries, used = chosen_transcript(call, transcripts)
    shape = shaper_for(call, used)
    call_id = _ident(call.get("call_id"))
    view: dict[str, Any] = {
        "call_id": call_id,
        "agent_id": _ident(call.get("agent_id")),
        "agent_name": _word(call.get("agent_name"), 200),
        "agent_version": whole(call.get("agent_version")),
        "call_type": _word(call.get("call_type")),
        "direction": _word(call.get("direction")),
        "call_status": _word(call.get("call_status")),
        "from": number_shown(call.get("from_number")),
        "to": number_shown(call.get("to_number")),
        "start": iso(call.get("start_timestamp")),
        "end": iso(call.get("end_timestamp")),
        "duration_ms": _number(call.get("duration_ms")),
        "disconnection_reason": _word(call.get("disconnection_reason")),
        "transfer_destination": number_shown(call.get("transfer_destination")),
        "analysis": {
            "call_summary": shape.text(analysis.get("call_summary")),
            "user_sentiment": _word(analysis.get("user_sentiment")),
            "call_successful": _flag(analysis.get("call_successful")),
            "in_voicemail": _flag(analysis.get("in_voicemail")),
            "custom_analysis_data": shape.value(analysis.get("custom_analysis_data")),
        },
        "dynamic_variables": shape.value(call.get("retell_llm_dynamic_variables")),
        "collected_dynamic_variables": shape.value(call.get("collected_dynamic_variables")),
        "latency_ms": _latency(call),
        "data_storage_setting": _word(call.get("data_storage_setting")),
        "transcript": used,
        "transcript_note": TRANSCRIPT_WORDS[(transcripts, used)]
        if used
        else "Retell sent no transcript for this call (it may not have ended, or its agent stores no transcripts).",
        "recording": _recording(call, call_id),
        "turns_total": len(entries),
        "turns": [_turn(entry, shape) for entry in entries],
        "omitted_turns": None,
        "clipped": None,
    }
    return _fit_call(view, shape.cut)


def _fit_call(view: dict[str, Any], cut: int) -> dict[str, Any]:
    """The view within MAX_CALL_BYTES: the first turns (the caller's ask) and the last (how it ended) are kept, the
    middle ones left out and counted; `clipped` says what was cut, or is None when nothing was."""
    said: list[str] = []
    if cut:
        said.append(f"{cut} long text{'s were' if cut != 1 else ' was'} cut (turns at {TURN_LIMIT:,} characters, "
                    f"values at {VALUE_LIMIT})")  # fmt: skip
    turns: list[dict[str, Any]] = view["turns"]
    room = MAX_CALL_BYTES - 400  # for the sentence saying what was left out
    if _size(view) > room:
        sizes = [_size(turn) + 1 for turn in turns]
        fixed = _size({**view, "turns": []})
        if fixed > room // 2:  # free-form values too large to show beside the turns
            for key in ("dynamic_variables", "collected_dynamic_variables"):
                view[key] = None
            view["analysis"]["custom_analysis_data"] = None
            said.append("the dynamic variables and custom analysis data were too large to show")
            fixed = _size({**view, "turns": []})
        left = max(0, room - fixed)
        head = _take(sizes, left // 2)
        tail = _take(sizes[head:][::-1], left - sum(sizes[:head]))
        head = head + _take(sizes[head : len(sizes) - tail], left - sum(sizes[:head]) - sum(sizes[len(sizes) - tail :]))
        omitted = len(turns) - head - tail
        if omitted:
            view["turns"] = turns[:head] + turns[len(turns) - tail :]
            view["omitted_turns"] = {"after": head, "count": omitted}
            said.append(
                f"turns {head + 1}-{head + omitted} of {len(turns)} were left out to keep this answer under "
                f"{MAX_CALL_BYTES // 1024} KB (the whole call is in Retell's dashboard)"
            )
    if said:
        sentence = "; ".join(said)
        view["clipped"] = sentence[0].upper() + sentence[1:] + "."
    return view


def _take(sizes: list[int], room: int) -> int:
    """How many of the first `sizes` fit in `room` bytes."""
    used = taken = 0
    for size in sizes:
        if used + size > room:
            break
        used += size
        taken += 1
    return taken


class RetellCall(VendorObject):
    """A Retell call: its outcome, analysis, variables and turns in order. Phone numbers are their last four digits;
    links (recordings, logs) are never shown: `recording` says where to open them."""

    call_id: Any = None
    agent_id: Any = None
    agent_name: Any = None
    agent_version: Any = Field(None, description="integer: the agent version that took the call")
    call_type: Any = Field(None, description="web_call or phone_call")
    direction: Any = None
    call_status: Any = None
    from_: Any = Field(None, alias="from", description="last four digits")
    to: Any = Field(None, description="last four digits")
    start: Any = Field(None, description="ISO 8601 UTC")
    end: Any = Field(None, description="ISO 8601 UTC")
    duration_ms: Any = None
    disconnection_reason: Any = None
    transfer_destination: Any = Field(None, description="where the call was transferred: last four digits")
    analysis: Any = Field(
        None, description="Retell's post-call analysis: call_summary, user_sentiment, call_successful, in_voicemail, "
        "custom_analysis_data"
    )  # fmt: skip
    dynamic_variables: Any = Field(None, description="the call's retell_llm_dynamic_variables")
    collected_dynamic_variables: Any = None
    latency_ms: Any = Field(None, description="end-to-end latency: e2e_p50, e2e_p90")
    data_storage_setting: Any = None
    transcript: Any = Field(None, description="which transcript the turns come from: scrubbed (PII removed) or full")
    transcript_note: Any = None
    recording: Any = Field(None, description="where to open the recording and log (their links are never shown)")
    turns_total: Any = Field(None, description="turns in the transcript, shown or not")
    turns: Any = Field(
        None, description="in order: {role: user|agent, content}, {role: tool_call_invocation, tool_call_id, name, "
        "arguments}, {role: tool_call_result, tool_call_id, content, successful}, {role: node_transition, ...}"
    )  # fmt: skip
    omitted_turns: Any = Field(None, description="{after, count}: turns left out of the middle, or null")
    clipped: Any = Field(None, description="what was cut to keep the answer small, or null when nothing was")


async def get_call(retell: RetellClient, call_id: str, transcripts: Transcripts) -> dict[str, Any]:
    return call_view(await retell.get_call(call_id), transcripts)


# --- draft_test_from_call ---------------------------------------------------------------------------------------


@dataclass
class _Mocks:
    """The tool mocks of a call: one per tool and arguments, in the order the call used them."""

    mocks: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    cut: int = 0
    unmatched: int = 0

    def add(self, invocation: dict[str, Any], result: dict[str, Any], shape: _Shaper) -> None:
        name = clip(invocation.get("name"), 200)
        if not name or len(self.mocks) >= MOCKS_KEPT:
            return
        args = _arguments(invocation.get("arguments"))
        rule: dict[str, Any] = {"type": "any"}
        if args is not None:
            rule = {"type": "partial_match", "args": _cleaned(args, shape)}
        else:
            self.unmatched += 1
        key = f"{name}\n{pydantic_core.to_json(rule).decode()}"
        if key in self.seen:
            return
        self.seen.add(key)
        content = result.get("content")
        output = content if isinstance(content, str) else pydantic_core.to_json(content).decode()
        if len(output) > MOCK_OUTPUT_LIMIT:
            self.cut += 1
        self.mocks.append(
            {"tool_name": name, "input_match_rule": rule, "output": shape.text(output, MOCK_OUTPUT_LIMIT) or ""}
        )


def _arguments(value: object) -> dict[str, Any] | None:
    """A tool call's arguments ("a stringified JSON object") as an object; None when they are not one."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _cleaned(value: object, shape: _Shaper) -> Any:
    """Tool arguments with every string cleaned as the rest of the answer is (links, numbers, scrubbed PII)."""
    if isinstance(value, str):
        return shape.clean(value)
    if isinstance(value, dict):
        return {key: _cleaned(item, shape) for key, item in value.items()}
    if isinstance(value, list):
        return [_cleaned(item, shape) for item in value]
    return value


def _says_something(text: str) -> bool:
    """A caller turn worth quoting: a fact (it holds a digit) or at least three words, not "Yes." or "Okay"."""
    return any(char.isdigit() for char in text) or len(text.split()) >= 3


def _user_prompt(agent_name: str | None, facts: list[str], more: int) -> str:
    lines = [f"You are calling {agent_name or 'the agent'}."]
    if facts:
        lines.append(f'Your goal, as you first put it: "{facts[0]}"')
        if len(facts) > 1:
            lines.append("Then say these, in this order and in your own words, when the agent asks or when it fits:")
            lines += [f'{number}. "{fact}"' for number, fact in enumerate(facts[1:], 1)]
        if more:
            lines.append(f"({more} more things you said are not listed.)")
    else:
        lines.append("In that call the caller said nothing the transcript kept: write the goal here.")
    lines.append("Stay on your goal: if the agent cannot do it, ask once more, then say goodbye.")
    return "\n".join(lines)


def _name(call_id: str, summary: object, shape: _Shaper) -> str:
    """The test's name: the call's ID and the first sentence of Retell's summary of it."""
    text = " ".join(summary.split()) if isinstance(summary, str) else ""
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0] if text else ""
    name = f"From call {call_id}: {shape.clean(first)}" if first else f"From call {call_id}"
    return clip(name, NAME_LIMIT) or name


def _engine_version(agent: dict[str, Any], agent_id: str, version: int) -> tuple[Any, int | None]:
    owner = f"agent '{agent_id}' version {version}"
    answered = whole(agent.get("version"))
    if agent.get("agent_id") not in (None, agent_id) or answered not in (None, version):
        raise BadUpstreamResponse(
            f"Retell answered another agent or version than {owner}, so the test cannot name the engine the call "
            "ran on.",
            provider="retell",
            status=200,
        )
    return engine_of(agent.get("response_engine"), owner)


async def draft_test_from_call(retell: RetellClient, call_id: str, transcripts: Transcripts) -> dict[str, Any]:
    """A test definition drawn from a call (the call, then its agent at the version it ran, within one deadline):
    save_test_case_definition's arguments, with `metrics` left empty for the assistant to write."""
    checked = check_id(call_id, argument="call_id", provider="retell")
    deadline = retell.deadline()
    call = await retell.get_call(checked, deadline=deadline)
    agent_id, version = call.get("agent_id"), whole(call.get("agent_version"))
    if not isinstance(agent_id, str) or not RETELL_ID.fullmatch(agent_id) or version is None:
        raise BadUpstreamResponse(
            f"Retell's call '{checked}' names no agent_id and agent_version, so the engine it ran on is unknown.",
            provider="retell",
            status=200,
        )
    entries, used = chosen_transcript(call, transcripts)
    if not entries:
        raise InvalidArgument(
            f"Retell's call '{checked}' has no transcript yet (status {clip(call.get('call_status'), 40)}): a test "
            "can be drafted once the call has ended and Retell has its transcript.",
            provider="retell",
        )
    agent = await retell.get_agent(agent_id, version=version, deadline=deadline)
    engine, engine_version = _engine_version(agent, agent_id, version)

    shape, mocks = shaper_for(call, used), _Mocks()
    invocations: dict[str, dict[str, Any]] = {}
    facts: list[str] = []
    said = 0
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        role = entry.get("role")
        if role == "user" and isinstance(entry.get("content"), str):
            text = " ".join(entry["content"].split())
            if text and _says_something(text) and (not facts or facts[-1] != text):
                said += 1
                if len(facts) < FACTS_KEPT:
                    facts.append(shape.text(text.replace('"', "'"), FACT_LIMIT) or "")
        elif role == "tool_call_invocation" and isinstance(entry.get("tool_call_id"), str):
            invocations[entry["tool_call_id"]] = entry
        elif role == "tool_call_result":
            key = entry.get("tool_call_id")
            invocation = invocations.get(key) if isinstance(key, str) else None
            if invocation is not None:
                mocks.add(invocation, entry, shape)

    variables = call.get("retell_llm_dynamic_variables")
    dynamic = (
        {str(key): shape.clean(clip(str(value), VALUE_LIMIT) or "") for key, value in variables.items()}
        if isinstance(variables, dict)
        else {}
    )
    definition: dict[str, Any] = {
        "name": _name(checked, _analysis(call).get("call_summary"), shape),
        "user_prompt": _user_prompt(clip(call.get("agent_name"), 120), facts, said - len(facts)),
        "metrics": [],
        "dynamic_variables": dynamic,
        "tool_mocks": mocks.mocks,
        engine.id_field: engine.id,
    }
    if engine_version is not None:
        definition["version"] = engine_version
    at = f"{engine.id_field}={engine.id} version={engine_version}" if engine_version is not None else (
        f"{engine.id_field}={engine.id} (agent version {version} names no engine version: give the one it ran)"
    )  # fmt: skip
    notes = [
        "metrics is empty: write one to three checks from what went wrong in this call (what the agent should have "
        "done); user_prompt is a skeleton quoting the caller's turns, to edit freely. Then pass the definition to "
        "save_test_case_definition as it is.",
        f"Run it with run_batch_test {at}, the version the call ran on: it should fail first, as the call did; "
        "then draft the fix and rerun it on the draft.",
    ]
    if mocks.unmatched:
        notes.append(f"{mocks.unmatched} tool call(s) had arguments that are not a JSON object: mocked for any input.")
    if mocks.cut:
        notes.append(f"{mocks.cut} mock output(s) were cut to {MOCK_OUTPUT_LIMIT:,} characters: check them.")
    if shape.removed:
        notes.append(f"What Retell scrubbed as PII is {PII_SHOWN}: put made-up values there.")
    return {
        "definition": definition,
        "source_call_id": checked,
        "agent_id": agent_id,
        "agent_version": version,
        "transcript": used,
        "note": " ".join(notes),
    }


class RetellDraftedTest(VendorObject):
    """A test definition drafted from a call, not saved."""

    definition: Any = Field(
        None, description="save_test_case_definition's arguments: name, user_prompt, metrics (empty: write them), "
        "dynamic_variables, tool_mocks, llm_id or conversation_flow_id, version (the call's engine version)"
    )  # fmt: skip
    source_call_id: Any = None
    agent_id: Any = None
    agent_version: Any = Field(None, description="the agent version that took the call")
    transcript: Any = Field(None, description="which transcript it was drawn from: scrubbed or full")
    note: Any = Field(None, description="what to do next")
