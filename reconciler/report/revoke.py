"""Time to revoke: for each deactivation the tool applied, how long the access stayed live on the platform.

The end is when the platform confirmed the deactivation (the action's ``finished_at``). The start is when Okta's
state changed: the System Log event's ``published`` time that brought the user into an incremental repair
(``okta_changed_at``), when known. A full audit knows no such time (a user unassigned in Okta simply stops
being listed), so its deactivations start when the tool *first detected* them: the earliest deactivation of
that user recorded since the previous one the platform confirmed (a dry-run that found it, a blocked apply
that held it, a failed write). The report says which basis each figure has: an auditor must not take a first
detection for Okta's own clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from reconciler.models.runs import ActionStatus
from reconciler.report.model import Revocation, RevokeStats

BUCKETS: Final = (
    ("< 1 min", 60.0),
    ("1-5 min", 300.0),
    ("5-15 min", 900.0),
    ("15-60 min", 3600.0),
    ("1-4 h", 4 * 3600.0),
    ("4-24 h", 24 * 3600.0),
    ("> 1 day", math.inf),
)
"""Histogram buckets, upper bounds exclusive: minutes for the follower, hours for audits only."""
SLOWEST_SHOWN: Final = 10


def revocations(rows: Iterable[Mapping[str, Any]], start: datetime, end: datetime) -> list[Revocation]:
    """The deactivations confirmed in ``[start, end)``, each with its start, from the target's deactivation
    rows oldest first (:meth:`reconciler.store.Store.deactivations_until`, read from before ``start`` so that a
    drift found earlier keeps its first detection)."""
    first_seen: dict[str, datetime] = {}
    found: list[Revocation] = []
    for row in rows:
        user = row["okta_user_id"] or row["user_name"]
        first_seen.setdefault(user, row["created_at"])
        if row["status"] != ActionStatus.SUCCEEDED or row["finished_at"] is None:
            continue
        detected = first_seen.pop(user)
        if start <= row["finished_at"] < end:
            found.append(_revocation(row, detected))
    return found


def _revocation(row: Mapping[str, Any], detected: datetime) -> Revocation:
    changed, basis = (row["okta_changed_at"], "system_log") if row["okta_changed_at"] else (detected, "first_detected")
    return Revocation(row["user_name"], row["okta_user_id"], row["run_id"], changed, row["finished_at"], basis)


def revoke_stats(found: Sequence[Revocation]) -> RevokeStats:
    """p50, p95 and max (nearest-rank), the histogram and the slowest ten."""
    seconds = sorted(r.seconds for r in found)
    slowest = sorted(found, key=lambda r: r.seconds, reverse=True)[:SLOWEST_SHOWN]
    from_log = sum(1 for r in found if r.basis == "system_log")
    return RevokeStats(
        count=len(found),
        p50_s=nearest_rank(seconds, 50),
        p95_s=nearest_rank(seconds, 95),
        max_s=seconds[-1] if seconds else None,
        from_system_log=from_log,
        from_first_detection=len(found) - from_log,
        histogram=_histogram(seconds),
        slowest=tuple(slowest),
    )


def nearest_rank(ordered: Sequence[float], percentile: float) -> float | None:
    """The nearest-rank percentile of values sorted ascending: always one of them, None when there are none."""
    if not ordered:
        return None
    rank = math.ceil(percentile / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def _histogram(seconds: Sequence[float]) -> tuple[tuple[str, int], ...]:
    counts = dict.fromkeys((label for label, _ in BUCKETS), 0)
    for value in seconds:
        label = next(label for label, bound in BUCKETS if value < bound)
        counts[label] += 1
    return tuple(counts.items())
