"""MCP App views (the `io.modelcontextprotocol/ui` extension): a batch view, a run view and a compare view that hosts
such as Claude and VS Code render beside the conversation. Only a client that declared the extension sees them: for
every other client `tools/list`, `resources/list` and the handshake stay exactly what they are without views.

The SDK's `mcp.server.apps.Apps` stamps `_meta.ui` on a tool for every client; these views must cost nothing for
clients that cannot show them, so a middleware adds the links per request instead, from the client's declared
capabilities (`client_supports_apps`). Each page is one self-contained HTML document assembled from the files
beside this module: no remote scripts, styles, fonts or images, and no network use (the only fonts it lets in are
those a host hands over inline, as `data:` URLs).

Over stateless HTTP a handshake-era client's later requests each reach a fresh session that never saw its
`initialize`, so nothing can be shown to it: the handshake then does not advertise the extension either. A 2026-07-28
request carries the client's capabilities itself, so views work statelessly under that protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.resources import TextResource

from mcp_server import __version__

HERE = Path(__file__).parent
BATCH_URI = "ui://retell-tela/batch.html"
RUN_URI = "ui://retell-tela/run.html"
COMPARE_URI = "ui://retell-tela/compare.html"

# Which tool's result each view shows. The batch and compare pages carry the run view too: choosing a run shows it in
# place.
TOOL_VIEWS = {
    "summarize_batch_test": BATCH_URI,
    "get_test_run": RUN_URI,
    "wait_for_test_run": RUN_URI,
    "get_call": RUN_URI,  # a production call's turns, in the run view's shapes
    "compare_batch_tests": COMPARE_URI,
}
PAGES = {
    BATCH_URI: ("Retell batch test", ("host.js", "run.js", "batch.js")),
    RUN_URI: ("Retell test run", ("host.js", "run.js")),
    COMPARE_URI: ("Retell batch comparison", ("host.js", "run.js", "compare.js")),
}
# `_meta.ui` of each page: no domain of any kind allowed (the host's CSP then forbids all network use), and a
# border, since the tables and the transcript read better framed.
RESOURCE_UI = {"csp": {}, "prefersBorder": True}


@cache
def page(uri: str) -> str:
    """The HTML document served at `uri`: the page shell with the stylesheet and the view scripts inline."""
    title, scripts = PAGES[uri]
    script = "\n".join((HERE / name).read_text(encoding="utf-8") for name in scripts) + "\nstart();"
    return (
        (HERE / "page.html")
        .read_text(encoding="utf-8")
        .replace("@TITLE@", title)
        .replace("@CSS@", (HERE / "view.css").read_text(encoding="utf-8").strip())
        .replace("@SCRIPT@", script.replace("@VERSION@", __version__).strip())
    )


def view_resources() -> list[TextResource]:
    """The pages as `ui://` resources, read like any other resource (listed only to clients that can show them)."""
    return [
        TextResource(
            uri=uri,
            name=uri.rsplit("/", 1)[1],
            title=f"{title} view",
            description=f"MCP App view of a {title}.",
            mime_type=APP_MIME_TYPE,
            meta={"ui": RESOURCE_UI},
            text=page(uri),
        )
        for uri, (title, _) in PAGES.items()
    ]


def declares_views(capabilities: object) -> bool:
    """Whether an `initialize` request's raw capabilities declare the extension with the MCP App MIME type (the
    session's parsed capabilities are set only once the handshake is answered)."""
    extensions = capabilities.get("extensions") if isinstance(capabilities, Mapping) else None
    settings = extensions.get(EXTENSION_ID) if isinstance(extensions, Mapping) else None
    mime_types = settings.get("mimeTypes") if isinstance(settings, Mapping) else None
    return isinstance(mime_types, list) and APP_MIME_TYPE in mime_types


class ViewsMiddleware:
    """Shows the views to clients that declared the extension, and hides them from every other client.

    `stateless`: the server answers over stateless HTTP, where what a client declared in `initialize` is gone by
    its next request (so the handshake must not promise the views)."""

    def __init__(self, *, stateless: bool = False) -> None:
        self._handshake_is_remembered = not stateless

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method not in VIEW_METHODS:  # a tool call, above all: nothing to look up
            return result
        if ctx.method == "initialize":
            capabilities = (ctx.params or {}).get("capabilities")
            supported = self._handshake_is_remembered and declares_views(capabilities)
        else:
            supported = client_supports_apps(ctx)
        change = (WHEN_DECLARED if supported else WHEN_NOT_DECLARED).get(ctx.method)
        return change(result) if change is not None and isinstance(result, dict) else result


def _with_view_links(result: dict[str, Any]) -> dict[str, Any]:
    tools = [
        {**tool, "_meta": {**tool.get("_meta", {}), "ui": {"resourceUri": TOOL_VIEWS[tool["name"]]}}}
        if tool.get("name") in TOOL_VIEWS
        else tool
        for tool in result.get("tools", [])
    ]
    return {**result, "tools": tools}


def _without_views(result: dict[str, Any]) -> dict[str, Any]:
    resources = [resource for resource in result.get("resources", []) if resource.get("uri") not in PAGES]
    return {**result, "resources": resources}


def _advertising(result: dict[str, Any]) -> dict[str, Any]:
    """The handshake's answer with the extension in the server's capabilities (SEP-2133), for a client that asked."""
    capabilities = result.get("capabilities")
    if not isinstance(capabilities, dict):
        return result
    extensions = {**capabilities.get("extensions", {}), EXTENSION_ID: {}}
    return {**result, "capabilities": {**capabilities, "extensions": extensions}}


# What the middleware changes in each answer, by method, for a client that declared the extension and for the rest.
WHEN_DECLARED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "initialize": _advertising,
    "server/discover": _advertising,
    "tools/list": _with_view_links,
}
WHEN_NOT_DECLARED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"resources/list": _without_views}
VIEW_METHODS = WHEN_DECLARED.keys() | WHEN_NOT_DECLARED.keys()
