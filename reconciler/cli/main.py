"""The ``reconcile`` command.

Exit codes (also in the README):

====  =====================================================================
0     in sync, or everything planned was applied
1     a failure: Okta or the platform unreadable, or an action failed; ``apply``:
      a saved plan refused, or not wholly applied (an action failed or was stale)
2     ``--dry-run`` found drift (something to write, or a conflict not acknowledged)
3     blocked by the safety gate: a threshold or the source-shrink guard tripped;
      ``apply``: a saved plan above the thresholds, not confirmed
4     declined: a live run on a terminal whose plan the operator did not approve
      (any answer but ``yes``, end of input, Ctrl-C); nothing was written
75    another run of the same target holds the run lock; nothing was done
64    usage error (unknown option, missing argument)
78    bad configuration; one line per problem on stderr
====  =====================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from reconciler.cli.ack import acknowledged_note, mark_acknowledged
from reconciler.cli.confirm import PlanConfirmation, interactive
from reconciler.cli.consoles import console_for
from reconciler.cli.demo_state import demo_servers_gone
from reconciler.cli.exits import EXIT_BLOCKED, EXIT_BUSY, EXIT_CONFIG, EXIT_DECLINED, EXIT_DRIFT, EXIT_FAILURE, EXIT_OK
from reconciler.cli.invocation import again, remember_invocation
from reconciler.cli.parser import completion_script, parse_arguments
from reconciler.cli.progress_display import progress_for
from reconciler.cli.render import (
    group_plan_document,
    plan_document,
    render_group_plan,
    render_history,
    render_plan,
    render_run,
    run_document,
)
from reconciler.config.load import load_config, load_fleet
from reconciler.config.model import Config, FleetConfig, fingerprint
from reconciler.config.service_model import ServiceConfig
from reconciler.errors import ConfigError
from reconciler.logs import LogFormat, json_logs_active, setup_logging, tell
from reconciler.models.runs import RunStatus
from reconciler.store import Store, StoreError, db_upgrade, schema_status
from reconciler.store.locks import LockBusy
from reconciler.store.store import operating_user

if TYPE_CHECKING:
    from reconciler.run.outcome import RunOutcome

STORE_ONLY_COMMANDS = ("history", "show", "db", "status", "ack", "report")
"""Commands that need only the store: no secret is read, and a file of tenants needs no --tenant."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    remember_invocation(sys.argv[0] if argv is None else None)
    if args.command == "completion":
        print(completion_script(args.shell))
        return EXIT_OK
    if args.command == "demo":
        from reconciler.cli.demo_commands import run_demo_command

        setup_logging(args.log_level or "WARNING", log_format=args.log_format or "text")
        return run_demo_command(args)
    try:
        fleet = _load(args)
    except ConfigError as error:
        setup_logging(args.log_level or "WARNING", log_format=args.log_format or "text")
        for problem in error.problems:
            tell(f"config: {problem}", problem=problem)
        return EXIT_CONFIG
    if args.command not in STORE_ONLY_COMMANDS and (gone := demo_servers_gone(fleet.tenants[0])):
        tell(gone)
        return EXIT_FAILURE
    log_level = args.log_level or ("INFO" if args.command == "serve" else "WARNING")
    setup_logging(log_level, fleet.secrets(), args.log_format or "text")
    json_output = args.output == "json"
    if args.command == "db":
        return _db(fleet.store.url, args.db_action)
    if args.command == "check":
        return _check(fleet.tenants[0], json_output)
    replica = getattr(args, "replica", None) or fleet.service.replica
    try:
        only_looks = args.command in STORE_ONLY_COMMANDS
        started_by = None if args.command == "serve" else operating_user()  # the service's runs are the schedule's
        store = Store(
            fleet.store.url,
            config_path=fleet.source_path,
            replica=replica,
            create=not only_looks,
            started_by=started_by,
        )
    except StoreError as error:
        tell(f"reconcile: {error}")
        return EXIT_FAILURE
    with store:
        if args.command == "serve":
            return _serve(fleet, store, log_level, args.log_format or "text")
        if args.command == "follow":
            from reconciler.cli.follow import run_follow_command

            return run_follow_command(fleet.tenants[0], store, dry_run=args.dry_run, once=args.once)
        if args.command == "ack":
            from reconciler.cli.ack import run_ack_command

            return run_ack_command(args, fleet, store, json_output)
        if args.command in STORE_ONLY_COMMANDS:
            return _look(args, fleet, store, json_output)
        return _dispatch(args, fleet.tenants[0], store, json_output)


