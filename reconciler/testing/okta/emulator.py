"""The emulator: the org, its resources' endpoints, and what a test does to the traffic (latency, faults,
rate limits, the request log)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from reconciler.testing.okta.app_groups import AppGroupAdmin
from reconciler.testing.okta.control import ControlAdmin
from reconciler.testing.okta.faults import FaultKind, FaultRule, FaultRules
from reconciler.testing.okta.front_door import FrontDoor, RequestLog, RequestRecord
from reconciler.testing.okta.groups import GroupAdmin
from reconciler.testing.okta.oauth import CredentialAdmin
from reconciler.testing.okta.rate_limits import DEFAULT_RATE_LIMIT, RATE_LIMIT_WINDOW_S, RateLimitBucket, RateLimiter
from reconciler.testing.okta.system_log import SystemLogAdmin


class OktaEmulator(CredentialAdmin, ControlAdmin, AppGroupAdmin, GroupAdmin, SystemLogAdmin):
    """In-memory Okta org state plus the aiohttp app that serves it.

    Each resource's part lives in its module (users, groups, app users, app groups, credentials); this
    class puts them together and adds the traffic controls. The control endpoint (:mod:`.control`) lets a
    person change the org over HTTP while it serves. Serve it with :func:`run_okta_emulator`
    (async) or :func:`okta_emulator_in_thread` (sync code, subprocess tests).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        api_tokens: Iterable[str] = (),
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_limits: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.time,
        rate_limit_window_s: float = RATE_LIMIT_WINDOW_S,
    ) -> None:
        """``rate_limit_window_s``: Okta's windows last a minute; tests of pacing shorten them."""
        super().__init__(seed=seed, api_tokens=api_tokens, clock=clock)
        rate_limiter = RateLimiter(rate_limit, rate_limits, window_s=rate_limit_window_s, clock=clock)
        self._front_door = FrontDoor(rate_limiter, FaultRules(), RequestLog(), self._authorize)

    def make_app(self) -> web.Application:
        """The aiohttp application: every resource's routes behind the front door."""
        app = web.Application(middlewares=[self._front_door.middleware])
        self._add_token_routes(app.router)
        self._add_app_user_routes(app.router)
        self._add_app_group_routes(app.router)
        self._add_user_routes(app.router)
        self._add_group_routes(app.router)
        self._add_control_routes(app.router)
        self._add_log_routes(app.router)
        return app

    # -- latency, faults, rate limits, request log ---------------------------

    def set_latency(self, milliseconds: float) -> None:
        """Delay every answer by this much (0 turns it off)."""
        self._front_door.latency_s = milliseconds / 1000

    def inject_fault(
        self,
        path: str,
        *,
        status: int = 500,
        kind: FaultKind = FaultKind.STATUS,
        nth: int = 1,
        times: int | None = 1,
        method: str | None = None,
        rate_limit_headers: bool = True,
        keep_bytes: int | None = None,
        delay_s: float = 0.0,
        action: Callable[[], object] | None = None,
        reshape: Callable[[Any], Any] | None = None,
    ) -> FaultRule:
        """Add a :class:`FaultRule`; rules are checked in the order they were added.

        Example: ``inject_fault("/api/v1/apps/*/users", status=500, nth=3)``
        makes the third listing request answer 500 and later ones succeed;
        ``inject_fault(path, kind=FaultKind.CALL, action=lambda: emulator.revoke_api_token(token))``
        revokes the token once the first page is answered;
        ``inject_fault(path, kind=FaultKind.RESHAPE, times=None, reshape=drop_embedded)`` serves every
        listing page as a proxy that drops ``expand=user`` would.
        """
        if kind is FaultKind.CALL and action is None:
            raise ValueError("a CALL fault needs an action")
        if kind is FaultKind.RESHAPE and reshape is None:
            raise ValueError("a RESHAPE fault needs a reshape function")
        rule = FaultRule(
            path,
            kind=kind,
            status=status,
            nth=nth,
            times=times,
            method=method,
            rate_limit_headers=rate_limit_headers,
            keep_bytes=keep_bytes,
            delay_s=delay_s,
            action=action,
            reshape=reshape,
        )
        self._front_door.faults.add(rule)
        return rule

    def clear_faults(self) -> None:
        self._front_door.faults.clear()

    def set_rate_limit(self, limit: int, bucket: str | None = None) -> None:
        """Requests allowed per 60-second window, for one bucket or (``bucket=None``) the default.

        Buckets: ``/api/v1/apps``, ``/api/v1/users``, ``/api/v1/groups``, ``/api/v1/logs`` (default
        120, or the default when lower), ``/api/v1`` (anything else) and ``/oauth2/v1/token``.
        """
        self._front_door.rate_limiter.set_limit(limit, bucket)

    @property
    def rate_limit_windows(self) -> list[tuple[str, RateLimitBucket]]:
        """Every rate-limit window so far: its bucket (``/api/v1/apps``…) and what it counted."""
        return self._front_door.rate_limiter.windows()

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        return self._front_door.log.records()

    def request_count(self, path: str = "*", method: str | None = None) -> int:
        """How many logged requests match an fnmatch ``path`` pattern (and ``method``)."""
        return self._front_door.log.count(path, method)

    def clear_request_log(self) -> None:
        self._front_door.log.clear()
