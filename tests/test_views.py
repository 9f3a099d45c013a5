"""MCP App views (issue 11): linked only for clients that declared the extension, self-contained pages, and the
pages themselves checked in headless Chromium inside a test host that speaks the host side of the protocol."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.extension import ClientExtension, advertise
from mcp_types import CallToolResult

from mcp_server.config import load_settings
from mcp_server.demo import demo_settings, demo_transport
from mcp_server.retell.compare import BatchComparison
from mcp_server.server import build_server
from mcp_server.views import BATCH_URI, COMPARE_URI, PAGES, RUN_URI, TOOL_VIEWS
from tests.conftest import RETELL_RUN, FakeVendors, json_response, make_settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"  # named in the README
HOST_PAGE = (Path(__file__).parent / "views_host.html").read_text()
UI = "io.modelcontextprotocol/ui"
APP_MIME = "text/html;profile=mcp-app"
BATCH = {"test_case_batch_job_id": "tcbj_demo_latest"}
FAILED_RUN = {"test_case_job_id": "tcj_demo_failed"}
COMPARE = {"before_batch_id": "tcbj_demo_baseline", "after_batch_id": "tcbj_demo_latest"}
VIEW_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; font-src data:"


def apps_extension() -> ClientExtension:
    return advertise(UI, {"mimeTypes": [APP_MIME]})


def demo_server(**env: str) -> Any:
    return build_server(demo_settings(load_settings({}, env=env)), transport=demo_transport())


def wire(result: CallToolResult) -> dict[str, Any]:
    """A tool result as the host receives it on the wire (and hands to the view)."""
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


# --- Who sees the views ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_views_are_linked_only_for_clients_that_declared_the_extension(mode: str) -> None:
    """A client that declared the extension (with the MCP App MIME type) sees `_meta.ui.resourceUri` on the four
    tools with a view, the three pages in resources/list and the extension in the server's capabilities; a client
    that declared nothing, or the extension without the MIME type, sees none of it."""
    seen: dict[str, Any] = {}
    for name, extensions in {
        "apps": [apps_extension()],
        "plain": [],
        "no mime type": [advertise(UI, {"mimeTypes": ["text/html"]})],
    }.items():
        async with Client(demo_server(), mode=mode, extensions=extensions) as client:  # type: ignore[arg-type]
            tools = (await client.list_tools()).tools
            resources = (await client.list_resources()).resources
            capabilities = client.server_capabilities
            seen[name] = (
                {tool.name: tool.meta for tool in tools if tool.meta},
                [(resource.uri, resource.mime_type) for resource in resources],
                capabilities.extensions if capabilities else None,
            )
    links, pages, advertised = seen["apps"]
    assert links == {tool: {"ui": {"resourceUri": uri}} for tool, uri in TOOL_VIEWS.items()}
    assert sorted(pages) == [(BATCH_URI, APP_MIME), (COMPARE_URI, APP_MIME), (RUN_URI, APP_MIME)]
    assert advertised == {UI: {}}
    assert seen["plain"] == seen["no mime type"] == ({}, [], None)


def test_other_clients_get_exactly_the_bytes_they_got_without_views() -> None:
    """Over real stdio, a client that did not declare the extension reads the same bytes from a server with views
    (the default) as from one with `--no-app-views`: handshake, tools/list, resources/list and tool results. A
    client that declared it sees the links, and nothing else differs."""
    plain = exchange([], "serve", "--demo")
    assert plain == exchange([], "serve", "--demo", "--no-app-views")
    declared = {"extensions": {UI: {"mimeTypes": [APP_MIME]}}}
    apps = exchange([declared], "serve", "--demo")
    tools_plain, tools_apps = json.loads(plain[1]), json.loads(apps[1])
    for tool in tools_apps["result"]["tools"]:
        if tool["name"] in TOOL_VIEWS:
            assert tool.pop("_meta") == {"ui": {"resourceUri": TOOL_VIEWS[tool["name"]]}}
    assert tools_apps == tools_plain
    assert plain[3:] == apps[3:]  # the tool results: the same JSON for every client


def exchange(capabilities: list[dict[str, Any]], *command: str) -> list[bytes]:
    """The raw stdout lines the real server answers a fixed session with."""
    requests = [
        ("initialize", {"protocolVersion": "2025-11-25", "clientInfo": {"name": "raw", "version": "0"},
                        "capabilities": capabilities[0] if capabilities else {}}),
        ("tools/list", {}),
        ("resources/list", {}),
        ("tools/call", {"name": "summarize_batch_test", "arguments": BATCH}),
        ("tools/call", {"name": "get_test_run", "arguments": FAILED_RUN}),
        ("tools/call", {"name": "compare_batch_tests", "arguments": COMPARE}),
    ]  # fmt: skip
    lines = [json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": requests[0][1]})]
    lines.append(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    lines += [
        json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params})
        for n, (method, params) in enumerate(requests[1:], 2)
    ]
    with served(*command) as process:
        assert process.stdin is not None and process.stdout is not None
        answers = []
        for line in lines:
            process.stdin.write(line.encode() + b"\n")
            process.stdin.flush()
            if '"id"' in line:
                answers.append(process.stdout.readline())
    return answers


@contextmanager
def served(*command: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RETELL", "TELA"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**env, "RETELL_TELA_MCP_LOG_LEVEL": "WARNING"},
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


async def test_the_setting_turns_the_views_off_even_for_clients_that_can_show_them() -> None:
    """`app_views: false` (here from its environment variable): no links, no pages, for any client."""
    async with Client(demo_server(RETELL_TELA_MCP_APP_VIEWS="false"), extensions=[apps_extension()]) as client:
        tools = (await client.list_tools()).tools
        resources = (await client.list_resources()).resources
    assert [tool.meta for tool in tools if tool.meta] == []
    assert resources == []


async def test_each_page_is_one_self_contained_document_under_40_kb() -> None:
    """Each page is one HTML document with its style and script inline, under 40 KB, referring to nothing
    outside itself, with a CSP that forbids all network use (letting in only inline fonts), and declares an empty
    CSP allowance to the host."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client:
        listed = {resource.uri: resource for resource in (await client.list_resources()).resources}
        assert listed.keys() == PAGES.keys()
        for uri in PAGES:
            (content,) = (await client.read_resource(uri)).contents
            html = content.text  # type: ignore[union-attr]
            assert content.mime_type == APP_MIME
            assert content.meta == listed[uri].meta == {"ui": {"csp": {}, "prefersBorder": True}}
            assert len(html.encode()) < 40 * 1024
            assert html.startswith("<!doctype html>") and html.count("<script>") == 1 and html.count("<style>") == 1
            assert not re.search(
                r"\b(src|href)\s*=|https?://|@import|url\(|<link|fetch\(|XMLHttpRequest|WebSocket", html
            )
            (policy,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
            assert policy == VIEW_CSP


# --- The pages in a real browser -----------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",  # no calls home: the machine has no network but package registries
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
try:
    from playwright.async_api import Frame, Page, Request, async_playwright
except ImportError:  # pragma: no cover - a test dependency; the skip below says so
    async_playwright = None  # type: ignore[assignment]

needs_browser = pytest.mark.skipif(
    CHROMIUM is None or async_playwright is None,
    reason="needs Chromium (Debian package 'chromium'; .ci/run installs it) and Playwright (pip install -e '.[test]')",
)


@asynccontextmanager
async def browser_page(width: int = 900) -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield await browser.new_page(viewport={"width": width, "height": 900})
        finally:
            await browser.close()


class Host:
    """The test host page with one view mounted in it, and what the page and the view did."""

    def __init__(
        self,
        page: Page,
        frame: Frame,
        result: dict[str, Any],
        requests: list[str],
        calls: list[tuple[str, dict[str, Any]]],
    ):
        self.page, self.frame, self.result, self.requests, self.calls = page, frame, result, requests, calls

    async def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.locator("#view").screenshot(path=SCREENSHOTS / f"{name}.png")

    async def network_use(self) -> list[str]:
        """Every request the page or the view sent, and every load or connection the view's CSP refused (each refused
        load once, as the refusal: it never left the browser)."""
        refused: list[str] = await self.frame.evaluate("window.refused")
        return self.requests + refused

    async def texts(self, selector: str) -> list[str]:
        return [text.strip() for text in await self.frame.locator(selector).all_inner_texts()]

    async def style(self, selector: str, prop: str) -> str:
        value: str = await self.frame.locator(selector).first.evaluate(
            "(node, prop) => getComputedStyle(node)[prop]", prop
        )
        return value


async def mount(
    page: Page,
    client: Client,
    tool: str,
    arguments: dict[str, Any],
    *,
    theme: str = "light",
    styles: dict[str, Any] | None = None,
    text_only: bool = False,
    result: dict[str, Any] | None = None,
) -> Host:
    """Do what a host does: find the tool's view in tools/list, read it, call the tool, and hand the view the
    result (or `result`, a structured result the test made, as if the tool had answered it); the view's own
    tools/call requests are answered by calling the real server."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    meta = tools[tool].meta or {}
    (content,) = (await client.read_resource(meta["ui"]["resourceUri"])).contents
    if result is None:
        handed = wire(await client.call_tool(tool, arguments))
    else:
        handed = {"content": [{"type": "text", "text": json.dumps(result)}], "structuredContent": result}
    requests: list[str] = []
    calls: list[tuple[str, dict[str, Any]]] = []

    async def call_server_tool(name: str, args: dict[str, Any]) -> dict[str, Any]:
        calls.append((name, args))
        return wire(await client.call_tool(name, args))

    def never_sent(request: Request) -> None:
        if request.failure == "csp":  # Chromium reports a load its CSP refused as a request that failed at once
            requests.remove(request.url)

    page.on("request", lambda request: requests.append(request.url))
    page.on("requestfailed", never_sent)
    # Runs in every frame before its own scripts, the view's sandboxed one included.
    await page.add_init_script(
        "window.refused = []; document.addEventListener('securitypolicyviolation',"
        " event => window.refused.push(event.violatedDirective + ' ' + event.blockedURI))"
    )
    await page.expose_function("callServerTool", call_server_tool)
    await page.set_content(HOST_PAGE)
    await page.evaluate(
        "options => mount(options)",
        {"html": content.text, "theme": theme, "styles": styles or {}, "toolName": tool,  # type: ignore[union-attr]
         "toolInput": arguments, "toolResult": handed, "textOnly": text_only},
    )  # fmt: skip
    handle = await page.query_selector("#view")
    assert handle is not None
    frame = await handle.content_frame()
    assert frame is not None
    await frame.locator("#app > article, #app > .notice").wait_for()
    await page.wait_for_function("window.sizes.length > 0")
    return Host(page, frame, handed, requests, calls)


@needs_browser
async def test_batch_view_counts_sorts_filters_and_opens_a_run_in_place() -> None:
    """The demo's latest batch: the bar and legend give 1 passed, 2 failed, 1 errored of 4; the table lists the
    three failed and errored runs, sorts by a column and filters by text and status; choosing a run makes the host
    call get_test_run on the real server and shows the run view in place, and the way back keeps the filter."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "summarize_batch_test", BATCH)
        frame = host.frame
        assert await host.texts(".legend [data-kind]") == ["1 passed", "2 failed", "1 errored"]
        assert await frame.locator(".bar").get_attribute("aria-label") == "1 passed, 2 failed, 1 errored of 4"
        assert await host.texts(".completeness") == ["Summary complete"]
        assert await frame.locator("tbody tr").count() == 3
        await host.screenshot("batch-light")

        await frame.get_by_role("button", name="Test").click()
        names = await host.texts("tbody button.open")
        assert names == sorted(names) and len(names) == 3
        await frame.get_by_role("button", name="Test").click()
        assert await host.texts("tbody button.open") == sorted(names, reverse=True)

        await frame.get_by_label("Status").select_option("error")
        assert await host.texts("tbody button.open") == ["Caller changes the delivery address"]
        await frame.get_by_label("Status").select_option("")
        await frame.get_by_label("Filter failed runs").fill("refund")
        assert await host.texts("tbody button.open") == ["Caller asks for a refund on a late order"]

        await frame.locator("tbody button.open").focus()
        await page.keyboard.press("Enter")  # keyboard, not a mouse click
        await frame.locator(".run-view").wait_for()
        assert host.calls == [("get_test_run", FAILED_RUN)]
        assert await frame.locator("h2").inner_text() == "Caller asks for a refund on a late order"
        assert await frame.evaluate("document.activeElement.tagName") == "H2"
        await frame.get_by_role("button", name="← Back to the batch").click()
        assert await frame.get_by_label("Filter failed runs").input_value() == "refund"
        assert await frame.locator("tbody tr").count() == 1
        assert await frame.evaluate("document.activeElement.className") == "open"
        assert await host.network_use() == []  # not one request, nor one refused by the view's CSP


@needs_browser
async def test_run_view_shows_the_conversation_metrics_and_outcome() -> None:
    """get_test_run's view: the definition's name, the status, the explanation, the transcript as turns whose
    kinds look different (agent, user, tool call, tool result), and the metrics as a checklist beside it."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "get_test_run", FAILED_RUN)
        frame = host.frame
        assert await frame.locator("h2").inner_text() == "Caller asks for a refund on a late order"
        assert await host.texts(".meta .badge") == ["fail"]
        assert "never offered a refund" in await frame.locator(".explanation").inner_text()
        kinds = await frame.locator(".transcript > li").evaluate_all("nodes => nodes.map(n => n.className)")
        assert kinds == ["turn user", "turn tool", "turn tool-result", "turn agent", "turn user", "turn agent"]
        assert await host.texts(".turn .who") == [
            "USER", "TOOL CALL lookup_order", "TOOL RESULT lookup_order", "AGENT", "USER", "AGENT"
        ]  # fmt: skip
        assert await host.style(".turn.agent", "backgroundColor") != await host.style(".turn.user", "backgroundColor")
        assert await host.style(".turn.tool", "fontFamily") != await host.style(".turn.agent", "fontFamily")
        checklist = await frame.locator(".checklist li").evaluate_all(
            "nodes => nodes.map(n => [n.className, n.textContent])"
        )
        assert checklist == [
            ["missed", "✗Agent offers a refund or a replacement (not met)"],
            ["unknown", "○Agent confirms the order number (not reported)"],
        ]
        transcript = await frame.locator(".run-grid > section").bounding_box()
        metrics = await frame.locator(".run-grid > aside").bounding_box()
        assert transcript and metrics and metrics["x"] > transcript["x"] + transcript["width"] - 1  # beside it
        await host.screenshot("run-light")
        assert await host.network_use() == []


@needs_browser
async def test_wait_for_test_run_shows_the_run_view_with_every_metric_met() -> None:
    """wait_for_test_run links the run view too; a passed run shows every metric checked, and no explanation."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "wait_for_test_run", {"test_case_job_id": "tcj_demo_passed"})
        assert await host.texts(".meta .badge") == ["pass"]
        assert await host.frame.locator(".explanation").count() == 0
        checklist = await host.frame.locator(".checklist li").evaluate_all("nodes => nodes.map(n => n.className)")
        assert checklist == ["met", "met"]
        assert await host.texts(".checklist .mark") == ["✓", "✓"]


@needs_browser
async def test_a_host_that_passes_on_only_the_text_still_gets_the_view() -> None:
    """A host that hands the view the result without its structured content: the view reads the same object from
    the result's JSON text."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "summarize_batch_test", BATCH, text_only=True)
        assert await host.frame.locator("tbody tr").count() == 3


@needs_browser
@pytest.mark.parametrize("view", ["batch", "run", "compare"])
async def test_dark_theme_and_host_fonts_are_followed(view: str) -> None:
    """The host's theme and style variables are applied (its background colour and its font), and a
    host-context-changed notification switches the theme live; screenshots of each view in the dark."""
    tool, arguments = {
        "batch": ("summarize_batch_test", BATCH),
        "run": ("get_test_run", FAILED_RUN),
        "compare": ("compare_batch_tests", COMPARE),
    }[view]
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, tool, arguments, theme="dark")
        assert await host.style("body", "backgroundColor") == "rgb(24, 24, 27)"
        assert await host.style("body", "color") == "rgb(244, 244, 245)"
        await host.screenshot(f"{view}-dark")
        await page.evaluate(
            "changeContext({theme: 'light', styles: {variables: {'--color-background-primary': 'rgb(250, 240, 230)',"
            " '--font-sans': 'Georgia, serif'}}})"
        )
        await until(host.frame, "document.documentElement.dataset.theme === 'light'")
        assert await host.style("body", "backgroundColor") == "rgb(250, 240, 230)"
        assert (await host.style("body", "fontFamily")).startswith("Georgia")
        assert await host.style("body", "color") == "rgb(24, 24, 27)"


@needs_browser
async def test_narrow_panel_stacks_and_a_long_transcript_scrolls_in_its_box() -> None:
    """At 360 px the metrics move under the transcript and nothing overflows sideways; a 200-turn transcript
    scrolls inside its box, so the height the view asks the host for stays bounded."""
    vendors = FakeVendors()
    turns = [{"role": ("agent", "user")[n % 2], "content": f"turn {n} " + "words " * 30} for n in range(200)]
    vendors.retell = lambda request: json_response(200, {**RETELL_RUN, "transcript_snapshot": {"transcript": turns}})
    server = build_server(make_settings(), transport=vendors.transport())
    async with Client(server, extensions=[apps_extension()]) as client, browser_page(width=360) as page:
        host = await mount(page, client, "get_test_run", {"test_case_job_id": RETELL_RUN["test_case_job_id"]})
        frame = host.frame
        assert await frame.locator(".transcript > li").count() == 200
        transcript = await frame.locator(".run-grid > section").bounding_box()
        metrics = await frame.locator(".run-grid > aside").bounding_box()
        assert transcript and metrics and metrics["y"] >= transcript["y"] + transcript["height"]
        assert await frame.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        scroll = await frame.locator(".transcript").evaluate("node => [node.scrollHeight, node.clientHeight]")
        assert scroll[0] > 5 * scroll[1]
        assert 300 < await page.evaluate("window.sizes.at(-1)") < 1500
        await host.screenshot("run-narrow")


@needs_browser
async def test_call_view_shows_the_turns_the_analysis_and_where_the_recording_is() -> None:
    """get_call links the run view, which shows a production call: the agent, the outcome, Retell's summary, the
    scrubbed turns (tool call and result included) as a conversation, and beside them the details (numbers by their
    last four digits, latency) and where the recording is; nothing on the page is a link, nothing is fetched."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "get_call", {"call_id": "call_demo_cancel"})
        frame = host.frame
        assert await frame.locator("h2").inner_text() == "Demo Shoes support call"
        assert await host.texts(".meta .badge") == ["unsuccessful"]
        assert "cancel order ORD-20418" in await frame.locator(".summary").inner_text()
        kinds = await frame.locator(".transcript > li").evaluate_all("nodes => nodes.map(n => n.className)")
        assert kinds == ["turn agent", "turn user", "turn tool", "turn tool-result", "turn agent", "turn user",
                         "turn agent", "turn user"]  # fmt: skip
        assert (await host.texts(".turn .who"))[2:4] == ["TOOL CALL lookup_order", "TOOL RESULT lookup_order"]
        assert "[name]" in (await host.texts(".turn.user"))[0]
        facts = dict(zip(await host.texts(".facts dt"), await host.texts(".facts dd"), strict=True))
        assert (facts["From"], facts["Latency p50 / p90"], facts["Sentiment"]) == ("…0142", "810 / 1240 ms", "Negative")
        assert "Call History, call call_demo_cancel" in await frame.locator(".recording").inner_text()
        page_text = await frame.locator("body").inner_text()
        assert "https://" not in page_text and "Maria" not in page_text and await frame.locator("a").count() == 0
        await host.screenshot("call-light")
        assert await host.network_use() == []


@needs_browser
async def test_a_call_too_long_for_one_answer_says_which_turns_are_left_out() -> None:
    """A three-hour call loses turns from its middle: the view marks where they were and says what was cut."""
    turns = [{"role": ("agent", "user")[n % 2], "content": f"turn {n} " + "words " * 40, "words": []}
             for n in range(1200)]  # fmt: skip
    call = {"call_id": "call_long", "agent_id": "agent_1", "agent_version": 1, "call_type": "web_call",
            "transcript_with_tool_calls": turns, "call_analysis": {"call_successful": True}}  # fmt: skip
    vendors = FakeVendors()
    vendors.retell = lambda request: json_response(200, call)
    server = build_server(make_settings(), transport=vendors.transport())
    async with Client(server, extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "get_call", {"call_id": "call_long"})
        frame = host.frame
        omitted = host.result["structuredContent"]["omitted_turns"]
        shown = await frame.locator(".transcript > li").count()
        assert omitted["count"] > 0 and shown == 1200 - omitted["count"] + 1
        marker = frame.locator(".transcript > li").nth(omitted["after"])
        assert await marker.inner_text() == f"… {omitted['count']} turns left out …"
        assert "were left out" in await frame.locator(".notice").inner_text()
        assert await host.texts(".meta .badge") == ["successful"]


# How many lines each node's text takes, and how many words it has.
WORDS_PER_LINE = """nodes => nodes.map(node => {
    const range = document.createRange();
    range.selectNodeContents(node);
    const lines = new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
    return [lines, node.textContent.trim().split(/\\s+/).length];
})"""


@needs_browser
async def test_batch_view_reads_at_360_px() -> None:
    """At 360 px the batch view does not overflow sideways and no word of a test's name is broken across lines
    (each name takes at most one line per word)."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page(width=360) as page:
        host = await mount(page, client, "summarize_batch_test", BATCH)
        frame = host.frame
        assert await frame.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        lines_and_words = await frame.locator("tbody button.open").evaluate_all(WORDS_PER_LINE)
        assert len(lines_and_words) == 3 and all(lines <= words for lines, words in lines_and_words)
        await host.screenshot("batch-narrow")


# --- The compare view ----------------------------------------------------------------------------------------------

CHANGE_LISTS = ("fixed", "regressed", "still_failing", "only_before", "only_after")
ALWAYS_SHOWN = CHANGE_LISTS[:3]


def batch_side(batch_id: str, **fields: Any) -> dict[str, Any]:
    """One side of a comparison: a complete batch of 3 runs that Retell counted."""
    engine = {"type": "retell-llm", "llm_id": "llm_1", "version": 4}
    return {"test_case_batch_job_id": batch_id, "status": "complete", "pass_count": 2, "fail_count": 1,
            "error_count": 0, "total_count": 3, "response_engine": engine, "runs": 3, "duplicates": 0, "pages": 1,
            **fields}  # fmt: skip


def change(n: int, before: str | None = "fail", after: str | None = "pass", **fields: Any) -> dict[str, Any]:
    return {"test_case_definition_id": f"tcd_{n}", "name": f"Test number {n}", "before_status": before,
            "after_status": after, "test_case_job_id": f"tcj_{n}", "result_explanation": None, **fields}  # fmt: skip


def comparison(**fields: Any) -> dict[str, Any]:
    """A compare_batch_tests result with the given fields and empty lists otherwise, checked against the tool's
    own output model so that the view is shown what the tool can answer."""
    result = {"before": batch_side("tcbj_before"), "after": batch_side("tcbj_after"),
              **{name: [] for name in CHANGE_LISTS}, "not_shown": {}, "unchanged_passing": 0, "unclassified": 0,
              "complete": True, "incomplete_reason": None, **fields}  # fmt: skip
    return BatchComparison.model_validate(result).model_dump(mode="json")


async def shown_lists(host: Host) -> dict[str, tuple[str, int, list[str]]]:
    """Each list the compare view shows: its heading's count, its number of rows and the rows' names."""
    shown = {}
    for name in await host.frame.locator("section.changes").evaluate_all("nodes => nodes.map(n => n.dataset.list)"):
        section = f'section[data-list="{name}"]'
        shown[name] = (
            await host.frame.locator(f"{section} h3 .n").inner_text(),
            await host.frame.locator(f"{section} li").count(),
            await host.texts(f"{section} li .name"),
        )
    return shown


async def statuses(host: Host, name: str) -> list[str]:
    """Each row's before and after status in a list, as a screen reader reads them."""
    return await host.frame.locator(f'section[data-list="{name}"] .statuses').all_text_contents()


@needs_browser
async def test_compare_view_shows_both_batches_and_opens_a_run_in_place() -> None:
    """Both batches side by side, each list counted; a row opens its run in place, and Back restores the comparison."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "compare_batch_tests", COMPARE)
        frame, data = host.frame, host.result["structuredContent"]
        for side in ("before", "after"):
            batch, locator = data[side], f'[data-side="{side}"]'
            assert await host.texts(f"{locator} h3") == [f"{side.title()} {batch['test_case_batch_job_id']}"]
            assert await host.texts(f"{locator} .meta .badge") == [batch["status"]]
            assert await host.texts(f"{locator} .engine") == [f"engine version {batch['response_engine']['version']}"]
            said = [f"{batch[key + '_count']} {word}" for key, word in (("pass", "passed"), ("fail", "failed"),
                                                                         ("error", "errored"))]  # fmt: skip
            assert (await host.texts(f"{locator} .legend [data-kind]"))[:3] == said
            assert (await frame.locator(f"{locator} .bar").get_attribute("aria-label") or "").endswith(
                f"of {batch['total_count']}"
            )
        before = await frame.locator('[data-side="before"]').bounding_box()
        after = await frame.locator('[data-side="after"]').bounding_box()
        assert before and after and after["x"] >= before["x"] + before["width"] and after["y"] == before["y"]
        assert await host.texts(".completeness") == [
            "Comparison complete" if data["complete"] else f"Comparison incomplete: {data['incomplete_reason']}"
        ]
        lists = await shown_lists(host)
        assert list(lists) == [name for name in CHANGE_LISTS if name in ALWAYS_SHOWN or data[name]]
        for name, (heading, rows, names) in lists.items():
            assert heading == str(rows + data["not_shown"].get(name, 0)) and rows == len(data[name])
            assert names == [entry["name"] for entry in data[name]]
        assert await host.texts('[data-count="unchanged_passing"]') == [
            f"{data['unchanged_passing']} test{'' if data['unchanged_passing'] == 1 else 's'} passed in both"
        ]
        await host.screenshot("compare-light")

        opener = frame.locator("li[data-job] button.open").first
        job, name = await opener.evaluate("node => node.closest('li').dataset.job"), await opener.inner_text()
        height = await page.evaluate("window.sizes.at(-1)")
        await opener.focus()
        await page.keyboard.press("Enter")
        await frame.locator(".run-view").wait_for()
        assert host.calls == [("get_test_run", {"test_case_job_id": job})]
        assert await frame.locator("h2").inner_text() == name
        assert await frame.evaluate("document.activeElement.tagName") == "H2"
        await page.wait_for_function("height => window.sizes.at(-1) !== height", arg=height)
        await frame.get_by_role("button", name="← Back to the comparison").press("Enter")
        assert await shown_lists(host) == lists
        assert await frame.evaluate("document.activeElement.closest('li').dataset.job") == job
        await page.wait_for_function("height => window.sizes.at(-1) === height", arg=height)
        assert await host.network_use() == []  # not one request, nor one refused by the view's CSP


@needs_browser
async def test_compare_view_lists_ten_and_says_how_many_more() -> None:
    """Ten rows then "and 3 more"; empty lists said or left out; explanations only on regressed and still failing."""
    result = comparison(
        fixed=[change(n) for n in range(10)],
        regressed=[change(10, "pass", "fail", result_explanation="Missed 'Agent confirms the order'.")],
        only_before=[change(11, "fail", None, test_case_job_id=None)],
        not_shown={"fixed": 3},
        unchanged_passing=7,
        unclassified=2,
    )
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "compare_batch_tests", COMPARE, result=result)
        frame = host.frame
        lists = await shown_lists(host)
        assert {name: (heading, rows) for name, (heading, rows, _) in lists.items()} == {
            "fixed": ("13", 10), "regressed": ("1", 1), "still_failing": ("0", 0), "only_before": ("1", 1)
        }  # fmt: skip
        assert await host.texts('[data-list="fixed"] .more') == ["and 3 more"]
        assert await host.texts('[data-list="still_failing"] .none') == ["None."]
        assert await host.texts(".explain") == ["Missed 'Agent confirms the order'."]
        assert await statuses(host, "regressed") == ["before: pass→ after: fail"]
        assert await frame.locator('[data-list="fixed"] li button.open').count() == 10
        assert await frame.locator('[data-list="only_before"] li button').count() == 0
        assert await statuses(host, "only_before") == ["before: fail→ after: not run"]
        assert await host.texts(".tally") == [
            "7 tests passed in both · 2 not compared (still running, or another status)"
        ]


@needs_browser
async def test_an_incomplete_comparison_says_why_and_counts_from_the_recount() -> None:
    """Its reason said, a running batch's unfinished runs shown, an uncounted batch by its recount, reruns said."""
    reason = "batch 'tcbj_after' is in_progress, so its runs may still change"
    result = comparison(
        before=batch_side("tcbj_before", status="in_progress", pass_count=1, fail_count=0, total_count=4,
                          duplicates=2),
        after=batch_side("tcbj_after", pass_count=None, fail_count=None, error_count=None, total_count=None,
                         runs=5, response_engine={"type": "retell-llm", "llm_id": "llm_1"}),
        complete=False,
        incomplete_reason=reason,
    )  # fmt: skip
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "compare_batch_tests", COMPARE, result=result)
        assert await host.texts(".completeness") == [f"Comparison incomplete: {reason}"]
        assert await host.texts('[data-side="before"] .meta .badge') == ["in_progress"]
        assert await host.texts('[data-side="before"] .legend [data-kind]') == [
            "1 passed", "0 failed", "0 errored", "3 not finished"
        ]  # fmt: skip
        assert await host.texts('[data-side="after"] .legend > span') == ["5 not counted by status", "of 5"]
        assert await host.frame.locator('[data-side="after"] .bar').get_attribute("aria-label") == (
            "5 not counted by status of 5"
        )
        assert await host.texts('[data-side="after"] .engine') == ["engine version not reported"]
        assert await host.texts(".side > p") == ["2 older runs of rerun tests not compared"]


