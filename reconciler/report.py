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


def _drift_cell(summary: dict[str, int] | None) -> str:
    """``+12 ~8 -10 ↑4 =3 !1 ?2``: the plan's counts with the plan's signs, zeros left out."""
    if summary is None:
        return "-"
    cells = [f"{_KIND_STYLE[kind][0]}{summary[kind.value]}" for kind in ActionKind if summary.get(kind.value)]
    return " ".join(cells) or "in sync"


def render_history(console: Console, runs: Sequence[Run]) -> None:
    table = Table(
        title="Recent runs",
        caption="plan: +create ~update -deactivate ↑reactivate =link !conflict ?unmanaged; ok/err: writes",
    )
    for column in ("run", "UTC", "mode", "status", "plan", "ok", "err"):
        justify = "right" if column in ("run", "ok", "err") else "left"
        table.add_column(column, justify=justify, no_wrap=column in ("UTC", "mode", "status", "plan"))
    for run in runs:
        table.add_row(
            str(run.id),
            run.started_at.strftime("%m-%d %H:%M"),
            run.mode.value,
            run.status.value,
            _drift_cell(run.summary),
            str(run.applied),
            str(run.failed),
        )
    console.print(table)


def render_run(console: Console, run: Run, actions: Sequence[ActionRecord]) -> None:
    """One run: its status and counts, then each action with its outcome."""
    finished = run.finished_at.strftime("%Y-%m-%d %H:%M:%S") if run.finished_at else "-"
    console.print(
        f"[bold]Run {run.id}[/] {run.mode.value}, {run.status.value}; "
        f"started {run.started_at:%Y-%m-%d %H:%M:%S}, finished {finished} (UTC)"
    )
    if run.summary:
        render_summary(console, run.summary)
    if run.error:
        console.print(f"[red]error:[/] {escape(run.error)}")
    for record in actions:
        sign, style = _KIND_STYLE[record.kind]
        why = escape(record.error or record.reason)
        console.print(
            f"  [{style}]{sign} {record.kind.value} {escape(record.user_name)}[/] "
            f"[dim]({record.scim_id or 'new'})[/] [bold]{record.status.value}[/] — {why}"
        )
        for path, change in record.changes.items():
            console.print(f"      {escape(path)}: {_value(change.get('before'))} → {_value(change.get('after'))}")


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
