"""Vendor answers that used to escape the error contract: lying encodings, insane Retry-After values, numbers
JSON cannot hold, and a vendor's own pagination key blamed on the user (issue 10, points 1-4); compressed bodies
cut before the end of their stream, passed off as whole (issue 19, point 12b)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from mcp_server.errors import BadUpstreamResponse
from mcp_server.redaction import Redactor
from mcp_server.server import build_server
from mcp_server.upstream.budget import ByteBudget
from mcp_server.upstream.http import RequestPolicy, VendorHTTP
from tests.conftest import JOB_ID, RETELL_RUN, FakeVendors, connect, error_of, json_response, make_settings
from tests.loopback import Reply, loopback_vendor

pytestmark = pytest.mark.anyio


def strict_json(text: str) -> Any:
    """Parse as strict JSON: NaN, Infinity and -Infinity are refused."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


async def get_run(vendors: FakeVendors, **env: str) -> Any:
    async with connect(vendors, make_settings(**env)) as client:
        return await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})


def lying(status: int, coding: str) -> httpx2.Response:
    """A response as it comes off a socket (decoded only when read), whose Content-Encoding is false."""
    body = httpx2.ByteStream(b"plain text, not compressed at all")
    return httpx2.Response(status, headers={"content-encoding": coding}, stream=body)


@pytest.mark.parametrize("status", [200, 404])
# (plain "br" is left out: without the optional brotli package httpx passes it through undecoded)
@pytest.mark.parametrize("coding", ["gzip", "deflate", "gzip, br", "identity, gzip", "deflate, gzip"])
async def test_a_body_that_is_not_what_its_content_encoding_says_is_a_bad_upstream_response(
    vendors: FakeVendors, status: int, coding: str
) -> None:
    """A 200 or a 404 whose Content-Encoding lies: bad_upstream_response with the vendor's status, one request,
    strict JSON, and the server keeps serving."""
    vendors.retell = lambda request: lying(status, coding)
    async with connect(vendors) as client:
        error = error_of(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))
        assert (error["code"], error["status"]) == ("bad_upstream_response", status)
        assert "Content-Encoding" in error["message"]
        assert len(vendors.requests) == 1
        vendors.retell = lambda request: json_response(200, RETELL_RUN)
        ok = await client.call_tool("get_test_run", {"test_case_job_id": "next_one"})
    assert ok.is_error is False


async def test_coalesced_callers_share_one_answer_with_a_lying_encoding(vendors: FakeVendors) -> None:
    """Identical calls in flight share the one request and its bad_upstream_response; nobody asks again."""

    async def slow_lie(request: httpx2.Request) -> httpx2.Response:
        await anyio.sleep(0.1)
        return lying(200, "gzip")

    vendors.retell = slow_lie
    results: list[Any] = []
    async with connect(vendors) as client:

        async def one() -> None:
            results.append(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(one)
    assert [error_of(result)["code"] for result in results] == ["bad_upstream_response"] * 3
    assert len(vendors.requests) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "inf"},
        {"retry-after": "-inf"},
        {"retry-after": "nan"},
        {"retry-after": "1e400"},
        {"retry-after": "9" * 300},
        {"retry-after": "Wed, 21 Oct 99999 07:28:00 GMT"},
        {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"retry-after-ms": "inf"},
        {"retry-after-ms": "1e400"},
        {"retry-after-ms": "nan", "retry-after": "inf"},
    ],
)
async def test_an_insane_retry_after_is_ignored_and_the_error_stays_strict_json(
    vendors: FakeVendors, headers: dict[str, str]
) -> None:
    """Whatever the vendor puts in Retry-After or retry-after-ms, the call ends with rate_limited whose JSON is
    strict and whose retry_after_seconds is absent (no sane wait was given)."""
    vendors.retell = lambda request: json_response(429, {"status": "error", "message": "slow"}, headers)
    result = await get_run(vendors, RETELL_TELA_MCP_MAX_RETRIES="0")
    error = strict_json(result.content[0].text)["error"]
    assert error["code"] == "rate_limited" and "retry_after_seconds" not in error


