"""How the service words a moment, a span of time and a finished run, in its log and systemd's STATUS."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from reconciler.models.runs import RunStatus
from reconciler.run.outcome import RunOutcome

MAX_REASON_CHARS = 200
"""A run's error is cut to this in its summary line (the store keeps it whole)."""


def format_utc(timestamp: float) -> str:
    """A Unix time as ``2026-03-01T12:00:00Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds: float) -> str:
    """A configured duration in the unit it was most likely written in: ``2 h``, ``30 min``, ``90 s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def format_age(seconds: float) -> str:
    """How long ago, rounded for a person: ``42 s``, ``3 min``, ``1.5 h``."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{round(seconds / 3600, 1):g} h"


def run_summary(
    status: RunStatus,
    duration_s: float,
    outcome: RunOutcome | None,
    *,
    run_id: int | None = None,
    error: str | None = None,
    ended_at: float | None = None,
) -> str:
    """One line about a finished run, for the log and systemd's STATUS."""
    run_id = outcome.run_id if outcome is not None else run_id
    run = f"run {run_id}" if run_id is not None else "run"
    ended = format_utc(time.time() if ended_at is None else ended_at)
    text = f"{run} {status.value} at {ended} in {duration_s:.1f} s"
    if outcome is not None and outcome.plan is not None:
        summary = outcome.plan.summary()
        drift = ", ".join(f"{kind} {n}" for kind, n in summary.items() if n and kind != "in_sync") or "none"
        text += f": drift {drift}; applied {outcome.applied.succeeded}, failed {outcome.applied.failed}"
    reason = error or (outcome.error if outcome is not None else None)
    if reason:
        reason = " ".join(reason.split())
        cut = "…" if len(reason) > MAX_REASON_CHARS else ""
        text += f"; {reason[:MAX_REASON_CHARS]}{cut}"
    return text


def run_fields(
    status: RunStatus,
    duration_s: float,
    outcome: RunOutcome | None,
    *,
    run_id: int | None = None,
    tenant: str | None = None,
    error: str | None = None,
) -> dict[str, object]:
    """What :func:`run_summary` says, as the fields of the log record (``extra=``) for the JSON log format."""
    plan = outcome.plan.summary() if outcome is not None and outcome.plan is not None else None
    return {
        "run_id": outcome.run_id if outcome is not None else run_id,
        "tenant": tenant,
        "status": status.value,
        "duration_s": round(duration_s, 3),
        "plan": plan,
        "applied": outcome.applied.succeeded if outcome is not None else 0,
        "failed": outcome.applied.failed if outcome is not None else 0,
        "error": error or (outcome.error if outcome is not None else None),
    }
