"""Alerting after a run: judge its conditions, tell what changed, remember it in the store."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from reconciler.alerts import (
    FOLLOWER_OFF,
    QUARANTINED,
    Condition,
    ConditionState,
    Notification,
    compose,
    conditions_of,
    follower_off_condition,
    judged_by,
    quarantine_condition,
    send,
    state_changes,
    transitions,
)
from reconciler.config.model import Config, fingerprint
from reconciler.hooks import NO_PROGRESS, ProgressListener
from reconciler.run.outcome import ConfirmPlan, RunOutcome
from reconciler.run.reconcile import reconcile
from reconciler.store import AlertState, Store, utc_now

log = logging.getLogger(__name__)


async def reconcile_and_alert(
    config: Config,
    store: Store,
    *,
    dry_run: bool,
    progress: ProgressListener = NO_PROGRESS,
    confirm: ConfirmPlan | None = None,
) -> RunOutcome:
    """One run, then its alerts: what ``reconcile --dry-run``, ``reconcile`` and ``serve`` do."""
    outcome = await reconcile(config, store, dry_run=dry_run, progress=progress, confirm=confirm)
    await alert_after_run(store, config, outcome)
    return outcome


async def alert_after_run(
    store: Store, config: Config, outcome: RunOutcome, *, now: datetime | None = None
) -> list[Notification]:
    """Judge the run's conditions, tell what changed, remember it; returns the notifications told.

    Call it once the run is finished in the store (it counts among the
    consecutive failures). It never raises: a problem while alerting is
    logged, and the run's outcome stands.
    """
    try:
        return await _alert_after_run(store, config, outcome, now or utc_now())
    except Exception:
        log.exception("alerting after run %s failed", outcome.run_id)
        return []


async def _alert_after_run(store: Store, config: Config, outcome: RunOutcome, now: datetime) -> list[Notification]:
    current = conditions_of(outcome, config.alerts, store.consecutive_failures(fingerprint(config)))
    return await _tell_and_remember(store, config, current, judged_by(outcome), outcome.run_id, now)


async def alert_quarantined(store: Store, config: Config, last_dead_run: int, crashes: int) -> list[Notification]:
    """Tell that a fleet's tenant is quarantined for runs that died with their replica (once: the state remembers).

    Called by the replica that found the last dead run, under the tenant's lease; the next run of the tenant
    that ends on its own resolves it (:func:`alert_after_run`). Never raises, as :func:`alert_after_run`.
    """
    thresholds = config.thresholds
    condition = quarantine_condition(
        last_dead_run, crashes, thresholds.quarantine_after_interrupted, thresholds.quarantine_interval_s
    )
    try:
        return await _tell_and_remember(
            store, config, {QUARANTINED: condition}, {QUARANTINED}, last_dead_run, utc_now()
        )
    except Exception:
        log.exception("alerting the quarantine of run %s's tenant failed", last_dead_run)
        return []


async def alert_follower(store: Store, config: Config, off: str | None) -> list[Notification]:
    """Tell that the System Log follower turned itself off (``off`` says why), or, with None, that it follows
    again; once each (the state remembers). Never raises. Its own family: no run's alerts set or clear it."""
    target = fingerprint(config)
    latest = store.tenant_states([target])[target].latest
    run_id = latest.id if latest is not None else 0
    current = {FOLLOWER_OFF: follower_off_condition(run_id, off)} if off is not None else {}
    try:
        return await _tell_and_remember(store, config, current, {FOLLOWER_OFF}, run_id, utc_now())
    except Exception:
        log.exception("alerting that the System Log follower is off failed")
        return []


async def _tell_and_remember(
    store: Store, config: Config, current: dict[str, Condition], judged: Collection[str], run_id: int, now: datetime
) -> list[Notification]:
    """Tell what changed among the ``judged`` condition families, and keep the new states in the store."""
    target = fingerprint(config)
    previous = {key: _remembered(row) for key, row in store.alert_states(target).items()}
    notifications = transitions(previous, current, now, config.alerts.realert_after_s, judged)
    told = bool(notifications) and await send(compose(notifications, config, run_id), config.alerts.urls)
    changes = state_changes(previous, current, notifications, told=told, now=now, judged=judged)
    for state in changes.save:
        store.save_alert_state(_row(target, state))
    for key in changes.remove:
        store.remove_alert_state(target, key)
    return notifications if told else []


def _remembered(row: AlertState) -> ConditionState:
    return ConditionState(row.key, row.title, row.active_since, row.last_sent_at, row.last_run_id)


def _row(target: str, state: ConditionState) -> AlertState:
    return AlertState(
        config_fingerprint=target,
        key=state.key,
        title=state.title,
        active_since=state.active_since,
        last_sent_at=state.last_sent_at,
        last_run_id=state.last_run_id,
    )
