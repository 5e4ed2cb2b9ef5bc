"""Which conditions a finished run raises, and which it can judge at all.

The conditions, by key:

- ``drift``: the run found more drift (writes and conflicts) than ``alert_drift``;
- ``drift:<kind>``: more actions of one kind than ``alert_drift_by_kind[kind]`` (group kinds too);
- ``drift:groups``: more group drift (group writes and conflicts) than ``alert_drift``;
- ``blocked``: the safety gate stopped the run;
- ``failed``: the run failed, or some of its writes did (``partial``);
- ``consecutive_failures``: the latest ``consecutive_failures`` runs all failed;
- ``quarantined``: a fleet's tenant whose latest runs died with their replica (a crash, an OOM kill) was
  quarantined (:func:`quarantine_condition`; raised by the replica that finds the last dead run, not by a run).

Drift is what a run *found*, before it applied anything: an apply run that
repairs 60 users raises ``drift`` all the same (push missed all of them), and
the next run, finding the platform in line, resolves it.

What a run can judge. Every finished run judges ``failed``,
``consecutive_failures`` and ``quarantined`` (a run that ends on its own
lifts that quarantine). Only a run that planned judges ``drift`` and
``drift:<kind>``, and only one the gate saw judges ``blocked``: a run that
could not read both sides knows nothing of drift, so those conditions keep the
state they had. An Okta outage neither resolves a drift alert nor repeats it.

A run is judged through :class:`FinishedRun`, a protocol: alerts sit beside the
store and below the run, and know neither.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from reconciler.config.model import AlertsConfig
from reconciler.models.groups import GROUP_WRITE_KINDS, GroupActionKind, GroupPlan
from reconciler.models.records import WRITE_KINDS, ActionKind, Plan
from reconciler.models.runs import RunStatus
from reconciler.plan.gate import GateDecision

DRIFT: Final = "drift"
BLOCKED: Final = "blocked"
FAILED: Final = "failed"
CONSECUTIVE_FAILURES: Final = "consecutive_failures"
QUARANTINED: Final = "quarantined"
FOLLOWER_OFF: Final = "follower_off"
"""The System Log follower turned itself off (no log access, no SCIM filter): told by the service, not a run."""

MAX_EXAMPLES: Final = 10
DRIFT_KINDS: Final = tuple(kind for kind in ActionKind if kind in WRITE_KINDS or kind is ActionKind.CONFLICT)
"""What counts as drift: what needs a write, or a person (conflicts); not unmanaged users."""
GROUP_DRIFT_KINDS: Final = tuple(
    kind for kind in GroupActionKind if kind in GROUP_WRITE_KINDS or kind is GroupActionKind.CONFLICT
)
GROUP_DRIFT: Final = "drift:groups"

_FINISHED: Final = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.DRIFT, RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.BLOCKED}
)


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


def family(key: str) -> str:
    """``drift:deactivate`` → ``drift``: the conditions a run judges together."""
    return key.partition(":")[0]


def judged_by(outcome: FinishedRun) -> frozenset[str]:
    """The condition families this run can find active or clear (see the module docstring)."""
    judged = set()
    if outcome.status in _FINISHED:
        judged |= {FAILED, CONSECUTIVE_FAILURES, QUARANTINED}
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
    counts = _counts(plan, GROUP_DRIFT_KINDS)
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


def _group_examples(plan: GroupPlan, kinds: Collection[GroupActionKind]) -> tuple[str, ...]:
    return tuple(action.name for action in plan.actions if action.kind in kinds)[:MAX_EXAMPLES]


def _blocked(outcome: FinishedRun) -> Condition:
    gate = outcome.gate
    held = gate.gated_kinds if gate is not None else WRITE_KINDS
    reasons = tuple(trip.reason for trip in gate.trips) if gate is not None else (outcome.error or "",)
    counts = _counts(outcome.plan, held)
    if gate is not None:
        counts |= _counts(outcome.group_plan, gate.gated_group_kinds)
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


def quarantine_condition(run_id: int, crashes: int, limit: int, interval_s: float) -> Condition:
    """A tenant quarantined after ``crashes`` runs in a row died with their replica; ``run_id`` is the last."""
    title = f"Quarantined: {crashes} runs in a row died with their replica (quarantine_after_interrupted = {limit})"
    details = (
        "Each of these runs was found running with no replica holding it: the process died under it (a crash, "
        "an OOM kill). The other tenants keep their schedule.",
        f"This tenant now runs alone, every {interval_s / 3600:g} h (quarantine_interval), until a run of it "
        "ends on its own; or run it once by hand when the cause is fixed.",
    )
    return Condition(QUARANTINED, title, run_id, details=details)


def follower_off_condition(run_id: int, why: str) -> Condition:
    """The System Log follower is off for ``why``; ``run_id`` is the target's latest run (the audits go on)."""
    details = (
        why,
        "Changes in Okta now wait for the next scheduled full audit. Fix the cause, then reload the service "
        "(SIGHUP) or restart it to follow again; set incremental.enabled = false to stop trying.",
    )
    return Condition(
        FOLLOWER_OFF, "The System Log follower is off: incremental repair stopped", run_id, details=details
    )


def _counts(plan: Plan | GroupPlan | None, kinds: Iterable[ActionKind | GroupActionKind]) -> dict[str, int]:
    """The plan's count of each of ``kinds``, in the plan summary's order, none at zero."""
    if plan is None:
        return {}
    wanted = {str(kind) for kind in kinds}
    return {kind: count for kind, count in plan.summary().items() if kind in wanted and count}


def _examples(plan: Plan | None, kinds: Collection[ActionKind]) -> tuple[str, ...]:
    if plan is None:
        return ()
    return tuple(action.user_name for action in plan.actions if action.kind in kinds)[:MAX_EXAMPLES]
