"""Vendor answers that used to escape the error contract: lying encodings, insane Retry-After values, numbers
JSON cannot hold, and a vendor's own pagination key blamed on the user (issue 10, points 1-4)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest

from tests.conftest import JOB_ID, RETELL_RUN, FakeVendors, connect, error_of, json_response, make_settings

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
