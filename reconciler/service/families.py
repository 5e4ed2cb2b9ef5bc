"""What every metric family of the service shares: the name prefix, a family's child for a target's labels, and
counters by run status that start at 0."""

from __future__ import annotations

from typing import Final, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from reconciler.models.runs import RunStatus

PREFIX: Final = "reconciler"
FINAL_STATUSES: Final = tuple(status for status in RunStatus if status is not RunStatus.RUNNING)
"""The statuses a run or a batch ends with."""

MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)


def labelled(metric: MetricT, labels: tuple[str, ...]) -> MetricT:
    """The family's child for ``labels``; the family itself when it has none (one target's service)."""
    return metric.labels(*labels) if labels else metric


def each_status_from_zero(counter: Counter, *labels: str) -> None:
    """Expose ``counter`` at 0 for every final status (its last label), so that Prometheus sees the first
    blocked or failed run as an increase rather than as a series that appears."""
    for status in FINAL_STATUSES:
        counter.labels(*labels, status.value)
