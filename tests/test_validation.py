"""Argument validation: no ID can reach the network unless it has the vendor's shape, so no other path is requested."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_server.errors import InvalidArgument
from mcp_server.upstream.ids import RETELL_ID, UUID, check_id
from tests.conftest import CASE_ID, FakeVendors, connect, error_of, make_settings

HOSTILE_IDS = [
    "",
    "..",
    "../get-batch-test/x",
    "a/b",
    "/etc/passwd",
    "%2e%2e",
    "abc%2Fdef",
    "abc?limit=1",
    "abc#frag",
    "abc def",
    " abc",
    "abc\n",
    "abc\r\nX-Injected: 1",
    "abc\x00",
    "abc\t",
    "x" * 129,
    "x" * 5000,
    "ａｂｃ",  # full-width letters
    "abc\u200b",  # zero-width space
    "tést",
    "abc.def",
    "abc\\def",
]


@pytest.mark.anyio
@pytest.mark.parametrize("bad_id", HOSTILE_IDS)
async def test_hostile_retell_id_is_invalid_argument_and_never_sent(vendors: FakeVendors, bad_id: str) -> None:
    """Traversal, escapes, query/fragment, whitespace, control, over-long and non-ASCII IDs never reach Retell."""
    async with connect(vendors) as client:
        error = error_of(await client.call_tool("get_test_run", {"test_case_job_id": bad_id}))
    assert error["code"] == "invalid_argument"
    assert error["provider"] == "retell" and error["status"] is None and error["retryable"] is False
    assert "test_case_job_id must be" in error["message"]
    assert len(error["message"]) < 300  # a 5,000-character ID is not echoed back whole
    assert vendors.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize("bad_id", [*HOSTILE_IDS, "550e8400e29b41d4a716446655440000", CASE_ID + "0", CASE_ID[:-1]])
async def test_tela_id_that_is_not_a_uuid_is_invalid_argument_and_never_sent(vendors: FakeVendors, bad_id: str) -> None:
    """Tela IDs must be UUIDs: anything else is refused before any request."""
    async with connect(vendors) as client:
        error = error_of(await client.call_tool("get_test_case", {"id": bad_id}))
    assert error["code"] == "invalid_argument" and error["provider"] == "tela"
    assert "UUID" in error["message"]
    assert vendors.requests == []


@pytest.mark.anyio
async def test_valid_ids_of_every_allowed_shape_are_sent_to_their_own_path(vendors: FakeVendors) -> None:
    """Letters, digits, '_' and '-' up to 128 characters (Retell) and any-case UUIDs (Tela) are accepted."""
    retell_ids = ["a", "A-b_9", "x" * 128, "-_-"]
    async with connect(vendors) as client:
        for job_id in retell_ids:
            assert not (await client.call_tool("get_test_run", {"test_case_job_id": job_id})).is_error
        assert not (await client.call_tool("get_test_case", {"id": CASE_ID.upper()})).is_error
    assert [r.url.raw_path.decode() for r in vendors.requests] == [
        *(f"/get-test-run/{j}" for j in retell_ids),
        f"/test-case/{CASE_ID.upper()}",
    ]


@settings(max_examples=10, deadline=None)
@given(st.lists(st.text(max_size=200), min_size=30, max_size=30))
def test_any_unicode_id_is_either_refused_or_requests_exactly_its_own_path(candidates: list[str]) -> None:
    """For arbitrary text, Retell's tool either refuses it with no request, or requests /get-test-run/<it> verbatim.
    (Each example sends a batch of 30 IDs through one session, so 300 IDs cost 10 server starts.)"""

    async def scenario() -> None:
        vendors = FakeVendors()
        async with connect(vendors, make_settings(RETELL_TELA_MCP_CACHE_TTL="0")) as client:
            for candidate in candidates:
                vendors.requests.clear()
                result = await client.call_tool("get_test_run", {"test_case_job_id": candidate})
                if RETELL_ID.fullmatch(candidate):
                    assert not result.is_error
                    assert [r.url.raw_path.decode() for r in vendors.requests][:1] in (
                        [],
                        [f"/get-test-run/{candidate}"],
                    )
                    assert all(r.url.host == "api.retellai.com" for r in vendors.requests)
                else:
                    assert error_of(result)["code"] == "invalid_argument"
                    assert vendors.requests == []

    anyio.run(scenario)


@given(st.text(max_size=60))
def test_check_id_accepts_exactly_the_documented_shapes(candidate: str) -> None:
    """check_id agrees with the SPEC's rules: Retell ASCII [A-Za-z0-9_-]{1,128}, Tela UUIDs."""
    for provider, rule in (("retell", RETELL_ID), ("tela", UUID)):
        try:
            assert check_id(candidate, argument="x", provider=provider) == candidate  # type: ignore[arg-type]
            assert rule.fullmatch(candidate)
            assert candidate.isascii() and "/" not in candidate and "%" not in candidate
        except InvalidArgument:
            assert not rule.fullmatch(candidate)
