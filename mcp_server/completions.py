"""Argument completion from the IDs this server has already returned in the same session, and only that session:
on a shared HTTP server one client's IDs are never offered to another.

A session is a handshake-era connection, known by the `client_params` object its `initialize` left (public and
stable for the connection's life). Under protocol 2026-07-28 each request stands alone, so there is no session to
remember anything in, and nothing is offered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp_types import Completion, PromptReference, ResourceTemplateReference

from mcp_server.errors import Provider

# The session of the request being handled, set by SessionMiddleware for the handler's task.
current_session: ContextVar[object | None] = ContextVar("current_session", default=None)

MAX_SESSIONS = 256  # sessions remembered at once, least recently used forgotten first
PER_KIND = 500  # most recent IDs kept per kind and session
MAX_VALUES = 100  # the protocol's cap on one completion answer

# Where each kind of ID is found in vendor objects, by field name.
RETELL_FIELDS = {
    "test_case_job_id": "retell_run",
    "test_case_batch_job_id": "retell_batch",
    "test_case_definition_id": "retell_definition",
}
TELA_FIELDS = {"id": "tela_case", "promptId": "tela_prompt"}

# Which kind of ID completes which argument of which prompt or resource template.
ARGUMENT_KINDS = {
    ("diagnose_test_run", "test_case_job_id"): "retell_run",
    ("review_test_case", "id"): "tela_case",
    ("retell://test-runs/{test_case_job_id}", "test_case_job_id"): "retell_run",
    ("tela://test-cases/{id}", "id"): "tela_case",
    ("retell://batch-tests/{test_case_batch_job_id}", "test_case_batch_job_id"): "retell_batch",
    ("retell://test-case-definitions/{test_case_definition_id}", "test_case_definition_id"): "retell_definition",
}


class SessionMiddleware:
    """Makes the current session visible to tools and completions through `current_session`."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        token = current_session.set(ctx.session.client_params)
        try:
            return await call_next(ctx)
        finally:
            current_session.reset(token)


class SeenIds:
    """The IDs each session has been shown, by kind, most recent last; bounded per kind and in sessions."""

    def __init__(self) -> None:
        # id(session) -> (the session object, kept so its id cannot be reused, and its IDs by kind)
        self._sessions: OrderedDict[int, tuple[object, dict[str, OrderedDict[str, None]]]] = OrderedDict()

    def _kinds(self, create: bool) -> dict[str, OrderedDict[str, None]]:
        session = current_session.get()
        if session is None:
            return {}
        entry = self._sessions.get(id(session))
        if entry is None:
            if not create:
                return {}
            entry = self._sessions[id(session)] = (session, {})
            if len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(id(session))
        return entry[1]

    def note(self, provider: Provider, obj: dict[str, Any]) -> None:
        """Remember the IDs in a result: its own fields, its snapshot's, and those of its `items` or `failed`."""
        if current_session.get() is None:
            return
        kinds = self._kinds(create=True)
        fields = RETELL_FIELDS if provider == "retell" else TELA_FIELDS
        for record in _records(obj):
            for field, kind in fields.items():
                value = record.get(field)
                if isinstance(value, str) and value:
                    seen = kinds.setdefault(kind, OrderedDict())
                    seen.pop(value, None)
                    seen[value] = None
                    if len(seen) > PER_KIND:
                        seen.popitem(last=False)

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
