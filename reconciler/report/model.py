"""What a report holds: plain data read from the store, the same for the HTML page, the JSON and the CSV.

A report covers one target (a tenant, or the one target of a single-tenant file) over a period. Every figure
in it is read from the runs and actions the store keeps, never from Okta or the platform: the report is
evidence of what the tool saw and did, and a reviewer can trace each number to ``reconcile show RUN``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

DRIFT_KINDS: Final = ("create", "update", "deactivate", "reactivate", "conflict")
"""The kinds the drift trend shows, as the issue names them (a link is a match, not drift; unmanaged users
are the platform's own, reported in coverage)."""

SUMMARY_KINDS: Final = (*DRIFT_KINDS, "link")
"""The kinds the summary counts: the drift kinds, and links (a platform user Okta's user was matched to by
userName and given its externalId)."""

RevokeBasis = Literal["system_log", "first_detected"]
"""Where a revocation's start comes from: the System Log event's ``published`` time (Okta's own clock), or,
when no event is known (a full audit found it), the first run that found the deactivation."""


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC, and the moment coverage is taken at (``as_of``, at most ``end``)."""

    start: datetime
    end: datetime
    as_of: datetime


@dataclass(frozen=True, slots=True)
class Header:
    tenant: str | None
    okta_org_url: str
    okta_app_id: str
    scim_base_url: str
    period: Period
    generated_at: datetime
    version: str


@dataclass(frozen=True, slots=True)
class RunPoint:
    """One run of the period, as the trend chart and the runs table show it."""

    id: int
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    drift: dict[str, int] | None
    """Found by the run's plan, by kind of :data:`DRIFT_KINDS`; None when the run stopped before planning."""
    in_sync: int | None
    applied: int
    failed: int
    error: str | None
    started_by: str | None
    replica: str | None
    plan_run_id: int | None

    @property
    def total_drift(self) -> int | None:
        return None if self.drift is None else sum(self.drift.values())


@dataclass(frozen=True, slots=True)
class LastAudit:
    run_id: int
    started_at: datetime
    status: str
    assigned: int | None
    managed: int | None
    in_sync: int | None
    drift: int | None


@dataclass(frozen=True, slots=True)
class Summary:
    runs: int
    full_audits: int
    incremental_runs: int
    successful_runs: int
    safety_stops: int
    failures: int
    last_full_audit: LastAudit | None
    """The latest full audit that planned, up to the end of the period (it may be older than the period)."""
    drift_found: dict[str, int]
    """Distinct users found drifting in the period, by kind (each user counted once per kind)."""
    repaired: dict[str, int]
    """Actions the platform confirmed in the period, by kind."""


@dataclass(frozen=True, slots=True)
class Revocation:
    """One deactivation the tool applied: how long the access stayed live."""

    user_name: str
    okta_user_id: str | None
    run_id: int
    changed_at: datetime
    confirmed_at: datetime
    basis: RevokeBasis

    @property
    def seconds(self) -> float:
        return max(0.0, (self.confirmed_at - self.changed_at).total_seconds())


@dataclass(frozen=True, slots=True)
class RevokeStats:
    count: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    from_system_log: int
    from_first_detection: int
    histogram: tuple[tuple[str, int], ...]
    """(bucket label, count), in order: the buckets of :data:`reconciler.report.revoke.BUCKETS`."""
    slowest: tuple[Revocation, ...]


@dataclass(frozen=True, slots=True)
class ActionEntry:
    id: int
    run_id: int
    run_mode: str
    kind: str
    user_name: str
    status: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    changes: dict[str, dict[str, object]]
    """``{SCIM path: {"before": ..., "after": ...}}``."""


@dataclass(frozen=True, slots=True)
class KindLog:
    """The actions of one kind in the period: counts by outcome, and the entries shown."""

    kind: str
    total: int
    by_status: dict[str, int]
    entries: tuple[ActionEntry, ...]

    @property
    def left_out(self) -> int:
        return self.total - len(self.entries)


@dataclass(frozen=True, slots=True)
class PlanApplication:
    """A saved plan applied in the period: the dry-run that wrote it, who applied it, and how it went."""

    run_id: int
    plan_run_id: int | None
    plan_made_at: datetime | None
    applied_at: datetime
    applied_by: str | None
    replica: str | None
    status: str
    applied: int
    failed: int


@dataclass(frozen=True, slots=True)
class OutOfSync:
    user_name: str
    kind: str
    reason: str
    outcome: str


@dataclass(frozen=True, slots=True)
class Coverage:
    """How the target stood at the last full audit before ``as_of``."""

    run_id: int
    started_at: datetime
    mode: str
    status: str
    assigned: int | None
    in_sync: int
    not_in_sync: int
    users: tuple[OutOfSync, ...]
    """The users not in sync, as many as the report keeps (:attr:`not_in_sync` says how many there were)."""


@dataclass(frozen=True, slots=True)
class Report:
    header: Header
    summary: Summary
    runs: tuple[RunPoint, ...]
    revocations: RevokeStats
    revoked: tuple[Revocation, ...]
    """Every deactivation confirmed in the period, oldest first (the stats summarise them)."""
    action_log: tuple[KindLog, ...]
    plans: tuple[PlanApplication, ...]
    coverage: Coverage | None
    limit: int | None = field(default=None)
    """How many entries per kind the action log and coverage keep (None: all of them)."""
