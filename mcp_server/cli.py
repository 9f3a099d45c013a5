"""Command line: argument parsing, logging to stderr, exit codes. The work itself lives in `server`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from mcp_server import __version__
from mcp_server.config import AUTH_TOKEN_ENV_VAR, ENV_VARS, ConfigError, Settings, check_credential, load_settings
from mcp_server.redaction import RedactingFilter, Redactor
from mcp_server.stdio import Wire, claim_wire, ensure_standard_descriptors

if TYPE_CHECKING:
    from mcp_server.server import RetellTelaServer

logger = logging.getLogger("mcp_server")

COMMANDS = ("serve", "call", "check")
SHUTDOWN_GRACE_SECONDS = 0.3
EXIT_USAGE = 2

EPILOG = """examples:
  retell-tela-mcp                                   serve MCP over stdio (what MCP clients launch)
  retell-tela-mcp call --demo get_test_run test_case_job_id=tcj_demo_failed
  retell-tela-mcp call get_test_case id=550e8400-e29b-41d4-a716-446655440000 include_generations=true
  retell-tela-mcp check                             show settings and where they came from; test both keys
  retell-tela-mcp serve --transport http --port 8000

API keys come from RETELL_API_KEY and TELA_API_KEY, or a JSON config file (--config or RETELL_TELA_MCP_CONFIG).
"""


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="JSON config file (default: $RETELL_TELA_MCP_CONFIG)")
    common.add_argument("--demo", action="store_true", help="serve built-in sample records: no keys, no network")
    common.add_argument("--retell-base-url", metavar="URL", help="Retell API base URL")
    common.add_argument("--tela-base-url", metavar="URL", help="Tela API base URL")
    common.add_argument("--timeout-seconds", type=float, metavar="S", help="per-request timeout (default 30)")
    common.add_argument(
        "--max-retries", type=int, metavar="N", help="retries for 429/5xx/connection faults (default 2)"
    )
    common.add_argument("--max-response-bytes", type=int, metavar="N", help="largest upstream body accepted")
    common.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR (logs go to stderr)")
    common.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="stderr log lines as text or JSON"
    )
    common.add_argument(
        "--allow-runs",
        action="store_true",
        default=None,
        help="list and allow the tools that start test runs (they spend vendor credits)",
    )
    common.add_argument(
        "--allow-edits",
        action="store_true",
        default=None,
        help="list and allow the tools that write tests and draft new agent or prompt versions (never live ones)",
    )
    common.add_argument(
        "--toolsets",
        metavar="LIST",
        help="comma list of the vendors whose tools are listed: retell, tela (default both)",
    )
    common.add_argument(
        "--no-app-views",
        dest="app_views",
        action="store_false",
        default=None,
        help="never offer the MCP App views (batch and run pages) to clients that can show them",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="retell-tela-mcp",
        description="MCP server that reads Retell AI test runs and Tela test cases.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{serve,call,check}")

    serve = commands.add_parser("serve", parents=[common], help="serve MCP (default command)")
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="HTTP port, 1-65535 (default 8000)")
    serve.add_argument("--stateless", action="store_true", help="HTTP: no sessions, so replicas can share clients")
    serve.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help=f"HTTP bearer token (better: ${AUTH_TOKEN_ENV_VAR}); required off loopback",
    )
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME", help="HTTP: extra Host name")
    serve.add_argument("--allowed-origin", action="append", default=[], metavar="URL", help="HTTP: browser Origin")

    call = commands.add_parser(
        "call", parents=[common], help="run one tool and print its JSON result (exit 1 on an error result)"
    )
    call.add_argument("tool", help="tool name, e.g. get_test_run")
    call.add_argument("arguments", nargs="*", metavar="name=value", help="tool arguments")

    commands.add_parser("check", parents=[common], help="show the effective configuration and test each vendor's key")
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 1 to 65535")
    return int(text)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "retell.base_url": args.retell_base_url,
        "tela.base_url": args.tela_base_url,
        "timeout_seconds": args.timeout_seconds,
        "max_retries": args.max_retries,
        "max_response_bytes": args.max_response_bytes,
        "log_level": args.log_level,
        "allow_runs": args.allow_runs,
        "allow_edits": args.allow_edits,
        "app_views": args.app_views,
        "toolsets": args.toolsets,
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a record's structured `event` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "event", {}))
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, redactor: Redactor, log_format: str = "text") -> None:
    """Every log line goes to stderr, scrubbed of secrets; stdout belongs to the protocol.

    Written synchronously: handing each record to a listener thread measured slower (a thread wake-up per line
    costs more than the line), and MCP clients read or pass on the server's stderr.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per request from httpx repeats our own per-call line; the SDK's HTTP transport writes session IDs
    # (bearer-like: whoever holds one can act in that session) and, stateless, a "Terminating session" per request
    # at INFO. Keep all of them for DEBUG.
    quiet = level if level == "DEBUG" else "WARNING"
    for name in ("httpx2", "mcp.server.streamable_http", "mcp.server.streamable_http_manager"):
        logging.getLogger(name).setLevel(quiet)


