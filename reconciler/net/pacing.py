"""Pacing: spend only a share of Okta's rate limit, and back off from a platform that answers 429.

Okta answers every request with ``X-Rate-Limit-Limit`` (requests allowed in the
window), ``X-Rate-Limit-Remaining`` and ``X-Rate-Limit-Reset`` (when the window
ends, in epoch seconds). A token may use only part of an org's limit (50 % by
default for API tokens), and other integrations share the rest, so
:class:`RateLimitBudget` stops a run at ``share`` of the window and waits for
the reset instead of meeting a 429.

:class:`AdaptiveLimit` caps the writes in flight to the platform: it halves
the cap on a 429 and, after a run of successes, raises it by one again, up to
the configured ceiling (additive increase, multiplicative decrease, as TCP).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

RESET_MARGIN_S = 1.0
"""Waited past ``X-Rate-Limit-Reset``: the header and ``Date`` have one-second resolution."""
DEFAULT_429_WAIT_S = 60.0
"""Waited after a 429 that says nothing of when to come back: Okta's windows are a minute long."""


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """What one answer's rate-limit headers said."""

    limit: int
    remaining: int
    wait_until_reset_s: float
    """Seconds from the answer to the end of the window, by the server's own clock when it sent ``Date``."""


def rate_limit_state(headers: Mapping[str, Any], now: float | None = None) -> RateLimitState | None:
    """The rate-limit headers of an answer; None when any is absent or unreadable."""
    limit = _header_number(headers, "X-Rate-Limit-Limit")
    remaining = _header_number(headers, "X-Rate-Limit-Remaining")
    reset = _header_number(headers, "X-Rate-Limit-Reset")
    if limit is None or remaining is None or reset is None:
        return None
    server_now = _server_time(headers)
    clock = server_now if server_now is not None else (time.time() if now is None else now)
    return RateLimitState(int(limit), int(remaining), max(0.0, reset - clock))


class PacingBudget(Protocol):
    """What a connection awaits before each request to one rate-limit family, and tells of each answer.

    :class:`RateLimitBudget` paces one run alone; :class:`reconciler.net.shared_pacing.SharedRateLimitBudget`
    shares one org's window between every process that reads it.
    """

    waited_s: float

    async def acquire(self) -> None: ...
    def observe(self, headers: Mapping[str, Any]) -> None: ...
    def unanswered(self) -> None: ...
    async def after_429(self, headers: Mapping[str, Any], retry_after_s: float | None) -> float: ...


BudgetFactory = Callable[[str], PacingBudget]
"""A rate-limit family (``/api/v1/apps``…) → the budget its requests are paced by."""


class RateLimitBudget:
    """Lets a request go only while this run has used less than ``share`` of the window.

    Feed it every answer's headers (:meth:`observe`); await :meth:`acquire`
    before each request. Requests the budget cannot see (other clients of the
    same org) show up in ``X-Rate-Limit-Remaining`` and count against it too.
    """

    def __init__(self, share: float, *, sleep: Sleep = asyncio.sleep, clock: Callable[[], float] = time.monotonic):
        if not 0 < share <= 1:
            raise ValueError(f"rate limit share must be in (0, 1], not {share}")
        self.share = share
        self.waited_s = 0.0
        self._sleep = sleep
        self._clock = clock
        self._state: RateLimitState | None = None
        self._observed_at = 0.0

    def observe(self, headers: Mapping[str, Any]) -> None:
        state = rate_limit_state(headers)
        if state is not None:
            self._state, self._observed_at = state, self._clock()

    def unanswered(self) -> None:
        """A request that got no answer: this budget counts only what the answers say, so nothing to undo."""

    async def acquire(self) -> None:
        """Wait for the window to reset if this request would take the run past its share."""
        wait_s = self._wait_needed()
        if wait_s > 0:
            log.info("Okta rate limit: %s of the window used; waiting %.1f s for it to reset", self._used(), wait_s)
            await self._pause(wait_s)

    async def after_429(self, headers: Mapping[str, Any], retry_after_s: float | None) -> float:
        """Wait out a 429: until the window resets, else Retry-After, else a minute. Returns the wait."""
        _, wait_s = wait_after_429(headers, retry_after_s)
        await self._pause(wait_s)
        return wait_s

    def _wait_needed(self) -> float:
        state = self._state
        if state is None or state.limit <= 0:
            return 0.0
        allowed = max(1, math.floor(state.limit * self.share))
        if state.limit - state.remaining < allowed:
            return 0.0
        elapsed = self._clock() - self._observed_at
        return max(0.0, state.wait_until_reset_s + RESET_MARGIN_S - elapsed)

    def _used(self) -> str:
        assert self._state is not None
        return f"{self._state.limit - self._state.remaining}/{self._state.limit}"

    async def _pause(self, wait_s: float) -> None:
        self.waited_s += wait_s
        self._state = None  # the next answer tells how the new window stands
        await self._sleep(wait_s)


