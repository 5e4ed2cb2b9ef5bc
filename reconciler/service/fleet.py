"""``reconcile serve`` for a file of ``[[tenants]]``: one replica of a fleet sharing one store.

Any number of replicas, on any hosts, serve the same file against the same
store (PostgreSQL; SQLite works for one host). There is no coordinator and no
membership: the store is the only shared state, and a tenant's run lock (see
:mod:`reconciler.store.locks`) is its lease.

- **When a tenant is due** comes from the store, so that every replica agrees:
  its schedule's next time after its latest run (:func:`next_due`; slower while
  quarantined). A tenant never run, or whose latest run was interrupted or left
  running by a dead replica, is due at once.
- **Claiming**: every ``service.tick`` a replica reads every tenant's state in
  one go (:meth:`reconciler.store.Store.tenant_states`) and who holds which lock
  (:meth:`~reconciler.store.Store.lock_holders`), then tries the locks of the due
  tenants nobody holds, most overdue first, without waiting, up to
  ``service.concurrency`` runs at once. Under the lock it reads the tenant's
  state again (another replica may have just run it) and runs it only if still
  due.
- **Fairness**: the most overdue tenant is claimed first by whichever replica
  has a free slot; a tenant that runs long holds one slot and its own lock,
  never a queue that others wait behind.
- **A replica that dies** (kill -9, power loss) leaves its runs ``running`` in
  the store; PostgreSQL ends its sessions and releases their advisory locks (a
  vanished host's within about two minutes: TCP keepalives). The next replica to
  tick sees those tenants due and unheld, claims them, marks the dead runs
  interrupted, and runs them.

- **A lease lost under a run** (the lock's database session ended: a failover,
  a network cut) cancels the run within a tick (at most ``LEASE_CHECK_S``); it is
  recorded interrupted, and due again at once.

Signals are as in :mod:`reconciler.service.single`: SIGTERM/SIGINT stop claiming and
give the runs in flight the longest ``schedule.stop_timeout`` of their tenants,
then cancel them (recorded interrupted: another replica takes them over at
once); SIGHUP re-reads the file, and the new tenants apply from the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Unpack

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.config.load import load_fleet
from reconciler.config.model import Config, FleetConfig, fingerprint
from reconciler.errors import SourceError
from reconciler.logs import LogFormat
from reconciler.models.runs import SUCCESSFUL, RunStatus
from reconciler.run.alerting import alert_quarantined, reconcile_and_alert
from reconciler.run.follower import FullAudit
from reconciler.run.outcome import RunOutcome
from reconciler.service.daemon import Daemon, DaemonOptions, StopWords
from reconciler.service.fleet_following import FleetFollowers
from reconciler.service.fleet_metrics import FleetMetrics
from reconciler.service.health import ReplicaHealth
from reconciler.service.notify import one_line
from reconciler.service.process import serve_until_stopped
from reconciler.service.schedule import (
    SCHEDULED_MODES,
    crash_quarantined,
    due_tenants,
    next_due,
    runs_alone,
    tenant_name,
)
from reconciler.service.wording import run_fields, run_summary
from reconciler.store import ActionRecord, Store, TenantState
from reconciler.store.locks import LockBusy, RunLock

log = logging.getLogger(__name__)

DISPATCH_JOB_ID: Final = "dispatch"
LEASE_CHECK_S: Final = 5.0
"""How often a run checks that its lease is still held (see :meth:`Replica._guard_lease`)."""


class Replica(Daemon[FleetConfig]):
    """One replica of ``reconcile serve`` for a file of tenants (see the module's docstring).

    :meth:`run` serves until :meth:`request_stop` (the life cycle is
    :class:`reconciler.service.daemon.Daemon`'s); :meth:`dispatch` is one tick,
    callable on its own by tests.
    """

    def __init__(
        self,
        fleet: FleetConfig,
        store: Store,
        *,
        metrics: FleetMetrics | None = None,
        **options: Unpack[DaemonOptions[FleetConfig]],
    ) -> None:
        super().__init__(store, **options)
        self.fleet = fleet
        self.metrics = metrics or FleetMetrics()
        self.health = ReplicaHealth(fleet.service.tick_s, self.clock(), clock=self.clock)
        self.started_at = datetime.now(UTC)
        """A tenant never run is due since then (see :func:`next_due`)."""
        self.running: dict[str, asyncio.Task[RunOutcome | None]] = {}
        """Fingerprint → the task running that tenant here."""
        self.suspect: str | None = None
        """The tenant running here alone because its latest runs died with their replica (a crash streak)."""
        self.alerting: set[asyncio.Task[Any]] = set()
        """Quarantine alerts being sent."""
        self.last_summary: str | None = None
        self._run_ended = asyncio.Event()
        self.followers = FleetFollowers(
            store, self.metrics.follow, self._audit_for_follower, self.name, on_lease_lost=self._follow_lease_lost
        )
        """The tenants whose System Log this replica follows (see :mod:`reconciler.service.fleet_following`)."""

    @property
    def name(self) -> str:
        return self.store.replica

    # --- what the life cycle asks ----------------------------------------------------------------

    stop_words = StopWords(
        in_flight="the runs in flight",
        letting="letting {count} run(s) finish",
        cancelling="{count} run(s) did not finish within {timeout:g} s: cancelling; they are recorded interrupted",
    )

    @property
    def served(self) -> FleetConfig:
        return self.fleet

    def read_file(self, path: Path) -> FleetConfig:
        return load_fleet(path, self.environ)

    def start_jobs(self, scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self.fleet.service.tick_s),
            id=DISPATCH_JOB_ID,
            name="look for due tenants",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )

    def in_flight(self) -> list[asyncio.Task[Any]]:
        return [*self.running.values(), *self.alerting, *self.followers.tasks()]

    def request_stop(self, reason: str = "stop requested") -> None:
        super().request_stop(reason)
        self.followers.stop()  # each after its batch in flight; their leases go as they end

    def stop_timeout_s(self) -> float:
        """The longest ``schedule.stop_timeout`` of the tenants."""
        return max((t.schedule.stop_timeout_s for t in self.fleet.tenants), default=30.0)

    def describe_serving(self) -> str:
        service = self.fleet.service
        return (
            f"serving {len(self.fleet.tenants)} tenant(s) as replica {self.name!r}: up to {service.concurrency} "
            f"run(s) at once, looking for due tenants every {service.tick_s:g} s"
        )

    def describe_reload(self) -> str:
        return f"{len(self.fleet.tenants)} tenant(s); applies from the next tick"

    def describe_status(self) -> str:
        running = ", ".join(sorted(tenant_name(t) for t in self.fleet.tenants if fingerprint(t) in self.running))
        following = ", ".join(self.followers.following)
        parts = [f"{len(self.fleet.tenants)} tenant(s)", f"running here: {running or 'none'}"]
        parts.append(f"following here: {following or 'none'}")
        parts.append(f"last: {self.last_summary}" if self.last_summary else "no run yet")
        return "; ".join(parts)

    def adopt(self, new: FleetConfig) -> None:
        """Runs in flight keep their tenant's configuration; the new tenants apply from the next tick."""
        if new.store.url != self.fleet.store.url or new.metrics.listen != self.fleet.metrics.listen:
            log.warning("store.url or metrics.listen changed: they take effect when the replica restarts")
        if new.service.tick_s != self.fleet.service.tick_s and self.scheduler is not None:
            self.scheduler.reschedule_job(DISPATCH_JOB_ID, trigger=IntervalTrigger(seconds=new.service.tick_s))
        self.fleet = new
        self.health.tick_s = new.service.tick_s

    # --- claiming ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        try:
            self.dispatch()
        except Exception as error:  # the store unreachable: try again next tick
            self.health.last_error = one_line(f"{type(error).__name__}: {error}")[:300]
            log.error("cannot look for due tenants: %s", self.health.last_error)

    def dispatch(self) -> list[str]:
        """One tick: claim and start the due tenants this replica has room for; their names."""
        if self.stopping:
            return []
        tenants = self.fleet.tenants
        targets = [fingerprint(t) for t in tenants]
        states = self.store.tenant_states(targets, SCHEDULED_MODES)
        now = datetime.now(UTC)
        self.metrics.tenants_seen(tenants, states)
        free = self.fleet.service.concurrency - len(self.running) if self._has_room() else 0
        started: list[str] = []
        if free > 0:
            due = due_tenants(tenants, states, now, skip=self.running, since=self.started_at)
            held = self.store.lock_holders([fingerprint(d.config) for d in due]) if due else {}
            for candidate in due:
                target = fingerprint(candidate.config)
                if len(started) >= free or self.suspect in self.running:
                    break
                if runs_alone(states[target], candidate.config.thresholds) and (self.running or started):
                    continue  # a suspect runs alone, on a replica with nothing else in flight
                if target not in held and self._claim(candidate.config):
                    started.append(candidate.name)
        followed = self.followers.tick(tenants)
        self.health.last_tick_at, self.health.last_error = self.clock(), None
        self.metrics.in_flight.set(len(self.running))
        self.metrics.followed.set(len(self.followers.following))
        if started or followed:
            self._publish_status()
        return started

    def _claim(self, config: Config, *, due: bool = True) -> asyncio.Task[RunOutcome | None] | None:
        """Take the tenant's lease and start its run if it is still due under it (``due``; else if it may run at
        all: a follower's audit); the run's task, None otherwise."""
        target = fingerprint(config)
        lease = ExitStack()
        try:
            held = lease.enter_context(self.store.run_lock(target))
        except LockBusy:
            self.metrics.claims.labels("busy").inc()
            return None
        try:
            outcome, alone = self._still_due(config, due=due)
        except BaseException:
            lease.close()
            raise
        if outcome != "started":
            self.metrics.claims.labels(outcome).inc()
            lease.close()
            return None
        self.metrics.claims.labels("started").inc()
        if alone:
            self.suspect = target
        task = asyncio.create_task(self._run_tenant(config, lease, held), name=f"reconcile {tenant_name(config)}")
        self.running[target] = task
        return task

    def _still_due(self, config: Config, *, due: bool = True) -> tuple[str, bool]:
        """Under the tenant's lease: ``started`` if it should run here now, else why not (a claims label);
        and whether it must run alone (:func:`runs_alone`). ``due=False`` (a follower's audit) skips the schedule,
        not the quarantine.

        Runs its dead replica left ``running`` are marked interrupted first: they
        count towards its crash streak, which may quarantine it (alerted here,
        once) or make it a suspect that runs only alone.
        """
        target = fingerprint(config)
        state = self.store.tenant_states([target], SCHEDULED_MODES)[target]
        now = datetime.now(UTC)
        if due and next_due(config, state, now, self.started_at) > now:  # another replica ran it since this tick
            return "not_due", False
        abandoned = self.store.mark_interrupted(fingerprint=target)
        if abandoned:
            log.warning(
                "tenant %s: runs %s were left running by a dead replica: marked interrupted",
                tenant_name(config),
                abandoned,
            )
            state = self.store.tenant_states([target], SCHEDULED_MODES)[target]
        if (abandoned or not due) and crash_quarantined(state, config.thresholds):
            if abandoned:
                self._quarantined(config, state.consecutive_crashes, abandoned[-1])
            return "quarantined", False  # its scheduled runs go on at the quarantine's pace; no audit in between
        return self._alone_if_suspect(state, config)

    def _has_room(self) -> bool:
        return self.suspect not in self.running and len(self.running) < self.fleet.service.concurrency

    async def _slot_freed(self, at_most_s: float) -> None:
        """Until a run here ends, or ``at_most_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._run_ended.wait(), at_most_s)

    # --- the followers' full audits ----------------------------------------------------------------

    def _audit_for_follower(self, config: Config) -> FullAudit:
        """The full audit the follower of ``config``'s tenant asks for, through this replica's run path."""

        async def audit() -> RunOutcome:
            return await self._follower_audit(config)

        return audit

    async def _follower_audit(self, config: Config) -> RunOutcome:
        """A run of the tenant, claimed and recorded as a scheduled one is. The run in flight here is waited for;
        a successful run (by any replica) that began within ``incremental.overlap`` stands for the audit (the
        follower re-reads the log from that far back). Raises SourceError when it cannot run now (another
        replica runs the tenant, it is quarantined, the replica stops): the follower tries again later."""
        target = fingerprint(config)
        while True:
            if target in self.running:
                await asyncio.wait([self.running[target]])
            latest = self.store.tenant_states([target], SCHEDULED_MODES)[target].latest
            if latest is not None and latest.status in SUCCESSFUL:
                if (datetime.now(UTC) - latest.started_at).total_seconds() < config.incremental.overlap_s:
                    return RunOutcome(latest.id, latest.status)
            if self.stopping or self._has_room():
                break
            await self._slot_freed(self.fleet.service.tick_s)  # an audit takes a slot, as a scheduled run does
        task = None if self.stopping else self._claim(config, due=False)
        if task is None:
            raise SourceError(
                "the full audit the follower needs cannot run now (another replica runs the tenant, it is "
                "quarantined, or this replica stops): tried again shortly"
            )
        await asyncio.wait([task])
        outcome = None if task.cancelled() else task.result()
        if outcome is None:
            raise SourceError("the full audit the follower needs did not run to its end")
        return outcome

    def _alone_if_suspect(self, state: TenantState, config: Config) -> tuple[str, bool]:
        """A suspect (:func:`runs_alone`) starts only on a replica with nothing in flight: then a death is its own."""
        alone = runs_alone(state, config.thresholds)
        return ("suspect_waits" if alone and self.running else "started"), alone

    def _quarantined(self, config: Config, crashes: int, last_dead_run: int) -> None:
        """A poison tenant: say so, and alert (once) without holding up the tick."""
        thresholds = config.thresholds
        log.error(
            "tenant %s: quarantined: its last %d runs died with their replica (quarantine_after_interrupted = %d); "
            "it runs alone every %s until a run of it ends on its own",
            tenant_name(config),
            crashes,
            thresholds.quarantine_after_interrupted,
            f"{thresholds.quarantine_interval_s:g} s",
        )
        alert = asyncio.create_task(alert_quarantined(self.store, config, last_dead_run, crashes))
        self.alerting.add(alert)
        alert.add_done_callback(self.alerting.discard)

    async def _run_tenant(self, config: Config, lease: ExitStack, held: RunLock) -> RunOutcome | None:
        """The tenant's run, its lease released when it ends, however it ends; cancelled if the lease is lost."""
        target, name = fingerprint(config), tenant_name(config)
        started = time.monotonic()
        outcome: RunOutcome | None = None
        status, error = RunStatus.FAILED, None
        run = asyncio.ensure_future(reconcile_and_alert(config, self.store, dry_run=False))
        guard = asyncio.create_task(self._guard_lease(held, run, name), name=f"lease of {name}")
        try:
            outcome = await run
            status = outcome.status
        except asyncio.CancelledError:
            status = RunStatus.INTERRUPTED
            if not (guard.done() and guard.result()):
                raise  # a stop, not a lost lease: this task is cancelled too
            error = "lost its lease"
        except Exception as failure:  # reconcile records its own errors; this is the store itself failing
            log.exception("tenant %s: run failed before it could be recorded", name)
            error = f"{type(failure).__name__}: {failure}"
        finally:
            guard.cancel()
            lease.close()
            self.running.pop(target, None)
            if self.suspect == target:
                self.suspect = None
            self._run_ended.set()  # wakes the followers' audits waiting for a slot; a new event for the next
            self._run_ended = asyncio.Event()
            self._finished(config, status, time.monotonic() - started, outcome, error)
        return outcome

    async def _guard_lease(self, held: RunLock, run: asyncio.Future[RunOutcome], name: str) -> bool:
        """Cancel ``run`` if its lease is lost under it; True if it was.

        A PostgreSQL restart or failover, or a network cut, ends the session that
        holds the advisory lock: the lease is gone while the run goes on, and
        another replica may claim the tenant. Checked every ``LEASE_CHECK_S`` (or
        tick, if shorter), which bounds how long two runs could overlap.
        """
        interval = min(LEASE_CHECK_S, self.fleet.service.tick_s)
        while not run.done():
            await asyncio.sleep(interval)
            if not run.done() and not held.still_held():
                log.error(
                    "tenant %s: lost its lease (the run lock's database session ended): cancelling the run, "
                    "which is recorded interrupted; a replica takes the tenant over at its next tick",
                    name,
                )
                self.metrics.leases_lost.labels(name, "run").inc()
                run.cancel()
                return True
        return False

    def _finished(
        self, config: Config, status: RunStatus, duration_s: float, outcome: RunOutcome | None, error: str | None
    ) -> None:
        name = tenant_name(config)
        actions = self._recorded_actions(outcome)
        self.metrics.run_finished(name, status, duration_s, outcome, actions)
        self.metrics.in_flight.set(len(self.running))
        summary = run_summary(status, duration_s, outcome, error=error, ended_at=self.clock())
        self.last_summary = f"{name}: {summary}"
        level = logging.INFO if status is RunStatus.SUCCEEDED else logging.WARNING
        log.log(
            level,
            "tenant %s: %s",
            name,
            summary,
            extra=run_fields(status, duration_s, outcome, tenant=name, error=error),
        )
        self._publish_status()

    def _follow_lease_lost(self, tenant: str) -> None:
        self.metrics.leases_lost.labels(tenant, "follow").inc()

    def _publish_status(self) -> None:
        self.notifier.status(self.describe_status())

    def _recorded_actions(self, outcome: RunOutcome | None) -> list[ActionRecord]:
        """The actions the run recorded, for the metrics; none when the store cannot say (said in the log)."""
        if outcome is None:
            return []
        try:
            return self.store.actions_of(outcome.run_id)
        except Exception:
            log.exception("cannot read run %d's actions from the store for the metrics", outcome.run_id)
            return []


# --- the command -------------------------------------------------------------------------------


def serve_fleet(fleet: FleetConfig, store: Store, *, log_level: str = "INFO", log_format: LogFormat = "text") -> int:
    """``reconcile serve`` with a file of tenants: one replica, until SIGTERM or SIGINT; the exit code."""
    return serve_until_stopped(
        lambda on_reload: Replica(fleet, store, on_reload=on_reload), FleetConfig.secrets, fleet, log_level, log_format
    )
