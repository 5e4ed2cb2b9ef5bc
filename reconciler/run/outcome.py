"""What a run ended with (RunOutcome) and what that means: its status, its error, whether it needs a person."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from reconciler.models.groups import GroupPlan, OktaGroup, PlatformGroup
from reconciler.models.records import ActionKind, OktaAssignment, Plan, PlatformUser
from reconciler.models.runs import RunStatus
from reconciler.plan.findings import ACKNOWLEDGEABLE, action_digest
from reconciler.plan.gate import GateDecision
from reconciler.run.apply import ApplyResult
from reconciler.store import Acknowledgement


@dataclass
class RunOutcome:
    """What one run did: its status and error, what it read, planned, gated and applied."""

    run_id: int
    status: RunStatus
    plan: Plan | None = None
    gate: GateDecision | None = None
    applied: ApplyResult = field(default_factory=ApplyResult)
    error: str | None = None
    desired: list[OktaAssignment] = field(default_factory=list, repr=False)
    """What Okta listed: kept for a saved plan's subject digests."""
    actual: list[PlatformUser] = field(default_factory=list, repr=False)
    okta_429s: int = 0
    """429 answers Okta gave despite the pacing (each waited out)."""
    okta_paced_s: float = 0.0
    """Seconds spent waiting for Okta rate-limit windows to reset."""
    group_plan: GroupPlan | None = None
    """The group plan; None when no group is pushed (``[groups]`` unset)."""
    desired_groups: list[OktaGroup] = field(default_factory=list, repr=False)
    actual_groups: list[PlatformGroup] = field(default_factory=list, repr=False)
    group_links: dict[str, str] = field(default_factory=dict, repr=False)
    """Okta user id → SCIM id of the users a group may name as members."""
    acknowledged: Mapping[str, Acknowledgement] = field(default_factory=dict, repr=False)
    """Finding digest → the acknowledgement in force of one of this plan's findings (``reconcile ack``)."""


def acknowledged_in(plan: Plan, acknowledgements: Iterable[Acknowledgement]) -> dict[str, Acknowledgement]:
    """The acknowledgements that hold for the plan's findings as they are now, by finding digest."""
    by_digest = {ack.finding_digest: ack for ack in acknowledgements}
    found = (action_digest(a) for a in plan.actions if a.kind in ACKNOWLEDGEABLE)
    return {digest: by_digest[digest] for digest in found if digest in by_digest}


ConfirmPlan = Callable[[RunOutcome], bool]
"""Asked, once a live run has planned and gated, whether to send the writes the gate allows; False declines them.
Not asked when there is none to send."""


def allowed_writes(outcome: RunOutcome) -> int:
    """How many writes, user and group, the gate lets a live run send (0 before planning)."""
    if outcome.plan is None or outcome.gate is None:
        return 0
    gate = outcome.gate
    users = sum(1 for action in outcome.plan.writes if gate.allows(action.kind))
    groups = 0 if outcome.group_plan is None else sum(1 for a in outcome.group_plan.writes if gate.allows(a.kind))
    return users + groups


def apply_status(result: ApplyResult, gate: GateDecision) -> RunStatus:
    """An apply's status: failed when the breaker stopped it, blocked by the gate, partial when a write failed."""
    if result.breaker is not None:
        return RunStatus.FAILED
    if gate.blocked:
        return RunStatus.BLOCKED
    return RunStatus.PARTIAL if result.failed else RunStatus.SUCCEEDED


def dry_run_status(
    result: Plan, gate: GateDecision, groups: GroupPlan | None = None, acknowledged: Collection[str] = ()
) -> RunStatus:
    """A dry-run's status: blocked by the gate, drift when something needs a write or a person, else succeeded."""
    if gate.blocked:
        return RunStatus.BLOCKED
    return RunStatus.DRIFT if needs_attention(result, groups, acknowledged) else RunStatus.SUCCEEDED


def needs_attention(result: Plan, groups: GroupPlan | None = None, acknowledged: Collection[str] = ()) -> bool:
    """Drift worth a non-zero exit: something to write, or a conflict for a person to resolve.

    UNMANAGED platform users alone are not drift: with ``policy.unmanaged =
    "report"`` they are expected (service accounts, users of other sources);
    the same holds for unmanaged platform groups. A conflict someone
    acknowledged as it is (its digest in ``acknowledged``) no longer is.
    """
    if groups is not None and (groups.writes or groups.summary()["conflict"] > 0):
        return True
    conflicts = (a for a in result.actions if a.kind is ActionKind.CONFLICT)
    return bool(result.writes) or any(action_digest(a) not in acknowledged for a in conflicts)


def apply_error(result: ApplyResult) -> str | None:
    """An apply's error for the run record: why sending stopped, or the first five failures; None if none."""
    if result.breaker is not None:
        return f"{result.breaker}; {result.skipped} write(s) not sent"
    if not result.failed:
        return None
    shown = "; ".join(result.errors[:5])
    more = f" (and {result.failed - 5} more)" if result.failed > 5 else ""
    return f"{result.failed} action(s) failed: {shown}{more}"