def _load(args: argparse.Namespace) -> FleetConfig:
    """The file, as the command needs it: every tenant, or the one ``--tenant`` names (a one-off run).

    Commands that only read the store read no secret: a service's credentials,
    which only systemd hands to the service, are not needed to look at its history.
    """
    if args.command in STORE_ONLY_COMMANDS:
        fleet = load_fleet(args.config, read_secrets=False)
        return replace(fleet, tenants=(fleet.tenant(args.tenant),)) if args.tenant else fleet
    if args.command == "serve":
        return load_fleet(args.config)
    config = load_config(args.config, tenant=args.tenant)
    return FleetConfig((config,), config.store, config.metrics, ServiceConfig(), config.source_path, False)


def _serve(fleet: FleetConfig, store: Store, log_level: str, log_format: LogFormat) -> int:
    if fleet.multi_tenant:
        from reconciler.service.fleet import serve_fleet

        return serve_fleet(fleet, store, log_level=log_level, log_format=log_format)
    from reconciler.service.single import serve

    return serve(fleet.tenants[0], store, log_level=log_level, log_format=log_format)


def _look(args: argparse.Namespace, fleet: FleetConfig, store: Store, json_output: bool) -> int:
    """history, show, status and report: the store as it is, a killed run shown as interrupted, not running."""
    _settle_abandoned(store, [fingerprint(config) for config in fleet.tenants])
    if args.command == "report":
        from reconciler.cli.report import run_report_command

        return run_report_command(args, fleet, store)
    if args.command == "history":
        return _history(store, fleet, args.limit, json_output)
    if args.command == "show":
        return _show(store, args.run_id, json_output)
    return _status(store, fleet, json_output)


def _settle_abandoned(store: Store, targets: list[str]) -> None:
    """Settle the targets whose latest run is recorded running while nobody holds their lock.

    One look at every target's state and at the held locks first: with hundreds of
    tenants, trying each one's lock would cost a connection each.
    """
    states = store.tenant_states(targets)
    suspects = [fp for fp in targets if (latest := states[fp].latest) and latest.status is RunStatus.RUNNING]
    held = store.lock_holders(suspects) if suspects else {}
    for target in suspects:
        if target not in held:
            store.settle_abandoned_runs(target)


def _dispatch(args: argparse.Namespace, config: Config, store: Store, json_output: bool) -> int:
    try:
        with store.run_lock(fingerprint(config)):
            # Holding the lock proves any run of this target still marked running was abandoned.
            store.mark_interrupted(fingerprint=fingerprint(config))
            if args.command == "apply":
                from reconciler.cli.apply import run_apply_command

                return run_apply_command(config, store, args.plan_file, yes=args.yes, json_output=json_output)
            return _run(
                config,
                store,
                dry_run=args.dry_run,
                json_output=json_output,
                save_plan=args.save_plan,
                quiet=args.quiet,
                yes=args.yes,
            )
    except LockBusy as error:
        tell(f"reconcile: {error}", tenant=config.tenant)
        return EXIT_BUSY


def _db(url: str, action: str) -> int:
    """``reconcile db upgrade|status``: without opening a Store, which refuses a schema that is behind."""
    try:
        if action == "upgrade":
            revision = db_upgrade(url)
            print(f"the store is at schema revision {revision}")
            return EXIT_OK
        status = schema_status(url)
        print(status.describe())
        return EXIT_OK if status.state in ("current", "empty") else EXIT_FAILURE
    except StoreError as error:
        tell(f"reconcile: {error}")
        return EXIT_FAILURE


def _check(config: Config, json_output: bool) -> int:
    """``reconcile check``: both connections, without a store (there is no run to record)."""
    from reconciler.cli.check import check_document, render_check, run_check

    report = asyncio.run(run_check(config))
    if json_output:
        _print_json(check_document(report))
    else:
        render_check(console_for(), config, report)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _run(
    config: Config,
    store: Store,
    *,
    dry_run: bool,
    json_output: bool,
    save_plan: Path | None = None,
    quiet: bool = False,
    yes: bool = False,
) -> int:
    # On stderr, and only on a terminal; stopped (and cleared) before the report is printed, whatever happens.
    progress = progress_for(sys.stderr, quiet)
    confirm = None
    if not dry_run and not yes and interactive():
        confirm = PlanConfirmation(config, progress, json_output=json_output, stdin=sys.stdin)
    try:
        # Imported here: the okta SDK takes seconds to import, and history, show and
        # configuration errors do not need it.
        from reconciler.run.alerting import reconcile_and_alert

        outcome = asyncio.run(reconcile_and_alert(config, store, dry_run=dry_run, progress=progress, confirm=confirm))
    finally:
        progress.finished()
    console = console_for(stderr=json_output)
    if json_output:
        _print_json(_outcome_document(outcome))
    else:
        _print_outcome(console, outcome, dry_run, config, plan_shown=confirm is not None and confirm.shown)
    if save_plan is not None:
        from reconciler.cli.apply import save_after_dry_run

        if not save_after_dry_run(save_plan, config, outcome, console):
            return EXIT_FAILURE
    return exit_code(outcome, dry_run)


