"""When runs happen: cron and interval triggers, the quarantine's slower pace, and when a fleet's tenant is due."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.config.model import Config, fingerprint
from reconciler.config.policy_model import ThresholdsConfig
from reconciler.config.service_model import ScheduleConfig
from reconciler.models.runs import RunMode, RunStatus
from reconciler.store import TenantState


def quarantined(consecutive_failures: int, thresholds: ThresholdsConfig) -> bool:
    """After ``quarantine_after`` failed runs in a row, the target is in quarantine (Entra's term)."""
    return consecutive_failures >= thresholds.quarantine_after


def crash_quarantined(state: TenantState, thresholds: ThresholdsConfig) -> bool:
    """A fleet's poison tenant: ``quarantine_after_interrupted`` runs in a row died with their replica.

    Entra's quarantine, for what kills the process rather than fails the run:
    the tenant runs every ``quarantine_interval`` (and alone on its replica),
    until one of its runs ends on its own.
    """
    return state.consecutive_crashes >= thresholds.quarantine_after_interrupted


def runs_alone(state: TenantState, thresholds: ThresholdsConfig) -> bool:
    """A suspect: one more death would quarantine it, so it runs only on a replica with nothing else in flight.

    A replica that dies takes every run it had with it; the death that quarantines
    a tenant must be its own, not that of a tenant that shared its replica.
    """
    return state.consecutive_crashes >= max(1, thresholds.quarantine_after_interrupted - 1)


def tenant_quarantined(state: TenantState, thresholds: ThresholdsConfig) -> bool:
    """In quarantine for either reason: failed runs in a row, or runs that died with their replica."""
    return quarantined(state.consecutive_failures, thresholds) or crash_quarantined(state, thresholds)


def scheduled_interval_s(base_interval_s: float, consecutive_failures: int, thresholds: ThresholdsConfig) -> float:
    """How long the service waits before the next run: slower while quarantined, until a run succeeds.

    A run that keeps failing (a revoked token, a platform down for days) would
    otherwise retry every interval, alert every time and load both sides.
    """
    if quarantined(consecutive_failures, thresholds):
        return max(base_interval_s, thresholds.quarantine_interval_s)
    return base_interval_s


CRON_PERIOD_SAMPLES: Final = 60
"""Fire times of a cron schedule looked at to find its longest gap."""


_CRON_DAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_trigger(expression: str, jitter_s: float = 0.0) -> BaseTrigger:
    """A trigger that reads a 5-field crontab expression as cron(8) does.

    Two differences from APScheduler 3's ``CronTrigger.from_crontab``:

    - weekday 0 is Sunday (APScheduler takes it as Monday, its issue 286, fixed only in 4.x):
      ``0 3 * * 1`` would run on Tuesdays. The weekday field is translated to day names.
    - when both the day of month and the day of week are restricted (neither starts with ``*``),
      a day matches if EITHER does: ``0 3 1 * 1`` runs on the 1st and on every Monday. APScheduler
      requires both; so the expression becomes one trigger per field, fired by whichever comes first.
    """
    minute, hour, day, month, weekdays = expression.split()
    jitter = jitter_s or None

    def cron(day_field: str, weekday_field: str, trigger_jitter: float | None) -> CronTrigger:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day_field,
            month=month,
            day_of_week=crontab_weekdays(weekday_field),
            jitter=trigger_jitter,
        )

    if _restricted(day) and _restricted(weekdays):
        return OrTrigger([cron(day, "*", None), cron("*", weekdays, None)], jitter=jitter)
    return cron(day, weekdays, jitter)


