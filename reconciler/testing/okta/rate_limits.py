"""Okta's rate limits: ``X-Rate-Limit-Limit/-Remaining/-Reset`` on every answer, per-bucket counters over
60-second windows, and 429 ``E0000047`` once a bucket is exhausted."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from reconciler.testing.okta.errors import OktaHTTPError, status_error
from reconciler.testing.okta.oauth import TOKEN_PATH

RATE_LIMIT_WINDOW_S = 60
DEFAULT_RATE_LIMIT = 600
API_FAMILIES = ("/api/v1/apps", "/api/v1/users", "/api/v1/groups", "/api/v1/logs")
"""The endpoint families with a bucket each; the rest of ``/api/v1`` shares one."""
FAMILY_LIMITS = {"/api/v1/logs": 120}
"""Buckets whose default is lower than the others': the System Log's is 120 a minute for a Workforce Identity
org (20, 25 and 50 on smaller plans). The general default lowers them too; only a bucket's own limit raises them."""


def rate_limit_bucket(path: str) -> str:
    """The rate-limit bucket a path counts against (Okta limits per endpoint family)."""
    if path.startswith("/oauth2/"):
        return TOKEN_PATH
    for family in API_FAMILIES:
        if path == family or path.startswith(family + "/"):
            return family
    return "/api/v1"


@dataclass
class RateLimitBucket:
    """One bucket's count in its current window."""

    limit: int
    window_start: float
    window_s: float = RATE_LIMIT_WINDOW_S
    used: int = 0

    def reset_at(self) -> int:
        """Epoch seconds, as Okta sends them: rounded up, so the window has surely ended by then."""
        return math.ceil(self.window_start + self.window_s)

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(max(self.limit - self.used, 0)),
            "X-Rate-Limit-Reset": str(self.reset_at()),
        }


class RateLimiter:
    """Counts each request in its bucket; a bucket's window starts with its first request."""

    def __init__(
        self,
        default_limit: int = DEFAULT_RATE_LIMIT,
        limits: Mapping[str, int] | None = None,
        *,
        window_s: float = RATE_LIMIT_WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._default_limit = default_limit
        self._limits = dict(limits or {})
        self._window_s = window_s
        self._clock = clock
        self._buckets: dict[str, RateLimitBucket] = {}
        self._past: list[tuple[str, RateLimitBucket]] = []
        self._lock = threading.Lock()

    def set_limit(self, limit: int, bucket: str | None = None) -> None:
        """Requests allowed per window, for one bucket or (``bucket=None``) the default; every window restarts."""
        with self._lock:
            if bucket is None:
                self._default_limit = limit
            else:
                self._limits[bucket] = limit
            self._buckets.clear()

    def windows(self) -> list[tuple[str, RateLimitBucket]]:
        """Every window so far, each with its bucket's name and how many requests it let through (``used``)."""
        with self._lock:
            return [(name, replace(bucket)) for name, bucket in [*self._past, *self._buckets.items()]]

    def count(self, path: str) -> dict[str, str]:
        """Count a request in its bucket and return the headers to answer with; raise the 429 when exhausted."""
        name = rate_limit_bucket(path)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None or now >= bucket.window_start + bucket.window_s:
                if bucket is not None:
                    self._past.append((name, bucket))
                limit = self._limits.get(name, min(self._default_limit, FAMILY_LIMITS.get(name, self._default_limit)))
                bucket = RateLimitBucket(limit, now, self._window_s)
                self._buckets[name] = bucket
            if bucket.used >= bucket.limit:
                raise OktaHTTPError(429, status_error(429), bucket.headers())
            bucket.used += 1
            return bucket.headers()
