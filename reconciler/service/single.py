"""``reconcile serve``: reconcile on a schedule, for months, under systemd.

One process, one asyncio event loop, which holds:

- an APScheduler 3.x ``AsyncIOScheduler`` with one job, on the ``[schedule]``
  (every ``interval``, or on a ``cron`` expression, each run up to ``jitter``
  late), ``max_instances = 1`` and ``coalesce = true``, plus a run at start-up
  when ``run_at_start``. The job also holds an in-process lock, so a run never
  overlaps another, even across a reload that replaces the trigger;
- after each run, the target's consecutive failures: from ``quarantine_after``
  failed runs in a row the job moves to ``quarantine_interval`` (see
  :func:`reconciler.gate.scheduled_interval_s`) until a run succeeds;
- the systemd notify protocol (:mod:`reconciler.notify`): READY, STATUS (the
  last run in one line), WATCHDOG, RELOADING, STOPPING;
- the Prometheus ``/metrics`` and ``/healthz`` endpoint (:mod:`reconciler.metrics`).

Signals: SIGTERM and SIGINT stop scheduling and give the run in flight
``stop_timeout`` to finish; then it is cancelled, which records it as
``interrupted`` with its unanswered writes (the next plan, computed from live
state, redoes what they did not do). A second SIGTERM/SIGINT cancels at once.
SIGHUP re-reads the configuration file: a bad one is rejected with a log line
per reason and the running configuration is kept; a good one applies from the
next run (``store.url`` and ``metrics.listen`` need a restart).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.config.load import load_config
from reconciler.config.model import Config, fingerprint
from reconciler.errors import ConfigError
from reconciler.hooks import http_observer
from reconciler.logs import LogFormat, setup_logging
from reconciler.models.runs import SUCCESSFUL, RunStatus
from reconciler.run.alerting import reconcile_and_alert
from reconciler.run.outcome import RunOutcome
from reconciler.secret import Secret
from reconciler.service.daemon import CANCEL_GRACE_S, _duration, _utc, config_secrets, run_summary, signals_wired
from reconciler.service.metrics import Health, MetricsServer, ServiceMetrics
from reconciler.service.notify import Notifier, start_watchdog
from reconciler.service.schedule import normal_trigger, quarantined, schedule_period_s, scheduled_interval_s
from reconciler.store import Store
from reconciler.store.locks import LockBusy

log = logging.getLogger(__name__)

JOB_ID: Final = "reconcile"


# --- the schedule ------------------------------------------------------------------------------


# --- the service -------------------------------------------------------------------------------


class Service:
    """The scheduler, the runs, the notify messages and the metrics endpoint of ``reconcile serve``.

    :meth:`run` serves until :meth:`request_stop`; :meth:`reload` re-reads the
    configuration file. Signals are wired by :func:`serve`, not here, so that
    tests can drive a Service in their own event loop.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        notifier: Notifier | None = None,
        metrics: ServiceMetrics | None = None,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        on_reload: Callable[[Config], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.notifier = notifier or Notifier(environ)
        self.metrics = metrics or ServiceMetrics()
        self.clock = clock
        self._environ = environ
        self._on_reload = on_reload
        self.fingerprint = fingerprint(config)
        self.health = Health(schedule_period_s(config.schedule), started_at=clock(), clock=clock)
        self.quarantined = False
        self.consecutive_failures = 0
        self.last_outcome: RunOutcome | None = None
        self.runs_started = 0
        self.status_line = "waiting for the first run"
        self.scheduler: AsyncIOScheduler | None = None
        self.metrics_server: MetricsServer | None = None
        self._lock = asyncio.Lock()
        self._current: asyncio.Task[RunOutcome | None] | None = None
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._stopping = False

    # --- life cycle ----------------------------------------------------------------------------

    async def run(self) -> int:
        """Serve until :meth:`request_stop`; 0 after a clean stop, 1 if the service cannot start."""
        self._seed_from_store()
        address = self.config.metrics.address
        if address is not None:
            server = MetricsServer(self.metrics, self.health, *address)
            try:
                await server.start()
            except OSError as error:
                log.error("cannot serve metrics on %s (metrics.listen): %s", self.config.metrics.listen, error)
                return 1
            self.metrics_server = server
        try:
            with http_observer(self.metrics.observe_http):
                return await self._serve()
        finally:
            if self.metrics_server is not None:
                await self.metrics_server.stop()
            self.notifier.close()

    async def _serve(self) -> int:
        self.scheduler = AsyncIOScheduler()
        self.scheduler.start()
        run_now = datetime.now(UTC) if self.config.schedule.run_at_start else None
        self.scheduler.add_job(
            self._scheduled_run,
            self._trigger(),
            id=JOB_ID,
            name="reconcile run",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=run_now,
        )
        log.info("serving: %s; %s", self._describe_schedule(), self._describe_target())
        self._publish_status()
        self.notifier.ready()
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
        """Stop scheduling and end the service (SIGTERM, SIGINT); a second request cancels the run at once."""
        if self._stop.is_set():
            if self._current is not None and not self._current.done():
                log.warning("%s again: cancelling the run in flight now", reason)
                self._current.cancel()
            return
        self._stop_reason = reason
        self._stopping = True
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        self._stop.set()

    async def _wind_down(self) -> None:
        timeout = self.config.schedule.stop_timeout_s
        self.notifier.stopping(f"stopping ({self._stop_reason}); {self.status_line}")
        task = self._current
        if task is not None and not task.done():
            log.info(
                "%s: letting the run in flight finish (up to %g s, schedule.stop_timeout)", self._stop_reason, timeout
            )
            done, _ = await asyncio.wait([task], timeout=timeout)
            if not done:
                log.warning("the run did not finish within %g s: cancelling it; it is recorded interrupted", timeout)
                task.cancel()
                await asyncio.wait([task], timeout=CANCEL_GRACE_S)
        else:
            log.info("%s: no run in flight", self._stop_reason)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback

    def _scheduling(self) -> bool:
        return self.scheduler is not None and self.scheduler.running

    # --- reload --------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the configuration file (SIGHUP); a bad one is rejected and the current one kept."""
        if self._stopping:
            return False
        path = self.config.source_path
        self.notifier.reloading()
        try:
            if path is None:
                raise ConfigError(["the running configuration has no file to re-read"])
            new = load_config(path, self._environ)
        except ConfigError as error:
            for problem in error.problems:
                log.error("config reload rejected, keeping the running configuration: %s", problem)
            self.notifier.ready(f"config reload rejected ({len(error.problems)} problem(s)); {self.status_line}")
            return False
        except Exception as error:  # a signal handler must not take the service down
            log.exception("config reload rejected, keeping the running configuration: %s", error)
            self.notifier.ready(f"config reload rejected; {self.status_line}")
            return False
        self._apply_config(new)
        self.notifier.ready(f"config reloaded; {self.status_line}")
        return True

    def _apply_config(self, new: Config) -> None:
        old = self.config
        if new.store.url != old.store.url:
            log.warning("store.url changed: the service keeps its store until it restarts")
        if new.metrics.listen != old.metrics.listen:
            log.warning("metrics.listen changed: it takes effect when the service restarts")
        self.config = new
        self.fingerprint = fingerprint(new)
        self.health.interval_s = schedule_period_s(new.schedule)
        if self._on_reload is not None:
            self._on_reload(new)
        self._check_quarantine(announce=False)
        if new.schedule != old.schedule or new.thresholds != old.thresholds or self.fingerprint != fingerprint(old):
            self._reschedule()
        log.info(
            "config reloaded from %s: %s; %s; applies from the next run",
            new.source_path,
            self._describe_schedule(),
            self._describe_target(),
        )

    # --- runs ----------------------------------------------------------------------------------

    async def _scheduled_run(self) -> None:
        await self.run_once()

    async def run_once(self) -> RunOutcome | None:
        """One run, unless one is going already or the service is stopping; None when none ran to its end."""
        if self._stopping:
            return None
        if self._lock.locked():
            log.warning("a run is still in flight: this one is skipped")
            return None
        async with self._lock:
            task = asyncio.create_task(self._run(self.config), name="reconcile-run")
            self._current = task
            try:
                await asyncio.wait([task])
            finally:
                self._current = None
            return None if task.cancelled() else task.result()

    async def _run(self, config: Config) -> RunOutcome | None:
        self.runs_started += 1
        started, started_at = time.monotonic(), self.clock()
        self._publish_status(f"run in progress since {_utc(started_at)}")
        try:
            outcome = await self._reconcile_locked(config)
            if outcome is None:
                return None
        except asyncio.CancelledError:
            run_id = self._run_started_since(fingerprint(config), started_at)
            run = self.store.get_run(run_id) if run_id is not None else None
            # Cancelled while alerting, the run is already recorded with its real status.
            status = run.status if run is not None and run.status is not RunStatus.RUNNING else RunStatus.INTERRUPTED
            self._finished(status, time.monotonic() - started, None, run_id=run_id)
            raise
        except Exception as error:  # reconcile records its own errors; this is the store itself failing
            log.exception("run failed before it could be recorded")
            error_text = f"{type(error).__name__}: {error}"
            self._finished(RunStatus.FAILED, time.monotonic() - started, None, error=error_text)
            return None
        self._finished(outcome.status, time.monotonic() - started, outcome, run_id=outcome.run_id)
        return outcome

    async def _reconcile_locked(self, config: Config) -> RunOutcome | None:
        """reconcile() under the target's run lock; None when another process holds it.

        The lock is tried, not waited for (waiting would block the event loop), and
        holding it proves that a run of this target still marked running was abandoned.
        """
        target = fingerprint(config)
        try:
            with self.store.run_lock(target):
                abandoned = self.store.mark_interrupted(fingerprint=target)
                if abandoned:
                    log.warning("runs %s were left running by a stopped process: marked interrupted", abandoned)
                return await reconcile_and_alert(config, self.store, dry_run=False)
        except LockBusy as busy:
            log.warning("run skipped: %s", busy)
            self._publish_status(f"run skipped: another process is reconciling this target ({busy.holder or '?'})")
            return None

    def _run_started_since(self, config_fingerprint: str, started_at: float) -> int | None:
        """The id of this process's run that was cancelled (reconcile() recorded it interrupted)."""
        for run in self.store.recent_runs(10):
            if run.config_fingerprint == config_fingerprint and run.started_at.timestamp() >= started_at - 1:
                return run.id
        return None

    def _finished(
        self,
        status: RunStatus,
        duration_s: float,
        outcome: RunOutcome | None,
        *,
        run_id: int | None = None,
        error: str | None = None,
    ) -> None:
        now = self.clock()
        actions = self.store.actions_of(run_id) if run_id is not None else []
        group_actions = self.store.group_actions_of(run_id) if run_id is not None else []
        self.metrics.run_finished(
            status,
            duration_s,
            outcome.plan if outcome else None,
            actions,
            now,
            group_plan=outcome.group_plan if outcome else None,
            group_actions=group_actions,
        )
        if status in SUCCESSFUL:
            self.health.last_success_at = now
        self.last_outcome = outcome
        self._last_summary = run_summary(status, duration_s, outcome, run_id=run_id, error=error, ended_at=now)
        log.log(logging.INFO if status is RunStatus.SUCCEEDED else logging.WARNING, "%s", self._last_summary)
        try:
            self._check_quarantine(announce=True)
        except Exception:
            log.exception("cannot read the target's consecutive failures from the store")
        self._publish_status()

    # --- quarantine ----------------------------------------------------------------------------

    def _check_quarantine(self, *, announce: bool) -> None:
        failures = self.store.consecutive_failures(self.fingerprint)
        now_quarantined = quarantined(failures, self.config.thresholds)
        self.consecutive_failures = failures
        self.metrics.consecutive_failures.set(failures)
        self.metrics.quarantined.set(int(now_quarantined))
        if now_quarantined == self.quarantined:
            return
        self.quarantined = now_quarantined
        if announce:
            if now_quarantined:
                log.warning(
                    "quarantine: %d failed runs in a row (thresholds.quarantine_after = %d): "
                    "running every %s until a run succeeds",
                    failures,
                    self.config.thresholds.quarantine_after,
                    _duration(self._interval_s()),
                )
            else:
                log.warning("quarantine over: a run succeeded; back to %s", self._describe_schedule())
        self._reschedule()

    def _interval_s(self) -> float:
        return scheduled_interval_s(
            schedule_period_s(self.config.schedule), self.consecutive_failures, self.config.thresholds
        )

    def _trigger(self) -> BaseTrigger:
        if self.quarantined:
            return IntervalTrigger(seconds=self._interval_s(), jitter=self.config.schedule.jitter_s or None)
        return normal_trigger(self.config.schedule)

    def _reschedule(self) -> None:
        if self.scheduler is None or self._stopping:
            return
        job = self.scheduler.get_job(JOB_ID)
        if job is not None:
            job.reschedule(self._trigger())

    # --- status --------------------------------------------------------------------------------

    _last_summary: str | None = None

    def _publish_status(self, now_doing: str | None = None) -> None:
        parts = []
        if self.quarantined:
            parts.append(
                f"QUARANTINED after {self.consecutive_failures} failed runs, every {_duration(self._interval_s())}"
            )
        if now_doing:
            parts.append(now_doing)
        parts.append(f"last: {self._last_summary}" if self._last_summary else "no run yet")
        next_run = self.next_run_time()
        if next_run is not None and not now_doing:
            parts.append(f"next run {_utc(next_run.timestamp())}")
        self.status_line = "; ".join(parts)
        self.notifier.status(self.status_line)

    def next_run_time(self) -> datetime | None:
        job: Job | None = self.scheduler.get_job(JOB_ID) if self.scheduler is not None else None
        return job.next_run_time if job is not None else None

    def _describe_schedule(self) -> str:
        schedule = self.config.schedule
        every = f'cron "{schedule.cron}"' if schedule.cron else f"every {_duration(schedule.interval_s)}"
        jitter = f" (+ up to {_duration(schedule.jitter_s)} jitter)" if schedule.jitter_s else ""
        return f"runs {every}{jitter}"

    def _describe_target(self) -> str:
        return f"Okta app {self.config.okta.app_id} at {self.config.okta.org_url} -> {self.config.scim.base_url}"

    def _seed_from_store(self) -> None:
        """The last successful run and the failure streak as the store has them, for /healthz and metrics."""
        finished = self.store.last_success_at(self.fingerprint)
        if finished is not None:
            ended = finished.timestamp()
            self.health.last_success_at = ended
            self.metrics.last_success.set(ended)
        self._check_quarantine(announce=False)
        if self.quarantined:
            log.warning(
                "quarantine: %d failed runs in a row before this start: running every %s until a run succeeds",
                self.consecutive_failures,
                _duration(self._interval_s()),
            )


# --- the command -------------------------------------------------------------------------------


def serve(config: Config, store: Store, *, log_level: str = "INFO", log_format: LogFormat = "text") -> int:
    """``reconcile serve``: run the service until SIGTERM or SIGINT; the exit code."""
    return asyncio.run(_serve(config, store, log_level, log_format))


async def _serve(config: Config, store: Store, log_level: str, log_format: LogFormat) -> int:
    secrets: list[Secret] = config_secrets(config)

    def relog(new: Config) -> None:
        # Values of the old configuration may still be in flight: keep masking them too.
        secrets.extend(s for s in config_secrets(new) if s.reveal() not in {k.reveal() for k in secrets})
        setup_logging(log_level, secrets, log_format)

    service = Service(config, store, on_reload=relog)
    with signals_wired(service.request_stop, service.reload):
        return await service.run()
