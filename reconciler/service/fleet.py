"""``reconcile serve`` for a file of ``[[tenants]]``: one replica of a fleet sharing one store.

Any number of replicas, on any hosts, serve the same file against the same
store (PostgreSQL; SQLite works for one host). There is no coordinator and no
membership: the store is the only shared state, and a tenant's run lock (see
:mod:`reconciler.locks`) is its lease.

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

Signals are as in :mod:`reconciler.service`: SIGTERM/SIGINT stop claiming and
give the runs in flight the longest ``schedule.stop_timeout`` of their tenants,
then cancel them (recorded interrupted: another replica takes them over at
once); SIGHUP re-reads the file, and the new tenants apply from the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.config.load import load_fleet
from reconciler.config.model import Config, FleetConfig, fingerprint
from reconciler.errors import ConfigError
from reconciler.hooks import http_observer
from reconciler.logs import LogFormat, setup_logging
from reconciler.models.runs import RunStatus
from reconciler.run.alerting import reconcile_and_alert
from reconciler.run.outcome import RunOutcome
from reconciler.secret import Secret
from reconciler.service.daemon import CANCEL_GRACE_S, config_secrets, run_summary, signals_wired
from reconciler.service.metrics import FleetMetrics, MetricsServer
from reconciler.service.notify import Notifier, one_line, start_watchdog
from reconciler.service.schedule import SCHEDULED_MODES, due_tenants, next_due, tenant_name
from reconciler.store import Store
from reconciler.store.locks import LockBusy, RunLock

log = logging.getLogger(__name__)

DISPATCH_JOB_ID: Final = "dispatch"
LEASE_CHECK_S: Final = 5.0
"""How often a run checks that its lease is still held (see :meth:`Replica._guard_lease`)."""
STALE_TICKS: Final = 3
"""``/healthz`` fails when the replica has not looked for due tenants for this many ticks."""


# --- when a tenant is due (pure) ---------------------------------------------------------------


# --- the replica -------------------------------------------------------------------------------


@dataclass
class ReplicaHealth:
    """``/healthz`` of a replica: healthy while it keeps looking for due tenants.

    A tenant's own staleness is the fleet's business, not one replica's (another
    replica may run it); it shows in the per-tenant metrics and ``reconcile status``.
    """

    tick_s: float
    started_at: float
    last_tick_at: float | None = None
    last_error: str | None = None
    clock: Callable[[], float] = time.time

    def check(self) -> tuple[bool, str]:
        now = self.clock()
        since = self.last_tick_at if self.last_tick_at is not None else self.started_at
        limit = STALE_TICKS * self.tick_s + 30
        if now - since > limit:
            why = f"; last error: {self.last_error}" if self.last_error else ""
            return False, f"stale: no look for due tenants for {now - since:.0f} s{why}"
        if self.last_tick_at is None:
            return True, "ok: starting"
        return True, f"ok: looked for due tenants {now - self.last_tick_at:.0f} s ago"


class Replica:
    """One replica of ``reconcile serve`` for a file of tenants (see the module's docstring).

    :meth:`run` serves until :meth:`request_stop`; :meth:`dispatch` is one tick,
    callable on its own by tests.
    """

    def __init__(
        self,
        fleet: FleetConfig,
        store: Store,
        *,
        notifier: Notifier | None = None,
        metrics: FleetMetrics | None = None,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        on_reload: Callable[[FleetConfig], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.store = store
        self.notifier = notifier or Notifier(environ)
        self.metrics = metrics or FleetMetrics()
        self.clock = clock
        self.health = ReplicaHealth(fleet.service.tick_s, clock(), clock=clock)
        self.started_at = datetime.now(UTC)
        """A tenant never run is due since then (see :func:`next_due`)."""
        self.running: dict[str, asyncio.Task[None]] = {}
        """Fingerprint → the task running that tenant here."""
        self.last_summary: str | None = None
        self._environ = environ
        self._on_reload = on_reload
        self._scheduler: AsyncIOScheduler | None = None
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._stopping = False

    @property
    def name(self) -> str:
        return self.store.replica

    # --- life cycle ----------------------------------------------------------------------------

    async def run(self) -> int:
        """Serve until :meth:`request_stop`; 0 after a clean stop, 1 if the replica cannot start."""
        address = self.fleet.metrics.address
        server = None
        if address is not None:
            server = MetricsServer(self.metrics, self.health, *address)
            try:
                await server.start()
            except OSError as error:
                log.error("cannot serve metrics on %s (metrics.listen): %s", self.fleet.metrics.listen, error)
                return 1
        try:
            with http_observer(self.metrics.observe_http):
                return await self._serve()
        finally:
            if server is not None:
                await server.stop()
            self.notifier.close()

    async def _serve(self) -> int:
        self._scheduler = AsyncIOScheduler()
        self._scheduler.start()
        self._scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self.fleet.service.tick_s),
            id=DISPATCH_JOB_ID,
            name="look for due tenants",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        log.info(
            "serving %d tenant(s) as replica %r: up to %d run(s) at once, looking for due tenants every %g s",
            len(self.fleet.tenants),
            self.name,
            self.fleet.service.concurrency,
            self.fleet.service.tick_s,
        )
        self.notifier.ready(self._status_line())
        watchdog = start_watchdog(self.notifier, self._environ, self._scheduling)
        try:
            await self._stop.wait()
            await self._wind_down()
        finally:
            if watchdog is not None:
                watchdog.cancel()
        log.info("stopped")
        return 0

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop claiming tenants; a second request cancels the runs in flight at once."""
        if self._stop.is_set():
            log.warning("%s again: cancelling the runs in flight now", reason)
            for task in self.running.values():
                task.cancel()
            return
        self._stop_reason, self._stopping = reason, True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.pause()
        self._stop.set()

    async def _wind_down(self) -> None:
        timeout = max((t.schedule.stop_timeout_s for t in self.fleet.tenants), default=30.0)
        self.notifier.stopping(f"stopping ({self._stop_reason}); {self._status_line()}")
        tasks = list(self.running.values())
        if tasks:
            log.info(
                "%s: letting %d run(s) finish (up to %g s, schedule.stop_timeout)",
                self._stop_reason,
                len(tasks),
                timeout,
            )
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.warning(
                    "%d run(s) did not finish within %g s: cancelling; they are recorded interrupted",
                    len(pending),
                    timeout,
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=CANCEL_GRACE_S)
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)

    def _scheduling(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    # --- reload --------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the file (SIGHUP); a bad one is rejected and the running one kept. Runs in flight keep theirs."""
        if self._stopping:
            return False
        self.notifier.reloading()
        try:
            if self.fleet.source_path is None:
                raise ConfigError(["the running configuration has no file to re-read"])
            new = load_fleet(self.fleet.source_path, self._environ)
        except ConfigError as error:
            for problem in error.problems:
                log.error("config reload rejected, keeping the running configuration: %s", problem)
            self.notifier.ready(f"config reload rejected ({len(error.problems)} problem(s)); {self._status_line()}")
            return False
        except Exception as error:  # a signal handler must not take the replica down
            log.exception("config reload rejected, keeping the running configuration: %s", error)
            self.notifier.ready(f"config reload rejected; {self._status_line()}")
            return False
        if new.store.url != self.fleet.store.url or new.metrics.listen != self.fleet.metrics.listen:
            log.warning("store.url or metrics.listen changed: they take effect when the replica restarts")
        if new.service.tick_s != self.fleet.service.tick_s and self._scheduler is not None:
            self._scheduler.reschedule_job(DISPATCH_JOB_ID, trigger=IntervalTrigger(seconds=new.service.tick_s))
        self.fleet = new
        self.health.tick_s = new.service.tick_s
        if self._on_reload is not None:
            self._on_reload(new)
        log.info("config reloaded from %s: %d tenant(s); applies from the next tick", new.source_path, len(new.tenants))
        self.notifier.ready(f"config reloaded; {self._status_line()}")
        return True

    # --- claiming ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        try:
            self.dispatch()
        except Exception as error:  # the store unreachable: try again next tick
            self.health.last_error = one_line(f"{type(error).__name__}: {error}")[:300]
            log.error("cannot look for due tenants: %s", self.health.last_error)

    def dispatch(self) -> list[str]:
        """One tick: claim and start the due tenants this replica has room for; their names."""
        if self._stopping:
            return []
        tenants = self.fleet.tenants
        targets = [fingerprint(t) for t in tenants]
        states = self.store.tenant_states(targets, SCHEDULED_MODES)
        now = datetime.now(UTC)
        self.metrics.tenants_seen(tenants, states)
        free = self.fleet.service.concurrency - len(self.running)
        started: list[str] = []
        if free > 0:
            due = due_tenants(tenants, states, now, skip=self.running, since=self.started_at)
            held = self.store.lock_holders([fingerprint(d.config) for d in due]) if due else {}
            for candidate in due:
                if len(started) >= free:
                    break
                if fingerprint(candidate.config) not in held and self._claim(candidate.config):
                    started.append(candidate.name)
        self.health.last_tick_at, self.health.last_error = self.clock(), None
        self.metrics.in_flight.set(len(self.running))
        if started:
            self._publish_status()
        return started

    def _claim(self, config: Config) -> bool:
        """Take the tenant's lease and start its run if it is still due under it; False otherwise."""
        target = fingerprint(config)
        lease = ExitStack()
        try:
            held = lease.enter_context(self.store.run_lock(target))
        except LockBusy:
            self.metrics.claims.labels("busy").inc()
            return False
        try:
            state = self.store.tenant_states([target], SCHEDULED_MODES)[target]
            now = datetime.now(UTC)
            if next_due(config, state, now, self.started_at) > now:  # another replica ran it since this tick's read
                self.metrics.claims.labels("not_due").inc()
                lease.close()
                return False
            abandoned = self.store.mark_interrupted(fingerprint=target)
        except BaseException:
            lease.close()
            raise
        if abandoned:
            log.warning(
                "tenant %s: runs %s were left running by a dead replica: marked interrupted",
                tenant_name(config),
                abandoned,
            )
        self.metrics.claims.labels("started").inc()
        self.running[target] = asyncio.create_task(
            self._run_tenant(config, lease, held), name=f"reconcile {tenant_name(config)}"
        )
        return True

    async def _run_tenant(self, config: Config, lease: ExitStack, held: RunLock) -> None:
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
            self._finished(config, status, time.monotonic() - started, outcome, error)

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
                run.cancel()
                return True
        return False

    def _finished(
        self, config: Config, status: RunStatus, duration_s: float, outcome: RunOutcome | None, error: str | None
    ) -> None:
        name = tenant_name(config)
        self.metrics.run_finished(name, status, duration_s, outcome)
        self.metrics.in_flight.set(len(self.running))
        summary = run_summary(status, duration_s, outcome, error=error, ended_at=self.clock())
        self.last_summary = f"{name}: {summary}"
        level = logging.INFO if status is RunStatus.SUCCEEDED else logging.WARNING
        log.log(level, "tenant %s: %s", name, summary)
        self._publish_status()

    # --- status --------------------------------------------------------------------------------

    def _status_line(self) -> str:
        running = ", ".join(sorted(tenant_name(t) for t in self.fleet.tenants if fingerprint(t) in self.running))
        parts = [f"{len(self.fleet.tenants)} tenant(s)", f"running here: {running or 'none'}"]
        parts.append(f"last: {self.last_summary}" if self.last_summary else "no run yet")
        return "; ".join(parts)

    def _publish_status(self) -> None:
        self.notifier.status(self._status_line())


# --- the command -------------------------------------------------------------------------------


def fleet_secrets(fleet: FleetConfig) -> list[Secret]:
    return [secret for config in fleet.tenants for secret in config_secrets(config)]


def serve_fleet(fleet: FleetConfig, store: Store, *, log_level: str = "INFO", log_format: LogFormat = "text") -> int:
    """``reconcile serve`` with a file of tenants: one replica, until SIGTERM or SIGINT; the exit code."""
    return asyncio.run(_serve_fleet(fleet, store, log_level, log_format))


async def _serve_fleet(fleet: FleetConfig, store: Store, log_level: str, log_format: LogFormat) -> int:
    secrets = fleet_secrets(fleet)

    def relog(new: FleetConfig) -> None:
        # Secrets of the old file may still be in flight: keep masking them too.
        known = {s.reveal() for s in secrets}
        secrets.extend(s for s in fleet_secrets(new) if s.reveal() not in known)
        setup_logging(log_level, secrets, log_format)

    replica = Replica(fleet, store, on_reload=relog)
    with signals_wired(replica.request_stop, replica.reload):
        return await replica.run()
