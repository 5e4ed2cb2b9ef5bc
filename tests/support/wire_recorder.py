"""A loopback HTTP proxy that records every exchange and can slow it down: the crash tests' view of the wire.

Put in front of the SCIM server (or the Okta emulator), it shows what a
reconciler really sent, whatever the reconciler's own journal says: each
request with its body, when it arrived, and the answer, if any. A request is
relayed whole even when its client dies meanwhile, as a real server would
process it: a killed reconciler's last writes still land, and the next run
must cope. The latency is split around the relay (half before, half after),
so that a kill can land while a write is on its way or after it landed but
before its answer came back.
"""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding"}
    | {"upgrade", "content-length"}
)


@dataclass
class Exchange:
    """One request as the proxy saw it, and what became of it."""

    method: str
    path: str
    """Path and query, as sent."""
    body: Any
    """The request's JSON body; None without one."""
    arrived: float
    """time.monotonic() when the whole request had arrived."""
    arrived_at: datetime
    """The same moment on the wall clock (UTC), to compare with the store's timestamps."""
    status: int | None = None
    """The server's answer; None until it answered."""
    answer: Any = None
    """The answer's JSON body, if any."""
    answer_headers: dict[str, str] = field(default_factory=dict)
    answered: float | None = None
    """time.monotonic() when the answer had been passed on (or found undeliverable)."""
    delivered: bool = False
    """Whether the client was still there to take the answer."""

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


class RecordingProxy:
    """Relays 127.0.0.1:``port`` to ``upstream`` (``http://host:port``), recording and delaying each exchange."""

    def __init__(self, upstream: str, *, read_latency_s: float = 0.0, write_latency_s: float = 0.0) -> None:
        parts = urlsplit(upstream)
        assert parts.scheme == "http" and parts.hostname and parts.port, upstream
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.read_latency_s, self.write_latency_s = read_latency_s, write_latency_s
        self._exchanges: list[Exchange] = []
        self._changed = threading.Condition()
        self._in_flight = 0
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def exchanges(self, since: int = 0) -> list[Exchange]:
        """The exchanges so far, from the ``since``-th on (``len`` of an earlier answer marks a moment)."""
        with self._changed:
            return self._exchanges[since:]

    def wait_for(self, condition: Callable[[list[Exchange]], bool], timeout_s: float) -> bool:
        """Wait until ``condition(exchanges so far)`` holds; False if it did not within ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self._exchanges), timeout=max(0.0, timeout_s))

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until no request is being relayed (a killed client's last writes have landed)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_flight == 0, timeout=timeout_s):
                raise TimeoutError(f"{self._in_flight} request(s) still relayed after {timeout_s} s")

    # --- called by the handler threads ---

    def _arrived(self, exchange: Exchange) -> None:
        with self._changed:
            self._exchanges.append(exchange)
            self._in_flight += 1
            self._changed.notify_all()

    def _answered(self, exchange: Exchange, delivered: bool) -> None:
        with self._changed:
            exchange.answered, exchange.delivered = time.monotonic(), delivered
            self._in_flight -= 1
            self._changed.notify_all()

    def _latency(self, method: str) -> float:
        return self.write_latency_s if method in WRITE_METHODS else self.read_latency_s


def proxied(url: str, proxy: RecordingProxy) -> str:
    """``url`` through the proxy (same path: the proxy relays paths as they are)."""
    return proxy.url + urlsplit(url).path


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-connection resets it: expected here, not worth a traceback."""


def _json_or_none(raw: bytes, encoding: str | None = None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(gzip.decompress(raw) if encoding == "gzip" else raw)
    except (ValueError, OSError):
        return None


def _handler_for(proxy: RecordingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._relay()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            exchange = Exchange(self.command, self.path, _json_or_none(raw), time.monotonic(), datetime.now(UTC))
            proxy._arrived(exchange)
            delivered = False
            try:
                half = proxy._latency(self.command) / 2
                time.sleep(half)
                status, headers, body = self._forward(raw)
                exchange.status, exchange.answer_headers = status, dict(headers)
                exchange.answer = _json_or_none(body, exchange.answer_headers.get("Content-Encoding"))
                time.sleep(half)
                delivered = self._answer(status, headers, body)
            finally:
                proxy._answered(exchange, delivered)

        def _forward(self, raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        upstream.putheader(name, value)
                upstream.putheader("Content-Length", str(len(raw)))
                upstream.putheader("Connection", "close")
                upstream.endheaders(raw or None)
                response = upstream.getresponse()
                body = response.read()
                headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                return response.status, headers, body
            finally:
                upstream.close()

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> bool:
            try:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("server", "date"):  # send_response wrote its own
                        self.send_header(name, value)
                if status not in (204, 304):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status not in (204, 304):
                    self.wfile.write(body)
                self.wfile.flush()
                return True
            except OSError:  # the client is gone (killed): the request was processed all the same
                self.close_connection = True
                return False

    return Handler