@pytest.mark.parametrize(
    "body", [b'{"score": NaN}', b'{"score": Infinity}', b'{"score": -Infinity}', b'{"a": [1, {"b": 1e999}]}',
             b'{"score": -1E+400}', b'{"big": ' + b"9" * 400 + b'.5}']
)  # fmt: skip
async def test_numbers_json_cannot_hold_are_a_bad_upstream_response(vendors: FakeVendors, body: bytes) -> None:
    """NaN, Infinity, or a number that overflows a float: the vendor sent invalid JSON, said so, in strict JSON."""
    vendors.retell = lambda request: httpx2.Response(200, content=body, headers={"content-type": "application/json"})
    result = await get_run(vendors)
    error = strict_json(result.content[0].text)["error"]
    assert error["code"] == "bad_upstream_response" and "not valid JSON" in error["message"]


async def test_large_but_finite_numbers_and_big_integers_pass_through(vendors: FakeVendors) -> None:
    """1e308, a 400-digit integer and an exponent-looking string are valid JSON and come back unchanged."""
    body = {**RETELL_RUN, "big": 1e308, "huge_int": int("9" * 400), "text": "e999 1e999"}
    vendors.retell = lambda request: json_response(200, body)
    result = await get_run(vendors)
    assert result.is_error is False and result.structured_content == body


