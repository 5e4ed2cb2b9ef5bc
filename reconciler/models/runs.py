"""What a run is and how it ended: modes and statuses, shared by the run, the store, alerts and metrics."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class RunMode(StrEnum):
    DRY_RUN = "dry-run"
    APPLY = "apply"
    APPLY_PLAN = "apply-plan"
    """``reconcile apply PLAN_FILE``: a saved, reviewed plan applied to live state."""
    INCREMENTAL = "incremental"
    """One batch of Okta System Log events, repaired by the follower: it reads only the users the events
    touched, never a whole listing, so it is no full audit (see :data:`FULL_AUDIT_MODES`)."""


FULL_AUDIT_MODES: Final = frozenset({RunMode.DRY_RUN, RunMode.APPLY, RunMode.APPLY_PLAN})
"""Runs that read both sides whole: the only ones whose counts are a baseline for the source-shrink guard and
the populations of the sliding-window gate, and whose outcome says how the target stands (its last success, its
failure and crash streaks). An incremental run looks at a few users: it is none of those."""


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DRIFT = "drift"
    """A dry-run found drift."""
    FAILED = "failed"
    PARTIAL = "partial"
    """An apply in which some actions failed."""
    INTERRUPTED = "interrupted"
    """Left running by a process that stopped; found by a later start."""
    BLOCKED = "blocked"
    """The safety gate stopped gated writes; ``error`` says which limit tripped."""
    DECLINED = "declined"
    """A live run whose plan the operator declined when asked on a terminal: nothing was sent."""


SOURCE_READ_WHOLE: Final = frozenset({RunStatus.SUCCEEDED, RunStatus.DRIFT, RunStatus.PARTIAL})
"""Runs whose Okta listing is a trusted baseline for the source-shrink guard.

A blocked run is left out on purpose: its listing is the suspicious one, and a
baseline taken from it would let a sustained drop through on the next run.
"""


SUCCESSFUL: Final = frozenset({RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.BLOCKED})
"""Run statuses that count as a successful run: ``last_success`` and ``/healthz`` (reconciler.service.metrics),
:attr:`TenantState.last_success_at` (of full runs only: :data:`FULL_AUDIT_MODES`)."""


class ActionStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Recorded but not sent: a dry-run, a report-only kind, or stopped by the safety gate."""
    INTERRUPTED = "interrupted"
    """Sent (perhaps) by a process that stopped before recording the outcome."""