def _complain(message: str) -> int:
    sys.stderr.write(f"retell-tela-mcp: {message}\n")
    return EXIT_USAGE


def _fail(message: str) -> NoReturn:
    raise SystemExit(_complain(message))


def main(argv: Sequence[str] | None = None, *, platform: str = sys.platform) -> None:
    """The command line. `platform` is `sys.platform` unless a test plays another one (Windows' code paths, here)."""
    ensure_standard_descriptors()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")  # `retell-tela-mcp [options]` is `serve`
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(_flags(args), config_path=args.config)
    except ConfigError as exc:
        _fail(str(exc))
    for warning in settings.warnings:
        _complain(warning)

    transport = None
    if args.demo:
        from mcp_server.demo import demo_settings, demo_transport

        settings, transport = demo_settings(settings), demo_transport()

    level = settings.log_level
    if args.command in ("call", "check") and settings.source_of("log_level") == "default":
        level = "WARNING"  # a one-shot command prints its answer; routine INFO lines would only be noise
    token = (getattr(args, "auth_token", None) or os.environ.get(AUTH_TOKEN_ENV_VAR, "")).strip() or None
    if token is not None:
        try:
            check_credential(token)
        except ValueError as exc:
            _fail(f"config error: the HTTP auth token (--auth-token or ${AUTH_TOKEN_ENV_VAR}) {exc}")
    problem = _oauth_problem(settings, token)
    if problem is not None:
        _fail(f"config error: {problem}")
    configure_logging(level, Redactor([*settings.secrets(), *([token] if token else [])]), args.log_format)

    if args.command == "call":
        raise SystemExit(anyio.run(_call, settings, transport, args.tool, args.arguments))
    if args.command == "check":
        raise SystemExit(anyio.run(_check, settings, transport))
    _serve(settings, transport, args, token, platform)


def _oauth_problem(settings: Settings, token: str | None) -> str | None:
    """OAuth needs both its settings, and replaces the static token: one of them alone, or both with a token, is a
    mistake worth stopping for."""
    issuer, resource = settings.oauth_issuer, settings.oauth_resource
    if (issuer is None) != (resource is None):
        given, missing = ("oauth_issuer", "oauth_resource") if resource is None else ("oauth_resource", "oauth_issuer")
        return (
            f"{given} is set but {missing} is not: set {missing} (${ENV_VARS[missing]}) too, or neither "
            "(oauth_issuer: the authorization server's issuer URL; oauth_resource: this server's public URL)"
        )
    if issuer is not None and token is not None:
        return (
            f"oauth_issuer and the HTTP auth token (--auth-token or ${AUTH_TOKEN_ENV_VAR}) are both set: "
            "use OAuth access tokens or the static token, not both"
        )
    return None


def _hand_large_blocks_back() -> None:
    """glibc raises its mmap threshold to the largest block freed (up to 32 MiB), after which buffers the size of
    a vendor body come from the heap and stay with the process when freed. Fixed at 128 KiB, they go back to the
    system at once (measured with `bench/memory.py`: after four concurrent 9.6 MiB answers, 251 -> 204 MiB)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    mallopt(m_mmap_threshold, 128 * 1024)
    mallopt(m_trim_threshold, 256 * 1024)


def _serve(settings: Settings, transport: Any, args: argparse.Namespace, token: str | None, platform: str) -> None:
    # Over stdio, fd 1 belongs to the protocol from here on: whatever imports next cannot print onto it.
    wire = claim_wire(platform) if args.transport == "stdio" else None
    from mcp_server.server import build_server

    _hand_large_blocks_back()

    server = build_server(
        settings,
        transport=transport,
        single_client=args.transport == "stdio",
        stateless=args.transport == "http" and args.stateless,
    )
    # Start-up allocations (the SDK, pydantic schemas, our models) live as long as the process. Freezing them
    # keeps every full collection from re-scanning them: under a burst of calls those scans paused the loop
    # for ~100 ms at a time (measured: 200 concurrent calls took 222 or 340 ms, now a steady 221 ms).
    gc.freeze()
    if args.transport == "stdio":
        anyio.run(_serve_stdio, server, wire, platform)
        logger.info("stopped")
        return

    import uvicorn

    from mcp_server.auth import oauth_resource
    from mcp_server.web import AccessLogFilter, build_http_app, guarded_protocol

    try:
        app = build_http_app(
            server,
            host=args.host,
            auth_token=token,
            stateless=args.stateless,
            allowed_hosts=args.allowed_host,
            allowed_origins=args.allowed_origin,
            cors_origins=settings.cors_origins,
            oauth=oauth_resource(settings),
        )
    except ConfigError as exc:
        _fail(str(exc))
    logger.info(
        "serving MCP at http://%s:%d/mcp (%s)", args.host, args.port, "stateless" if args.stateless else "sessions"
    )
    # log_config=None: uvicorn's lines go through our stderr handler, redaction and format included; its access lines
    # without their query strings, where a client may have put a token.
    logging.getLogger("uvicorn.access").addFilter(AccessLogFilter())
    protocol = guarded_protocol(settings.http_header_timeout_seconds, settings.http_max_connections)
    uvicorn.run(
        app, host=args.host, port=args.port, http=protocol, log_config=None, log_level=settings.log_level.lower()
    )


async def _serve_stdio(server: RetellTelaServer, wire: Wire | None, platform: str) -> None:
    """Serve until stdin closes (exit 0), or until SIGTERM/SIGINT (exit 0, at once)."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(_exit_on_signal, tg.cancel_scope, wire is not None, platform)
        await server.run_stdio(wire)
        tg.cancel_scope.cancel()