@needs_browser
async def test_compare_view_reads_at_360_px() -> None:
    """At 360 px the batches stack, nothing overflows sideways and no word of a long name breaks across lines."""
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page(width=360) as page:
        host = await mount(page, client, "compare_batch_tests", COMPARE)
        frame = host.frame
        before = await frame.locator('[data-side="before"]').bounding_box()
        after = await frame.locator('[data-side="after"]').bounding_box()
        assert before and after and after["y"] >= before["y"] + before["height"]
        assert await frame.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        await host.screenshot("compare-narrow")
    words = " ".join(["Caller", "asks", "about", "international", "delivery"] * 8)
    long_id = "tcbj_" + "x" * 123
    result = comparison(
        before=batch_side(long_id),
        after=batch_side(long_id.replace("x", "y")),
        regressed=[change(n, "pass", "error", name=f"{words} {n}", result_explanation=words) for n in range(3)],
        still_failing=[change(3, name="Unbroken" * 20, result_explanation="x" * 400)],
        complete=False,
        incomplete_reason=f"batch '{long_id}': recounted 3 runs but Retell counts 4",
    )
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page(width=360) as page:
        host = await mount(page, client, "compare_batch_tests", COMPARE, result=result)
        frame = host.frame
        assert await frame.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        lines_and_words = await frame.locator('[data-list="regressed"] button.open').evaluate_all(WORDS_PER_LINE)
        assert len(lines_and_words) == 3 and all(1 < lines <= words for lines, words in lines_and_words)