def _restricted(field: str) -> bool:
    """A day field that restricts, for cron(8)'s either-day rule: one not starting with ``*`` (``*/2`` does not)."""
    return not field.startswith(("*", "?"))


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday, names, ranges, lists, steps) as APScheduler day names.

    Anything cron does not know (APScheduler's own ``last fri``, ``mon#2``) is passed through as is.
    """
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    try:
        for part in field.lower().split(","):
            span, _, step_text = part.partition("/")
            step = int(step_text) if step_text else 1
            if span == "*":
                low, high = 0, 6
            elif "-" in span:
                first, last = span.split("-", 1)
                low, high = _cron_day(first), _cron_day(last)
            else:
                low = _cron_day(span)
                high = 6 if step_text else low
            if low > high or step < 1:
                raise ValueError(part)
            days.update(d % 7 for d in range(low, high + 1, step))
    except ValueError:
        return field
    return ",".join(_CRON_DAYS[d] for d in sorted(days))


def _cron_day(text: str) -> int:
    if text in _CRON_DAYS:
        return _CRON_DAYS.index(text)
    number = int(text)
    if not 0 <= number <= 7:
        raise ValueError(text)
    return number


def normal_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    if schedule.cron:
        return crontab_trigger(schedule.cron, schedule.jitter_s)
    return IntervalTrigger(seconds=schedule.interval_s, jitter=schedule.jitter_s or None)


def schedule_period_s(schedule: ScheduleConfig, now: datetime | None = None) -> float:
    """The schedule's interval; for a cron schedule, the longest gap between its next runs.

    ``/healthz`` and the quarantine compare against it: a weekday-only schedule
    has a three-day gap over the weekend, and that is what "late" is measured by.
    """
    if not schedule.cron:
        return schedule.interval_s
    trigger = crontab_trigger(schedule.cron)
    current = now or datetime.now(UTC)
    fire_times: list[datetime] = []
    previous: datetime | None = None
    for _ in range(CRON_PERIOD_SAMPLES):
        following = trigger.get_next_fire_time(previous, current)
        if following is None:
            break
        fire_times.append(following)
        previous, current = following, following + timedelta(microseconds=1)
    gaps = [(b - a).total_seconds() for a, b in zip(fire_times, fire_times[1:], strict=False)]
    return max(gaps) if gaps else schedule.interval_s


SCHEDULED_MODES: Final = (RunMode.APPLY,)
"""The runs a tenant's schedule counts from: applies. An operator's dry-run audit does not postpone a repair."""


RESTARTED: Final = frozenset({RunStatus.RUNNING, RunStatus.INTERRUPTED})
"""A latest run in one of these never ended on its own: the tenant is due again at once."""


def next_due(config: Config, state: TenantState, now: datetime, since: datetime | None = None) -> datetime:
    """When ``config``'s tenant should run next, from its latest run in the store.

    The same on every replica: it depends only on the store and the file. The
    jitter is drawn from the target and the latest run's id, so replicas agree
    on it, and hundreds of tenants on one schedule still spread their start.
    A tenant never run is due since ``since`` (the replica's start; default
    ``now``), or with ``run_at_start = false`` at its schedule's first time
    after it. A tenant whose latest run was cut off is due since that run began,
    unless it is a poison tenant (:func:`crash_quarantined`): then a
    ``quarantine_interval`` after it.
    Each answer is a fixed moment, not "now": the most overdue tenant is the one
    due longest, and a tenant waiting for a slot cannot be overtaken forever.
    """
    latest = state.latest
    schedule = config.schedule
    if latest is None:
        start = since or now
        return start if schedule.run_at_start else _after(config, start, now)
    if latest.status in RESTARTED:
        if crash_quarantined(state, config.thresholds):  # the slower pace, from the run that died last
            period = max(schedule_period_s(schedule, now), config.thresholds.quarantine_interval_s)
            return latest.started_at + timedelta(seconds=period)
        return latest.started_at
    period = schedule_period_s(schedule, now)
    slowed = scheduled_interval_s(period, state.consecutive_failures, config.thresholds)
    if slowed > period:
        due = latest.started_at + timedelta(seconds=slowed)
    else:
        due = _after(config, latest.started_at, now)
    jitter = random.Random(f"{fingerprint(config)}:{latest.id}").uniform(0, schedule.jitter_s)
    return due + timedelta(seconds=jitter)


def _after(config: Config, moment: datetime, now: datetime) -> datetime:
    """The schedule's first time after ``moment``: ``interval`` later, or the cron's next fire time."""
    schedule = config.schedule
    if not schedule.cron:
        return moment + timedelta(seconds=schedule.interval_s)
    following = crontab_trigger(schedule.cron).get_next_fire_time(None, moment + timedelta(microseconds=1))
    return following if following is not None else now + timedelta(seconds=schedule_period_s(schedule, now))


@dataclass(frozen=True)
class Due:
    """A tenant whose time has come, and how late it is."""

    config: Config
    at: datetime

    @property
    def name(self) -> str:
        return tenant_name(self.config)


def due_tenants(
    tenants: Iterable[Config],
    states: Mapping[str, TenantState],
    now: datetime,
    skip: Iterable[str] = (),
    since: datetime | None = None,
) -> list[Due]:
    """The tenants due by ``now``, the most overdue first; ``skip`` holds fingerprints not to offer."""
    skipped = set(skip)
    due = []
    for config in tenants:
        target = fingerprint(config)
        if target in skipped:
            continue
        at = next_due(config, states.get(target, TenantState()), now, since)
        if at <= now:
            due.append(Due(config, at))
    return sorted(due, key=lambda d: (d.at, d.name))


def tenant_name(config: Config) -> str:
    return config.tenant or config.okta.app_id
