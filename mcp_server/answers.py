"""An answer's whole life inside the byte budget: from its vendor body's first byte until the client has it.

A vendor body is counted in the byte budget while it is read and parsed, but the parsed answer (about ten times the
body's bytes, for a transcript of many small turns) and the SDK's serialisation of it live on until the result has
been written to the client. Counted only to the end of the parse, four large answers in a row overlapped in memory
(four ~10 MiB answers peaked ~470 MiB over idle, one alone ~262). Here each tool call's bodies stay counted until
its result is written, so the next large body waits for the last to be delivered.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp_types import RequestId

from mcp_server.upstream.budget import Answer, current_answer

ANSWERING_METHODS = frozenset({"tools/call", "resources/read"})


class AnswerLifetime:
    """A server middleware that opens an `Answer` for each tool call and resource read. Where the transport says
    when each response has been written (`follow_writes`: our stdio transport) the answer's bytes are freed then;
    elsewhere (the SDK's transports, which tell nobody) as the result leaves the handler."""

    def __init__(self) -> None:
        self._follow = False
        self._pending: dict[RequestId, Answer] = {}

    def follow_writes(self) -> None:
        """The transport will call `written` for every response and `ended` when it stops."""
        self._follow = True

    def written(self, request_id: RequestId) -> None:
        answer = self._pending.pop(request_id, None)
        if answer is not None:
            answer.release()

    def ended(self) -> None:
        """The transport has stopped: no pending response will ever be written."""
        for answer in self._pending.values():
            answer.release()
        self._pending.clear()

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method not in ANSWERING_METHODS:
            return await call_next(ctx)
        answer = Answer()
        token = current_answer.set(answer)
        try:
            result = await call_next(ctx)
        except BaseException:  # cancelled or failed: no answer will be written
            answer.release()
            raise
        finally:
            current_answer.reset(token)
        if answer and self._follow and ctx.request_id is not None:
            self.written(ctx.request_id)  # a reused request ID: the earlier answer's response has been written
            self._pending[ctx.request_id] = answer
        else:
            answer.release()
        return result
