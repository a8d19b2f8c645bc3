"""A tiny relying-party web server for tests: serves documents, records what the OP sends.

Started on 127.0.0.1 with an ephemeral port in a daemon thread; it plays the parts of a
portal that the OP reaches over HTTP: jwks_uri, sector_identifier_uri, request_uri, and
back-channel logout receivers. Use it as a context manager so it always shuts down:

    with RPServer() as rp:
        rp.serve("/jwks", {"keys": [...]})
        rp.url("/jwks")            # http://127.0.0.1:<port>/jwks
        rp.fail_next("/bc", 1)     # the next POST to /bc answers 500
        rp.requests                # every request received, in order
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/json"
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow server)
    trickle: tuple[int, float] | None = None  # (chunks, seconds between): a slow body
    slow_headers: tuple[int, float] | None = None  # (header lines, seconds between)


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass  # the OP hanging up on a slow answer is what some tests want


class RPServer:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: list[Received] = []
        self.completed: list[str] = []  # paths whose full answer was written
        self._failures: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()  # wakes slow handlers at shutdown
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------

    def serve(self, path: str, body, content_type: str | None = None, status: int = 200,
              **options) -> str:
        """Answer GET/POST `path` with `body` (dict/list as JSON, str, or bytes); returns URL."""
        if isinstance(body, (dict, list)):
            raw, default_type = json.dumps(body).encode(), "application/json"
        elif isinstance(body, str):
            raw, default_type = body.encode(), "text/plain"
        else:
            raw, default_type = bytes(body), "application/octet-stream"
        self.routes[path] = Route(raw, content_type or default_type, status, **options)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = Route(b"", "text/plain", status, {"Location": location})
        return self.url(path)

    def fail_next(self, path: str, times: int = 1, status: int = 500) -> None:
        """The next `times` requests to `path` answer `status` instead of the route."""
        with self._lock:
            self._failures[path] = [status] * times

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def received(self, path: str, method: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests
                    if r.path.split("?")[0] == path and (method is None or r.method == method)]

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def start(self) -> RPServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: nothing left open

            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                with server._lock:
                    server.requests.append(Received(self.command, self.path,
                                                    dict(self.headers), body))
                    failures = server._failures.get(path)
                    failing = failures.pop(0) if failures else None
                route = server.routes.get(path)
                if failing is not None:
                    route = Route(b'{"error":"unavailable"}', status=failing)
                elif route is None:
                    route = Route(b'{"error":"not found"}', status=404)
                if route.delay and server._stop.wait(route.delay):
                    return
                self.send_response(route.status)
                if route.slow_headers:
                    lines, pause = route.slow_headers
                    self.flush_headers()  # the status line goes out at once
                    for n in range(lines):
                        self.wfile.write(f"X-Slow-{n}: x\r\n".encode())
                        self.wfile.flush()
                        if server._stop.wait(pause):
                            return
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if route.trickle:
                    chunks, pause = route.trickle
                    size = max(1, len(route.body) // chunks)
                    for start in range(0, len(route.body), size):
                        self.wfile.write(route.body[start:start + size])
                        self.wfile.flush()
                        if server._stop.wait(pause):
                            return
                else:
                    self.wfile.write(route.body)
                self.wfile.flush()
                with server._lock:
                    server.completed.append(path)

            def do_GET(self):
                self._handle()

            def do_POST(self):
                self._handle()

        self._httpd = _QuietServer((self.host, 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
