"""The HTTP plumbing the provider loopbacks share: a threaded server on 127.0.0.1 with a request log.

A subclass implements `respond(request) -> (status, json_body, headers)` (or raises `Reply`); the
base parses the request, redacts the auth header in the log and writes the JSON answer.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

REDACTED_HEADERS = frozenset({"authorization"})


class Reply(Exception):
    """Raised while handling a request to answer it at once (errors, faults)."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class Drop(Exception):
    """Raised while handling a request to close the connection without answering (a lost response)."""


@dataclass
class Request:
    """One parsed HTTP request: query and form parameters as lists, JSON body parsed when it is JSON."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_body: bytes
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name` in the query string or form body."""
        values = self.query.get(name) or self.form.get(name)
        return values[0] if values else default


def parse_request(method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Request:
    url = urlsplit(target)
    request = Request(method, url.path, parse_qs(url.query, keep_blank_values=True), headers, raw_body)
    content_type = headers.get("content-type", "")
    if raw_body and "json" in content_type:
        try:
            request.json = json.loads(raw_body)
        except ValueError:
            request.json = None
    elif raw_body and "x-www-form-urlencoded" in content_type:
        request.form = parse_qs(raw_body.decode("utf-8"), keep_blank_values=True)
    return request


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded server on a free 127.0.0.1 port that knows its owner, binds without reverse DNS and
    stays quiet when a client hangs up (expected in tests)."""

    daemon_threads = True

    def __init__(self, owner: Any, handler: type[BaseHTTPRequestHandler]) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), handler)

    def server_bind(self) -> None:
        """Bind without `socket.getfqdn` (reverse DNS can stall)."""
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up is expected in tests."""


class _Handler(BaseHTTPRequestHandler):
    server: QuietHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: avoid 40 ms delayed-ACK stalls.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's per-request stderr logging."""

    def do_GET(self) -> None:
        self.server.owner._dispatch(self)

    def do_POST(self) -> None:
        self.server.owner._dispatch(self)

    def do_PUT(self) -> None:
        self.server.owner._dispatch(self)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        try:
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class LoopbackServer:
    """Serves `respond` on an ephemeral 127.0.0.1 port in a daemon thread; use as a context manager."""

    thread_name = "loopback"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._requests: list[dict[str, Any]] = []
        self._httpd: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def respond(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        """Answer one request: (status, JSON body or None, extra headers)."""
        raise NotImplementedError

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._httpd = QuietHTTPServer(self, _Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (only while started)."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first: method, path (query included), headers (auth redacted), body, status.

        ``status`` stays ``None`` for a request answered by dropping the connection.
        """
        with self._lock:
            return copy.deepcopy(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _log_entry(self, handler: _Handler, request: Request, headers: dict[str, str], raw_body: bytes) -> dict[str, Any]:
        """What the request log keeps of one request (a server may keep more)."""
        return {
            "method": handler.command,
            "path": handler.path,
            "headers": {k: "***" if k in REDACTED_HEADERS else v for k, v in headers.items()},
            "body": request.json if request.json is not None else request.form or None,
            "status": None,
        }

    def _answered(self, entry: dict[str, Any], status: int, body: Any) -> None:
        entry["status"] = status

    def _send(self, handler: _Handler, status: int, body: Any, headers: Mapping[str, str]) -> None:
        handler.send_json(status, body, headers)

    def _dispatch(self, handler: _Handler) -> None:
        raw_body = handler.read_body()
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = parse_request(handler.command, handler.path, headers, raw_body)
        entry = self._log_entry(handler, request, headers, raw_body)
        with self._lock:
            self._requests.append(entry)
        try:
            status, body, extra = self.respond(request)
        except Reply as reply:
            status, body, extra = reply.status, reply.body, reply.headers
        except Drop:
            handler.close_connection = True
            return
        with self._lock:
            self._answered(entry, status, body)
        self._send(handler, status, body, extra)
