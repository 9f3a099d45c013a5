"""The error contract: every code in the SPEC's table, retries, deadlines, size limits, and the server carrying on."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx2
import pytest

from mcp_server.errors import RateLimited, UpstreamTimeout
from mcp_server.redaction import Redactor
from mcp_server.upstream.http import OpenedOnFirstRequest, RequestPolicy, VendorHTTP
from tests.conftest import (
    CASE_ID,
    JOB_ID,
    RETELL_KEY,
    RETELL_RUN,
    TELA_KEY,
    FakeVendors,
    connect,
    error_of,
    json_response,
    make_settings,
)

pytestmark = pytest.mark.anyio

NO_RETRIES = {"RETELL_TELA_MCP_MAX_RETRIES": "0"}


async def run_error(vendors: FakeVendors, **env: str) -> dict[str, object]:
    async with connect(vendors, make_settings(**env)) as client:
        return error_of(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))


def said(message: str) -> dict[str, str]:
    """Retell's documented error body."""
    return {"status": "error", "message": message}


STATUS_TABLE = [
    # (status, body, code, retryable, words the message must contain)
    (401, said("Invalid API key"), "unauthorized", False, ["rejected the API key", "RETELL_API_KEY"]),
    (403, said("Forbidden"), "forbidden", False, ["refused access", f"test run '{JOB_ID}'"]),
    (404, said("Not Found"), "not_found", False, [f"Retell has no test run '{JOB_ID}' (HTTP 404)."]),
    (422, said("Cannot find requested asset"), "not_found", False, ["has no test run"]),
    (400, said("id is malformed"), "upstream_error", False, ["HTTP 400", "id is malformed"]),
    (422, said("limit must be positive"), "upstream_error", False, ["HTTP 422", "limit must be positive"]),
    (500, said("Internal error"), "upstream_error", True, ["HTTP 500", "Internal error", "Try again later"]),
    (503, "<html><body>Service Unavailable</body></html>", "upstream_error", True, ["HTTP 503"]),
    (429, said("Too many requests"), "rate_limited", True, ["HTTP 429", "Too many requests"]),
]


@pytest.mark.parametrize(("status", "body", "code", "retryable", "words"), STATUS_TABLE)
async def test_http_status_becomes_its_contract_code(
    vendors: FakeVendors, status: int, body: object, code: str, retryable: bool, words: list[str]
) -> None:
    """Each vendor status maps to the SPEC's code, with the vendor's words carried into a useful message."""
    if isinstance(body, str):
        vendors.retell = lambda request: httpx2.Response(status, text=body, headers={"content-type": "text/html"})
    else:
        vendors.retell = lambda request: json_response(status, body)
    error = await run_error(vendors, **NO_RETRIES)
    assert error["code"] == code
    assert error["provider"] == "retell"
    assert error["status"] == status
    assert error["retryable"] is retryable
    for word in words:
        assert word in str(error["message"])
    assert "<html>" not in str(error["message"])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "Test case not found in workspace"}, "Test case not found in workspace"),
        ({"error": {"message": "Workspace is suspended"}}, "Workspace is suspended"),
        ({"error": "plan limit reached"}, "plan limit reached"),
    ],
)
async def test_tela_error_message_is_read_from_message_or_error_message(
    vendors: FakeVendors, body: object, expected: str
) -> None:
    """Tela's undocumented error body: `message`, else `error.message`, else `error` reaches the message."""
    vendors.tela = lambda request: json_response(400, body)
    async with connect(vendors, make_settings(**NO_RETRIES)) as client:
        error = error_of(await client.call_tool("get_test_case", {"id": CASE_ID}))
    assert error["code"] == "upstream_error" and error["provider"] == "tela"
    assert expected in error["message"]


async def test_vendor_message_is_clipped_to_one_line(vendors: FakeVendors) -> None:
    """A long, multi-line vendor message is flattened and clipped so the error stays small."""
    vendors.retell = lambda request: json_response(400, {"message": "bad\nrequest\r\n" + "x" * 5000})
    error = await run_error(vendors, **NO_RETRIES)
    assert "\n" not in str(error["message"]) and len(str(error["message"])) < 500
    assert "bad request" in str(error["message"])


