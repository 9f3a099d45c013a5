"""A real HTTP server on 127.0.0.1 that plays both vendors, for tests that run the server as a process."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Reply:
    status: int
    body: object
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[str], Reply]


class LoopbackVendor:
    """Answers GETs from `route(path)`; records each request's path and headers."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.seen: list[Seen] = []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                vendor.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                reply = vendor.route(self.path)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@contextmanager
def loopback_vendor(route: Route) -> Iterator[LoopbackVendor]:
    vendor = LoopbackVendor(route)
    thread = threading.Thread(target=vendor.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield vendor
    finally:
        vendor.httpd.shutdown()
        vendor.httpd.server_close()
