"""Argument completion from the IDs this server has already returned to the same client, and only that client:
on a shared HTTP server one client's IDs are never offered to another.

Whose IDs are whose depends on how the server is reached:
- over stdio (and `call`) the process serves exactly one client, so everything it has shown is that client's,
  whatever the protocol version (`single_client`);
- over stateful HTTP, per session and per principal: the `Mcp-Session-Id` the request names, together with the
  signed-in principal (client, issuer, subject) of its access token, as the SDK binds sessions. A 2026-07-28 request
  reaches no session check in the SDK, so a session ID alone (which another principal may have seen) opens nothing;
- a handshake-era connection without an HTTP session (the SDK's in-memory client) is known by the `client_params`
  object its `initialize` left, stable for the connection's life;
- otherwise (stateless HTTP; protocol 2026-07-28 without a session) each request stands alone: nothing is
  remembered and nothing is offered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import principal_components
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp_types import Completion, PromptReference, ResourceTemplateReference
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_server.errors import Provider

# The client of the request being handled, set by ClientScopeMiddleware for the handler's task. A ContextVar because
# the SDK's middleware hook is the only place that sees the transport's session, and tools and completion handlers
# are called by the SDK with no way to pass it along.
current_client: ContextVar[object | None] = ContextVar("current_client", default=None)

SINGLE_CLIENT = "the one client"  # the scope of a stdio server
MAX_SESSIONS = 256  # clients remembered at once, least recently used forgotten first
PER_KIND = 500  # most recent IDs kept per kind and client
MAX_ID_LENGTH = 128  # longer is no ID any tool accepts: never kept
MAX_BYTES = 4 * 1024 * 1024  # characters of IDs kept in all, least recently used clients forgotten first
MAX_VALUES = 100  # the protocol's cap on one completion answer

# Where each kind of ID is found in vendor objects, by field name.
RETELL_FIELDS = {
    "test_case_job_id": "retell_run",
    "test_case_batch_job_id": "retell_batch",
    "test_case_definition_id": "retell_definition",
    "call_id": "retell_call",
}
TELA_FIELDS = {"id": "tela_case", "promptId": "tela_prompt"}
# A completion run's `id` is a run's, not a case's: its tools say so when they note what they returned.
TELA_RUN_FIELDS = {"id": "tela_run"}

# Which kind of ID completes which argument of which prompt or resource template.
ARGUMENT_KINDS = {
    ("diagnose_test_run", "test_case_job_id"): "retell_run",
    ("review_test_case", "id"): "tela_case",
    ("fix_failing_test", "test_case_job_id"): "retell_run",
    ("compare_batches", "before_batch_id"): "retell_batch",
    ("compare_batches", "after_batch_id"): "retell_batch",
    ("retell://test-runs/{test_case_job_id}", "test_case_job_id"): "retell_run",
    ("tela://test-cases/{id}", "id"): "tela_case",
    ("retell://batch-tests/{test_case_batch_job_id}", "test_case_batch_job_id"): "retell_batch",
    ("retell://test-case-definitions/{test_case_definition_id}", "test_case_definition_id"): "retell_definition",
    ("test_from_call", "call_id"): "retell_call",
    ("retell://calls/{call_id}", "call_id"): "retell_call",
    ("test_from_completion_run", "run_id"): "tela_run",
}


class ClientScopeMiddleware:
    """Makes the client of each request visible to tools and completions through `current_client`."""

    def __init__(self, *, single_client: bool = False) -> None:
        self._single_client = single_client

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        token = current_client.set(self._scope(ctx))
        try:
            return await call_next(ctx)
        finally:
            current_client.reset(token)

    def _scope(self, ctx: ServerRequestContext[Any, Any]) -> object | None:
        if self._single_client:
            return SINGLE_CLIENT
        headers = getattr(ctx.request, "headers", None)  # the HTTP request, on the HTTP transports
        session_id = headers.get(MCP_SESSION_ID_HEADER) if headers is not None else None
        if session_id:
            token = get_access_token()
            return ("http", session_id, principal_components(token) if token is not None else None)
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None  # a 2026-07-28 request carries its own client info: a new object every time
        return ctx.session.client_params


class SeenIds:
    """The IDs each client has been shown, by kind, most recent last; bounded per kind, in clients and in bytes."""

    def __init__(self) -> None:
        # scope key -> (the scope object, kept so an id() cannot be reused, and its IDs by kind)
        self._clients: OrderedDict[object, tuple[object, dict[str, OrderedDict[str, None]]]] = OrderedDict()
        self._bytes = 0

    @property
    def size(self) -> int:
        """Characters of IDs held, across all clients."""
        return self._bytes

    def _kinds(self, create: bool) -> dict[str, OrderedDict[str, None]]:
        client = current_client.get()
        if client is None:
            return {}
        key = client if isinstance(client, str | tuple) else id(client)  # a value, or an object known by identity
        entry = self._clients.get(key)
        if entry is None:
            if not create:
                return {}
            entry = self._clients[key] = (client, {})
            if len(self._clients) > MAX_SESSIONS:
                self._forget_oldest()
        self._clients.move_to_end(key)
        return entry[1]

    def _forget_oldest(self) -> None:
        _, (_, kinds) = self._clients.popitem(last=False)
        self._bytes -= sum(len(value) for seen in kinds.values() for value in seen)

    def note(self, provider: Provider, obj: dict[str, Any], fields: dict[str, str] | None = None) -> None:
        """Remember the IDs in a result: its own fields, its snapshot's, and those of its `items` or `failed`, found
        under `fields` (field name -> kind of ID; by default the vendor's)."""
        if current_client.get() is None:
            return
        kinds = self._kinds(create=True)
        if fields is None:
            fields = RETELL_FIELDS if provider == "retell" else TELA_FIELDS
        for record in _records(obj):
            for field, kind in fields.items():
                value = record.get(field)
                if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
                    seen = kinds.setdefault(kind, OrderedDict())
                    if value in seen:
                        seen.move_to_end(value)
                        continue
                    seen[value] = None
                    self._bytes += len(value)
                    if len(seen) > PER_KIND:
                        self._bytes -= len(seen.popitem(last=False)[0])
        while self._bytes > MAX_BYTES and len(self._clients) > 1:
            self._forget_oldest()

    def complete(self, ref: PromptReference | ResourceTemplateReference, argument: str, prefix: str) -> Completion:
        name = ref.name if isinstance(ref, PromptReference) else ref.uri
        kind = ARGUMENT_KINDS.get((name, argument))
        seen = self._kinds(create=False).get(kind or "", OrderedDict())
        matches = [value for value in reversed(seen) if value.startswith(prefix)]
        return Completion(values=matches[:MAX_VALUES], total=len(matches), has_more=len(matches) > MAX_VALUES)


def _records(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """The object and the records nested in it where IDs live (never a transcript)."""
    yield obj
    snapshot = obj.get("test_case_definition_snapshot")
    if isinstance(snapshot, dict):
        yield snapshot
    for key in ("items", "failed"):
        nested = obj.get(key)
        if isinstance(nested, list):
            for item in nested:
                if isinstance(item, dict):
                    yield item
                    inner = item.get("test_case_definition_snapshot")
                    if isinstance(inner, dict):
                        yield inner
