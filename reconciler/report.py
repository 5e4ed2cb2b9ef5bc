"""What a person reads: the plan grouped by kind, run history, one run's actions.

Text goes through ``rich``; ``--output json`` gives one JSON document instead.
Nothing here sees a secret: the records carry none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reconciler.records import Action, ActionKind, Plan
from reconciler.store import ActionRecord, Run

MAX_ACTIONS_SHOWN_PER_KIND = 50
"""The text plan shows this many actions per kind; ``--output json`` shows all."""

_KIND_STYLE = {
    ActionKind.CREATE: ("+", "green"),
    ActionKind.UPDATE: ("~", "yellow"),
    ActionKind.LINK: ("=", "cyan"),
    ActionKind.REACTIVATE: ("↑", "green"),
    ActionKind.DEACTIVATE: ("-", "red"),
    ActionKind.CONFLICT: ("!", "magenta"),
    ActionKind.UNMANAGED: ("?", "dim"),
}


def _value(value: Any) -> str:
    return "(none)" if value is None else escape(json.dumps(value, ensure_ascii=False))


def _render_action(console: Console, action: Action) -> None:
    sign, style = _KIND_STYLE[action.kind]
    ids = ", ".join(
        f"{label} {value}" for label, value in (("scim", action.scim_id), ("okta", action.okta_user_id)) if value
    )
    console.print(f"  [{style}]{sign} {escape(action.user_name)}[/] [dim]({ids})[/] — {escape(action.reason)}")
    if action.kind is ActionKind.CREATE:
        values = ", ".join(f"{escape(path)}={_value(c.after)}" for path, c in action.changes.items())
        console.print(f"      [dim]{values}[/]")
        return
    for path, change in action.changes.items():
        console.print(f"      {escape(path)}: {_value(change.before)} → {_value(change.after)}")


def render_plan(console: Console, plan: Plan, title: str) -> None:
    """The plan, grouped by kind, with every attribute's before → after."""
    console.rule(f"[bold]{escape(title)}")
    for kind in ActionKind:
        actions = [a for a in plan.actions if a.kind is kind]
        if not actions:
            continue
        sign, style = _KIND_STYLE[kind]
        console.print(f"[bold {style}]{kind.value.upper()}[/] ({len(actions)})")
        for action in actions[:MAX_ACTIONS_SHOWN_PER_KIND]:
            _render_action(console, action)
        if len(actions) > MAX_ACTIONS_SHOWN_PER_KIND:
            hidden = len(actions) - MAX_ACTIONS_SHOWN_PER_KIND
            console.print(f"  [dim]… and {hidden} more (see --output json or `reconcile show`)[/]")
    render_summary(console, plan.summary())


def render_summary(console: Console, summary: dict[str, int]) -> None:
    parts = [f"{key.replace('_', ' ')} {count}" for key, count in summary.items()]
    console.print("[bold]Summary:[/] " + ", ".join(parts))


def plan_document(plan: Plan, run_id: int | None, **extra: Any) -> dict[str, Any]:
    """The ``--output json`` document."""
    return {
        "summary": plan.summary(),
        "actions": [action.to_json() for action in plan.actions],
        "run_id": run_id,
        **extra,
    }


def render_history(console: Console, runs: Sequence[Run]) -> None:
    table = Table(title="Recent runs")
    for column in (
        "run",
        "started (UTC)",
        "mode",
        "status",
        "create",
        "update",
        "deactivate",
        "reactivate",
        "link",
        "conflict",
        "unmanaged",
        "applied",
        "failed",
    ):
        table.add_column(column, justify="right" if column not in ("mode", "status", "started (UTC)") else "left")
    for run in runs:
        summary = run.summary or {}
        table.add_row(
            str(run.id),
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            run.mode.value,
            run.status.value,
            *(
                str(summary.get(key, "-"))
                for key in ("create", "update", "deactivate", "reactivate", "link", "conflict", "unmanaged")
            ),
            str(run.applied),
            str(run.failed),
        )
    console.print(table)


def render_run(console: Console, run: Run, actions: Sequence[ActionRecord]) -> None:
    finished = run.finished_at.strftime("%Y-%m-%d %H:%M:%S") if run.finished_at else "-"
    console.print(
        f"[bold]Run {run.id}[/] {run.mode.value}, {run.status.value}; "
        f"started {run.started_at:%Y-%m-%d %H:%M:%S}, finished {finished} (UTC)"
    )
    if run.summary:
        render_summary(console, run.summary)
    if run.error:
        console.print(f"[red]error:[/] {escape(run.error)}")
    table = Table()
    for column in ("kind", "userName", "scim id", "outcome", "reason / error", "changes"):
        table.add_column(column)
    for record in actions:
        changes = ", ".join(
            f"{path}: {_value(c.get('before'))} → {_value(c.get('after'))}" for path, c in record.changes.items()
        )
        table.add_row(
            record.kind.value,
            escape(record.user_name),
            record.scim_id or "-",
            record.status.value,
            escape(record.error or record.reason),
            changes,
        )
    console.print(table)


def run_document(run: Run, actions: Sequence[ActionRecord]) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "mode": run.mode.value,
        "status": run.status.value,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "summary": run.summary,
        "applied": run.applied,
        "failed": run.failed,
        "error": run.error,
        "actions": [
            {
                "kind": r.kind.value,
                "user_name": r.user_name,
                "okta_user_id": r.okta_user_id,
                "scim_id": r.scim_id,
                "reason": r.reason,
                "changes": r.changes,
                "status": r.status.value,
                "error": r.error,
            }
            for r in actions
        ],
    }
