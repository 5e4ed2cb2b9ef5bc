"""A fault-injecting reverse proxy on 127.0.0.1, in front of a real SCIM server.

The reconciler is pointed at the proxy; the proxy forwards every request to
the real server (scim2-server in the tests) unless a :class:`ProxyRule`
matches it, in which case it answers a status instead, holds the answer past
the client's timeout, breaks the answer off with a TCP reset, cuts or spoils
its JSON, rewrites a listing page's ``totalResults``, or first runs a callback
(to add or remove users on the platform or in the Okta emulator mid-run).

It serves from its own event loop in a daemon thread, so the reconciler can
run in the test's thread (``asyncio.run`` inside the CLI). Every request is
recorded with the fault fired on it, if any, and whether it reached the
server, so a test can say "no write reached the platform"::

    with run_fault_proxy(scim_url) as proxy:
        proxy.inject("GET", "/Users", ProxyFault.STATUS, status=503, query={"startIndex": "3"})
        ...  # configure the reconciler with proxy.base_url
        assert proxy.writes_forwarded() == []
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from reconciler.testing.okta import reset_connection

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SCIM_MEDIA_TYPE = "application/scim+json"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
MALFORMED_JSON = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 2, oops'
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host", "upgrade"}
)


class ProxyFault(StrEnum):
    STATUS = "status"
    """Answer ``status`` with a SCIM Error body (or ``body``), and ``Retry-After`` if given. The request
    reaches the server first only with ``after_forwarding`` (the write landed, its answer was lost)."""
    DELAY = "delay"
    """Forward, then hold the answer ``delay_s``: longer than the client's timeout, a read timeout
    (the request did reach the server, as with a slow server)."""
    RESET = "reset"
    """Forward, then send the answer's headers and half its body, and reset the connection."""
    TRUNCATE = "truncate"
    """Forward, then answer the first half of the body with a Content-Length that matches it."""
    MALFORMED = "malformed"
    """Forward, then answer a body that is not JSON under the server's status and headers."""
    TOTAL_RESULTS = "total_results"
    """Forward, then rewrite the ListResponse's ``totalResults`` to ``total_results``."""
    PASS = "pass"
    """Forward unchanged: for a rule that only runs its ``before`` callback."""


