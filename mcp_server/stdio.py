"""MCP over stdio without threads: newline-delimited JSON-RPC on the process's pipes, served by the event loop.

The SDK's `stdio_server` reads stdin and writes stdout through worker threads: two thread hops per call, a read
that no cancellation can interrupt (so a signal could only end the process with `os._exit`), an unbounded line
buffer, and a writer that keeps the last message it wrote alive until the next one (after a 9.6 MiB answer, its
~100 MiB of parsed objects). Here asyncio's own streams read and write the pipes; parsing and the session are the
SDK's. Whether that can work is decided once, before anything is served (`claim_wire`): where it cannot (Windows;
a descriptor the event loop's selector refuses, such as a regular file or `/dev/null`) the SDK's transport serves.
On both, a line that is not a JSON-RPC message is answered as JSON-RPC 2.0 says (`_Answering`), where the SDK's
session would only log it at DEBUG and leave the client waiting for an answer that never comes.

As the SDK does while serving, fd 0 reads the null device and fd 1 writes to stderr, so a library's stray `print`
or a child process cannot corrupt the stream; here from before the server's code is even loaded until the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import selectors
import socket
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:  # the SDK loads when serving starts: `claim_wire` runs before anything can print
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from mcp.shared._stream_protocols import ReadStream, WriteStream  # what the SDK's `Server.run` takes
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCError, RequestId

    from mcp_server.answers import AnswerLifetime

    Outgoing = MemoryObjectSendStream[SessionMessage]
    IncomingWriter = MemoryObjectSendStream[SessionMessage | Exception]

logger = logging.getLogger(__name__)

# A client's message is a tool name and a few IDs; past this, a line is dropped without being held in memory.
MAX_LINE_BYTES = 4 * 1024 * 1024
READ_CHUNK = 256 * 1024
# On the way out, pending answers get this long to reach a client that has stopped reading.
FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class Wire:
    """The client's end of stdin and stdout, on private descriptors (fd 0 now reads the null device and fd 1 writes
    to stderr). `one_socket`: both are one socket (socat `EXEC:`, inetd, systemd `Accept=yes`), served as one
    connection; `stdout` is then None. `blocking` is how each descriptor was found, to be handed back."""

    stdin: int
    stdout: int | None
    one_socket: bool
    blocking: tuple[bool, bool]


def ensure_standard_descriptors() -> None:
    """Point any closed fd 0, 1 or 2 at the null device (`2>&-`, `<&-`): else the next file or socket opened would
    take its number, and a log line meant for stderr could land in a vendor connection or in the protocol."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    if sys.stderr is None:  # Python found fd 2 closed at start-up: log lines now go to the null device
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115


def claim_wire(platform: str = sys.platform) -> Wire | None:
    """Take stdin and stdout for the protocol, now, before anything else can write to fd 1; None where they cannot
    be served without threads, which leaves them to the SDK's transport. `platform` is `sys.platform` unless a test
    plays another one."""
    if platform == "win32":
        return None  # the Windows event loop cannot poll pipes
    try:
        modes = [os.fstat(fd) for fd in (0, 1)]
    except OSError:
        return None
    same = (modes[0].st_dev, modes[0].st_ino) == (modes[1].st_dev, modes[1].st_ino)
    one_socket = same and stat.S_ISSOCK(modes[0].st_mode) and _is_stream_socket(0)
    if not one_socket and not (_pollable(0, selectors.EVENT_READ) and _pollable(1, selectors.EVENT_WRITE)):
        return None
    if one_socket and not _pollable(0, selectors.EVENT_READ | selectors.EVENT_WRITE):
        return None
    blocking = (os.get_blocking(0), os.get_blocking(1))
    stdin = _divert(0, os.open(os.devnull, os.O_RDONLY))
    stdout = _divert(1, _stdout_diversion())
    if one_socket:
        os.close(stdout)  # a second descriptor of the same socket: one is enough
        return Wire(stdin, None, True, blocking)
    return Wire(stdin, stdout, False, blocking)


def _pollable(fd: int, events: int) -> bool:
    """Whether the event loop can watch `fd`: a pipe, socket or character device that its selector accepts (epoll
    refuses regular files and `/dev/null`, which would leave the loop waiting for an EOF that never comes)."""
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        return False
    with selectors.DefaultSelector() as selector:  # the one asyncio's loop uses
        try:
            selector.register(fd, events)
        except (OSError, ValueError):
            return False
    return True


def _is_stream_socket(fd: int) -> bool:
    with socket.socket(fileno=os.dup(fd)) as sock:
        return sock.type == socket.SOCK_STREAM


def _stdout_diversion() -> int:
    try:
        return os.dup(2)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


def _divert(fd: int, diversion: int) -> int:
    """Move fd's stream to a private descriptor above the standard three (returned) and point fd at `diversion`."""
    import fcntl  # POSIX only: this module is imported on Windows too

    private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.dup2(diversion, fd)
    os.close(diversion)
    return private


