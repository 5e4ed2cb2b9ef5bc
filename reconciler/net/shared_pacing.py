"""One Okta org's rate budget shared by every process that reads it: what each may spend of a window.

Okta counts an org's requests per endpoint family in windows (a minute long); a
token may spend only ``share`` of each (see :mod:`reconciler.net.pacing`). Each
run pacing itself from the headers it sees works alone, but several replicas
on one org each see the others' spending only after the fact, and each new run
starts blind: together they overspend. Here the window's count is kept in one
place that every process claims from *before* each request (a
:class:`RateLedger`: the store, for a fleet), and refreshed from the headers of
every answer.

The arithmetic is pure (:func:`claim`, :func:`observe`, :func:`exhaust` over a
:class:`WindowCount`); :class:`SharedRateLimitBudget` is the budget a connection
awaits, with the same face as :class:`~reconciler.net.pacing.RateLimitBudget`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from reconciler.net.pacing import RESET_MARGIN_S, RateLimitState, Sleep, rate_limit_state, wait_after_429

log = logging.getLogger(__name__)

PROBE_WAIT_S: Final = 0.2
"""How long a request waits, before claiming again, while another one finds out how a new window stands."""
UNKNOWN_WINDOW_S: Final = 60.0
"""A count whose window no answer has told for this long is started afresh: Okta's windows last a minute."""
PROBE_TIMEOUT_S: Final = 5.0
"""While an org's limit was never told, a request that went to find out and was never answered (cancelled,
failed, timed out) is given up after this long, and another may go."""
CLAIM_AT_ONCE: Final = 5
"""Requests one process claims in one step once the window is known: a step is a store transaction, and one
per Okta page cost a 100,000-user dry-run 2 s (``make bench``). What a process holds unspent is at most this
many less one, spent from its share of that window all the same."""
OBSERVE_EVERY_S: Final = 1.0
"""How often a process writes what Okta's headers say of a window it has told already (other clients' spending
shows there): a new window, or the first word of one, is written at once."""
SAME_WINDOW_S: Final = 1.5
"""Two resets this close are one window's: the header and ``Date`` have one-second resolution."""


@dataclass(frozen=True, slots=True)
class WindowCount:
    """An org's current window for one endpoint family, as every process shares it. Times are epoch seconds."""

    limit: int | None
    """``X-Rate-Limit-Limit`` as last seen; None before any answer."""
    used: int
    """Requests spent in this window: claimed by the processes, or said spent by Okta, whichever is more."""
    resets_at: float | None
    """When the window ends, margin included; None while no answer of this window has told."""
    opened_at: float
    """When this count began."""


def fresh(now: float, limit: int | None = None) -> WindowCount:
    """A count for a window nothing was spent in yet."""
    return WindowCount(limit, 0, None, now)


def claim(count: WindowCount | None, share: float, now: float) -> tuple[WindowCount, float]:
    """Claim one request: the new count and 0, or the count as it was and how long to wait before claiming again."""
    count, _, wait_s = claim_up_to(count, share, now, 1)
    return count, wait_s


def claim_up_to(count: WindowCount | None, share: float, now: float, most: int) -> tuple[WindowCount, int, float]:
    """Claim up to ``most`` requests: the new count, how many were granted, and the wait when none was.

    ``share`` of the window's limit may be spent; while the window is untold (no answer of it
    yet), one request at a time goes and finds out.
    """
    count = _current(count, now)
    allowed = 1 if count.limit is None else max(1, math.floor(count.limit * share))
    if count.used < allowed:
        granted = 1 if count.resets_at is None else min(most, allowed - count.used)
        return replace(count, used=count.used + granted), granted, 0.0
    if count.resets_at is None:
        return count, 0, PROBE_WAIT_S
    return count, 0, max(PROBE_WAIT_S, count.resets_at - now)


def observe(count: WindowCount | None, state: RateLimitState, now: float) -> WindowCount:
    """The count after an answer whose headers said ``state`` (received at ``now``)."""
    resets_at = now + state.wait_until_reset_s + RESET_MARGIN_S
    spent = max(0, state.limit - state.remaining)
    count = _current(count, now)
    if count.resets_at is None:  # the first answer of a new window: it says when it ends
        return WindowCount(state.limit, max(count.used, spent), resets_at, count.opened_at)
    if resets_at > count.resets_at + SAME_WINDOW_S:  # a newer window than the one counted
        return WindowCount(state.limit, spent, resets_at, now)
    if resets_at < count.resets_at - SAME_WINDOW_S:  # a late answer from an earlier window
        return count
    return replace(count, limit=state.limit, used=max(count.used, spent))


