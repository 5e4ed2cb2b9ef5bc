"""Applying a saved plan to live state: stale actions skipped, the gate asked again, the rest sent and recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from reconciler.config.model import Config, fingerprint
from reconciler.hooks import NO_PROGRESS, ProgressListener
from reconciler.models.groups import GroupAction
from reconciler.models.records import Action
from reconciler.models.runs import RunMode, RunStatus
from reconciler.okta.source import OktaSource
from reconciler.plan.gate import GateDecision, GroupPopulations, Populations, evaluate
from reconciler.plan.users import group_member_links, plan
from reconciler.run.apply import ApplyResult
from reconciler.run.outcome import RunOutcome
from reconciler.run.reconcile import failures_recorded
from reconciler.run.saved.digest import Stale, split_stale
from reconciler.run.saved.document import LiveState, SavedPlan, SavedPlanError
from reconciler.run.saved.groups import GroupLiveState, StaleGroupAction, split_stale_groups
from reconciler.run.wiring import applier_for, group_applier_for, okta_source, read_both_sides, read_groups, scim_reader
from reconciler.scim.reader import ScimReader
from reconciler.store import Store

Confirm = Callable[[str], bool]
"""Asked, with the reason, whether a plan above the thresholds may be applied."""


StaleAction = Stale[Action]


@dataclass
class PlanApplyOutcome:
    run_id: int
    status: RunStatus
    writes: int
    """How many writes the saved plan holds."""
    applied: ApplyResult = field(default_factory=ApplyResult)
    stale: list[StaleAction] = field(default_factory=list)
    stale_groups: list[StaleGroupAction] = field(default_factory=list)
    gate: GateDecision | None = None
    confirmed: bool = True
    """False when the plan exceeded thresholds and the apply was not confirmed."""
    error: str | None = None

    @property
    def complete(self) -> bool:
        """Every write of the plan was applied."""
        return self.status is RunStatus.SUCCEEDED and self.applied.succeeded == self.writes


def stale_reason(action: Action, live: LiveState) -> str:
    """Why a stale action is skipped, naming its subject."""
    if action.scim_id is not None and live.platform_user(action.scim_id) is None:
        return f"stale: platform user {action.scim_id} is gone since the plan was made"
    parts = []
    if action.okta_user_id is not None:
        parts.append(f"Okta user {action.okta_user_id}'s assignment")
    if action.scim_id is not None:
        parts.append(f"platform user {action.scim_id}")
    else:
        parts.append(f"the platform users matching {action.user_name}")
    return f"stale: {' or '.join(parts)} changed since the plan was made"


def split_stale_users(saved: SavedPlan, live: LiveState) -> tuple[list[Action], list[StaleAction]]:
    """The plan's user writes whose subject is as it was at plan time, and the others with why."""
    return split_stale(saved.writes, live.subject_digest, lambda action: stale_reason(action, live))


def threshold_question(gate: GateDecision, current: int) -> str:
    return f"this plan exceeds thresholds: {gate.reason}; it was reviewed ({current} write(s) still current)"


async def apply_saved_plan(
    config: Config,
    store: Store,
    saved: SavedPlan,
    confirm: Confirm,
    *,
    progress: ProgressListener = NO_PROGRESS,
) -> PlanApplyOutcome:
    """Apply a verified plan to live state. Errors are recorded in the store and returned, not raised.

    The run is recorded like any other (mode ``apply-plan``): report-only
    actions and stale writes as skipped with why, the rest through the same
    Applier as a normal run, intent before and outcome after.
    """
    run_id = store.start_run(RunMode.APPLY_PLAN, fingerprint(config), tenant=config.tenant, plan_run_id=saved.run_id)
    outcome = PlanApplyOutcome(run_id, RunStatus.RUNNING, saved.write_count)
    with failures_recorded(store, run_id) as failure:
        async with okta_source(config, progress, store=store) as source, scim_reader(config, progress) as reader:
            desired, actual = await read_both_sides(source, reader)
            live = LiveState(desired, actual)
            group_live = await _group_live_state(config, saved, source, reader, live)
            current, outcome.stale = split_stale_users(saved, live)
            current_groups = _current_groups(saved, group_live, outcome)
            outcome.gate = _gate_for(config, store, run_id, saved, live, group_live)
            _record_unsent(store, saved, outcome)
            # Nothing still current to send: nothing to confirm (the stale writes are reported as such).
            asks = outcome.gate.blocked and bool(current or current_groups)
            if asks and not confirm(threshold_question(outcome.gate, len(current) + len(current_groups))):
                _hold_unconfirmed(store, outcome, current, current_groups)
            else:
                applier = applier_for(config, store, run_id, reader, actual, progress)
                outcome.applied = await applier.apply(current)
                if group_live is not None:
                    await _apply_groups(config, store, outcome, reader, group_live, current_groups)
                outcome.status, outcome.error = _applied_status(outcome)
    if failure.error is not None:
        outcome.status, outcome.error = RunStatus.FAILED, failure.error
    store.finish_run(run_id, outcome.status, outcome.error)
    return outcome


