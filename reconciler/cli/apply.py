"""``reconcile apply PLAN_FILE`` and ``--save-plan``: confirming on a terminal, saving after a dry-run,
rendering the outcome."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from reconciler.cli.consoles import console_for, print_rule
from reconciler.cli.exits import EXIT_BLOCKED, EXIT_FAILURE, EXIT_OK
from reconciler.cli.invocation import again
from reconciler.config.model import Config
from reconciler.models.runs import RunStatus
from reconciler.run.alerting import alert_after_run
from reconciler.run.outcome import RunOutcome
from reconciler.run.saved.apply import Confirm, PlanApplyOutcome, apply_saved_plan, judged_outcome
from reconciler.run.saved.binding import describe_age, plan_age_s
from reconciler.run.saved.document import SavedPlan, SavedPlanError, load_plan, save_plan
from reconciler.run.saved.groups import group_action_json
from reconciler.store import Store


def terminal_confirmation(yes: bool, stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> Confirm:
    """Ask on a terminal (y/N); elsewhere only ``--yes`` confirms."""

    def confirm(question: str) -> bool:
        input_, output = stdin or sys.stdin, stderr or sys.stderr
        print(question, file=output)
        if yes:
            print("--yes given: applying it.", file=output)
            return True
        if not _is_terminal(input_):
            print("not on a terminal: pass --yes to apply a plan that exceeds thresholds.", file=output)
            return False
        print("Apply it? [y/N] ", end="", file=output, flush=True)
        return input_.readline().strip().lower() in ("y", "yes")

    return confirm


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def check_plan_age(saved: SavedPlan, config: Config, *, yes: bool, now: datetime | None = None) -> None:
    """Refuse a plan older than ``[thresholds] max_plan_age``, unless ``--yes`` says to apply it all the same."""
    age_s = plan_age_s(saved.created_at, now or datetime.now(UTC))
    limit_s = config.thresholds.max_plan_age_s
    if age_s <= limit_s:
        return
    age, limit = describe_age(age_s), describe_age(limit_s)
    if yes:
        print(f"this plan is {age} old, older than max_plan_age ({limit}); --yes given: applying it.", file=sys.stderr)
        return
    raise SavedPlanError(
        f"{saved.path}: refusing this plan: it is {age} old, older than [thresholds] max_plan_age ({limit}). "
        f"Make a new plan ({again('--dry-run', '--save-plan', saved.path, config=config, tenant=True)}), "
        "or pass --yes to apply this one all the same"
    )


def save_after_dry_run(path: Path, config: Config, outcome: RunOutcome, console: Console) -> bool:
    """``--save-plan``: write the dry-run's plan (blocked or not: that is the review path)."""
    if outcome.plan is None:
        console_for(stderr=True).print(f"[red]No plan saved to {escape(str(path))}:[/] the run failed before planning.")
        return False
    try:
        document = save_plan(path, config, outcome)
    except SavedPlanError as error:
        console_for(stderr=True).print(f"[red]{escape(str(error))}[/]")
        return False
    writes = sum(1 for a in outcome.plan.actions if a.writes)
    if outcome.group_plan is not None:
        writes += len(outcome.group_plan.writes)
    console.print(f"Plan saved to {escape(str(path))} ({writes} write(s)); apply it with:")
    console.print(f"  {escape(again('apply', path, config=config, tenant=True))}", soft_wrap=True)
    if document["gate"]["blocked"]:
        console.print("[yellow]It exceeds thresholds:[/] apply will ask for confirmation (--yes off a terminal).")
    return True


def run_apply_command(config: Config, store: Store, path: Path, *, yes: bool, json_output: bool) -> int:
    """``reconcile apply PLAN_FILE``: exit 0 when every write was applied, 3 when the gate held the plan (above
    the thresholds, not confirmed), 1 otherwise."""
    try:
        saved = load_plan(path, config)
        check_plan_age(saved, config, yes=yes)
    except SavedPlanError as error:
        print(f"reconcile: {error}", file=sys.stderr)
        return EXIT_FAILURE
    outcome = asyncio.run(_apply_and_alert(config, store, saved, yes))
    if json_output:
        sys.stdout.write(json.dumps(outcome_document(saved, outcome), ensure_ascii=False, indent=2) + "\n")
    else:
        render_apply(console_for(), saved, outcome, config)
    if outcome.status is RunStatus.BLOCKED:
        return EXIT_BLOCKED
    return EXIT_OK if outcome.complete else EXIT_FAILURE


async def _apply_and_alert(config: Config, store: Store, saved: SavedPlan, yes: bool) -> PlanApplyOutcome:
    outcome = await apply_saved_plan(config, store, saved, terminal_confirmation(yes))
    await alert_after_run(store, config, judged_outcome(outcome))
    return outcome


def outcome_document(saved: SavedPlan, outcome: PlanApplyOutcome) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "plan_file": str(saved.path),
        "plan_run_id": saved.run_id,
        "status": outcome.status.value,
        "error": outcome.error,
        "confirmed": outcome.confirmed,
        "writes": outcome.writes,
        "applied": outcome.applied.succeeded,
        "failed": outcome.applied.failed,
        "stale": [stale.action.to_json() | {"why": stale.why} for stale in outcome.stale],
        "stale_groups": [group_action_json(stale.action) | {"why": stale.why} for stale in outcome.stale_groups],
    }


def render_apply(console: Console, saved: SavedPlan, outcome: PlanApplyOutcome, config: Config) -> None:
    made = saved.created_at.strftime("%Y-%m-%d %H:%M:%S")
    print_rule(console, f"[bold]Apply saved plan {escape(str(saved.path))} (run {outcome.run_id})")
    console.print(f"Plan made {made} UTC by dry-run {saved.run_id}; {outcome.writes} write(s) in it.")
    if saved.trips:
        reasons = "; ".join(trip.reason for trip in saved.trips)
        console.print(f"[yellow]When it was made, it exceeded thresholds:[/] {escape(reasons)}")
    for stale in outcome.stale:
        action = stale.action
        console.print(f"  [yellow]skipped[/] {action.kind.value} {escape(action.user_name)} — {escape(stale.why)}")
    for stale_group in outcome.stale_groups:
        action = stale_group.action
        console.print(f"  [yellow]skipped[/] {action.kind.value} {escape(action.name)} — {escape(stale_group.why)}")
    for line in outcome.applied.errors:
        console.print(f"  [red]failed[/] {escape(line)}")
    console.print(
        f"Applied {outcome.applied.succeeded}, failed {outcome.applied.failed}, "
        f"stale {len(outcome.stale) + len(outcome.stale_groups)} "
        f"(of {outcome.writes} write(s))."
    )
    if outcome.stale or outcome.stale_groups:
        console.print("Stale actions were not applied: make a new plan for them with:")
        console.print(
            f"  {escape(again('--dry-run', '--save-plan', saved.path, config=config, tenant=True))}", soft_wrap=True
        )
    if outcome.error:
        console_for(stderr=True).print(f"[red]Run {outcome.run_id} {outcome.status.value}:[/] {escape(outcome.error)}")
    console.print(f"[dim]Inspect with: {escape(again('show', outcome.run_id, config=config))}[/]", soft_wrap=True)
