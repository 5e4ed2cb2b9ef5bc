"""Faults a test injects: answers replaced by errors, cut short, delayed, dropped or reshaped, and actions
run between a request and its answer."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web

from reconciler.testing.okta.errors import status_error
from reconciler.testing.okta.paging import JSON


class FaultKind(StrEnum):
    STATUS = "status"
    """Answer ``status`` with an Okta error body."""
    DROP = "drop"
    """Close the connection without answering."""
    NON_JSON = "non_json"
    """Answer ``status`` with an HTML page instead of JSON."""
    TRUNCATED = "truncated"
    """Answer as usual, but with the body cut to ``keep_bytes`` (half by default) and a Content-Length
    that matches the cut: well-formed HTTP carrying broken JSON."""
    RESET = "reset"
    """Send the usual answer's headers (with the whole body's Content-Length) and ``keep_bytes`` of its
    body (half by default), then reset the connection."""
    DELAY = "delay"
    """Wait ``delay_s`` before answering as usual; longer than the client's timeout, it is a read timeout."""
    CALL = "call"
    """Run ``action`` once the request is authorized and answered, before the answer is sent: a change
    made between two pages (revoke the token, unassign a user) shows from the next request on."""
    RESHAPE = "reshape"
    """Answer as usual, but with the JSON body passed through ``reshape`` (which may change it in place or
    return a new one): the answer a proxy or gateway that drops fields or query parameters would pass on."""


REPLACING_FAULTS = frozenset({FaultKind.STATUS, FaultKind.DROP, FaultKind.NON_JSON})
"""Faults that answer in place of the handler; the others change or delay the handler's own answer."""
CUTTING_FAULTS = frozenset({FaultKind.TRUNCATED, FaultKind.RESET})
"""Faults that break the handler's own answer off."""


@dataclass
class FaultRule:
    """Replaces some answers to requests whose path matches ``path``.

    ``path`` is an :func:`fnmatch.fnmatchcase` pattern over the request path,
    without the query (``*`` also matches ``/``). The rule counts the requests
    it matches (``seen``) and fires on the ``nth`` one and the ``times - 1``
    after it; ``times=None`` fires on every match from the ``nth`` on.
    With ``rate_limit_headers=False`` the answer carries no ``Date`` and no
    ``X-Rate-Limit-*`` headers, which the okta SDK's retry code cannot handle.

    aiohttp clients resend an idempotent request once when the connection
    drops, so a DROP meant to reach the caller must fire twice (``times=2``).
    ``keep_bytes`` (TRUNCATED, RESET), ``delay_s`` (DELAY), ``action``
    (CALL) and ``reshape`` (RESHAPE) go with their kinds.
    """

    path: str
    kind: FaultKind = FaultKind.STATUS
    status: int = 500
    nth: int = 1
    times: int | None = 1
    method: str | None = None
    rate_limit_headers: bool = True
    keep_bytes: int | None = None
    delay_s: float = 0.0
    action: Callable[[], object] | None = None
    reshape: Callable[[Any], Any] | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        method_matches = self.method is None or self.method.upper() == method.upper()
        return method_matches and fnmatch.fnmatchcase(path, self.path)

    def fires_on(self, match_number: int) -> bool:
        if match_number < self.nth:
            return False
        return self.times is None or match_number < self.nth + self.times


class FaultRules:
    """The rules a test added, checked in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def firing(self, method: str, path: str) -> FaultRule | None:
        """The first rule that fires on this request; each rule matched up to it counts the request."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.fires_on(rule.seen):
                    rule.fired += 1
                    return rule
        return None


def fault_response(
    request: web.Request, rule: FaultRule, rate_headers: Mapping[str, str]
) -> tuple[web.StreamResponse, int | None]:
    """The answer a REPLACING fault gives in place of the handler's, and its status (None: no answer)."""
    if rule.kind is FaultKind.DROP:
        _close_transport(request)
        return web.Response(), None
    if rule.kind is FaultKind.NON_JSON:
        content_type = "text/html"
        body = f"<html><body><h1>{rule.status} Service error</h1></body></html>".encode()
    else:
        content_type = JSON
        body = json.dumps(status_error(rule.status)).encode()
    if not rule.rate_limit_headers:
        _write_bare_response(request, rule.status, content_type, body)
        return web.Response(), rule.status
    response = web.Response(body=body, status=rule.status, content_type=content_type, headers=rate_headers)
    return response, rule.status


def cut_response(
    request: web.Request, rule: FaultRule, response: web.StreamResponse
) -> tuple[web.StreamResponse, int | None]:
    """The handler's answer with its body cut short (TRUNCATED), or broken off by a reset (RESET)."""
    body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
    kept = body[: len(body) // 2 if rule.keep_bytes is None else rule.keep_bytes]
    headers = {name: value for name, value in response.headers.items() if name.lower() != "content-length"}
    if rule.kind is FaultKind.TRUNCATED:
        return web.Response(body=kept, status=response.status, headers=headers), response.status
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = f"HTTP/1.1 {response.status} OK\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    if request.transport is not None:
        request.transport.write(head.encode() + kept)
        reset_connection(request.transport)
    return web.Response(), None


def reshaped_response(rule: FaultRule, response: web.StreamResponse) -> tuple[web.StreamResponse, int | None]:
    """The handler's JSON answer passed through ``rule.reshape``, with the same status and headers."""
    assert rule.reshape is not None
    body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b"null"
    decoded = json.loads(body)
    changed = rule.reshape(decoded)
    reshaped = json.dumps(decoded if changed is None else changed).encode()
    headers = {name: value for name, value in response.headers.items() if name.lower() != "content-length"}
    return web.Response(body=reshaped, status=response.status, headers=headers), response.status


def reset_connection(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP reset (SO_LINGER 0) once what was written is flushed, as a crashed peer or a proxy does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.close()


def _close_transport(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


def _write_bare_response(request: web.Request, status: int, content_type: str, body: bytes) -> None:
    """Write an HTTP answer straight to the socket and close it.

    aiohttp.web always adds a ``Date`` header; this is the one way to answer
    without one (as some proxies and load balancers do).
    """
    head = (
        f"HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    if request.transport is not None:
        request.transport.write(head.encode() + body)
    _close_transport(request)