class _Pipe(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol that hands each descriptor's blocking flag back as found when its transport ends,
    just before the transport closes it: the flag belongs to the pipe, terminal or socket, shared with others."""

    def __init__(self, reader: asyncio.StreamReader, restore: dict[int, bool]) -> None:
        super().__init__(reader)
        self._restore = restore
        self.lost = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        for fd, blocking in self._restore.items():
            with suppress(OSError):
                os.set_blocking(fd, blocking)
        self.lost.set()
        super().connection_lost(exc)


@dataclass(frozen=True)
class _Wired:
    """asyncio's reader and writer on the wire, the read pipe's transport (None when one socket carries both), and
    the protocols, whose `lost` says when each transport has ended."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    read_pipe: asyncio.BaseTransport | None
    pipes: tuple[_Pipe, ...]


async def _open(wire: Wire) -> _Wired:
    """One socket connection, or a read pipe and a write pipe."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_CHUNK)
    if wire.stdout is None:
        both = _Pipe(reader, {wire.stdin: wire.blocking[0]})
        transport, _ = await loop.create_connection(lambda: both, sock=socket.socket(fileno=wire.stdin))
        return _Wired(reader, asyncio.StreamWriter(transport, both, reader, loop), None, (both,))
    reading = _Pipe(reader, {wire.stdin: wire.blocking[0]})
    read_pipe, _ = await loop.connect_read_pipe(lambda: reading, os.fdopen(wire.stdin, "rb", buffering=0))
    writing = _Pipe(asyncio.StreamReader(), {wire.stdout: wire.blocking[1]})  # its reader is never read
    write_pipe, _ = await loop.connect_write_pipe(lambda: writing, os.fdopen(wire.stdout, "wb", buffering=0))
    return _Wired(reader, asyncio.StreamWriter(write_pipe, writing, None, loop), read_pipe, (reading, writing))


async def _hang_up(wired: _Wired) -> None:
    """Close what the client has not closed: unsent answers to a client that stopped reading are dropped. Returns
    once every transport has ended, its descriptor's blocking flag handed back and the descriptor closed."""
    out = wired.writer.transport
    if not out.is_closing():
        out.abort() if out.get_write_buffer_size() else out.close()
    if wired.read_pipe is not None:
        wired.read_pipe.close()  # nothing once it has ended
    with anyio.move_on_after(1, shield=True):
        for pipe in wired.pipes:
            await pipe.lost.wait()


@asynccontextmanager
async def stdio_streams(
    wire: Wire | None, answers: AnswerLifetime | None = None
) -> AsyncIterator[tuple[_Answering, WriteStream[SessionMessage]]]:
    """The read and write streams a server session runs on: over `wire` without threads, else the SDK's way. Over
    `wire`, `answers` is told when each response has been written (and when the session has ended)."""
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage

    if wire is None:
        logger.debug("stdio: served by the SDK's transport (threads)")
        async with stdio_server() as (sdk_incoming, sdk_outgoing):
            yield _Answering(sdk_incoming, sdk_outgoing), sdk_outgoing
        return
    if answers is not None:
        answers.follow_writes()
    wired = await _open(wire)
    incoming_writer, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_reader = anyio.create_memory_object_stream[SessionMessage](0)
    written = anyio.Event()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_read_messages, wired.reader, incoming_writer)
            tg.start_soon(_write_messages, outgoing_reader, wired.writer, written, tg.cancel_scope, answers)
            try:
                yield _Answering(incoming, outgoing), outgoing
            finally:
                outgoing.close()  # the writer sends what it holds, then ends
                with anyio.move_on_after(FLUSH_SECONDS, shield=True):
                    await written.wait()
                tg.cancel_scope.cancel()
    finally:
        if answers is not None:
            answers.ended()
        await _hang_up(wired)
        # fd 0 and 1 stay diverted: until the process ends, nothing else may write to the client's stdout.