# The host's own fonts, handed over as `hostContext.styles.css.fonts`: "CSS for font loading (@font-face rules or
# @import statements)" (MCP Apps 2026-01-26, specification/2026-01-26/apps.mdx, "Host Context in
# McpUiInitializeResult"; @modelcontextprotocol/ext-apps 2.0.4 `McpUiHostCss.fonts`, applied by `applyHostFonts`).
HOST_FONT = "Host Test Sans"
GLYPH_EM = 1.25  # every glyph of the test font is 1.25 em wide: no installed font measures the same


def tiny_font() -> bytes:
    """A minimal valid TrueType font (Chromium's font sanitizer accepts it): printable ASCII, each glyph a box
    `GLYPH_EM` wide, so text drawn in it can be told from text drawn in any fallback font by its width alone."""
    em, advance, first, last = 1000, round(GLYPH_EM * 1000), 0x20, 0x7E
    count = 1 + last - first + 1  # .notdef, then one glyph per character
    # One contour of four on-curve points: header, end point, no instructions, flags, x deltas, y deltas.
    box = struct.pack(">5hHH4B4h4h", 1, 100, 0, advance - 100, 700, 3, 0, 1, 1, 1, 1,
                      100, 0, advance - 200, 0, 0, 700, 0, -700)  # fmt: skip
    # Format 4, one segment first..last onto glyphs 1.. (idDelta), and the closing 0xFFFF segment.
    cmap = struct.pack(">HHHHI", 0, 1, 3, 1, 12) + struct.pack(
        ">7H2HH2H2H2H", 4, 32, 0, 4, 4, 1, 0, last, 0xFFFF, 0, first, 0xFFFF, (1 - first) & 0xFFFF, 1, 0, 0
    )
    names = [text.encode("utf-16-be") for text in (HOST_FONT, "Regular", HOST_FONT, HOST_FONT, "HostTestSans")]
    records = b"".join(
        struct.pack(">6H", 3, 1, 0x409, name_id, len(text), sum(map(len, names[:n])))
        for n, (name_id, text) in enumerate(zip((1, 2, 3, 4, 6), names, strict=True))
    )
    # OS/2 version 4: widths and weight, 11 zeroed sub/superscript and strikeout fields, PANOSE, Unicode ranges
    # (Basic Latin), vendor, fsSelection REGULAR, character range, typo and win metrics, code pages (Latin 1),
    # x-height and cap height, default and break characters, context.
    os2 = struct.pack(">HhHHH11h10s4I4s3H3h2H2I2h3H", 4, advance, 400, 5, 0, *[0] * 11, bytes(10), 1, 0, 0, 0,
                      b"TEST", 0x40, first, last, 800, -200, 0, 800, 200, 1, 0, 500, 700, 0, first, 1)  # fmt: skip
    # head: versions, checksum adjustment (set below), magic, flags, units per em, dates, bounds, style, smallest
    # size, direction, long offsets in loca, glyph data format.
    head = struct.pack(">IIIIHHqq4hHHhhh", 0x10000, 0x10000, 0, 0x5F0F3CF5, 0x000B, em, 0, 0,
                       0, 0, advance, 700, 0, 8, 2, 1, 0)  # fmt: skip
    # hhea: ascender, descender, line gap, widest advance, bearings, extent, caret, 4 reserved, format, metrics.
    hhea = struct.pack(">I3hH3h3h4hhH", 0x10000, 800, -200, 0, advance, 100, 100, advance - 100,
                       1, 0, 0, 0, 0, 0, 0, 0, count)  # fmt: skip
    tables = {
        b"OS/2": os2,
        b"cmap": cmap,
        b"glyf": box * count,
        b"head": head,
        b"hhea": hhea,
        b"hmtx": struct.pack(">hh", advance, 100) * count,
        b"loca": struct.pack(f">{count + 1}I", *(n * len(box) for n in range(count + 1))),
        b"maxp": struct.pack(">I14H", 0x10000, count, 4, 1, 0, 0, 2, *[0] * 8),
        b"name": struct.pack(">3H", 0, len(names), 6 + len(records)) + records + b"".join(names),
        b"post": struct.pack(">IIhhIIIII", 0x30000, 0, -100, 50, 1, 0, 0, 0, 0),
    }

    def checksum(data: bytes) -> int:
        data += bytes(-len(data) % 4)
        return sum(struct.unpack(f">{len(data) // 4}I", data)) & 0xFFFFFFFF

    search, log2 = 16 * 2 ** (len(tables).bit_length() - 1), len(tables).bit_length() - 1
    font = bytearray(struct.pack(">IHHHH", 0x10000, len(tables), search, log2, 16 * len(tables) - search))
    offset, body = len(font) + 16 * len(tables), b""
    for tag, data in sorted(tables.items()):
        if tag == b"head":
            head_at = offset + len(body)
        font += struct.pack(">4sIII", tag, checksum(data), offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    font += body
    struct.pack_into(">I", font, head_at + 8, (0xB1B0AFBA - checksum(bytes(font))) & 0xFFFFFFFF)
    return bytes(font)


async def until(frame: Any, expression: str, seconds: float = 10) -> None:
    """Wait until `expression` is true in a view's frame, polled from here: Playwright's own wait_for_function
    builds its predicate with eval once a first check is false, which the view's CSP (rightly) refuses."""
    with anyio.fail_after(seconds):
        while not await frame.evaluate(expression):
            await anyio.sleep(0.05)


@needs_browser
async def test_a_font_the_host_hands_over_is_used_and_no_font_is_fetched() -> None:
    """A host's `@font-face` with an inline (`data:`) font loads and draws the view's text; a font or stylesheet
    at a web address in the same CSS is refused by the view's CSP, so nothing is fetched."""
    font = base64.b64encode(tiny_font()).decode()
    fonts = (
        '@import url("http://127.0.0.1:9/fonts.css");\n'
        f'@font-face {{ font-family: "{HOST_FONT}"; src: url(data:font/ttf;base64,{font}) format("truetype");'
        " font-weight: 100 900; }\n"
        '@font-face { font-family: "Host Web Mono"; src: url("http://127.0.0.1:9/mono.woff2") format("woff2"); }'
    )
    styles = {
        "variables": {"--font-sans": f'"{HOST_FONT}", sans-serif', "--font-mono": '"Host Web Mono", monospace'},
        "css": {"fonts": fonts},
    }
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "get_test_run", FAILED_RUN, styles=styles)
        frame = host.frame
        await frame.evaluate("document.fonts.ready.then(() => null)")
        faces = await frame.evaluate("[...document.fonts].map(face => [face.family, face.status])")
        assert sorted(faces) == [[HOST_FONT, "loaded"], ["Host Web Mono", "error"]]
        assert (await host.style(".meta .badge", "fontFamily")).startswith(f'"{HOST_FONT}"')
        em_per_letter = await frame.locator(".meta .badge").evaluate(
            "node => { const range = document.createRange(); range.selectNodeContents(node);"
            " return range.getBoundingClientRect().width / parseFloat(getComputedStyle(node).fontSize)"
            " / node.textContent.length; }"
        )
        assert em_per_letter == pytest.approx(GLYPH_EM, abs=0.01)  # drawn in the host's font, not a fallback
        await until(frame, "window.refused.length >= 2")
        assert sorted(await host.network_use()) == [
            "font-src http://127.0.0.1:9/mono.woff2",
            "style-src-elem http://127.0.0.1:9/fonts.css",
        ]


