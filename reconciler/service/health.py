"""``/healthz``: whether a service keeps succeeding (one target), or keeps looking for due tenants (a replica)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from reconciler.service.wording import format_age, format_utc

STALE_AFTER_INTERVALS: Final = 3
"""``/healthz`` fails once the last successful run is older than this many schedule intervals."""
STALE_TICKS: Final = 3
"""A replica's ``/healthz`` fails when it has not looked for due tenants for this many ticks."""


@dataclass
class Health:
    """``/healthz``: healthy while the last successful run is not older than 3 × the schedule's interval.

    Before any successful run, the service's start counts instead: a service
    that just started is given three intervals to succeed once.
    """

    interval_s: float
    """The schedule's interval (for a cron schedule, the longest gap between two runs)."""
    started_at: float = field(default_factory=time.time)
    last_success_at: float | None = None
    clock: Callable[[], float] = time.time

    def check(self) -> tuple[bool, str]:
        """(healthy, one line saying why)."""
        now = self.clock()
        limit = STALE_AFTER_INTERVALS * self.interval_s
        if self.last_success_at is None:
            age = now - self.started_at
            what = f"no successful run yet; the service started {format_age(age)} ago"
        else:
            age = now - self.last_success_at
            what = f"last successful run ended {format_age(age)} ago ({format_utc(self.last_success_at)})"
        if age > limit:
            interval = format_age(self.interval_s)
            return False, f"stale: {what}, more than {STALE_AFTER_INTERVALS} x the {interval} interval"
        return True, f"ok: {what}"


@dataclass
class ReplicaHealth:
    """``/healthz`` of a replica: healthy while it keeps looking for due tenants.

    A tenant's own staleness is the fleet's business, not one replica's (another
    replica may run it); it shows in the per-tenant metrics and ``reconcile status``.
    """

    tick_s: float
    started_at: float
    last_tick_at: float | None = None
    last_error: str | None = None
    clock: Callable[[], float] = time.time

    def check(self) -> tuple[bool, str]:
        now = self.clock()
        since = self.last_tick_at if self.last_tick_at is not None else self.started_at
        limit = STALE_TICKS * self.tick_s + 30
        if now - since > limit:
            why = f"; last error: {self.last_error}" if self.last_error else ""
            return False, f"stale: no look for due tenants for {now - since:.0f} s{why}"
        if self.last_tick_at is None:
            return True, "ok: starting"
        return True, f"ok: looked for due tenants {now - self.last_tick_at:.0f} s ago"