async def test_5xx_is_retried_then_succeeds(vendors: FakeVendors) -> None:
    """Two 503s then a 200: the call succeeds after three requests."""
    answers = iter([json_response(503, {}), json_response(502, {}), json_response(200, RETELL_RUN)])
    vendors.retell = lambda request: next(answers)
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert result.structured_content == RETELL_RUN
    assert len(vendors.requests) == 3


async def test_5xx_gives_up_after_max_retries(vendors: FakeVendors) -> None:
    """A vendor that keeps failing gets exactly 1 + max_retries requests, then upstream_error."""
    vendors.retell = lambda request: json_response(500, {"message": "boom"})
    error = await run_error(vendors, RETELL_TELA_MCP_MAX_RETRIES="1")
    assert error["code"] == "upstream_error"
    assert len(vendors.requests) == 2


async def test_4xx_other_than_429_is_not_retried(vendors: FakeVendors) -> None:
    """A 404 is final: one request, not three."""
    vendors.retell = lambda request: json_response(404, {"message": "Not Found"})
    error = await run_error(vendors)
    assert error["code"] == "not_found"
    assert len(vendors.requests) == 1


def recorder(first: httpx2.Response, times: list[float]) -> Callable[[httpx2.Request], httpx2.Response]:
    def handle(request: httpx2.Request) -> httpx2.Response:
        times.append(time.monotonic())
        return first if len(times) == 1 else json_response(200, RETELL_RUN)

    return handle


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "0.3"},
        {"retry-after-ms": "300"},
    ],
)
async def test_429_waits_as_long_as_the_vendor_asks(vendors: FakeVendors, headers: dict[str, str]) -> None:
    """`Retry-After` seconds and `retry-after-ms` are honoured: the retry comes no sooner than asked."""
    times: list[float] = []
    vendors.retell = recorder(json_response(429, {}, headers), times)
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert result.is_error is False
    assert times[1] - times[0] >= 0.29


async def test_429_retry_after_as_http_date_is_honoured(vendors: FakeVendors) -> None:
    """`Retry-After` as an HTTP date in the near future delays the retry until about then."""
    times: list[float] = []
    when = email.utils.formatdate(time.time() + 1.5, usegmt=True)  # HTTP dates have 1 s resolution
    vendors.retell = recorder(json_response(429, {}, {"retry-after": when}), times)
    async with connect(vendors) as client:
        result = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert result.is_error is False
    assert times[1] - times[0] >= 0.4


async def test_429_with_wait_past_the_deadline_fails_fast_with_retry_after(vendors: FakeVendors) -> None:
    """A vendor asking for an hour's wait gets rate_limited at once, saying when to come back; no sleeping."""
    vendors.retell = lambda request: json_response(429, {"message": "slow down"}, {"retry-after": "3600"})
    with anyio.fail_after(10):
        error = await run_error(vendors)
    assert error["code"] == "rate_limited"
    assert error["retry_after_seconds"] == 3600
    assert error["retryable"] is True
    assert len(vendors.requests) == 1


async def test_429_after_retries_is_rate_limited(vendors: FakeVendors) -> None:
    """429 on every attempt ends as rate_limited after 1 + max_retries requests."""
    vendors.retell = lambda request: json_response(429, {}, {"retry-after": "0"})
    error = await run_error(vendors)
    assert error["code"] == "rate_limited"
    assert error["retry_after_seconds"] == 0
    assert len(vendors.requests) == 3


async def test_vendor_that_never_answers_times_out(vendors: FakeVendors) -> None:
    """No answer within timeout_seconds on any attempt: timeout, after 1 + max_retries attempts."""

    async def hang(request: httpx2.Request) -> httpx2.Response:
        await anyio.sleep(60)
        raise AssertionError("unreachable")

    vendors.retell = hang
    with anyio.fail_after(10):
        error = await run_error(vendors, RETELL_TELA_MCP_TIMEOUT="0.2", RETELL_TELA_MCP_MAX_RETRIES="1")
    assert error["code"] == "timeout"
    assert error["retryable"] is True
    assert "0.2 s" in str(error["message"])
    assert len(vendors.requests) == 2


