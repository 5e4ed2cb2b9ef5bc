"""What to tell after a run, and what to remember of each condition until the next.

Deduplication, as Alertmanager does it: a condition alerts once when it
starts, again each ``realert_after`` while it persists, and once when it
clears. The state lives in the store (``alert_states``), so it survives
restarts and is shared by ``reconcile serve`` and a cron'd ``--dry-run``.

A condition is told only when a channel took the message (see
:mod:`reconciler.alerts.send`); one no channel took is told again by the next
run. With no URL configured, conditions are tracked but never marked as told:
a URL added later announces the conditions active then, once each, and not
those that came and went meanwhile (nobody needs to hear that something nobody
heard of cleared).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reconciler.alerts.conditions import Condition, family


class Event(StrEnum):
    """What a notification tells of its condition."""

    STARTED = "started"
    STILL_ACTIVE = "still active"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class ConditionState:
    """What is remembered of a condition between runs (the store keeps it per target)."""

    key: str
    title: str
    active_since: datetime
    last_sent_at: datetime | None
    """When it was last told; None while no channel took it."""
    last_run_id: int


@dataclass(frozen=True, slots=True)
class Notification:
    event: Event
    key: str
    title: str
    active_since: datetime
    condition: Condition | None = None
    """What holds now; None for a resolved condition."""


@dataclass(frozen=True, slots=True)
class StateChanges:
    save: list[ConditionState]
    remove: list[str]
    """Keys of conditions to forget."""


def transitions(
    previous: Mapping[str, ConditionState],
    current: Mapping[str, Condition],
    now: datetime,
    realert_after_s: float,
    judged: Collection[str] | None = None,
) -> list[Notification]:
    """What to tell after a run, given the stored states and the conditions the run found.

    A condition is told when it starts (or was never told: no channel took
    it), again ``realert_after_s`` after it was last told, and when it clears,
    if it was ever told. ``judged`` holds the families the run could judge
    (:func:`judged_by`; None: all): the others' states are left untouched.
    """
    notifications = []
    for key, condition in current.items():
        state = previous.get(key)
        if state is None or state.last_sent_at is None:
            since = state.active_since if state is not None else now
            notifications.append(Notification(Event.STARTED, key, condition.title, since, condition))
        elif (now - state.last_sent_at).total_seconds() >= realert_after_s:
            notifications.append(Notification(Event.STILL_ACTIVE, key, condition.title, state.active_since, condition))
    for key, state in previous.items():
        if _cleared(key, current, judged) and state.last_sent_at is not None:
            notifications.append(Notification(Event.RESOLVED, key, state.title, state.active_since))
    return notifications


def state_changes(
    previous: Mapping[str, ConditionState],
    current: Mapping[str, Condition],
    notifications: Sequence[Notification],
    *,
    told: bool,
    now: datetime,
    judged: Collection[str] | None = None,
) -> StateChanges:
    """The alert states to store after a run, once its ``notifications`` were ``told`` or not.

    Every active condition is saved (its title and run are the latest); a
    cleared one is forgotten once its clearing was told, or needs no telling.
    """
    told_keys = {n.key: n.event for n in notifications} if told else {}
    save = []
    for key, condition in current.items():
        state = previous.get(key)
        was_told = key in told_keys
        save.append(
            ConditionState(
                key=key,
                title=condition.title,
                active_since=state.active_since if state is not None else now,
                last_sent_at=now if was_told else (state.last_sent_at if state is not None else None),
                last_run_id=condition.run_id,
            )
        )
    remove = [
        key
        for key, state in previous.items()
        if _cleared(key, current, judged) and (state.last_sent_at is None or told_keys.get(key) is Event.RESOLVED)
    ]
    return StateChanges(save, remove)


def _cleared(key: str, current: Mapping[str, Condition], judged: Collection[str] | None) -> bool:
    return key not in current and (judged is None or family(key) in judged)