@dataclass
class ProxyRule:
    """Which requests a fault applies to, and the fault.

    ``method`` is one method, a tuple of them, or None for any; ``path`` is an
    :func:`fnmatch.fnmatchcase` pattern over the path below the SCIM base URL
    (``/Users``, ``/Users/*``); ``query`` holds parameters the request must
    carry with these values. The rule counts the requests it matches
    (``seen``) and fires on the ``nth`` and the ``times - 1`` after it
    (``times=None``: every one from the ``nth`` on). ``before`` runs (in a
    worker thread) each time the rule fires, before anything is forwarded.
    """

    method: str | tuple[str, ...] | None
    path: str
    fault: ProxyFault = ProxyFault.STATUS
    status: int = 503
    retry_after: str | None = None
    body: Any = None
    after_forwarding: bool = False
    delay_s: float = 0.0
    total_results: int | None = None
    before: Callable[[], object] | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    nth: int = 1
    times: int | None = 1
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str, query: Mapping[str, str]) -> bool:
        methods = (self.method,) if isinstance(self.method, str) else self.method
        if methods is not None and method.upper() not in {m.upper() for m in methods}:
            return False
        return fnmatch.fnmatchcase(path, self.path) and all(query.get(k) == v for k, v in self.query.items())

    def fires_on(self, match_number: int) -> bool:
        if match_number < self.nth:
            return False
        return self.times is None or match_number < self.nth + self.times


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy received.

    ``body`` is its JSON body (None if it had none); ``fault`` the fault fired
    on it (None: forwarded as is); ``forwarded`` whether it reached the
    server; ``status`` what the client was answered (None when the connection
    was reset).
    """

    method: str
    path: str
    query: Mapping[str, str]
    body: Any
    fault: ProxyFault | None
    forwarded: bool
    status: int | None
    at: float

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class FaultProxy:
    """The proxy's rules and request log; serve it with :func:`run_fault_proxy`."""

    def __init__(self, upstream_base_url: str) -> None:
        """``upstream_base_url``: the real server's SCIM base URL, e.g. ``http://127.0.0.1:8000/t1/v2``."""
        parts = urlsplit(upstream_base_url.rstrip("/"))
        self.upstream_origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path
        self.base_url = ""
        """The SCIM base URL to give the client (set once serving)."""
        self._lock = threading.Lock()
        self._rules: list[ProxyRule] = []
        self._requests: list[ProxiedRequest] = []
        self._session: aiohttp.ClientSession | None = None
        self.callback_errors: list[BaseException] = []
        """What ``before`` callbacks raised (the request is then answered 500): a test's own bug."""

    # -- driven from the test ------------------------------------------------

    def inject(
        self, method: str | tuple[str, ...] | None, path: str, fault: ProxyFault = ProxyFault.STATUS, **options: Any
    ) -> ProxyRule:
        """Add a :class:`ProxyRule` (``options`` are its fields); rules are checked in the order added."""
        rule = ProxyRule(method, path, fault, **options)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def requests(self) -> list[ProxiedRequest]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def seen(self, method: str, path: str = "*", **query: str) -> list[ProxiedRequest]:
        """The logged requests with this method whose path matches and whose query holds ``query``."""
        return [
            r
            for r in self.requests
            if r.method == method.upper()
            and fnmatch.fnmatchcase(r.path, path)
            and all(r.query.get(k) == v for k, v in query.items())
        ]

    def writes_forwarded(self) -> list[ProxiedRequest]:
        """The writes (POST, PUT, PATCH, DELETE) that reached the server."""
        return [r for r in self.requests if r.is_write and r.forwarded]

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- serving ---------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_startup.append(self._open_session)
        app.on_cleanup.append(self._close_session)
        return app

    async def _open_session(self, _app: web.Application) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False, connector=aiohttp.TCPConnector(limit=8))

    async def _close_session(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix(self.base_path) or "/"
        query = dict(request.query)
        rule = self._rule_for(request.method, path, query)
        if rule is not None and rule.before is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, rule.before)
            except Exception as error:
                self.callback_errors.append(error)
                raise
        body = await request.read()
        response, forwarded, status = await self._answer(request, rule, body)
        held_s = rule.delay_s if rule is not None and rule.fault is ProxyFault.DELAY else 0.0
        fault = rule.fault if rule is not None else None
        record = ProxiedRequest(
            request.method, path, query, _json_or_none(body), fault, forwarded, status, time.monotonic()
        )
        with self._lock:
            self._requests.append(record)
        await asyncio.sleep(held_s)  # logged first: the client has given up long before the answer goes
        return response

    def _rule_for(self, method: str, path: str, query: Mapping[str, str]) -> ProxyRule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, query):
                    continue
                rule.seen += 1
                if rule.fires_on(rule.seen):
                    rule.fired += 1
                    return rule
        return None

    async def _answer(
        self, request: web.Request, rule: ProxyRule | None, body: bytes
    ) -> tuple[web.StreamResponse, bool, int | None]:
        """The answer to send, whether the request was forwarded, and the status the client gets."""
        if rule is not None and rule.fault is ProxyFault.STATUS and not rule.after_forwarding:
            return _status_response(rule), False, rule.status
        answer = await self._forward(request, body)
        if rule is None or rule.fault in (ProxyFault.PASS, ProxyFault.DELAY):
            return _relay(answer), True, answer.status
        if rule.fault is ProxyFault.STATUS:
            return _status_response(rule), True, rule.status
        if rule.fault is ProxyFault.TRUNCATE:
            return _relay(answer, answer.body[: len(answer.body) // 2]), True, answer.status
        if rule.fault is ProxyFault.MALFORMED:
            return _relay(answer, MALFORMED_JSON), True, answer.status
        if rule.fault is ProxyFault.TOTAL_RESULTS:
            page = json.loads(answer.body)
            page["totalResults"] = rule.total_results
            return _relay(answer, json.dumps(page).encode()), True, answer.status
        assert rule.fault is ProxyFault.RESET
        await _reset_mid_body(request, answer)
        return web.Response(), True, None

    async def _forward(self, request: web.Request, body: bytes) -> _Answer:
        assert self._session is not None, "the proxy is not serving"
        headers = {name: value for name, value in request.headers.items() if name.lower() not in _HOP_BY_HOP}
        headers["Accept-Encoding"] = "identity"
        async with self._session.request(
            request.method, self.upstream_origin + request.path_qs, headers=headers, data=body or None
        ) as upstream:
            content = await upstream.read()
            relayed = {name: value for name, value in upstream.headers.items() if name.lower() not in _HOP_BY_HOP}
            return _Answer(upstream.status, relayed, content)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _status_response(rule: ProxyRule) -> web.Response:
    headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else {}
    payload = rule.body if rule.body is not None else _scim_error(rule.status)
    return web.Response(
        status=rule.status, body=json.dumps(payload).encode(), headers=headers, content_type=SCIM_MEDIA_TYPE
    )


def _scim_error(status: int) -> dict[str, Any]:
    return {"schemas": [ERROR_URN], "status": str(status), "detail": f"injected by the fault proxy ({status})"}


def _relay(answer: _Answer, body: bytes | None = None) -> web.Response:
    """The server's answer (its body replaced by ``body`` if given), Content-Length matching what is sent."""
    return web.Response(status=answer.status, headers=answer.headers, body=answer.body if body is None else body)


async def _reset_mid_body(request: web.Request, answer: _Answer) -> None:
    """Send the status line, the headers with the whole body's Content-Length and half the body; then reset."""
    transport = request.transport
    if transport is None:
        return
    head = "".join(f"{name}: {value}\r\n" for name, value in answer.headers.items())
    head = f"HTTP/1.1 {answer.status} OK\r\n{head}Content-Length: {len(answer.body)}\r\n\r\n"
    transport.write(head.encode() + answer.body[: len(answer.body) // 2])
    await asyncio.sleep(0.02)  # let the client read the headers and the first half: the reset comes mid-body
    reset_connection(transport)


@contextmanager
def run_fault_proxy(upstream_base_url: str, *, timeout_s: float = 10.0) -> Iterator[FaultProxy]:
    """Serve a :class:`FaultProxy` for ``upstream_base_url`` on a free 127.0.0.1 port, from its own thread."""
    proxy = FaultProxy(upstream_base_url)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
    thread.start()
    runner = web.AppRunner(proxy.make_app(), access_log=None, shutdown_timeout=0.5)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}{proxy.base_path}"

    try:
        proxy.base_url = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout_s)
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        loop.close()
