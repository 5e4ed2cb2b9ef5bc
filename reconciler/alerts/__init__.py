"""Alerts: which conditions a finished run raises, what of them to tell, the message that tells it, and
sending it through apprise.

- :mod:`.conditions`: the conditions a run raises, judged through the :class:`FinishedRun` protocol;
- :mod:`.transitions`: what to tell (started, still active, resolved) and what to remember of each condition;
- :mod:`.message`: the message, title and body (:func:`compose`);
- :mod:`.send`: through apprise to every channel at once, the URLs kept out of the log (:func:`send`).

Alerts sit beside the store and below the run: they read no store and run nothing
(:mod:`reconciler.run.alerting` does both around them).
"""

from reconciler.alerts.conditions import (
    BLOCKED,
    CONSECUTIVE_FAILURES,
    DRIFT,
    FAILED,
    FOLLOWER_OFF,
    GROUP_DRIFT,
    QUARANTINED,
    Condition,
    FinishedRun,
    conditions_of,
    follower_off_condition,
    judged_by,
    quarantine_condition,
)
from reconciler.alerts.message import Message, compose, show_command
from reconciler.alerts.send import send
from reconciler.alerts.transitions import ConditionState, Event, Notification, StateChanges, state_changes, transitions

__all__ = [
    "BLOCKED",
    "CONSECUTIVE_FAILURES",
    "DRIFT",
    "FAILED",
    "FOLLOWER_OFF",
    "GROUP_DRIFT",
    "QUARANTINED",
    "Condition",
    "ConditionState",
    "Event",
    "FinishedRun",
    "Message",
    "Notification",
    "StateChanges",
    "compose",
    "conditions_of",
    "follower_off_condition",
    "judged_by",
    "quarantine_condition",
    "send",
    "show_command",
    "state_changes",
    "transitions",
]