HOSTILE = '<script>window.pwned = 1</script><img src="http://127.0.0.1:9/x.png" onerror="window.pwned = 2">'


@needs_browser
async def test_vendor_text_is_shown_as_text_never_as_html() -> None:
    """Markup in every vendor string the run view shows (name, explanation, turns, tool name and arguments,
    metrics) and the compare view shows (batch IDs, statuses, engine versions, the incomplete reason, test names,
    definition IDs, explanations) renders as literal text: no element is made from it, no script runs, nothing is
    fetched."""
    vendors = FakeVendors()
    run = {
        **RETELL_RUN,
        "result_explanation": HOSTILE,
        "test_case_definition_snapshot": {"name": HOSTILE, "metrics": [HOSTILE]},
        "transcript_snapshot": {"transcript": [
            {"role": "agent", "content": HOSTILE},
            {"role": "tool_call_invocation", "tool_call_id": "c1", "name": HOSTILE, "arguments": HOSTILE},
            {"role": "tool_call_result", "tool_call_id": "c1", "content": HOSTILE},
            {"role": HOSTILE, "content": HOSTILE},
        ]},
    }  # fmt: skip
    vendors.retell = lambda request: json_response(200, run)
    server = build_server(make_settings(), transport=vendors.transport())
    async with Client(server, extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "get_test_run", {"test_case_job_id": RETELL_RUN["test_case_job_id"]})
        frame = host.frame
        assert await frame.locator("#app img, #app script, #app b").count() == 0
        assert await frame.evaluate("window.pwned") is None
        assert await frame.locator("h2").inner_text() == HOSTILE
        # name, explanation, agent turn, tool name (call and result), arguments, result, unknown role and its
        # content, metric: ten places, each the literal markup
        assert (await frame.locator("#app").text_content() or "").count(HOSTILE) == 10
        assert await host.network_use() == []
    hostile_side = batch_side(HOSTILE, status=HOSTILE, response_engine={"version": HOSTILE})
    result = comparison(
        before=hostile_side,
        after=hostile_side,
        regressed=[change(1, HOSTILE, HOSTILE, name=HOSTILE, result_explanation=HOSTILE)],
        only_before=[change(2, HOSTILE, None, name=None, test_case_definition_id=HOSTILE, test_case_job_id=None)],
        complete=False,
        incomplete_reason=HOSTILE,
    )
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "compare_batch_tests", COMPARE, result=result)
        frame = host.frame
        assert await frame.locator("#app img, #app script").count() == 0
        assert await frame.evaluate("window.pwned") is None
        assert await frame.locator('[data-list="regressed"] button.open').inner_text() == HOSTILE
        # per side its ID, status and engine version; the reason; the regressed row's name, both statuses and
        # explanation; the only-before row's definition ID (standing for its name) and status: thirteen places
        assert (await frame.locator("#app").text_content() or "").count(HOSTILE) == 13
        assert await host.network_use() == []


