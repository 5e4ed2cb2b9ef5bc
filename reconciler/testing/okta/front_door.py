"""What every request goes through around its handler: latency, rate limits, faults, the auth check
(``/api/v1/`` only), Okta's request id, errors as Okta words them, and the request log tests read."""

from __future__ import annotations

import asyncio
import fnmatch
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from reconciler.testing.okta.errors import OktaHTTPError, error_code, okta_error
from reconciler.testing.okta.faults import (
    CUTTING_FAULTS,
    REPLACING_FAULTS,
    FaultKind,
    FaultRules,
    cut_response,
    fault_response,
    reshaped_response,
)
from reconciler.testing.okta.oauth import authorization_scheme
from reconciler.testing.okta.rate_limits import RateLimiter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator received, for tests to inspect.

    ``status`` is None when the connection was dropped by a fault.
    ``auth_scheme`` is ``SSWS``, ``Bearer``, ... (see :func:`authorization_scheme`), never the credential.
    """

    method: str
    path: str
    query: Mapping[str, str]
    auth_scheme: str | None
    status: int | None


class RequestLog:
    """Every request received, oldest first."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def add(self, request: web.Request, status: int | None) -> None:
        scheme = authorization_scheme(request.headers.get("Authorization", ""))
        record = RequestRecord(request.method, request.path, dict(request.query), scheme, status)
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """A copy of the log."""
        with self._lock:
            return list(self._records)

    def count(self, path: str = "*", method: str | None = None) -> int:
        """How many logged requests match an fnmatch ``path`` pattern (and ``method``)."""
        return sum(
            1
            for record in self.records()
            if fnmatch.fnmatchcase(record.path, path) and (method is None or record.method == method.upper())
        )

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class FrontDoor:
    """The aiohttp middleware that wraps every handler (:meth:`middleware`)."""

    def __init__(
        self, rate_limiter: RateLimiter, faults: FaultRules, log: RequestLog, authorize: Callable[[web.Request], None]
    ) -> None:
        """``authorize`` lets an ``/api/v1/`` request through or raises its :class:`OktaHTTPError`."""
        self.rate_limiter = rate_limiter
        self.faults = faults
        self.log = log
        self.latency_s = 0.0
        """How long every answer waits (0: none)."""
        self._authorize = authorize

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        status: int | None
        try:
            response, status = await self._answer(request, handler)
        except OktaHTTPError as error:
            response = web.json_response(error.body, status=error.status, headers=error.headers)
            status = error.status
        self.log.add(request, status)
        return response

    async def _answer(self, request: web.Request, handler: Handler) -> tuple[web.StreamResponse, int | None]:
        """The answer and its status (None: the connection was dropped or reset)."""
        rate_headers = self.rate_limiter.count(request.path)
        fault = self.faults.firing(request.method, request.path)
        if fault is not None and fault.kind in REPLACING_FAULTS:
            return fault_response(request, fault, rate_headers)
        if fault is not None and fault.kind is FaultKind.DELAY:
            await asyncio.sleep(fault.delay_s)
        try:
            if request.path.startswith("/api/v1/"):
                self._authorize(request)
            response = await handler(request)
        except OktaHTTPError as error:
            error.headers.update(rate_headers)
            raise
        except web.HTTPException as http_error:
            body = okta_error(error_code(http_error.status), http_error.reason)
            raise OktaHTTPError(http_error.status, body, rate_headers) from None
        response.headers.update(rate_headers)
        response.headers["X-Okta-Request-Id"] = secrets.token_urlsafe(18)
        if fault is not None and fault.action is not None:
            fault.action()
        if fault is not None and fault.kind in CUTTING_FAULTS:
            return cut_response(request, fault, response)
        if fault is not None and fault.kind is FaultKind.RESHAPE:
            return reshaped_response(fault, response)
        return response, response.status