async def test_body_that_trickles_past_the_timeout_times_out(vendors: FakeVendors) -> None:
    """A vendor that keeps sending a byte at a time cannot hold a call past the timeout."""

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"status":'
        for _ in range(1000):
            await anyio.sleep(0.05)
            yield b" "

    vendors.retell = lambda request: httpx2.Response(200, content=trickle())
    with anyio.fail_after(10):
        error = await run_error(vendors, RETELL_TELA_MCP_TIMEOUT="0.3", **NO_RETRIES)
    assert error["code"] == "timeout"


@pytest.mark.parametrize(
    ("exception", "words"),
    [
        (httpx2.ConnectError("Connection refused"), "Could not connect to Retell at api.retellai.com"),
        (httpx2.ReadError("Connection reset by peer"), "broke before the answer was complete"),
        (httpx2.RemoteProtocolError("peer closed connection"), "broke before the answer was complete"),
    ],
)
async def test_connection_faults_become_unreachable_after_retries(
    vendors: FakeVendors, exception: Exception, words: str
) -> None:
    """Refused or broken connections are retried, then reported as unreachable."""

    def fail(request: httpx2.Request) -> httpx2.Response:
        raise exception

    vendors.retell = fail
    error = await run_error(vendors, RETELL_TELA_MCP_MAX_RETRIES="1")
    assert error["code"] == "unreachable"
    assert words in str(error["message"]) and "2 attempts" in str(error["message"])
    assert len(vendors.requests) == 2


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b"", "an empty body"),
        (b"   ", "an empty body"),
        (b'[{"test_case_job_id": "x"}]', "JSON array"),
        (b'"just a string"', "JSON string"),
        (b"null", "an empty body"),
        (b'{"status": "pass"', "not valid JSON"),
    ],
)
async def test_200_that_is_not_a_json_object_is_bad_upstream_response(
    vendors: FakeVendors, content: bytes, words: str
) -> None:
    """A 200 whose body is not one JSON object is reported, not passed on."""
    vendors.retell = lambda request: httpx2.Response(200, content=content)
    error = await run_error(vendors)
    assert error["code"] == "bad_upstream_response"
    assert error["status"] == 200
    assert words in str(error["message"])
    assert len(vendors.requests) == 1


async def test_body_over_the_limit_is_refused_by_its_declared_length(vendors: FakeVendors) -> None:
    """A Content-Length over max_response_bytes is refused before the body is read."""
    read: list[int] = []

    async def huge() -> AsyncIterator[bytes]:
        for _ in range(100):
            read.append(1)
            yield b"x" * 1024

    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=huge(), headers={"content-length": str(100 * 1024)})

    vendors.retell = handle
    async with connect(vendors, make_settings({"max_response_bytes": 4096})) as client:
        error = error_of(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))
    assert error["code"] == "bad_upstream_response"
    assert "4,096-byte limit" in error["message"]
    assert len(read) == 0


async def test_body_over_the_limit_is_cut_off_while_streaming(vendors: FakeVendors) -> None:
    """With no Content-Length, reading stops as soon as the limit is passed, not at the end of the body."""
    read: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            read.append(1)
            yield b"x" * 1024

    vendors.retell = lambda request: httpx2.Response(200, content=endless())
    async with connect(vendors, make_settings({"max_response_bytes": 8192})) as client:
        error = error_of(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))
    assert error["code"] == "bad_upstream_response"
    assert len(read) <= 10


async def test_redirect_is_not_followed(vendors: FakeVendors) -> None:
    """A 302 to another host is reported, and the only request made is the one to the vendor."""
    vendors.retell = lambda request: httpx2.Response(302, headers={"location": "https://evil.example/steal"})
    error = await run_error(vendors)
    assert error["code"] == "upstream_error"
    assert "redirect" in str(error["message"])
    assert [r.url.host for r in vendors.requests] == ["api.retellai.com"]


async def test_server_keeps_serving_after_every_kind_of_fault(vendors: FakeVendors) -> None:
    """After errors of every kind, the same session still answers a good call."""
    faults = iter(
        [
            json_response(500, {}),
            httpx2.Response(200, content=b"not json"),
            json_response(401, {}),
            json_response(200, RETELL_RUN),
        ]
    )
    vendors.retell = lambda request: next(faults)
    async with connect(vendors, make_settings(**NO_RETRIES)) as client:
        codes = [
            error_of(await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID}))["code"] for _ in range(3)
        ]
        final = await client.call_tool("get_test_run", {"test_case_job_id": JOB_ID})
    assert codes == ["upstream_error", "bad_upstream_response", "unauthorized"]
    assert final.structured_content == RETELL_RUN