def wait_after_429(headers: Mapping[str, Any], retry_after_s: float | None) -> tuple[RateLimitState | None, float]:
    """A 429's rate-limit headers, and how long to wait: until the window resets, else Retry-After, else a minute."""
    state = rate_limit_state(headers)
    if state is not None:
        return state, state.wait_until_reset_s + RESET_MARGIN_S
    return None, retry_after_s if retry_after_s is not None else DEFAULT_429_WAIT_S


class AdaptiveLimit:
    """At most ``limit`` holders at once; ``limit`` halves on :meth:`throttled` and creeps back up.

    After ``recover_after`` successes in a row the limit grows by one, up to
    ``ceiling``. A ``Retry-After`` makes every new holder wait until then.
    """

    def __init__(self, ceiling: int, *, recover_after: int = 10, clock: Callable[[], float] = time.monotonic):
        if ceiling < 1:
            raise ValueError(f"concurrency must be at least 1, not {ceiling}")
        self.ceiling = ceiling
        self.limit = ceiling
        self.lowest = ceiling
        self.throttles = 0
        self._recover_after = recover_after
        self._successes = 0
        self._holders = 0
        self._changed = asyncio.Condition()
        self._clock = clock
        self._resume_at = 0.0

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._holders < self.limit)
            self._holders += 1
        pause = self._resume_at - self._clock()
        if pause > 0:
            await asyncio.sleep(pause)

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._changed:
            self._holders -= 1
            # Wake only as many waiters as there are free slots: a run queues every write at once,
            # and waking them all at each release made applying 1,000 writes cost 500,000 wake-ups.
            self._changed.notify(max(0, self.limit - self._holders))

    def succeeded(self) -> None:
        self._successes += 1
        if self._successes >= self._recover_after and self.limit < self.ceiling:
            self.limit += 1
            self._successes = 0
            log.info("platform keeps up again: up to %d writes at once", self.limit)

    def throttled(self, retry_after_s: float | None) -> None:
        """The platform answered 429: halve the limit, and hold new writes for ``retry_after_s``."""
        self.throttles += 1
        self._successes = 0
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        if retry_after_s:
            self._resume_at = max(self._resume_at, self._clock() + retry_after_s)
        log.warning("platform answered 429: down to %d write(s) at once", self.limit)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP-date); None if absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _header_number(headers: Mapping[str, Any], name: str) -> float | None:
    value = header_value(headers, name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def header_value(headers: Mapping[str, Any], name: str) -> str | None:
    """The header's value, whatever the case of its name in ``headers``."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((value for key, value in headers.items() if str(key).lower() == wanted), None)
    return None if value is None else str(value)


def _server_time(headers: Mapping[str, Any]) -> float | None:
    value = header_value(headers, "Date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


async def all_or_cancel(*tasks: asyncio.Future[Any]) -> list[Any]:
    """Every task's result, in order; the first failure cancels the others (awaited) and is raised.

    So that no read keeps running on a client that is about to be closed.
    """
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
