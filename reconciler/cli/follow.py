"""``reconcile follow``: the System Log follower in the foreground, for one configuration.

It follows as ``serve`` does (:mod:`reconciler.run.follower`): its full audits are the same run as
``reconcile`` (with its alerts), under the target's run lock, and each batch holds that lock while it
writes, so a scheduled run and a batch never write at once. ``--once`` polls until caught up and exits
(for scripts and tests); ``--dry-run`` plans and records each batch, sends nothing, and leaves the stored
cursor where it was. SIGINT or SIGTERM stops it after the batch in flight (a second one cancels that batch,
which is recorded interrupted): the cursor is saved only after a batch's repairs are recorded.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console

from reconciler.cli.consoles import console_for
from reconciler.cli.exits import EXIT_BLOCKED, EXIT_BUSY, EXIT_DRIFT, EXIT_FAILURE, EXIT_OK
from reconciler.config.model import Config, fingerprint
from reconciler.errors import ReconcileError
from reconciler.logs import tell
from reconciler.models.runs import RunStatus
from reconciler.run.alerting import reconcile_and_alert
from reconciler.run.follower import Follower, FollowerOff, PollResult, follow_lease_name
from reconciler.run.outcome import RunOutcome, needs_attention
from reconciler.store import Store
from reconciler.store.locks import LockBusy

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class FollowReport:
    """What the follower did, told a line per batch or audit, and the exit code it adds up to."""

    console: Console
    dry_run: bool
    codes: set[int] = field(default_factory=set)

    def audited(self, outcome: RunOutcome) -> None:
        self.console.print(f"full audit: run {outcome.run_id} {outcome.status.value}")
        self._judge(outcome)

    def polled(self, result: PollResult, follower: Follower) -> None:
        if follower.failing_since is not None:
            self.codes.add(EXIT_FAILURE)  # what failed is logged by the follower
        if result.batch is None:
            return
        run, looked_at = result.batch.run, result.batch.looked_at
        done = f"{len(run.plan.writes) if run.plan else 0} planned" if self.dry_run else _applied(run)
        self.console.print(
            f"run {run.run_id} (incremental): {result.events} event(s), {looked_at} user(s) looked at, {done}"
            f" - {run.status.value}{': ' + run.error if run.error else ''}"
        )
        self._judge(run)

    def _judge(self, outcome: RunOutcome) -> None:
        if outcome.status in (RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.INTERRUPTED):
            self.codes.add(EXIT_FAILURE)
        elif outcome.status is RunStatus.BLOCKED:
            self.codes.add(EXIT_BLOCKED)
        elif self.dry_run and outcome.plan is not None and needs_attention(outcome.plan, outcome.group_plan):
            self.codes.add(EXIT_DRIFT)

    @property
    def exit_code(self) -> int:
        for code in (EXIT_FAILURE, EXIT_BLOCKED, EXIT_DRIFT):
            if code in self.codes:
                return code
        return EXIT_OK


def _applied(run: RunOutcome) -> str:
    return f"{run.applied.succeeded} applied, {run.applied.failed} failed"


def run_follow_command(config: Config, store: Store, *, dry_run: bool, once: bool) -> int:
    """Follow until stopped (or, with ``once``, until caught up); the exit code."""
    report = FollowReport(console_for(), dry_run)
    try:
        asyncio.run(_follow(config, store, report, once=once))
    except asyncio.CancelledError:
        tell("reconcile follow: stopped again: the batch in flight was cancelled and recorded interrupted")
        return EXIT_FAILURE
    except FollowerOff as off:
        tell(f"reconcile follow: {off}", tenant=config.tenant)
        return EXIT_FAILURE
    except LockBusy as busy:
        tell(f"reconcile follow: {busy}", tenant=config.tenant)
        return EXIT_BUSY
    except ReconcileError as error:
        tell(f"reconcile follow: {error}", tenant=config.tenant)
        return EXIT_FAILURE
    return report.exit_code


def full_audit(config: Config, store: Store, *, dry_run: bool, told: Callable[[RunOutcome], None]) -> Callable:
    """The follower's full audit: ``reconcile``'s run and alerts, under the target's run lock (not waited for)."""

    async def audit() -> RunOutcome:
        target = fingerprint(config)
        with store.run_lock(target):
            store.mark_interrupted(fingerprint=target)  # holding the lock proves a run marked running was abandoned
            outcome = await reconcile_and_alert(config, store, dry_run=dry_run)
        told(outcome)
        return outcome

    return audit


async def _follow(config: Config, store: Store, report: FollowReport, *, once: bool) -> None:
    stop = asyncio.Event()
    work = asyncio.current_task()
    assert work is not None
    _on_stop_signals(stop, work)
    audit = full_audit(config, store, dry_run=report.dry_run, told=report.audited)
    with store.run_lock(follow_lease_name(fingerprint(config))):  # LockBusy: serve or a replica follows it
        await _follow_with(config, store, report, audit, stop, once=once)


async def _follow_with(
    config: Config, store: Store, report: FollowReport, audit: Callable, stop: asyncio.Event, *, once: bool
) -> None:
    async with Follower(config, store, audit, dry_run=report.dry_run) as follower:
        if not once:
            await follower.follow(stop, lambda result: report.polled(result, follower))
            return
        await follower.start()
        while not stop.is_set():
            result = await follower.poll_safely()
            report.polled(result, follower)
            if result.caught_up:
                return


def _on_stop_signals(stop: asyncio.Event, work: asyncio.Task) -> None:
    """The first SIGINT/SIGTERM stops after the batch in flight; a second cancels it (recorded interrupted)."""
    loop = asyncio.get_running_loop()

    def stop_or_cancel() -> None:
        if stop.is_set():
            work.cancel()
        stop.set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop_or_cancel)