def exhaust(count: WindowCount | None, state: RateLimitState | None, wait_s: float, now: float) -> WindowCount:
    """The count after a 429: nothing more until the window resets (``wait_s`` from now, when no header says)."""
    if state is not None:
        count = observe(count, state, now)
        return replace(count, used=max(count.used, state.limit))
    count = _current(count, now)
    spent = count.limit if count.limit is not None else max(count.used, 1)
    return WindowCount(count.limit, max(count.used, spent), now + wait_s, count.opened_at)


def release(count: WindowCount | None, now: float) -> WindowCount:
    """The count after a request whose answer told nothing of the window (none came, or no rate-limit headers).

    While no answer has told the window, the one request that went to find out holds the only claim: given
    back here, the next may go at once, instead of after :data:`PROBE_TIMEOUT_S`. Once the window is told,
    a claim stays spent: the request may have reached Okta.
    """
    count = _current(count, now)
    if count.resets_at is None and count.used > 0:
        return replace(count, used=count.used - 1)
    return count


def _current(count: WindowCount | None, now: float) -> WindowCount:
    """``count``, or a fresh one (keeping the limit) once its window has ended or went untold too long."""
    if count is None:
        return fresh(now)
    ended = count.resets_at is not None and now >= count.resets_at
    patience = UNKNOWN_WINDOW_S if count.limit is not None else PROBE_TIMEOUT_S
    untold = count.resets_at is None and now - count.opened_at >= patience
    return fresh(now, count.limit) if ended or untold else count


class RateLedger(Protocol):
    """Where one org's window counts are kept, shared by every process (the store, for a fleet).

    Each method is one short atomic step over the count of ``family`` (:func:`claim`,
    :func:`observe`, :func:`exhaust`); blocking: the budget calls it in a thread.
    """

    def claim(self, family: str, share: float) -> float:
        """0 once one request is claimed; else the seconds to wait before claiming again."""
        ...

    def claim_up_to(self, family: str, share: float, most: int) -> tuple[int, float]:
        """How many requests (up to ``most``) were claimed; with none, the seconds to wait before claiming again."""
        ...

    def observe(self, family: str, state: RateLimitState) -> None: ...

    def exhaust(self, family: str, state: RateLimitState | None, wait_s: float) -> None: ...

    def release(self, family: str) -> None: ...


class SharedRateLimitBudget:
    """A connection's budget for one endpoint family of one org, claimed from a :class:`RateLedger`.

    The face of :class:`~reconciler.net.pacing.RateLimitBudget`: await
    :meth:`acquire` before each request, feed every answer to :meth:`observe`.
    """

    def __init__(
        self,
        ledger: RateLedger,
        family: str,
        share: float,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"rate limit share must be in (0, 1], not {share}")
        self.ledger, self.family, self.share = ledger, family, share
        self.waited_s = 0.0
        self._sleep, self._clock = sleep, clock
        self._held = 0
        """Requests claimed in the ledger and not sent yet."""
        self._told: tuple[float, float] | None = None
        """When this process last wrote Okta's word on the window, and the window's end it said."""

    async def acquire(self) -> None:
        """Wait until this request fits in the share of the window left by every process on this org."""
        if self._held > 0:
            self._held -= 1
            return
        announced = False
        while True:
            granted, wait_s = await asyncio.to_thread(self.ledger.claim_up_to, self.family, self.share, CLAIM_AT_ONCE)
            if granted:
                self._held = granted - 1
                return
            if not announced and wait_s > PROBE_WAIT_S:
                log.info("Okta rate limit of %s: the org's share is spent; waiting %.1f s", self.family, wait_s)
                announced = True
            self.waited_s += wait_s
            await self._sleep(wait_s)

    def observe(self, headers: Mapping[str, Any]) -> None:
        state = rate_limit_state(headers)
        if state is None:
            self.ledger.release(self.family)
            return
        now = self._clock()
        resets_at = now + state.wait_until_reset_s
        if self._told is not None:
            told_at, told_reset = self._told
            same_window = abs(resets_at - told_reset) <= SAME_WINDOW_S and now < told_reset
            if same_window and now - told_at < OBSERVE_EVERY_S:
                return
        self.ledger.observe(self.family, state)
        self._told = (now, resets_at)

    def unanswered(self) -> None:
        """The request failed before any answer (refused, reset, timed out, cancelled): its claim may go back."""
        self.ledger.release(self.family)

    async def after_429(self, headers: Mapping[str, Any], retry_after_s: float | None) -> float:
        """Tell every process the window is spent, and wait it out. Returns the wait."""
        state, wait_s = wait_after_429(headers, retry_after_s)
        self._held, self._told = 0, None  # the window is spent: what was held is gone with it
        await asyncio.to_thread(self.ledger.exhaust, self.family, state, wait_s)
        self.waited_s += wait_s
        await self._sleep(wait_s)
        return wait_s


def epoch_now() -> float:
    """The ledger's clock: wall time, which every process on every host shares (a window's end is a moment)."""
    return time.time()