async def test_vendor_message_echoing_the_key_is_redacted(vendors: FakeVendors) -> None:
    """If a vendor echoes the key (or part of it) in its error, no 8-character piece of it reaches the client."""
    vendors.retell = lambda request: json_response(
        401, {"message": f"Key {RETELL_KEY} invalid; hint {RETELL_KEY[3:14]}"}
    )
    error = await run_error(vendors, **NO_RETRIES)
    text = str(error)
    assert error["code"] == "unauthorized"
    for key in (RETELL_KEY, TELA_KEY):
        assert all(key[i : i + 8] not in text for i in range(len(key) - 7))
    assert "[redacted]" in text


def vendor_http(
    handler: Callable[[httpx2.Request], Any], policy: RequestPolicy
) -> tuple[VendorHTTP, httpx2.AsyncClient]:
    client = httpx2.AsyncClient(base_url="https://api.retellai.com", transport=httpx2.MockTransport(handler))
    return VendorHTTP("retell", client, policy, Redactor([])), client


async def test_one_deadline_bounds_attempts_and_backoff_together() -> None:
    """With many retries allowed, a hanging vendor still gets an answer by the call's deadline, not timeout x tries."""
    attempts: list[float] = []

    async def hang(request: httpx2.Request) -> httpx2.Response:
        attempts.append(time.monotonic())
        await anyio.sleep(60)
        raise AssertionError("unreachable")

    policy = RequestPolicy(timeout_seconds=0.3, max_retries=50, max_response_bytes=1024, call_budget_seconds=1.0)
    http, client = vendor_http(hang, policy)
    started = time.monotonic()
    async with client:
        with pytest.raises(UpstreamTimeout):
            await http.get_object("/get-test-run/x", subject="test run 'x'")
    assert time.monotonic() - started < 1.0 + 0.5  # the budget, plus scheduling slack; 50 retries would be 15 s
    assert 2 <= len(attempts) <= 4


async def test_wait_that_would_pass_the_deadline_is_not_slept() -> None:
    """A Retry-After that ends after the deadline returns rate_limited at once, after one request."""
    calls: list[httpx2.Request] = []

    def limited(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return json_response(429, {}, {"retry-after": "5"})

    policy = RequestPolicy(timeout_seconds=1, max_retries=5, max_response_bytes=1024, call_budget_seconds=2.0)
    http, client = vendor_http(limited, policy)
    async with client:
        with anyio.fail_after(3), pytest.raises(RateLimited) as caught:
            await http.get_object("/get-test-run/x", subject="test run 'x'")
    assert caught.value.retry_after_seconds == 5 and len(calls) == 1


# That no call outlives the usual 60 s client limit is proved on virtual time in tests/test_deadlines.py.


class CountingPool(httpx2.MockTransport):
    """A pool that counts how often it was made and whether it was closed."""

    made = 0
    closed = False

    def __init__(self) -> None:
        super().__init__(lambda request: json_response(200, RETELL_RUN))
        CountingPool.made += 1

    async def aclose(self) -> None:
        CountingPool.closed = True


async def test_a_vendors_pool_is_made_at_its_first_request_once_and_closed_with_its_client() -> None:
    """Start-up makes no pool (and so loads no TLS trust store); the first request makes it, later requests reuse
    it, and closing the client closes it. A client that never sent anything closes without making one."""
    CountingPool.made, CountingPool.closed = 0, False
    async with httpx2.AsyncClient(base_url="http://x", transport=OpenedOnFirstRequest(CountingPool)) as client:
        assert CountingPool.made == 0
        for _ in range(3):
            assert (await client.get("/get-test-run/1")).status_code == 200
        assert CountingPool.made == 1 and not CountingPool.closed
    assert CountingPool.closed
    async with httpx2.AsyncClient(transport=OpenedOnFirstRequest(CountingPool)):
        pass
    assert CountingPool.made == 1