@needs_browser
async def test_an_error_result_and_a_failed_run_lookup_are_shown_not_thrown() -> None:
    """An error result gets a notice with the contract's code and message; so does a run the batch view or the
    compare view cannot fetch, with the way back to the batch or the comparison still there."""
    vendors = FakeVendors()
    batch = {"test_case_batch_job_id": "tcbj_1", "status": "complete", "fail_count": 1, "total_count": 1}
    gone = {**RETELL_RUN, "test_case_job_id": "tcj_gone"}

    def retell(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/get-batch-test/"):
            return json_response(200, batch)
        if request.url.path.startswith("/v2/list-test-runs/"):
            return json_response(200, {"items": [gone], "has_more": False})
        return json_response(404, {"status": "error", "message": "Not Found"})

    vendors.retell = retell
    server = build_server(make_settings(), transport=vendors.transport())
    async with Client(server, extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "get_test_run", {"test_case_job_id": "tcj_gone"})
        notice = await host.frame.locator(".notice").inner_text()
        assert "not_found" in notice and "tcj_gone" in notice
    async with Client(server, extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "summarize_batch_test", {"test_case_batch_job_id": "tcbj_1"})
        await host.frame.locator("tbody button.open").click()
        await host.frame.locator(".notice").wait_for()
        assert "not_found" in await host.frame.locator(".notice").inner_text()
        await host.frame.get_by_role("button", name="← Back to the batch").click()
        assert await host.frame.locator("tbody tr").count() == 1
    result = comparison(regressed=[change(1, "pass", "fail", test_case_job_id="tcj_gone")])
    async with Client(demo_server(), extensions=[apps_extension()]) as client, browser_page() as page:
        host = await mount(page, client, "compare_batch_tests", COMPARE, result=result)
        await host.frame.locator("li button.open").click()
        await host.frame.locator(".notice").wait_for()
        assert "not_found" in await host.frame.locator(".notice").inner_text()
        await host.frame.get_by_role("button", name="← Back to the comparison").click()
        assert await host.frame.locator('[data-list="regressed"] li').count() == 1
