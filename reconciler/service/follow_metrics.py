"""Prometheus metrics of the System Log follower, one family each, in the service's registry.

==========================================  =========  =====================================================
``log_events_total{outcome}``               counter    System Log events read (``read``), and of those the
                                                       ones ignored, acted on, and unreadable (``malformed``)
``follower_lag_seconds``                    gauge      how far behind Okta's log the follower is (0 once
                                                       caught up)
``time_to_repair_seconds``                  histogram  from Okta publishing a change to the platform
                                                       confirming its write
``follower_following``                      gauge      1 while the follower follows, 0 while it is off
``incremental_runs_total{status}``          counter    finished incremental runs (one per batch) by status
==========================================  =========  =====================================================

A fleet's replica labels each with ``tenant`` as well. Incremental runs count here, not in ``runs_total``,
the drift gauges or ``last_success_timestamp_seconds``: a batch looks at a few users, so its plan is not the
target's drift, and it says nothing of whether the full audits succeed (what ``/healthz`` watches).
Their actions are counted in ``actions_total`` like any run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from reconciler.models.runs import RunStatus
from reconciler.service.families import PREFIX, each_status_from_zero, labelled

REPAIR_BUCKETS: Final = (1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600)
"""Seconds: a repair takes about a poll plus a write round (10-15 s by default), minutes when lagging."""
OUTCOMES: Final = ("read", "ignored", "acted", "malformed")


class FollowMetrics:
    """The follower's metric families; :meth:`listener` gives the FollowListener of one target."""

    def __init__(self, registry: CollectorRegistry, labels: Sequence[str] = ()) -> None:
        names = list(labels)
        self.events = Counter(
            f"{PREFIX}_log_events",
            "System Log events read, ignored, acted on and unreadable (malformed).",
            [*names, "outcome"],
            registry=registry,
        )
        self.lag = Gauge(
            f"{PREFIX}_follower_lag_seconds",
            "How far behind Okta's System Log the follower is.",
            names,
            registry=registry,
        )
        self.time_to_repair = Histogram(
            f"{PREFIX}_time_to_repair_seconds",
            "From Okta publishing a change to the platform confirming its repair.",
            names,
            buckets=REPAIR_BUCKETS,
            registry=registry,
        )
        self.following = Gauge(
            f"{PREFIX}_follower_following",
            "1 while the System Log follower follows, 0 while off.",
            names,
            registry=registry,
        )
        self.batches = Counter(
            f"{PREFIX}_incremental_runs",
            "Finished incremental runs (batches) by status.",
            [*names, "status"],
            registry=registry,
        )

    def listener(self, *label_values: str) -> TargetFollowMetrics:
        return TargetFollowMetrics(self, tuple(label_values))


class TargetFollowMetrics:
    """One target's :class:`reconciler.hooks.FollowListener`, plus what the service tells of its batches."""

    def __init__(self, families: FollowMetrics, labels: tuple[str, ...]) -> None:
        self._families, self._labels = families, labels
        for outcome in OUTCOMES:
            families.events.labels(*labels, outcome)
        each_status_from_zero(families.batches, *labels)
        labelled(families.following, labels).set(0)

    def polled(self, read: int, ignored: int, acted: int, malformed: int, lag_s: float) -> None:
        events = self._families.events
        for outcome, count in zip(OUTCOMES, (read, ignored, acted, malformed), strict=True):
            if count:
                events.labels(*self._labels, outcome).inc(count)
        labelled(self._families.lag, self._labels).set(lag_s)

    def repaired(self, seconds: float) -> None:
        labelled(self._families.time_to_repair, self._labels).observe(seconds)

    def stopped(self, why: str) -> None:
        self.set_following(False)

    def set_following(self, following: bool) -> None:
        labelled(self._families.following, self._labels).set(int(following))

    def batch_finished(self, status: RunStatus) -> None:
        self._families.batches.labels(*self._labels, status.value).inc()
