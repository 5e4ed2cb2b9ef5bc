"""How far a run has got, for a display: pages read, users planned, writes done.

The stages report through a :class:`ProgressListener`; a run without a
display gets :data:`NO_PROGRESS`, whose methods do nothing. Listeners are
called from the run's event loop and must return at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, Protocol

log = logging.getLogger(__name__)


class ProgressListener(Protocol):
    def okta_page(self, users: int) -> None:
        """One page of Okta assignments arrived, holding ``users`` users."""

    def scim_page(self, users: int, total: int | None) -> None:
        """One SCIM page arrived; ``total`` is the server's totalResults once known."""

    def planned(self, users: int) -> None:
        """The plan covered ``users`` users (desired and actual together)."""

    def apply_started(self, writes: int) -> None:
        """``writes`` writes are about to be sent."""

    def write_done(self, succeeded: bool) -> None:
        """One write finished."""

    def finished(self) -> None:
        """The run is over: a display clears itself."""


class NoProgress:
    """The listener of a run nobody watches."""

    def okta_page(self, users: int) -> None:
        pass

    def scim_page(self, users: int, total: int | None) -> None:
        pass

    def planned(self, users: int) -> None:
        pass

    def apply_started(self, writes: int) -> None:
        pass

    def write_done(self, succeeded: bool) -> None:
        pass

    def finished(self) -> None:
        pass


NO_PROGRESS: Final[ProgressListener] = NoProgress()


HttpObserver = Callable[[str, "int | None", "float | None"], None]
"""``(service, status, elapsed_s)``: a request to ``okta`` or ``scim`` ended with ``status`` (None: no answer)
after ``elapsed_s`` seconds (None: not timed)."""
RateLimitObserver = Callable[[str, str, int, int], None]
"""``(org, family, limit, remaining)``: what an Okta answer's ``X-Rate-Limit-*`` headers said of one org's
window for a rate-limit family (``/api/v1/apps``…)."""

_http_observers: list[Callable[..., None]] = []
_rate_limit_observers: list[Callable[..., None]] = []


def observe_http(service: str, status: int | None, elapsed_s: float | None = None) -> None:
    """Tell the registered observers that a request to ``service`` ended with ``status`` (None: no answer),
    after ``elapsed_s`` seconds (None when the request was not timed)."""
    _notify(_http_observers, service, status, elapsed_s)


def observe_rate_limit(org: str, family: str, limit: int, remaining: int) -> None:
    """Tell the registered observers what an Okta answer said of ``org``'s window for ``family``."""
    _notify(_rate_limit_observers, org, family, limit, remaining)


def _notify(observers: list[Callable[..., None]], *args: object) -> None:
    for observer in list(observers):
        try:
            observer(*args)
        except Exception:  # metrics must never break a request
            log.exception("HTTP observer failed")


@contextmanager
def http_observer(observer: HttpObserver) -> Iterator[None]:
    """Register ``observer`` for the duration of the block."""
    with _registered(_http_observers, observer):
        yield


@contextmanager
def rate_limit_observer(observer: RateLimitObserver) -> Iterator[None]:
    """Register ``observer`` of Okta's rate-limit windows for the duration of the block."""
    with _registered(_rate_limit_observers, observer):
        yield


@contextmanager
def _registered(observers: list[Callable[..., None]], observer: Callable[..., None]) -> Iterator[None]:
    observers.append(observer)
    try:
        yield
    finally:
        observers.remove(observer)


class FollowListener(Protocol):
    """What the System Log follower reports, for metrics (:mod:`reconciler.run.follower`)."""

    def polled(self, read: int, ignored: int, acted: int, malformed: int, lag_s: float) -> None:
        """One page read: events new to the follower, those it ignored, acted on and could not read; how far
        behind Okta's log it still is (0 once caught up)."""

    def repaired(self, seconds: float) -> None:
        """One write confirmed, ``seconds`` after Okta published the change that called for it."""

    def stopped(self, why: str) -> None:
        """The follower turned itself off (a credential without ``okta.logs.read``…); full audits go on."""


class NoFollowListener:
    def polled(self, read: int, ignored: int, acted: int, malformed: int, lag_s: float) -> None:
        pass

    def repaired(self, seconds: float) -> None:
        pass

    def stopped(self, why: str) -> None:
        pass


NO_FOLLOW_LISTENER: Final[FollowListener] = NoFollowListener()
