"""The report as data for GRC tools: one JSON document, or one CSV table, holding what the page shows.

Both hold every action of the period (the page shows the latest of each kind), every deactivation with its time
to revoke, and every user out of sync at the coverage audit. The actions are written as the store hands them
over (:data:`EntrySource`), never all held at once: a first apply at 100,000 users is 100,000 actions.

The CSV is one table, one row per record, its first column saying which record it is: ``summary`` (a figure,
``field`` and ``value``), ``run``, ``action``, ``revocation``, ``coverage`` (a user not in sync at the coverage
audit). A column a record does not use is empty.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from reconciler.report.model import ActionEntry, Report

FORMAT: Final = "okta-reconciler report"
FORMAT_VERSION: Final = 1
CSV_COLUMNS: Final = (
    "record", "field", "value", "run_id", "mode", "status", "kind", "user_name", "started_at", "finished_at",
    "okta_changed_at", "seconds", "basis", "drift", "in_sync", "applied", "failed", "started_by", "plan_run_id",
    "changes", "reason", "error",
)  # fmt: skip

EntrySource = Callable[[str], Iterable[ActionEntry]]
"""Every action of one kind in the period, oldest first."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601 UTC text, dataclasses and tuples as objects and lists."""
    if isinstance(value, datetime):
        return _iso(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _head(report: Report) -> dict[str, Any]:
    """Every member of the JSON document but the actions."""
    stats = report.revocations
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "header": _plain(report.header),
        "summary": _plain(report.summary),
        "runs": [_plain(run) | {"total_drift": run.total_drift} for run in report.runs],
        "time_to_revoke": {
            "count": stats.count,
            "p50_s": stats.p50_s,
            "p95_s": stats.p95_s,
            "max_s": stats.max_s,
            "from_system_log": stats.from_system_log,
            "from_first_detection": stats.from_first_detection,
            "histogram": dict(stats.histogram),
            "revocations": [_plain(item) | {"seconds": item.seconds} for item in report.revoked],
        },
        "saved_plans": _plain(report.plans),
        "coverage": _plain(report.coverage),
    }


def write_json(report: Report, entries: EntrySource, out: TextIO) -> None:
    """The document, its small members indented, then ``actions``: by kind, one entry per line."""
    head = json.dumps(_head(report), ensure_ascii=False, indent=2)
    out.write(head[: head.rindex("}")].rstrip() + ',\n  "actions": {')
    for number, log in enumerate(report.action_log):
        out.write(("," if number else "") + f'\n    {json.dumps(log.kind)}: {{"total": {log.total}, ')
        out.write(f'"by_status": {json.dumps(log.by_status)}, "entries": [')
        for index, entry in enumerate(entries(log.kind)):
            out.write(("," if index else "") + "\n      " + json.dumps(_plain(entry), ensure_ascii=False))
        out.write("\n    ]}")
    out.write("\n  }\n}\n")


def write_csv(report: Report, entries: EntrySource, out: TextIO) -> None:
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_summary_rows(report))
    writer.writerows(_run_rows(report))
    for log in report.action_log:
        writer.writerows(_action_row(action) for action in entries(log.kind))
    writer.writerows(_revocation_rows(report))
    writer.writerows(_coverage_rows(report))


def _summary_rows(report: Report) -> Iterator[dict[str, Any]]:
    summary = _plain(report.summary)
    for field in ("runs", "full_audits", "incremental_runs", "successful_runs", "safety_stops", "failures"):
        yield {"record": "summary", "field": field, "value": summary[field]}
    for kind, n in report.summary.drift_found.items():
        yield {"record": "summary", "field": f"drift_found.{kind}", "value": n}
    for kind, n in report.summary.repaired.items():
        yield {"record": "summary", "field": f"repaired.{kind}", "value": n}
    stats = report.revocations
    for name in ("count", "p50_s", "p95_s", "max_s"):
        yield {"record": "summary", "field": f"time_to_revoke.{name}", "value": getattr(stats, name)}


def _run_rows(report: Report) -> Iterator[dict[str, Any]]:
    for run in report.runs:
        yield {
            "record": "run", "run_id": run.id, "mode": run.mode, "status": run.status,
            "started_at": _iso(run.started_at), "finished_at": run.finished_at and _iso(run.finished_at),
            "drift": run.total_drift, "in_sync": run.in_sync, "applied": run.applied, "failed": run.failed,
            "started_by": run.started_by, "plan_run_id": run.plan_run_id, "error": run.error,
        }  # fmt: skip


def _action_row(action: ActionEntry) -> dict[str, Any]:
    return {
        "record": "action", "run_id": action.run_id, "mode": action.run_mode, "status": action.status,
        "kind": action.kind, "user_name": action.user_name, "started_at": _iso(action.created_at),
        "finished_at": action.finished_at and _iso(action.finished_at),
        "changes": json.dumps(action.changes, ensure_ascii=False, sort_keys=True), "error": action.error,
    }  # fmt: skip


def _revocation_rows(report: Report) -> Iterator[dict[str, Any]]:
    for item in report.revoked:
        yield {
            "record": "revocation", "run_id": item.run_id, "kind": "deactivate", "user_name": item.user_name,
            "okta_changed_at": _iso(item.changed_at), "finished_at": _iso(item.confirmed_at),
            "seconds": f"{item.seconds:.3f}", "basis": item.basis,
        }  # fmt: skip


def _coverage_rows(report: Report) -> Iterator[dict[str, Any]]:
    if report.coverage is None:
        return
    for user in report.coverage.users:
        yield {
            "record": "coverage", "run_id": report.coverage.run_id, "kind": user.kind, "user_name": user.user_name,
            "status": user.outcome, "reason": user.reason,
        }  # fmt: skip
