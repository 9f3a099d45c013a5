"""MCP over stdio without threads: newline-delimited JSON-RPC on the process's pipes, served by the event loop.

The SDK's `stdio_server` reads stdin and writes stdout through worker threads: two thread hops per call, a read
that no cancellation can interrupt (so a signal could only end the process with `os._exit`), an unbounded line
buffer, and a writer that keeps the last message it wrote alive until the next one (after a 9.6 MiB answer, its
~100 MiB of parsed objects). Here both pipes are non-blocking and read and written by asyncio; parsing and the
session are the SDK's own. Where that cannot work (Windows; stdin or stdout a regular file, which cannot be
polled) the SDK's transport serves instead.

As the SDK does while serving, fd 0 reads the null device and fd 1 writes to stderr, so a library's stray `print`
or a child process cannot corrupt the stream; here from before the server's code is even loaded until the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:  # the SDK loads when serving starts: `claim_wire` runs before anything can print
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from mcp.shared.message import SessionMessage

    Incoming = MemoryObjectReceiveStream[SessionMessage | Exception]
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
    """The client's pipes, on private descriptors: fd 0 now reads the null device and fd 1 writes to stderr."""

    stdin: int
    stdout: int


def claim_wire() -> Wire | None:
    """Take stdin and stdout for the protocol, now, before anything else can write to fd 1; None where they cannot
    be served without threads (Windows; a regular file, which cannot be polled), which leaves them to the SDK."""
    if sys.platform == "win32":
        return None
    try:
        modes = [os.fstat(fd).st_mode for fd in (0, 1)]
    except OSError:
        return None
    if not all(stat.S_ISFIFO(m) or stat.S_ISSOCK(m) or stat.S_ISCHR(m) for m in modes):
        return None
    return Wire(stdin=_divert(0, os.open(os.devnull, os.O_RDONLY)), stdout=_divert(1, os.dup(2)))


@asynccontextmanager
async def stdio_streams(wire: Wire | None) -> AsyncIterator[tuple[Incoming, Outgoing]]:
    """The read and write streams a server session runs on: over `wire` without threads, else the SDK's way."""
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage

    if wire is None:
        async with stdio_server() as streams:
            yield streams
        return
    loop = asyncio.get_running_loop()
    wire_in, wire_out = wire.stdin, wire.stdout
    reader = asyncio.StreamReader(limit=READ_CHUNK)
    read_pipe, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    output = _Output()
    write_pipe, _ = await loop.connect_write_pipe(lambda: output, os.fdopen(wire_out, "wb", buffering=0))
    incoming_writer, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_reader = anyio.create_memory_object_stream[SessionMessage](0)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_read_messages, reader, incoming_writer)
            tg.start_soon(_write_messages, outgoing_reader, write_pipe, output, tg.cancel_scope)
            try:
                yield incoming, outgoing
            finally:
                outgoing.close()  # the writer sends what it holds, then ends
                with anyio.move_on_after(FLUSH_SECONDS, shield=True):
                    while write_pipe.get_write_buffer_size() and not output.closed.is_set():
                        await anyio.sleep(0.005)
                tg.cancel_scope.cancel()
    finally:
        for pipe, descriptor in ((read_pipe, wire_in), (write_pipe, wire_out)):
            # The O_NONBLOCK flag belongs to the pipe (or terminal), shared with others: hand it back as found.
            # A pipe already closing has closed, or will close, its descriptor, whose number may be reused.
            if not pipe.is_closing():
                with suppress(OSError):
                    os.set_blocking(descriptor, True)
        write_pipe.abort()  # whatever a client that stopped reading did not take is dropped
        read_pipe.close()
        # fd 0 and 1 stay diverted: until the process ends, nothing else may write to the client's stdout.


def _divert(fd: int, diversion: int) -> int:
    """Move fd's stream to a private descriptor (returned) and point fd at `diversion` instead."""
    private = os.dup(fd)
    os.set_inheritable(private, False)
    os.dup2(diversion, fd)
    os.close(diversion)
    return private


async def _read_messages(reader: asyncio.StreamReader, messages: IncomingWriter) -> None:
    """Split stdin into lines and parse each as a JSON-RPC message; a line that is not one is passed on as the
    error it raised (the session ignores it, as over the SDK's transport). A line over `MAX_LINE_BYTES` is
    dropped as it arrives, never held whole."""
    import mcp_types
    from mcp.shared.message import SessionMessage

    async def deliver(line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except Exception as exc:  # any parse or validation failure: the line is not a message
            await messages.send(exc)
            return
        await messages.send(SessionMessage(message))

    async with messages:
        pending = b""
        skipping = False
        while chunk := await reader.read(READ_CHUNK):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if skipping:  # the end of an overlong line
                    skipping = False
                else:
                    await deliver(line)
            if len(pending) > MAX_LINE_BYTES:
                if not skipping:
                    logger.warning("ignored an input line longer than %d bytes", MAX_LINE_BYTES)
                pending, skipping = b"", True
        if pending and not skipping:
            await deliver(pending)


async def _write_messages(
    messages: MemoryObjectReceiveStream[SessionMessage],
    pipe: asyncio.WriteTransport,
    output: _Output,
    scope: anyio.CancelScope,
) -> None:
    """Write each message as one line. Nothing keeps a message once written: a large answer is freed at once."""
    async with messages:
        while True:
            try:
                outgoing = (await messages.receive()).message
            except anyio.EndOfStream:
                break
            data = outgoing.__pydantic_serializer__.to_json(outgoing, by_alias=True, exclude_unset=True)
            del outgoing
            pipe.writelines((data, b"\n"))
            del data
            if not await output.drain():
                logger.info("stdout closed by the client; shutting down")
                scope.cancel()
                return


class _Output(asyncio.Protocol):
    """Flow control for the stdout pipe: `drain` waits while the client is not reading, and says whether the pipe
    is still open."""

    def __init__(self) -> None:
        self._writable = asyncio.Event()
        self._writable.set()
        self.closed = asyncio.Event()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self._writable.set()

    async def drain(self) -> bool:
        await self._writable.wait()
        return not self.closed.is_set()
