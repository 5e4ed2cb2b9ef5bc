"""``reconcile status``: each tenant's last run, its status and drift, when it runs next, and who holds it now.

Read from the store alone (no Okta or SCIM call, no secret needed): the latest
run of each tenant, its failure streak, and the run locks held at this moment
with the replica holding each (:meth:`reconciler.store.Store.lock_holders`). A
single-tenant file shows its one target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from reconciler.cli.consoles import print_table
from reconciler.config.model import FleetConfig, fingerprint
from reconciler.models.runs import RunStatus
from reconciler.service.schedule import SCHEDULED_MODES, next_due, tenant_name, tenant_quarantined
from reconciler.store import Run, Store

STATUS_STYLE = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.DRIFT: "yellow",
    RunStatus.PARTIAL: "yellow",
    RunStatus.BLOCKED: "red",
    RunStatus.DECLINED: "yellow",
    RunStatus.FAILED: "red",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.RUNNING: "cyan",
}


@dataclass(frozen=True)
class TenantStatus:
    tenant: str
    fingerprint: str
    last_run: Run | None
    last_success_at: datetime | None
    consecutive_failures: int
    consecutive_interrupted: int
    """Its latest runs in a row that died with their replica (a crash, an OOM kill)."""
    quarantined: bool
    """After ``quarantine_after`` failed runs, or ``quarantine_after_interrupted`` dead ones, in a row."""
    held_by: str | None
    """Who holds the tenant's run lock now (a replica: ``reconcile HOST pid N`` or its ``--replica`` name)."""
    next_due: datetime

    @property
    def drift(self) -> dict[str, int]:
        """What the last run's plans found to change, by kind; empty when in line or not planned."""
        run = self.last_run
        if run is None:
            return {}
        kinds = {**(run.summary or {}), **(run.group_summary or {})}
        return {kind: n for kind, n in kinds.items() if n and kind not in ("in_sync", "unmanaged")}


def tenant_statuses(fleet: FleetConfig, store: Store, now: datetime | None = None) -> list[TenantStatus]:
    """Every tenant of the file, in file order, as the store has it now."""
    now = now or datetime.now(UTC)
    targets = [fingerprint(config) for config in fleet.tenants]
    states = store.tenant_states(targets)
    scheduled = store.tenant_states(targets, SCHEDULED_MODES)
    holders = store.lock_holders(targets)
    return [
        TenantStatus(
            tenant=tenant_name(config),
            fingerprint=target,
            last_run=states[target].latest,
            last_success_at=states[target].last_success_at,
            consecutive_failures=states[target].consecutive_failures,
            consecutive_interrupted=states[target].consecutive_crashes,
            quarantined=tenant_quarantined(states[target], config.thresholds),
            held_by=holders.get(target),
            next_due=next_due(config, scheduled[target], now),
        )
        for config, target in zip(fleet.tenants, targets, strict=True)
    ]


def status_document(statuses: Sequence[TenantStatus]) -> dict[str, Any]:
    """``reconcile status --output json``."""
    return {"tenants": [_tenant_document(status) for status in statuses]}


def _tenant_document(status: TenantStatus) -> dict[str, Any]:
    run = status.last_run
    last_run = None
    if run is not None:
        last_run = {
            "id": run.id,
            "status": run.status.value,
            "mode": run.mode.value,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "replica": run.replica,
            "applied": run.applied,
            "failed": run.failed,
            "error": run.error,
        }
    return {
        "tenant": status.tenant,
        "config_fingerprint": status.fingerprint,
        "last_run": last_run,
        "drift": status.drift,
        "last_success_at": status.last_success_at.isoformat() if status.last_success_at else None,
        "consecutive_failures": status.consecutive_failures,
        "consecutive_interrupted": status.consecutive_interrupted,
        "quarantined": status.quarantined,
        "held_by": status.held_by,
        "next_due": status.next_due.isoformat(),
    }


def render_status(console: Console, statuses: Sequence[TenantStatus], now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    table = Table(title="Tenants", title_justify="left")
    for column in ("Tenant", "Last run", "Status", "Drift", "Last success", "Next", "Held by"):
        table.add_column(column, overflow="fold")
    for status in statuses:
        run = status.last_run
        if run is None:
            last, state = "never", "[dim]-[/]"
        else:
            last = f"{run.id} · {_ago(run.started_at, now)}" + (f" · {run.replica}" if run.replica else "")
            style = STATUS_STYLE.get(run.status, "")
            state = f"[{style}]{run.status.value}[/]" if style else run.status.value
            if status.quarantined:
                state += f" [red](quarantined, {_quarantine_reason(status)})[/]"
        drift = ", ".join(f"{kind} {n}" for kind, n in status.drift.items()) or ("none" if run else "-")
        success = _ago(status.last_success_at, now) if status.last_success_at else "never"
        upcoming = "due now" if status.next_due <= now else f"in {_span((status.next_due - now).total_seconds())}"
        table.add_row(status.tenant, last, state, drift, success, upcoming, status.held_by or "[dim]-[/]")
    print_table(console, table)


def _quarantine_reason(status: TenantStatus) -> str:
    reasons = []
    if status.consecutive_failures:
        reasons.append(f"{status.consecutive_failures} failed")
    if status.consecutive_interrupted:
        reasons.append(f"{status.consecutive_interrupted} died with their replica")
    return ", ".join(reasons)


def _ago(moment: datetime, now: datetime) -> str:
    return f"{_span((now - moment).total_seconds())} ago"


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}".replace(".0 ", " ")
    return f"{seconds:.0f} s"
