"""A report read from the store: the period's runs, its actions, time to revoke, and coverage on a date.

Refuses, with :class:`ReportError`, what would make an empty or misleading page: a target the store has never
run, or a period in which it did not run (the message says when it did).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from reconciler.config.identity import target_identity
from reconciler.config.model import Config, fingerprint
from reconciler.errors import ReconcileError
from reconciler.models.runs import FULL_AUDIT_MODES, RunMode, RunStatus
from reconciler.report.model import (
    DRIFT_KINDS,
    SUMMARY_KINDS,
    ActionEntry,
    Coverage,
    Header,
    KindLog,
    LastAudit,
    OutOfSync,
    Period,
    PlanApplication,
    Report,
    RunPoint,
    Summary,
)
from reconciler.report.revoke import revocations, revoke_stats
from reconciler.store import Run, Store

LOG_KINDS: Final = ("create", "update", "deactivate", "reactivate", "link")
"""The kinds of the action log: what the tool writes (conflicts and unmanaged users are findings, shown by the
trend and coverage)."""
COMPLETED: Final = frozenset({RunStatus.SUCCEEDED, RunStatus.DRIFT})
"""A successful run, in a report: it read both sides, planned, and wrote all it meant to (a dry-run: found
what it found). A partial or failed run counts as a failure, a blocked one as a safety stop."""
DETECTION_LOOKBACK: Final = timedelta(days=90)
"""How far before the period a deactivation's first detection is looked for."""


class ReportError(ReconcileError):
    """No report can be made for what was asked; the message says why and what to ask instead."""


def collect_report(
    config: Config,
    store: Store,
    period: Period,
    *,
    limit: int | None,
    coverage_limit: int | None = None,
    now: datetime | None = None,
) -> Report:
    """The report of ``config``'s target over ``period``: the latest ``limit`` actions of each kind (0: none, for
    an export that reads them from the store as it writes them: :meth:`Store.stream_live_actions`), and the first
    ``coverage_limit`` users out of sync (None: all)."""
    target = fingerprint(config)
    runs = store.runs_between(target, period.start, period.end)
    if not runs:
        raise ReportError(_no_runs(store, target, config, period))
    header = _header(config, period, now or datetime.now(UTC))
    counts = store.live_action_counts(target, period.start, period.end)
    rows = store.deactivations_until(target, period.start - DETECTION_LOOKBACK, period.end)
    revoked = revocations(rows, period.start, period.end)
    return Report(
        header=header,
        summary=_summary(store, target, runs, period, counts),
        runs=tuple(run_point(run) for run in runs),
        revocations=revoke_stats(revoked),
        revoked=tuple(revoked),
        action_log=_action_log(store, target, period, counts, limit),
        plans=tuple(_plan_application(run, store) for run in runs if run.mode is RunMode.APPLY_PLAN),
        coverage=_coverage(store, target, period.as_of, coverage_limit),
        limit=limit,
    )


def _no_runs(store: Store, target: str, config: Config, period: Period) -> str:
    who = f"tenant {config.tenant}" if config.tenant else "this configuration's target"
    count, first, last = store.run_span(target)
    if not count:
        return f"the store has no run of {who} yet: run `reconcile --dry-run` first"
    return (
        f"no run of {who} started between {_text(period.start)} and {_text(period.end)}; its {count} run(s) "
        f"started between {_text(first)} and {_text(last)}: choose a period with --since or --from/--to"
    )


def _text(moment: datetime | None) -> str:
    return "?" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _header(config: Config, period: Period, now: datetime) -> Header:
    identity = target_identity(config)
    return Header(
        tenant=config.tenant,
        okta_org_url=identity["okta_org_url"],
        okta_app_id=identity["okta_app_id"],
        scim_base_url=identity["scim_base_url"],
        period=period,
        generated_at=now,
        version=_version(),
    )


def _version() -> str:
    try:
        return version("okta-reconciler")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        return "unknown"