def exit_code(outcome: RunOutcome, dry_run: bool) -> int:
    from reconciler.run.outcome import needs_attention

    if outcome.status in (RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.INTERRUPTED):
        return EXIT_FAILURE
    if outcome.status is RunStatus.BLOCKED:
        return EXIT_BLOCKED
    if outcome.status is RunStatus.DECLINED:
        return EXIT_DECLINED
    if dry_run and outcome.plan is not None and needs_attention(outcome.plan, outcome.group_plan, outcome.acknowledged):
        return EXIT_DRIFT
    return EXIT_OK


def _outcome_document(outcome: RunOutcome) -> dict:
    extra = {
        "status": outcome.status.value,
        "error": outcome.error,
        "applied": outcome.applied.succeeded,
        "failed": outcome.applied.failed,
    }
    if outcome.group_plan is not None:
        extra["groups"] = group_plan_document(outcome.group_plan)
    if outcome.plan is None:
        return {"summary": None, "actions": [], "run_id": outcome.run_id, **extra}
    return mark_acknowledged(plan_document(outcome.plan, outcome.run_id, **extra), outcome)


def _print_outcome(
    console: Console, outcome: RunOutcome, dry_run: bool, config: Config, *, plan_shown: bool = False
) -> None:
    if outcome.plan is not None and not plan_shown:
        title = f"Plan (run {outcome.run_id}{', dry-run' if dry_run else ''})"
        render_plan(console, outcome.plan, title, acknowledged_note(outcome))
    if outcome.group_plan is not None and not plan_shown:
        render_group_plan(console, outcome.group_plan)
    if not dry_run and outcome.plan is not None and outcome.status is not RunStatus.DECLINED:
        console.print(f"Applied {outcome.applied.succeeded} action(s), {outcome.applied.failed} failed.")
    if outcome.error:
        _tell_failure(outcome)
    console.print(f"[dim]Inspect with: {escape(again('show', outcome.run_id, config=config))}[/]", soft_wrap=True)


def _tell_failure(outcome: RunOutcome) -> None:
    """``Run N failed: why`` on stderr: in red on a terminal, a JSON record with json logs."""
    assert outcome.error is not None
    if not json_logs_active():
        console_for(stderr=True).print(f"[red]Run {outcome.run_id} {outcome.status.value}:[/] {escape(outcome.error)}")
        return
    fields = {"run_id": outcome.run_id, "status": outcome.status.value, "error": outcome.error}
    tell(f"Run {outcome.run_id} {outcome.status.value}: {outcome.error}", **fields)


def _history(store: Store, fleet: FleetConfig, limit: int, json_output: bool) -> int:
    """Recent runs: all of the store's for a whole file, one tenant's with ``--tenant``."""
    from reconciler.service.schedule import quarantined  # with apscheduler, which a run does not need

    chosen = None if len(fleet.tenants) > 1 or not fleet.multi_tenant else [fingerprint(fleet.tenants[0])]
    runs = store.recent_runs(limit, chosen)
    if json_output:
        _print_json([run_document(run, []) | {"actions": None, "group_actions": None} for run in runs])
        return EXIT_OK
    from reconciler.cli.trend import render_trend

    console = console_for()
    render_trend(console, runs)
    render_history(console, runs, fingerprint(fleet.tenants[0]) if not fleet.multi_tenant else None)
    states = store.tenant_states([fingerprint(config) for config in fleet.tenants])
    for config in fleet.tenants:
        failures = states[fingerprint(config)].consecutive_failures
        if quarantined(failures, config.thresholds):
            hours = config.thresholds.quarantine_interval_s / 3600
            who = f"tenant {config.tenant} " if config.tenant else ""
            console.print(
                f"[red]{who}quarantined:[/] {failures} consecutive failed runs; the service runs every {hours:g} h "
                "until a run succeeds (see [thresholds] quarantine_after)"
            )
    return EXIT_OK


def _status(store: Store, fleet: FleetConfig, json_output: bool) -> int:
    from reconciler.cli.status import render_status, status_document, tenant_statuses

    statuses = tenant_statuses(fleet, store)
    if json_output:
        _print_json(status_document(statuses))
    else:
        render_status(console_for(), statuses)
    return EXIT_OK


def _show(store: Store, run_id: int, json_output: bool) -> int:
    run = store.get_run(run_id)
    if run is None:
        tell(f"reconcile: no run {run_id} in the store (see `reconcile history`)", run_id=run_id)
        return EXIT_FAILURE
    actions, group_actions = store.actions_of(run_id), store.group_actions_of(run_id)
    if json_output:
        _print_json(run_document(run, actions, group_actions))
    else:
        render_run(console_for(), run, actions, group_actions)
    return EXIT_OK


def _print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")
