"""The report as data for GRC tools: one JSON document, or one CSV table, holding what the page shows.

Both are made with no limit on the action log or coverage (the page shows the latest entries of each kind):
every action of the period, every deactivation and its time to revoke, every user out of sync.

The CSV is one table, one row per record, its first column saying which record it is: ``summary`` (a figure,
``field`` and ``value``), ``run``, ``action``, ``revocation``, ``coverage`` (a user not in sync at the coverage
audit). A column a record does not use is empty.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from reconciler.report.model import Report

FORMAT: Final = "okta-reconciler report"
FORMAT_VERSION: Final = 1
CSV_COLUMNS: Final = (
    "record",
    "field",
    "value",
    "run_id",
    "mode",
    "status",
    "kind",
    "user_name",
    "started_at",
    "finished_at",
    "okta_changed_at",
    "seconds",
    "basis",
    "drift",
    "in_sync",
    "applied",
    "failed",
    "started_by",
    "plan_run_id",
    "changes",
    "reason",
    "error",
)


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


def report_document(report: Report) -> dict[str, Any]:
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
        "actions": {
            log.kind: {"total": log.total, "by_status": log.by_status, "entries": _plain(log.entries)}
            for log in report.action_log
        },
        "saved_plans": _plain(report.plans),
        "coverage": _plain(report.coverage),
    }


def render_json(report: Report) -> str:
    return json.dumps(report_document(report), ensure_ascii=False, indent=2) + "\n"


def render_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_csv_rows(report))
    return buffer.getvalue()


def _csv_rows(report: Report) -> Iterator[dict[str, Any]]:
    yield from _summary_rows(report)
    for run in report.runs:
        yield {
            "record": "run", "run_id": run.id, "mode": run.mode, "status": run.status,
            "started_at": _iso(run.started_at), "finished_at": run.finished_at and _iso(run.finished_at),
            "drift": run.total_drift, "in_sync": run.in_sync, "applied": run.applied, "failed": run.failed,
            "started_by": run.started_by, "plan_run_id": run.plan_run_id, "error": run.error,
        }  # fmt: skip
    for log in report.action_log:
        for action in log.entries:
            yield {
                "record": "action", "run_id": action.run_id, "mode": action.run_mode, "status": action.status,
                "kind": action.kind, "user_name": action.user_name, "started_at": _iso(action.created_at),
                "finished_at": action.finished_at and _iso(action.finished_at),
                "changes": json.dumps(action.changes, ensure_ascii=False, sort_keys=True), "error": action.error,
            }  # fmt: skip
    for item in report.revoked:
        yield {
            "record": "revocation", "run_id": item.run_id, "kind": "deactivate", "user_name": item.user_name,
            "okta_changed_at": _iso(item.changed_at), "finished_at": _iso(item.confirmed_at),
            "seconds": f"{item.seconds:.3f}", "basis": item.basis,
        }  # fmt: skip
    if report.coverage is not None:
        for user in report.coverage.users:
            yield {
                "record": "coverage", "run_id": report.coverage.run_id, "kind": user.kind,
                "user_name": user.user_name, "status": user.outcome, "reason": user.reason,
            }  # fmt: skip


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