async def _exit_on_signal(scope: anyio.CancelScope, thread_free: bool, platform: str) -> None:
    async with _stop_signals(platform) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            # Cancelling aborts in-flight calls and unwinds the lifespan, which closes the vendors' connections.
            scope.cancel()
            if thread_free:
                return
            with anyio.CancelScope(shield=True):
                await anyio.sleep(SHUTDOWN_GRACE_SECONDS)
            # The SDK's transport reads stdin in a worker thread that no cancellation can interrupt, so its task
            # group can only finish once the client writes or closes stdin. Our own work is done: leave.
            logging.shutdown()
            os._exit(0)


@asynccontextmanager
async def _stop_signals(platform: str) -> AsyncIterator[AsyncIterator[int]]:
    """The signals that stop the server, as they arrive. anyio's receiver needs the event loop's
    `add_signal_handler`, which Windows' loop lacks (NotImplementedError); there Python's own handlers, which
    Windows calls for Ctrl+C and Ctrl+Break, hand each signal to the loop."""
    if platform != "win32":
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            yield signals
        return
    loop = asyncio.get_running_loop()
    send, receive = anyio.create_memory_object_stream[int](8)

    def deliver(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(send.send_nowait, signum)

    stops = [signal.SIGTERM, signal.SIGINT, *([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else [])]
    previous = {signum: signal.signal(signum, deliver) for signum in stops}
    try:
        async with receive:
            yield receive
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def parse_arguments(pairs: Sequence[str], input_schema: dict[str, Any]) -> dict[str, Any]:
    """`name=value` pairs typed by the tool's input schema: strings stay as given, other types are parsed as JSON."""
    properties: dict[str, Any] = input_schema.get("properties", {})
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise ValueError(f"argument {pair!r} is not name=value")
        if name not in properties:
            raise ValueError(f"unknown argument {name!r} (expected: {', '.join(properties)})")
        if _accepts_string(properties[name]):
            arguments[name] = raw  # an ID or key stays text even when it looks like a number
            continue
        try:
            arguments[name] = json.loads(raw)
        except json.JSONDecodeError:
            arguments[name] = raw  # let the server's input schema explain what it expected
    return arguments


def _accepts_string(schema: dict[str, Any]) -> bool:
    """Whether a property's schema admits a string: `"type": "string"`, a type list, or an `anyOf` branch."""
    kinds = schema.get("type")
    if kinds == "string" or (isinstance(kinds, list) and "string" in kinds):
        return True
    return any(_accepts_string(branch) for branch in schema.get("anyOf", []) if isinstance(branch, dict))


async def _call(settings: Settings, transport: Any, tool: str, pairs: list[str]) -> int:
    """Run one tool through a real MCP client session with this server, print its JSON, exit 1 on an error."""
    from mcp import Client

    from mcp_server.server import build_server

    async with Client(build_server(settings, transport=transport, single_client=True)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        if tool not in tools:
            return _complain(f"unknown tool {tool!r} (tools: {', '.join(tools)})")
        try:
            arguments = parse_arguments(pairs, tools[tool].input_schema)
        except ValueError as exc:
            return _complain(f"{tool}: {exc}")
        result = await client.call_tool(tool, arguments)
    text = "".join(block.text for block in result.content if block.type == "text")
    if sys.stdout.isatty():
        with contextlib.suppress(json.JSONDecodeError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")
    return 1 if result.is_error else 0


async def _check(settings: Settings, transport: Any) -> int:
    """Print the configuration table and one verdict per vendor; exit 0 only if every configured key works."""
    from mcp_server.check import probe_vendors, render

    verdicts = await probe_vendors(settings, transport=transport)
    sys.stdout.write(render(settings, verdicts) + "\n")
    return 0 if all(v.ok for v in verdicts) else 1