@pytest.mark.parametrize("key", ["has space", "é", "x" * 1025])
async def test_a_vendor_pagination_key_we_cannot_send_back_is_the_vendors_fault(vendors: FakeVendors, key: str) -> None:
    """summarize_batch_test blames Retell, not the user, for a pagination key that fails our own check."""

    def route(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, {"test_case_batch_job_id": "tcbj_1", "status": "complete"})
        return json_response(200, {"items": [RETELL_RUN], "has_more": True, "pagination_key": key})

    vendors.retell = route
    async with connect(vendors) as client:
        result = await client.call_tool("summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})
    error = error_of(result)
    assert error["code"] == "bad_upstream_response" and "pagination_key" in error["message"]
    assert len(vendors.requests) == 2


def compressed(status: int, data: bytes, coding: str, *, piece: int = 0) -> httpx2.Response:
    """A response whose body is `data` as it comes off a socket (still encoded), labelled `coding`; in pieces of
    `piece` bytes when given."""
    headers = {"content-type": "application/json", "content-encoding": coding}
    if not piece:
        return httpx2.Response(status, headers=headers, stream=httpx2.ByteStream(data))
    return httpx2.Response(
        status, headers=headers, stream=_Pieces([data[i : i + piece] for i in range(0, len(data), piece)])
    )


class _Pieces(httpx2.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


RUN_JSON = json.dumps(RETELL_RUN).encode()
HALF = len(RUN_JSON) // 2


def flushed_but_unfinished(data: bytes, wbits: int) -> bytes:
    """`data` compressed and flushed, so all of it can be decoded, but with no final block and no trailer: the
    compressed stream of a body cut off after the JSON object was complete."""
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def deflated(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(data) + compressor.flush()


CUT_SHORT = {
    "gzip without its trailer": ("gzip", gzip.compress(RUN_JSON)[:-8]),
    "gzip flushed, never finished": ("gzip", flushed_but_unfinished(RUN_JSON, 31)),
    "zlib deflate without its checksum": ("deflate", zlib.compress(RUN_JSON)[:-4]),
    "raw deflate flushed, never finished": ("deflate", flushed_but_unfinished(RUN_JSON, -15)),
    "second gzip member cut": ("gzip", gzip.compress(RUN_JSON[:HALF]) + gzip.compress(RUN_JSON[HALF:])[:-8]),
    "inner deflate of deflate, gzip cut": ("deflate, gzip", gzip.compress(zlib.compress(RUN_JSON)[:-4])),
}


@pytest.mark.parametrize("piece", [0, 1])
@pytest.mark.parametrize("case", CUT_SHORT)
async def test_a_compressed_body_cut_before_its_end_is_a_bad_upstream_response(
    vendors: FakeVendors, case: str, piece: int
) -> None:
    """A gzip or deflate body whose compressed stream stops before its end (no trailer, no final block), though all
    the JSON object arrived and would parse: bad_upstream_response saying the body was cut, one request, strict
    JSON; never the partial object as if it were the vendor's answer."""
    coding, data = CUT_SHORT[case]
    vendors.retell = lambda request: compressed(200, data, coding, piece=piece)
    error = strict_json((await get_run(vendors)).content[0].text)["error"]
    assert (error["code"], error["status"], error["retryable"]) == ("bad_upstream_response", 200, False)
    assert "ends before the end of its" in error["message"] and "stream" in error["message"]
    assert len(vendors.requests) == 1


async def test_a_run_answered_with_a_cut_compressed_body_probably_started(vendors: FakeVendors) -> None:
    """A run POST answered 200 with a gzip body cut before its end: the run started all the same, so the error
    says it probably started and where to look, and nothing is sent again."""
    vendors.retell = lambda request: compressed(200, gzip.compress(b'{"test_case_batch_job_id": "b"}')[:-8], "gzip")
    async with connect(vendors, make_settings({"allow_runs": True})) as client:
        result = await client.call_tool("run_batch_test", {"test_case_definition_ids": ["tcd_1"], "llm_id": "llm_1"})
    error = error_of(result)
    assert (error["code"], error["retryable"]) == ("bad_upstream_response", False)
    assert "ends before the end of its gzip stream" in error["message"]
    assert "probably started" in error["message"] and "list_batch_tests" in error["message"]
    assert len(vendors.requests) == 1


WHOLE = {
    "gzip": ("gzip", gzip.compress(RUN_JSON)),
    "two gzip members": ("gzip", gzip.compress(RUN_JSON[:HALF]) + gzip.compress(RUN_JSON[HALF:])),
    "gzip padded with zeros": ("gzip", gzip.compress(RUN_JSON) + b"\0" * 16),
    "zlib deflate": ("deflate", zlib.compress(RUN_JSON)),
    "raw deflate": ("deflate", deflated(RUN_JSON, -15)),
    "deflate, gzip": ("deflate, gzip", gzip.compress(zlib.compress(RUN_JSON))),
    "identity, gzip": ("identity, gzip", gzip.compress(RUN_JSON)),
    "GZIP": ("GZIP", gzip.compress(RUN_JSON)),
}


@pytest.mark.parametrize("piece", [0, 1, 7])
@pytest.mark.parametrize("case", WHOLE)
async def test_whole_compressed_bodies_are_decoded_however_they_arrive(
    vendors: FakeVendors, case: str, piece: int
) -> None:
    """Complete gzip (one member or several, padded or not) and deflate (zlib-wrapped or raw, alone or stacked)
    bodies, whole or a byte at a time: the run, exactly as sent."""
    coding, data = WHOLE[case]
    vendors.retell = lambda request: compressed(200, data, coding, piece=piece)
    result = await get_run(vendors)
    assert result.is_error is False and result.structured_content == RETELL_RUN


async def test_a_body_that_expands_past_the_limit_is_refused_having_held_no_more_than_the_limit() -> None:
    """A 65 KB gzip body that would expand to 64 MiB, with a 1 MiB limit: bad_upstream_response (too large), and
    the byte budget never held more than the limit: decoding stops there, it never makes the 64 MiB."""
    bomb = gzip.compress(b'{"a": "' + b"x" * (64 * 1024 * 1024) + b'"}')
    transport = httpx2.MockTransport(lambda request: compressed(200, bomb, "gzip"))
    budget = ByteBudget(16 * 1024 * 1024)
    policy = RequestPolicy(timeout_seconds=30, max_retries=0, max_response_bytes=1024 * 1024)
    async with httpx2.AsyncClient(base_url="https://api.retellai.com", transport=transport) as client:
        http = VendorHTTP("retell", client, policy, Redactor([]), budget=budget)
        with pytest.raises(BadUpstreamResponse, match="larger than the 1,048,576-byte limit"):
            await http.get_object(f"/get-test-run/{JOB_ID}", subject="a test run")
    assert len(bomb) < 100_000 and budget.peak <= 1024 * 1024 and budget.held == 0


async def test_a_cut_gzip_body_from_a_real_socket_is_a_bad_upstream_response() -> None:
    """The same through a real HTTP server on 127.0.0.1 and the server's own connection pool (no mock transport):
    a 200 whose Content-Length is honoured but whose gzip stream has no trailer."""
    cut = gzip.compress(RUN_JSON)[:-8]
    with loopback_vendor(lambda path: Reply(200, cut, {"content-encoding": "gzip"})) as vendor:
        settings = make_settings(RETELL_BASE_URL=vendor.url)
        server = build_server(settings)
        async with Client(server) as client:
            result = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
            vendor.route = lambda path: Reply(200, gzip.compress(RUN_JSON), {"content-encoding": "gzip"})
            whole = await client.call_tool("get_test_run", {"test_case_job_id": "tcj_whole"})
    error = error_of(result)
    assert error["code"] == "bad_upstream_response" and "ends before the end of its gzip stream" in error["message"]
    assert whole.is_error is False and whole.structured_content == RETELL_RUN
    assert [seen.headers["accept-encoding"] for seen in vendor.seen] == ["gzip, deflate"] * 2
