"""Alerts after a run: which conditions hold, which of them to tell, and telling them through apprise.

The conditions, by key:

- ``drift``: the run found more drift (writes and conflicts) than ``alert_drift``;
- ``drift:<kind>``: more actions of one kind than ``alert_drift_by_kind[kind]`` (group kinds too);
- ``drift:groups``: more group drift (group writes and conflicts) than ``alert_drift``;
- ``blocked``: the safety gate stopped the run;
- ``failed``: the run failed, or some of its writes did (``partial``);
- ``consecutive_failures``: the latest ``consecutive_failures`` runs all failed.

Drift is what a run *found*, before it applied anything: an apply run that
repairs 60 users raises ``drift`` all the same (push missed all of them), and
the next run, finding the platform in line, resolves it.

What a run can judge. Every finished run judges ``failed`` and
``consecutive_failures``. Only a run that planned judges ``drift`` and
``drift:<kind>``, and only one the gate saw judges ``blocked``: a run that
could not read both sides knows nothing of drift, so those conditions keep the
state they had. An Okta outage neither resolves a drift alert nor repeats it.

Deduplication, as Alertmanager does it: a condition alerts once when it
starts, again each ``realert_after`` while it persists, and once when it
clears. The state lives in the store (``alert_states``), so it survives
restarts and is shared by ``reconcile serve`` and a cron'd ``--dry-run``.

Delivery. One message per run gathers its notifications and goes to every
apprise URL of ``[alerts] urls`` at once; it counts as told when at least one
channel took it. A message no channel took is not recorded as told, so the
next run tells it again (at least once, never silently lost). With no URL
configured, conditions are tracked but never marked as told: a URL added later
announces the conditions active then, once each, and not those that came and
went meanwhile (nobody needs to hear that something nobody heard of cleared).

apprise URLs embed tokens and passwords: they are revealed to apprise only and
never logged; a channel is named by its position in the configuration and its
scheme.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol
from urllib.parse import urlsplit

import apprise

from reconciler.config.model import AlertsConfig, Config
from reconciler.models.groups import GROUP_WRITE_KINDS, GroupActionKind, GroupPlan
from reconciler.models.records import WRITE_KINDS, ActionKind, Plan
from reconciler.models.runs import RunStatus
from reconciler.plan.gate import GateDecision
from reconciler.secret import Secret, redact

log = logging.getLogger(__name__)

DRIFT: Final = "drift"
BLOCKED: Final = "blocked"
FAILED: Final = "failed"
CONSECUTIVE_FAILURES: Final = "consecutive_failures"

MAX_EXAMPLES: Final = 10
SEND_TIMEOUT_S: Final = 30.0
DRIFT_KINDS: Final = tuple(kind for kind in ActionKind if kind in WRITE_KINDS or kind is ActionKind.CONFLICT)
"""What counts as drift: what needs a write, or a person (conflicts); not unmanaged users."""
GROUP_DRIFT_KINDS: Final = tuple(
    kind for kind in GroupActionKind if kind in GROUP_WRITE_KINDS or kind is GroupActionKind.CONFLICT
)
GROUP_DRIFT: Final = "drift:groups"

_FINISHED: Final = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.DRIFT, RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.BLOCKED}
)
_APPRISE_ASSET: Final = apprise.AppriseAsset(app_id="okta-reconciler", app_desc="okta-reconciler alerts")


class Event(StrEnum):
    STARTED = "started"
    STILL_ACTIVE = "still active"
    RESOLVED = "resolved"


class AppliedWrites(Protocol):
    """How a run's writes went, as far as alerts care."""

    @property
    def attempted(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def skipped(self) -> int: ...


class FinishedRun(Protocol):
    """What alerts read of a finished run (:class:`reconciler.run.outcome.RunOutcome` is one).

    A protocol, so that alerts judge a run without depending on the stage that runs it.
    """

    @property
    def run_id(self) -> int: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def plan(self) -> Plan | None: ...
    @property
    def group_plan(self) -> GroupPlan | None: ...
    @property
    def gate(self) -> GateDecision | None: ...
    @property
    def applied(self) -> AppliedWrites: ...
    @property
    def error(self) -> str | None: ...


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
class Condition:
    """Something a person should hear about, as one run found it."""

    key: str
    title: str
    run_id: int
    counts: Mapping[str, int] = field(default_factory=dict)
    """Actions by kind: the kinds this condition is about, none at zero."""
    examples: tuple[str, ...] = ()
    """Up to ten userNames among those actions."""
    details: tuple[str, ...] = ()
    """Why, a line each: the gate's trips, the run's error."""


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


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    """Plain text: apprise turns it into what each channel wants."""
    notify_type: apprise.NotifyType


# --- which conditions hold (pure) -------------------------------------------------------------


def family(key: str) -> str:
    """``drift:deactivate`` → ``drift``: the conditions a run judges together."""
    return key.partition(":")[0]


def judged_by(outcome: FinishedRun) -> frozenset[str]:
    """The condition families this run can find active or clear (see the module docstring)."""
    judged = set()
    if outcome.status in _FINISHED:
        judged |= {FAILED, CONSECUTIVE_FAILURES}
    if outcome.plan is not None:
        judged.add(DRIFT)
    if outcome.gate is not None:
        judged.add(BLOCKED)
    return frozenset(judged)


def conditions_of(outcome: FinishedRun, alerts: AlertsConfig, consecutive_failures: int) -> dict[str, Condition]:
    """The conditions active after ``outcome``, by key.

    ``consecutive_failures`` is :meth:`Store.consecutive_failures` once the run is finished.
    """
    found: list[Condition] = []
    if outcome.plan is not None:
        found += drift_conditions(outcome.plan, alerts, outcome.run_id)
    if outcome.group_plan is not None:
        found += group_drift_conditions(outcome.group_plan, alerts, outcome.run_id)
    if outcome.status is RunStatus.BLOCKED:
        found.append(_blocked(outcome))
    if outcome.status in (RunStatus.FAILED, RunStatus.PARTIAL):
        found.append(_failed(outcome))
    if consecutive_failures >= alerts.consecutive_failures:
        found.append(_consecutive_failures(outcome, consecutive_failures, alerts.consecutive_failures))
    return {condition.key: condition for condition in found}


def drift_conditions(plan: Plan, alerts: AlertsConfig, run_id: int) -> list[Condition]:
    counts = _counts(plan, DRIFT_KINDS)
    total = sum(counts.values())
    found = []
    if total > alerts.alert_drift:
        title = f"Drift: {total} users out of line with Okta, above alert_drift = {alerts.alert_drift}"
        found.append(Condition(DRIFT, title, run_id, counts, _examples(plan, DRIFT_KINDS)))
    for kind, limit in alerts.alert_drift_by_kind.items():
        if kind not in ActionKind.__members__.values():
            continue  # a group kind: see group_drift_conditions
        of_kind = _counts(plan, (ActionKind(kind),))
        if of_kind.get(kind, 0) > limit:
            title = f"Drift: {of_kind[kind]} {kind}, above alert_drift_by_kind.{kind} = {limit}"
            found.append(Condition(f"{DRIFT}:{kind}", title, run_id, of_kind, _examples(plan, (ActionKind(kind),))))
    return found


def group_drift_conditions(plan: GroupPlan, alerts: AlertsConfig, run_id: int) -> list[Condition]:
    """Group drift against ``alert_drift`` (key ``drift:groups``) and the group kinds of ``alert_drift_by_kind``."""
    counts = _group_counts(plan, GROUP_DRIFT_KINDS)
    total = sum(counts.values())
    found = []
    if total > alerts.alert_drift:
        title = f"Group drift: {total} group changes out of line with Okta, above alert_drift = {alerts.alert_drift}"
        found.append(Condition(GROUP_DRIFT, title, run_id, counts, _group_examples(plan, GROUP_DRIFT_KINDS)))
    for kind, limit in alerts.alert_drift_by_kind.items():
        if kind not in GROUP_WRITE_KINDS:
            continue
        group_kind = GroupActionKind(kind)
        if counts.get(kind, 0) > limit:
            title = f"Group drift: {counts[kind]} {kind}, above alert_drift_by_kind.{kind} = {limit}"
            examples = _group_examples(plan, (group_kind,))
            found.append(Condition(f"{DRIFT}:{kind}", title, run_id, {kind: counts[kind]}, examples))
    return found


def _group_counts(plan: GroupPlan | None, kinds: Iterable[GroupActionKind]) -> dict[str, int]:
    if plan is None:
        return {}
    wanted = {kind.value for kind in kinds}
    return {kind: count for kind, count in plan.summary().items() if kind in wanted and count}


def _group_examples(plan: GroupPlan, kinds: Collection[GroupActionKind]) -> tuple[str, ...]:
    return tuple(action.name for action in plan.actions if action.kind in kinds)[:MAX_EXAMPLES]


def _blocked(outcome: FinishedRun) -> Condition:
    gate = outcome.gate
    held = gate.gated_kinds if gate is not None else WRITE_KINDS
    reasons = tuple(trip.reason for trip in gate.trips) if gate is not None else (outcome.error or "",)
    counts = _counts(outcome.plan, held)
    if gate is not None:
        counts |= _group_counts(outcome.group_plan, gate.gated_group_kinds)
    title = f"Blocked by the safety gate: {sum(counts.values())} writes held back"
    return Condition(BLOCKED, title, outcome.run_id, counts, _examples(outcome.plan, held), reasons)


def _failed(outcome: FinishedRun) -> Condition:
    applied = outcome.applied
    if outcome.status is RunStatus.PARTIAL:
        title = f"Run partly failed: {applied.failed} of {applied.attempted} writes failed"
    elif outcome.plan is None:
        title = "Run failed before it could plan: nothing was written"
    elif applied.attempted:
        title = f"Run failed: {applied.failed} of {applied.attempted} writes failed, {applied.skipped} not sent"
    else:
        title = "Run failed"
    details = (outcome.error,) if outcome.error else ()
    return Condition(FAILED, title, outcome.run_id, _counts(outcome.plan, WRITE_KINDS), details=details)


def _consecutive_failures(outcome: FinishedRun, failures: int, limit: int) -> Condition:
    title = f"{failures} consecutive failed runs (consecutive_failures = {limit})"
    details = (f"latest error: {outcome.error}",) if outcome.error else ()
    return Condition(CONSECUTIVE_FAILURES, title, outcome.run_id, details=details)


def _counts(plan: Plan | None, kinds: Iterable[ActionKind]) -> dict[str, int]:
    """The plan's count of each of ``kinds``, in the plan summary's order, none at zero."""
    if plan is None:
        return {}
    wanted = {ActionKind(kind).value for kind in kinds}
    return {kind: count for kind, count in plan.summary().items() if kind in wanted and count}


def _examples(plan: Plan | None, kinds: Collection[ActionKind]) -> tuple[str, ...]:
    if plan is None:
        return ()
    return tuple(action.user_name for action in plan.actions if action.kind in kinds)[:MAX_EXAMPLES]


# --- what to tell (pure) ----------------------------------------------------------------------


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


# --- the message (pure) -----------------------------------------------------------------------


def compose(notifications: Sequence[Notification], config: Config, run_id: int) -> Message:
    """One message for a run's notifications: title, sections, then the run and how to inspect it.

    Known secrets are masked as a last line of defence: no part of it should
    hold one, but a server's error text quoted in a run's error might.
    """
    notifications = sorted(notifications, key=_importance)
    first = notifications[0]
    more = f" (+{len(notifications) - 1} more)" if len(notifications) > 1 else ""
    tenant = f" [{config.tenant}]" if config.tenant else ""
    title = f"okta-reconciler{tenant}: {_headline(first)}{more}"
    run = f"Tenant {config.tenant}, run {run_id}" if config.tenant else f"Run {run_id}"
    footer = (
        f"{run}: Okta app {config.okta.app_id} ({_public_url(config.okta.org_url)}) "
        f"-> SCIM {_public_url(config.scim.base_url)}\n"
        f"Inspect: {show_command(config, run_id)}"
    )
    body = "\n\n".join([*(_section(n) for n in notifications), footer])
    secrets = _secret_values(config)
    return Message(redact(title, secrets), redact(body, secrets), _notify_type(notifications))


def show_command(config: Config, run_id: int) -> str:
    if config.source_path is None:
        return f"reconcile show {run_id}"
    return f"reconcile --config {shlex.quote(str(config.source_path))} show {run_id}"


_EVENT_ORDER: Final = (Event.STARTED, Event.STILL_ACTIVE, Event.RESOLVED)
_FAMILY_ORDER: Final = (FAILED, CONSECUTIVE_FAILURES, BLOCKED, DRIFT)


def _importance(notification: Notification) -> tuple[int, int, str]:
    """News first, then failures before a blocked run before drift; the first one titles the message."""
    return (
        _EVENT_ORDER.index(notification.event),
        _FAMILY_ORDER.index(family(notification.key)),
        notification.key,
    )


def _headline(notification: Notification) -> str:
    if notification.event is Event.STARTED:
        return notification.title
    return f"{notification.event.value.capitalize()}: {notification.title}"


def _section(notification: Notification) -> str:
    lines = [_headline(notification)]
    if notification.event is not Event.STARTED:
        lines.append(f"  Active since {notification.active_since:%Y-%m-%d %H:%M} UTC")
    condition = notification.condition
    if condition is not None:
        if condition.counts:
            lines.append("  Counts: " + ", ".join(f"{kind} {count}" for kind, count in condition.counts.items()))
        if condition.examples:
            total = sum(condition.counts.values())
            shown = f"{len(condition.examples)} of {total}" if total > len(condition.examples) else "all"
            lines.append(f"  Users ({shown}): " + ", ".join(condition.examples))
        lines += [f"  {detail}" for detail in condition.details if detail]
    return "\n".join(lines)


def _notify_type(notifications: Sequence[Notification]) -> apprise.NotifyType:
    """Failure for an active failed/blocked condition, warning for active drift, success when all cleared."""
    active = {family(n.key) for n in notifications if n.event is not Event.RESOLVED}
    if active - {DRIFT}:
        return apprise.NotifyType.FAILURE
    return apprise.NotifyType.WARNING if active else apprise.NotifyType.SUCCESS


def _public_url(url: str) -> str:
    """Host, port and path: no user info, query or fragment, whatever the configuration holds."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname}{port}{parts.path}"


def _secret_values(config: Config) -> list[str]:
    secrets = [config.okta.token, config.okta.private_key, config.scim.token, *config.alerts.urls]
    return [secret.reveal() for secret in secrets if secret is not None]


# --- sending ----------------------------------------------------------------------------------


async def send(message: Message, urls: Sequence[Secret], timeout_s: float = SEND_TIMEOUT_S) -> bool:
    """Send to every channel at once; True when at least one took the message.

    A failing channel is logged, by position and scheme, and never raises.
    """
    if not urls:
        log.info("alert not sent, no channel: %s (see [alerts] urls)", message.title)
        return False
    _keep_urls_out_of_logs()
    sent = await asyncio.gather(*(_send_one(message, url, position, timeout_s) for position, url in enumerate(urls, 1)))
    return any(sent)


async def _send_one(message: Message, url: Secret, position: int, timeout_s: float) -> bool:
    scheme = url.reveal().partition("://")[0]
    channel = apprise.Apprise(asset=_APPRISE_ASSET)
    if not channel.add(url.reveal()):
        log.warning("alert channel %d (%s://): apprise cannot use this URL, check its syntax", position, scheme)
        return False
    try:
        async with asyncio.timeout(timeout_s):
            result = await channel.async_notify(
                body=message.body,
                title=message.title,
                notify_type=message.notify_type,
                body_format=apprise.NotifyFormat.TEXT,
            )
    except TimeoutError:
        log.warning("alert channel %d (%s://): no answer within %g s", position, scheme, timeout_s)
        return False
    except Exception as error:  # a plugin's bug; its message may quote the URL, so only its type is logged
        log.warning("alert channel %d (%s://) failed: %s", position, scheme, type(error).__name__)
        return False
    if not result:
        log.warning("alert channel %d (%s://) did not take the alert", position, scheme)
    return bool(result)


class _NoUrlRecords(logging.Filter):
    """Drops apprise's and urllib3's records that may hold an alert URL, and with it a token.

    Below WARNING they log the URLs and request lines they send and socket
    errors that quote them; above, apprise names an unusable URL, half masked.
    What is left (a status code, a host name) still says what went wrong.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "://" not in record.getMessage()


_URL_GUARD: Final = _NoUrlRecords()
_SENDING_LOGGERS: Final = ("apprise", "urllib3.connectionpool")


def _keep_urls_out_of_logs() -> None:
    for name in _SENDING_LOGGERS:
        logger = logging.getLogger(name)
        if _URL_GUARD not in logger.filters:
            logger.addFilter(_URL_GUARD)


# --- after a run ------------------------------------------------------------------------------
