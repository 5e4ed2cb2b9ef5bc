"""What a person reads: the plan grouped by kind, run history, one run's actions.

Text goes through ``rich``; ``--output json`` gives one JSON document instead.
Nothing here sees a secret: the records carry none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reconciler.cli.consoles import print_rule, print_table
from reconciler.models.groups import GroupAction, GroupActionKind, GroupMember, GroupPlan
from reconciler.models.records import Action, ActionKind, Plan
from reconciler.store import ActionRecord, GroupActionRecord, Run

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


_GROUP_KIND_STYLE = {
    GroupActionKind.CREATE_GROUP: ("+", "green"),
    GroupActionKind.LINK_GROUP: ("=", "cyan"),
    GroupActionKind.RENAME_GROUP: ("~", "yellow"),
    GroupActionKind.ADD_MEMBERS: ("+", "green"),
    GroupActionKind.REMOVE_MEMBERS: ("-", "yellow"),
    GroupActionKind.DELETE_GROUP: ("-", "red"),
    GroupActionKind.CONFLICT: ("!", "magenta"),
    GroupActionKind.UNMANAGED: ("?", "dim"),
}
MEMBERS_SHOWN = 50
"""Members a group action names in text; ``--output json`` names all."""


def _value(value: Any) -> str:
    return "(none)" if value is None else escape(json.dumps(value, ensure_ascii=False))


def _render_action(console: Console, action: Action, note: str | None = None) -> None:
    sign, style = _KIND_STYLE[action.kind]
    ids = ", ".join(
        f"{label} {value}" for label, value in (("scim", action.scim_id), ("okta", action.okta_user_id)) if value
    )
    console.print(f"  [{style}]{sign} {escape(action.user_name)}[/] [dim]({ids})[/] — {escape(action.reason)}")
    if note:
        console.print(f"      [dim]{escape(note)}[/]")
    if action.kind is ActionKind.CREATE:
        values = ", ".join(f"{escape(path)}={_value(c.after)}" for path, c in action.changes.items())
        console.print(f"      [dim]{values}[/]")
        return
    for path, change in action.changes.items():
        console.print(f"      {escape(path)}: {_value(change.before)} → {_value(change.after)}")


def render_plan(
    console: Console, plan: Plan, title: str, note: Callable[[Action], str | None] = lambda action: None
) -> None:
    """The plan, grouped by kind, with every attribute's before → after (and ``note``'s line, if any)."""
    print_rule(console, f"[bold]{escape(title)}")
    for kind in ActionKind:
        actions = [a for a in plan.actions if a.kind is kind]
        if not actions:
            continue
        sign, style = _KIND_STYLE[kind]
        console.print(f"[bold {style}]{kind.value.upper()}[/] ({len(actions)})")
        for action in actions[:MAX_ACTIONS_SHOWN_PER_KIND]:
            _render_action(console, action, note(action))
        if len(actions) > MAX_ACTIONS_SHOWN_PER_KIND:
            hidden = len(actions) - MAX_ACTIONS_SHOWN_PER_KIND
            console.print(f"  [dim]… and {hidden} more (see --output json or `reconcile show`)[/]")
    render_summary(console, plan.summary())


def _members_text(members: Sequence[str]) -> str:
    shown = ", ".join(members[:MEMBERS_SHOWN])
    more = len(members) - MEMBERS_SHOWN
    return shown + (f" and {more} more (see --output json)" if more > 0 else "")


def _member_labels(entries: Sequence[str | dict[str, Any]]) -> list[str]:
    """Members as recorded (``GroupAction.member_entries``, or an id in rows older than names) by userName."""
    labels = []
    for entry in entries:
        if isinstance(entry, str):
            labels.append(entry)
        else:
            labels.append(GroupMember(entry.get("user_name"), entry.get("okta_user_id"), entry.get("scim_id")).label())
    return labels


def _render_group_action(console: Console, action: GroupAction) -> None:
    sign, style = _GROUP_KIND_STYLE[action.kind]
    ids = ", ".join(
        f"{label} {value}" for label, value in (("scim", action.scim_id), ("okta", action.okta_group_id)) if value
    )
    why = f" — {escape(action.reason)}" if action.reason else ""
    console.print(f"  [{style}]{sign} {escape(action.name)}[/] [dim]({ids or 'new'})[/]{why}")
    if action.members:
        labels = _member_labels(action.member_entries())
        console.print(f"      {len(labels)} member(s): {escape(_members_text(labels))}")


def render_group_plan(console: Console, plan: GroupPlan) -> None:
    """The group plan, by kind, with the members each membership action names, and who is left out and why."""
    print_rule(console, "[bold]Groups")
    for kind in GroupActionKind:
        actions = [a for a in plan.actions if a.kind is kind]
        if not actions:
            continue
        sign, style = _GROUP_KIND_STYLE[kind]
        console.print(f"[bold {style}]{kind.value.upper()}[/] ({len(actions)})")
        for action in actions[:MAX_ACTIONS_SHOWN_PER_KIND]:
            _render_group_action(console, action)
        if len(actions) > MAX_ACTIONS_SHOWN_PER_KIND:
            console.print(f"  [dim]… and {len(actions) - MAX_ACTIONS_SHOWN_PER_KIND} more (see --output json)[/]")
    _render_left_out(console, plan)
    render_summary(console, plan.summary(), "Group summary")


def _render_left_out(console: Console, plan: GroupPlan) -> None:
    """Okta group members no platform group will hold: each named, with the true reason."""
    count = sum(len(members) for members in plan.unresolved_members.values())
    if not count:
        return
    console.print(f"[bold]LEFT OUT[/] ({count}): Okta group members the platform's groups will not hold")
    for entry in plan.left_out[:MAX_ACTIONS_SHOWN_PER_KIND]:
        console.print(
            f"  [dim]·[/] {escape(entry.member.label())} [dim]({escape(entry.group)})[/] — {escape(entry.why)}"
        )
    if count > len(plan.left_out[:MAX_ACTIONS_SHOWN_PER_KIND]):
        console.print(
            f"  [dim]… and {count - len(plan.left_out[:MAX_ACTIONS_SHOWN_PER_KIND])} more (see --output json)[/]"
        )


def group_plan_document(plan: GroupPlan) -> dict[str, Any]:
    """The ``groups`` part of the ``--output json`` document: members by userName, with both ids."""
    return {
        "summary": plan.summary(),
        "actions": [
            {
                "kind": a.kind.value,
                "name": a.name,
                "okta_group_id": a.okta_group_id,
                "scim_id": a.scim_id,
                "members": a.member_entries(),
                "reason": a.reason,
            }
            for a in plan.actions
        ],
        "unresolved_members": {group: list(members) for group, members in plan.unresolved_members.items()},
        "left_out": [{"group": e.group, **e.member.to_json(), "why": e.why} for e in plan.left_out],
    }


def render_summary(console: Console, summary: dict[str, int], label: str = "Summary") -> None:
    parts = [f"{key.replace('_', ' ')} {count}" for key, count in summary.items()]
    console.print(f"[bold]{label}:[/] " + ", ".join(parts))


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


def render_history(console: Console, runs: Sequence[Run], this_config: str | None = None) -> None:
    """The runs, one a row, each with the year and, for a run that failed or was blocked, why.

    With tenants (any run has one), a ``tenant`` column, and a ``by`` column naming the replica that ran each
    when they were not all run by one (each ``reconcile`` process is a replica of its own: naming them in a
    single-tenant history would only show pids). Without tenants, runs of more than one configuration (an
    earlier app or endpoint, sharing the store) get a ``config`` column: the configuration's fingerprint, cut
    to :data:`FINGERPRINT_SHOWN` characters, ``this_config``'s marked ``*``.
    """
    tenants = any(run.tenant for run in runs)
    configs = not tenants and len({run.config_fingerprint for run in runs}) > 1
    by = tenants and len({run.replica for run in runs}) > 1
    caption = "plan: +create ~update -deactivate ↑reactivate =link !conflict ?unmanaged; ok/err: writes"
    if configs:
        caption += f"; config: * = this file's ({(this_config or '')[:FINGERPRINT_SHOWN]})"
    table = Table(title="Recent runs", caption=caption)
    columns = ["run", *(["tenant"] if tenants else []), *(["config"] if configs else []), "UTC", "mode", "status"]
    columns += ["plan", "ok", "err", *(["by"] if by else []), "why"]
    for column in columns:
        justify = "right" if column in ("run", "ok", "err") else "left"
        table.add_column(column, justify=justify, no_wrap=column in ("UTC", "mode", "status", "plan"))
    for run in runs:
        cells = [str(run.id), *([escape(run.tenant or "-")] if tenants else [])]
        cells += [_config_cell(run.config_fingerprint, this_config)] if configs else []
        cells += [run.started_at.strftime("%Y-%m-%d %H:%M"), run.mode.value, run.status.value, _drift_cell(run.summary)]
        cells += [str(run.applied), str(run.failed), *([escape(run.replica or "-")] if by else [])]
        cells.append(escape(" ".join(run.error.split())) if run.error else "")
        table.add_row(*cells)
    print_table(console, table)


FINGERPRINT_SHOWN = 8
"""Characters of a configuration's fingerprint shown in ``history``: enough to tell a store's few apart."""


def _config_cell(fingerprint: str, this_config: str | None) -> str:
    return fingerprint[:FINGERPRINT_SHOWN] + ("*" if fingerprint == this_config else "")


def render_run(
    console: Console, run: Run, actions: Sequence[ActionRecord], group_actions: Sequence[GroupActionRecord] = ()
) -> None:
    """One run: its status and counts, then each action with its outcome, then each group action."""
    finished = run.finished_at.strftime("%Y-%m-%d %H:%M:%S") if run.finished_at else "-"
    tenant = f" (tenant {escape(run.tenant)})" if run.tenant else ""
    console.print(
        f"[bold]Run {run.id}[/]{tenant} {run.mode.value}, {run.status.value}; "
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
    if run.group_summary:
        render_summary(console, run.group_summary, "Group summary")
    for group_record in group_actions:
        _render_group_record(console, group_record)


def _render_group_record(console: Console, record: GroupActionRecord) -> None:
    sign, style = _GROUP_KIND_STYLE[record.kind]
    why = escape(record.error or record.reason)
    members = f", {record.member_count} member(s)" if record.member_count else ""
    console.print(
        f"  [{style}]{sign} {record.kind.value} {escape(record.group_name)}[/] "
        f"[dim]({record.scim_id or 'new'}{members})[/] [bold]{record.status.value}[/] — {why}"
    )
    if record.members:
        console.print(f"      {escape(', '.join(_member_labels(record.members)))}")


def run_document(
    run: Run, actions: Sequence[ActionRecord], group_actions: Sequence[GroupActionRecord] = ()
) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "tenant": run.tenant,
        "config_fingerprint": run.config_fingerprint,
        "replica": run.replica,
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
                "okta_changed_at": r.okta_changed_at.isoformat() if r.okta_changed_at else None,
            }
            for r in actions
        ],
        "group_summary": run.group_summary,
        "group_actions": [
            {
                "kind": r.kind.value,
                "name": r.group_name,
                "okta_group_id": r.okta_group_id,
                "scim_id": r.scim_id,
                "members": r.members,
                "reason": r.reason,
                "status": r.status.value,
                "error": r.error,
            }
            for r in group_actions
        ],
    }