class _Answering:
    """The read stream a session runs on: the transport's messages, passed on, and its parse errors (a line that
    is not a message), each answered here with the JSON-RPC error `_rejection` makes and not passed on. Both
    transports hand such a line on as the pydantic error that parsing it raised, so both answer it alike."""

    def __init__(self, incoming: ReadStream[SessionMessage | Exception], outgoing: WriteStream[SessionMessage]) -> None:
        self._incoming = incoming
        self._outgoing = outgoing

    async def receive(self) -> SessionMessage:
        from mcp.shared.message import SessionMessage

        while True:
            item = await self._incoming.receive()
            if not isinstance(item, Exception):
                return item
            answer = _rejection(item)
            if answer is None:
                continue
            logger.warning("answered an input line that is not a JSON-RPC message: %s", answer.error.message)
            try:
                await self._outgoing.send(SessionMessage(answer))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                logger.debug("the session has ended: input lines are no longer answered")

    async def aclose(self) -> None:
        await self._incoming.aclose()

    def __aiter__(self) -> _Answering:
        return self

    async def __anext__(self) -> SessionMessage:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _Answering:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _rejection(exc: Exception) -> JSONRPCError | None:
    """JSON-RPC 2.0's answer to a line that is not a message (None for a blank line, which is skipped): -32700 (parse
    error) for one that is not JSON, which includes a string escape of a lone UTF-16 surrogate (`"\\ud800"` without
    its pair: no UTF-8 text can hold it, so the SDK's parser refuses it), else -32600 (invalid request). It carries
    the request's ID where `_request_id` can read one, so the client's call fails now rather than at its timeout."""
    from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
    from pydantic import ValidationError

    errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else []
    unparsed = next((error for error in errors if error["type"] == "json_invalid"), None)
    if unparsed is not None or not errors:
        text = unparsed["input"] if unparsed is not None else None
        if isinstance(text, str) and not text.strip():
            return None  # the SDK's transport hands a blank line on; this one skips it
        reason = unparsed.get("ctx", {}).get("error") if unparsed is not None else None
        try:
            # The stdlib parser takes a lone surrogate escape (into a string that cannot be encoded): read for the
            # ID alone, which is answered only when it is clean text.
            value = json.loads(text) if isinstance(text, str) else None
        except (ValueError, RecursionError):
            value = None
        code, message = PARSE_ERROR, f"Parse error: {reason or 'the line is not JSON'}."
    else:
        # The message union's "missing field" and "not an object" errors hold the parsed line itself.
        value = next((e["input"] for e in errors if e["type"] == "missing" or len(e["loc"]) == 1), None)
        code, message = INVALID_REQUEST, "Invalid Request: the line is JSON but not a JSON-RPC 2.0 message."
    return JSONRPCError(jsonrpc="2.0", id=_request_id(value), error=ErrorData(code=code, message=message))


def _request_id(value: object) -> RequestId | None:
    """The `id` of a request (an object with a `method`) when an answer can carry it back: an integer, or a string
    that is valid Unicode (a lone surrogate in it cannot be written as UTF-8). Never a response's `id`: that names
    one of the server's own requests, so an error under it would land on whatever client request shares the number."""
    if not isinstance(value, dict) or "method" not in value:
        return None
    request_id = value.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None
    if isinstance(request_id, str):
        try:
            request_id.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return request_id


async def _read_messages(reader: asyncio.StreamReader, messages: IncomingWriter) -> None:
    """Split stdin into lines and parse each as a JSON-RPC message, decoded as the SDK's transport does (UTF-8, a
    byte that is not UTF-8 replaced), so both transports answer the same input alike; a line that is not a message is
    passed on as the error it raised (`_Answering` answers it). A line over `MAX_LINE_BYTES` is dropped as it
    arrives, never held whole."""
    import mcp_types
    from mcp.shared.message import SessionMessage

    async def deliver(line: bytes) -> None:
        if not line.strip():
            return
        try:
            text = line.decode("utf-8", errors="replace")
            message = mcp_types.jsonrpc_message_adapter.validate_json(text, by_name=False)
        except Exception as exc:  # any parse or validation failure: the line is not a message
            await messages.send(exc)
            return
        await messages.send(SessionMessage(message))

    async with messages:
        pending = b""
        skipping = False
        while chunk := await reader.read(READ_CHUNK):
            data, start = pending + chunk, 0
            while (end := data.find(b"\n", start)) >= 0:
                if skipping:  # the end of an overlong line
                    skipping = False
                else:  # with its newline, as the SDK's transport reads a line: a parse error names the same place
                    await deliver(data[start : end + 1])
                start = end + 1
            pending = data[start:]
            if len(pending) > MAX_LINE_BYTES:
                if not skipping:
                    logger.warning("ignored an input line longer than %d bytes", MAX_LINE_BYTES)
                pending, skipping = b"", True
        if pending and not skipping:
            await deliver(pending)


async def _write_messages(
    messages: MemoryObjectReceiveStream[SessionMessage],
    writer: asyncio.StreamWriter,
    written: anyio.Event,
    scope: anyio.CancelScope,
    answers: AnswerLifetime | None,
) -> None:
    """Write each message as one line, waiting while the client is not reading. Nothing keeps a message once
    written: a large answer is freed at once, and `answers` hears that it has been. A client that has gone ends
    the session."""
    from mcp_types import JSONRPCError, JSONRPCResponse

    try:
        async with messages:
            async for session_message in messages:
                outgoing = session_message.message
                del session_message
                answered = outgoing.id if isinstance(outgoing, JSONRPCResponse | JSONRPCError) else None
                data = outgoing.__pydantic_serializer__.to_json(outgoing, by_alias=True, exclude_unset=True)
                del outgoing
                writer.writelines((data, b"\n"))
                del data
                try:
                    await writer.drain()
                except ConnectionError:
                    logger.info("stdout closed by the client; shutting down")
                    scope.cancel()
                    return
                if answers is not None and answered is not None:
                    answers.written(answered)
    finally:
        written.set()
