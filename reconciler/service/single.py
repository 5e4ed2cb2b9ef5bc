"""``reconcile serve``: reconcile on a schedule, for months, under systemd.

One process, one asyncio event loop, which holds:

- an APScheduler 3.x ``AsyncIOScheduler`` with one job, on the ``[schedule]``
  (every ``interval``, or on a ``cron`` expression, each run up to ``jitter``
  late), ``max_instances = 1`` and ``coalesce = true``, plus a run at start-up
  when ``run_at_start``. The job also holds an in-process lock, so a run never
  overlaps another, even across a reload that replaces the trigger;
- after each run, the target's consecutive failures: from ``quarantine_after``
  failed runs in a row the job moves to ``quarantine_interval`` (see
  :func:`reconciler.service.schedule.scheduled_interval_s`) until a run succeeds;
- the systemd notify protocol (:mod:`reconciler.service.notify`): READY, STATUS (the
  last run in one line), WATCHDOG, RELOADING, STOPPING;
- the Prometheus ``/metrics`` and ``/healthz`` endpoint (:mod:`reconciler.service.endpoint`).

Its life cycle is :class:`reconciler.service.daemon.Daemon`'s. Signals:
SIGTERM and SIGINT stop scheduling and give the run in flight
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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Unpack

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.config.load import load_config
from reconciler.config.model import Config, fingerprint
from reconciler.errors import SourceError
from reconciler.logs import LogFormat
from reconciler.models.runs import SUCCESSFUL, RunStatus
from reconciler.run.alerting import reconcile_and_alert
from reconciler.run.follower import PollResult, follow_lease_name
from reconciler.run.outcome import RunOutcome
from reconciler.service.daemon import Daemon, DaemonOptions, StopWords
from reconciler.service.follow_metrics import FollowMetrics
from reconciler.service.following import FollowerTask
from reconciler.service.health import Health
from reconciler.service.metrics import ServiceMetrics
from reconciler.service.process import serve_until_stopped
from reconciler.service.schedule import normal_trigger, quarantined, schedule_period_s, scheduled_interval_s
from reconciler.service.wording import format_duration, format_utc, run_fields, run_summary
from reconciler.store import Store
from reconciler.store.locks import LockBusy

log = logging.getLogger(__name__)

JOB_ID: Final = "reconcile"


class Service(Daemon[Config]):
    """The scheduler, the runs, the notify messages and the metrics endpoint of ``reconcile serve``.

    :meth:`run` serves until :meth:`request_stop`; :meth:`reload` re-reads the
    configuration file (the life cycle is :class:`reconciler.service.daemon.Daemon`'s).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        metrics: ServiceMetrics | None = None,
        **options: Unpack[DaemonOptions[Config]],
    ) -> None:
        super().__init__(store, **options)
        self.config = config
        self.metrics = metrics or ServiceMetrics()
        self.fingerprint = fingerprint(config)
        self.health = Health(schedule_period_s(config.schedule), started_at=self.clock(), clock=self.clock)
        self.quarantined = False
        self.consecutive_failures = 0
        self.last_outcome: RunOutcome | None = None
        self.runs_started = 0
        self.status_line = "waiting for the first run"
        self._lock = asyncio.Lock()
        self._current: asyncio.Task[RunOutcome | None] | None = None
        self._last_run_started = 0.0
        """When the latest run began (monotonic): the follower takes it as its audit while that is recent."""
        self.follow_metrics = FollowMetrics(self.metrics.registry).listener()
        self.follower: FollowerTask | None = None

    # --- what the life cycle asks ----------------------------------------------------------------

    stop_words = StopWords(
        in_flight="the run in flight",
        letting="letting the run in flight finish",
        cancelling="the run did not finish within {timeout:g} s: cancelling it; it is recorded interrupted",
        idle="no run in flight",
    )

    @property
    def served(self) -> Config:
        return self.config

    def read_file(self, path: Path) -> Config:
        return load_config(path, self.environ)

    def prepare(self) -> None:
        self._seed_from_store()

    def start_jobs(self, scheduler: AsyncIOScheduler) -> None:
        run_now = datetime.now(UTC) if self.config.schedule.run_at_start else None
        scheduler.add_job(
            self._scheduled_run,
            self._trigger(),
            id=JOB_ID,
            name="reconcile run",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=run_now,
        )
        if run_now is None:
            self._start_follower()  # else after the first run, whose audit it takes as its own

    def announce_ready(self) -> None:
        """STATUS first, then READY=1 on its own."""
        self._publish_status()
        self.notifier.ready()

    def in_flight(self) -> list[asyncio.Task[Any]]:
        following = [self.follower.task] if self.follower is not None and self.follower.task is not None else []
        return ([self._current] if self._current is not None else []) + following

    def request_stop(self, reason: str = "stop requested") -> None:
        super().request_stop(reason)
        if self.follower is not None:
            self.follower.stop()

    def stop_timeout_s(self) -> float:
        return self.config.schedule.stop_timeout_s

    def describe_serving(self) -> str:
        return f"serving: {self._describe_schedule()}; {self._describe_target()}"

    def describe_reload(self) -> str:
        return f"{self._describe_schedule()}; {self._describe_target()}; applies from the next run"

    def describe_status(self) -> str:
        return self.status_line

    def adopt(self, new: Config) -> None:
        old = self.config
        if new.store.url != old.store.url:
            log.warning("store.url changed: the service keeps its store until it restarts")
        if new.metrics.listen != old.metrics.listen:
            log.warning("metrics.listen changed: it takes effect when the service restarts")
        self.config = new
        self.fingerprint = fingerprint(new)
        self.health.interval_s = schedule_period_s(new.schedule)
        self._check_quarantine(announce=False)
        if new.schedule != old.schedule or new.thresholds != old.thresholds or self.fingerprint != fingerprint(old):
            self._reschedule()
        if new != old and self.scheduler is not None:
            self._start_follower()  # rebuilt with the new settings; one turned off tries again

    # --- the System Log follower -----------------------------------------------------------------

    def _start_follower(self) -> None:
        """The follower beside the scheduler (``incremental.enabled``), replacing the one running, if any."""
        if self.follower is not None:
            self.follower.stop()
            self.follower = None
        if not self.config.incremental.enabled or self.stopping:
            return
        self.follower = FollowerTask(
            self.config,
            self.store,
            self._audit_for_follower,
            self.follow_metrics,
            on_batch=self._batch_done,
            lease=follow_lease_name(fingerprint(self.config)),
        )
        self.follower.start()

    async def _audit_for_follower(self) -> RunOutcome:
        """The follower's full audit: the scheduled run's path. The run in flight, or the latest, stands for it
        when it began within ``incremental.overlap`` (the follower re-reads the log from that far back); while
        the audits fail or the service is quarantined, none is added: the follower waits for the schedule."""
        if self._current is not None:
            await asyncio.wait([self._current])
        latest = self.last_outcome
        if latest is not None and time.monotonic() - self._last_run_started < self.config.incremental.overlap_s:
            if latest.status in SUCCESSFUL:
                return latest
        if self.quarantined or (latest is not None and latest.status not in SUCCESSFUL):
            raise SourceError("the follower waits for a scheduled full audit to succeed")
        outcome = None if self.stopping else await self._run_held()
        if outcome is None:
            raise SourceError("the full audit the follower needs did not run (stopping, or the run lock is held)")
        return outcome

    def _batch_done(self, result: PollResult) -> None:
        assert result.batch is not None
        self.metrics.actions_recorded(self.store.actions_of(result.batch.run.run_id))

    # --- runs ----------------------------------------------------------------------------------

    async def _scheduled_run(self) -> None:
        await self.run_once()
        if self.follower is None and not self.stopping:
            self._start_follower()

    async def run_once(self) -> RunOutcome | None:
        """One run, unless one is going already or the service is stopping; None when none ran to its end."""
        if self.stopping:
            return None
        if self._lock.locked():
            log.warning("a run is still in flight: this one is skipped")
            return None
        return await self._run_held()

    async def _run_held(self) -> RunOutcome | None:
        """One run under the service's lock, waiting for the run in flight, if any."""
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
        self._publish_status(f"run in progress since {format_utc(started_at)}")
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
        self._last_run_started = time.monotonic() - duration_s
        self._last_summary = run_summary(status, duration_s, outcome, run_id=run_id, error=error, ended_at=now)
        fields = run_fields(status, duration_s, outcome, run_id=run_id, tenant=self.config.tenant, error=error)
        log.log(
            logging.INFO if status is RunStatus.SUCCEEDED else logging.WARNING, "%s", self._last_summary, extra=fields
        )
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
        self.metrics.settings.show(self.config)
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
                    format_duration(self._interval_s()),
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
        if self.scheduler is None or self.stopping:
            return
        job = self.scheduler.get_job(JOB_ID)
        if job is not None:
            job.reschedule(self._trigger())

    # --- status --------------------------------------------------------------------------------

    _last_summary: str | None = None

    def _publish_status(self, now_doing: str | None = None) -> None:
        parts = []
        if self.quarantined:
            every = format_duration(self._interval_s())
            parts.append(f"QUARANTINED after {self.consecutive_failures} failed runs, every {every}")
        if now_doing:
            parts.append(now_doing)
        parts.append(f"last: {self._last_summary}" if self._last_summary else "no run yet")
        next_run = self.next_run_time()
        if next_run is not None and not now_doing:
            parts.append(f"next run {format_utc(next_run.timestamp())}")
        self.status_line = "; ".join(parts)
        self.notifier.status(self.status_line)

    def next_run_time(self) -> datetime | None:
        job: Job | None = self.scheduler.get_job(JOB_ID) if self.scheduler is not None else None
        return job.next_run_time if job is not None else None

    def _describe_schedule(self) -> str:
        schedule = self.config.schedule
        every = f'cron "{schedule.cron}"' if schedule.cron else f"every {format_duration(schedule.interval_s)}"
        jitter = f" (+ up to {format_duration(schedule.jitter_s)} jitter)" if schedule.jitter_s else ""
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
                format_duration(self._interval_s()),
            )


# --- the command -------------------------------------------------------------------------------


def serve(config: Config, store: Store, *, log_level: str = "INFO", log_format: LogFormat = "text") -> int:
    """``reconcile serve``: run the service until SIGTERM or SIGINT; the exit code."""
    return serve_until_stopped(
        lambda on_reload: Service(config, store, on_reload=on_reload), Config.secrets, config, log_level, log_format
    )