def judged_outcome(outcome: PlanApplyOutcome) -> RunOutcome:
    """The applied plan as alerts judge it: with no plan, an apply-plan run judges failures and the gate,
    not the drift of the whole target."""
    return RunOutcome(outcome.run_id, outcome.status, None, outcome.gate, outcome.applied, outcome.error)


async def _group_live_state(
    config: Config, saved: SavedPlan, source: OktaSource, reader: ScimReader, live: LiveState
) -> GroupLiveState | None:
    """Both sides' groups now, and who their members resolve to now; None for a plan without groups."""
    if saved.groups is None:
        return None
    if not config.groups.enabled:
        raise SavedPlanError(
            f"{saved.path}: the plan holds group actions, but this config pushes no group: set [groups] as when "
            "the plan was made, or make a new plan"
        )
    desired_groups, actual_groups = await read_groups(config, source, reader)
    now = plan(live.desired, live.actual, config.mapping, config.policy)
    links, _created = group_member_links(now, live.desired, config.policy)
    return GroupLiveState(desired_groups, actual_groups, links)


def _current_groups(
    saved: SavedPlan, group_live: GroupLiveState | None, outcome: PlanApplyOutcome
) -> list[GroupAction]:
    if saved.groups is None or group_live is None:
        return []
    current, outcome.stale_groups = split_stale_groups(saved.groups, group_live)
    return current


def _record_unsent(store: Store, saved: SavedPlan, outcome: PlanApplyOutcome) -> None:
    """Report-only actions, and stale writes with why, as skipped."""
    store.record_skipped(outcome.run_id, [a for a in saved.plan.actions if not a.writes])
    for stale in outcome.stale:
        store.record_skipped(outcome.run_id, [stale.action], stale.why)
    if saved.groups is not None:
        store.record_group_skipped(outcome.run_id, [a for a in saved.groups.plan.actions if not a.writes])
        for stale_group in outcome.stale_groups:
            store.record_group_skipped(outcome.run_id, [stale_group.action], stale_group.why)


async def _apply_groups(
    config: Config,
    store: Store,
    outcome: PlanApplyOutcome,
    reader: ScimReader,
    group_live: GroupLiveState,
    current: list[GroupAction],
) -> None:
    """The plan's current group writes, after its user writes; members created just now resolve too.

    All of them, as for users: the plan was reviewed, and confirmed if it exceeds thresholds.
    """
    applier = group_applier_for(config, store, outcome.run_id, reader, group_live.links, outcome.applied)
    await applier.apply(current)


def _gate_for(
    config: Config,
    store: Store,
    run_id: int,
    saved: SavedPlan,
    live: LiveState,
    group_live: GroupLiveState | None = None,
) -> GateDecision:
    """The gate on the saved plan, with today's populations; a reviewed plan may still pass it only if confirmed."""
    previous = store.last_trusted_source_count(fingerprint(config), run_id)
    populations = Populations.of(live.desired, live.actual, previous)
    store.record_populations(run_id, populations.assignments, populations.managed)
    store.record_plan_counts(run_id, saved.plan.summary())
    groups = None
    if saved.groups is not None and group_live is not None:
        store.record_group_plan_counts(run_id, saved.groups.plan.summary())
        groups = (saved.groups.plan, GroupPopulations.of(group_live.desired, group_live.actual))
    return evaluate(saved.plan, populations, config.thresholds, groups)


def _hold_unconfirmed(
    store: Store, outcome: PlanApplyOutcome, current: Iterable[Action], current_groups: Iterable[GroupAction] = ()
) -> None:
    assert outcome.gate is not None
    why = "not sent: the plan exceeds thresholds and applying it was not confirmed"
    store.record_skipped(outcome.run_id, current, why)
    store.record_group_skipped(outcome.run_id, current_groups, why)
    outcome.confirmed = False
    outcome.status = RunStatus.BLOCKED
    outcome.error = f"blocked by the safety gate: {outcome.gate.reason}; the reviewed plan was not confirmed"


def _applied_status(outcome: PlanApplyOutcome) -> tuple[RunStatus, str | None]:
    result = outcome.applied
    problems = []
    if result.breaker is not None:
        problems.append(f"{result.breaker}; {result.skipped} write(s) not sent")
    elif result.failed:
        shown = "; ".join(result.errors[:5])
        more = f" (and {result.failed - 5} more)" if result.failed > 5 else ""
        problems.append(f"{result.failed} action(s) failed: {shown}{more}")
    stale = len(outcome.stale) + len(outcome.stale_groups)
    if stale:
        problems.append(f"{stale} action(s) stale: make a new plan for them")
    if result.breaker is not None:
        return RunStatus.FAILED, "; ".join(problems)
    if problems:
        return RunStatus.PARTIAL, "; ".join(problems)
    return RunStatus.SUCCEEDED, None