def run_point(run: Run) -> RunPoint:
    summary = run.summary
    assert run.id is not None
    return RunPoint(
        id=run.id,
        mode=run.mode.value,
        status=run.status.value,
        started_at=run.started_at,
        finished_at=run.finished_at,
        drift=None if summary is None else {kind: summary[kind] for kind in DRIFT_KINDS},
        in_sync=None if summary is None else summary["in_sync"],
        applied=run.applied,
        failed=run.failed,
        error=run.error,
        started_by=run.started_by,
        replica=run.replica,
        plan_run_id=run.plan_run_id,
    )


def _summary(
    store: Store, target: str, runs: list[Run], period: Period, counts: Mapping[tuple[str, str], int]
) -> Summary:
    full = [run for run in runs if run.mode in FULL_AUDIT_MODES]
    last = store.last_planned_audit(target, period.end)
    repaired: dict[str, int] = {}
    for (kind, status), n in counts.items():
        if status == "succeeded":
            repaired[kind] = repaired.get(kind, 0) + n
    return Summary(
        runs=len(runs),
        full_audits=len(full),
        incremental_runs=len(runs) - len(full),
        successful_runs=sum(1 for run in runs if run.status in COMPLETED),
        safety_stops=sum(1 for run in runs if run.status is RunStatus.BLOCKED),
        failures=sum(1 for run in runs if run.status in (RunStatus.FAILED, RunStatus.PARTIAL)),
        last_full_audit=None if last is None else _last_audit(last),
        drift_found=_of_kinds(store.drift_found(target, period.start, period.end)),
        repaired=_of_kinds(repaired),
    )


def _of_kinds(counts: Mapping[str, int]) -> dict[str, int]:
    """The counts of :data:`SUMMARY_KINDS`, in that order (a kind not seen counts 0)."""
    return {kind: counts.get(kind, 0) for kind in SUMMARY_KINDS}


def _last_audit(run: Run) -> LastAudit:
    point = run_point(run)
    return LastAudit(
        point.id, run.started_at, point.status, run.source_count, run.managed_count, point.in_sync, point.total_drift
    )


def _action_log(
    store: Store, target: str, period: Period, counts: Mapping[tuple[str, str], int], limit: int | None
) -> tuple[KindLog, ...]:
    logs = []
    for kind in LOG_KINDS:
        by_status = {status: n for (k, status), n in sorted(counts.items()) if k == kind}
        if not by_status:
            continue
        rows = store.latest_live_actions(target, period.start, period.end, kind, limit) if limit != 0 else []
        logs.append(KindLog(kind, sum(by_status.values()), by_status, tuple(action_entry(row) for row in rows)))
    return tuple(logs)


def action_entry(row: Mapping[str, Any]) -> ActionEntry:
    return ActionEntry(
        id=row["id"],
        run_id=row["run_id"],
        run_mode=str(row["mode"]),
        kind=str(row["kind"]),
        user_name=row["user_name"],
        status=str(row["status"]),
        error=row["error"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        changes=row["changes"] or {},
    )


def _plan_application(run: Run, store: Store) -> PlanApplication:
    assert run.id is not None
    source = store.get_run(run.plan_run_id) if run.plan_run_id is not None else None
    return PlanApplication(
        run_id=run.id,
        plan_run_id=run.plan_run_id,
        plan_made_at=None if source is None else source.started_at,
        applied_at=run.started_at,
        applied_by=run.started_by,
        replica=run.replica,
        status=run.status.value,
        applied=run.applied,
        failed=run.failed,
    )


def _coverage(store: Store, target: str, as_of: datetime, limit: int | None) -> Coverage | None:
    run = store.last_planned_audit(target, as_of)
    if run is None or run.id is None:
        return None
    point = run_point(run)
    total, rows = store.run_actions(run.id, DRIFT_KINDS, limit)
    users = tuple(OutOfSync(row["user_name"], str(row["kind"]), row["reason"], str(row["status"])) for row in rows)
    in_sync = point.in_sync or 0
    return Coverage(run.id, run.started_at, point.mode, point.status, run.source_count, in_sync, total, users)
