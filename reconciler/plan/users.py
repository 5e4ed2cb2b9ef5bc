"""The plan: a pure function from (desired, actual, mapping, policy) to actions.

Nothing here does I/O. The situations follow midPoint's reconciliation
situations, reduced to what a SCIM push target needs:

====================  ==========================================================
CREATE                assigned and active in Okta, no platform user matches
UPDATE                matched, mapped attributes differ
DEACTIVATE            active on the platform, unassigned or inactive in Okta
REACTIVATE            inactive on the platform, assigned and active in Okta
LINK                  matched by userName only: set externalId to the Okta user id
CONFLICT              ambiguous or duplicate match: reported, never acted on
UNMANAGED             a platform user Okta never managed: reported, or
                      deactivated when ``policy.unmanaged = "deactivate"``
====================  ==========================================================

Matching order: AppUser.externalId = SCIM id, then SCIM externalId = Okta
user id, then userName (case-insensitive). Each platform user is claimed by at
most one Okta user; a second platform user for the same Okta user is a
duplicate (what a missed rename leaves behind) and becomes a CONFLICT.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

from reconciler.config.mapping import SourceSpec
from reconciler.errors import SourceError
from reconciler.models.records import (
    Action,
    ActionKind,
    Change,
    OktaAssignment,
    Plan,
    PlatformUser,
    looks_like_okta_user_id,
)
from reconciler.plan.mapping import UNKNOWN
from reconciler.plan.matching import Matching, match
from reconciler.plan.projection import Projection, projection_for, unknown_problems
from reconciler.plan.renames import hold_taken_user_names

INACTIVE_APP_STATUSES = frozenset({"INACTIVE", "DEPROVISIONED", "UNASSIGNED"})
"""AppUser statuses for an assignment Okta itself considers switched off."""

ACTIVE_USER_STATUSES = frozenset({"ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT"})
"""Okta user statuses for which Okta provisions the app: the person can work."""


_KIND_ORDER = {kind: index for index, kind in enumerate(ActionKind)}


class PlanPolicy(Protocol):
    unmanaged: Literal["report", "deactivate"]
    suspended: Literal["deactivate", "keep"]


class Lifecycle(Enum):
    """What Okta wants of a user's ``active`` flag on the platform."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    KEEP = "keep"
    """Leave ``active`` as it is and create nothing (Okta sends nothing either)."""


@dataclass(frozen=True, slots=True)
class Intent:
    lifecycle: Lifecycle
    reason: str


def intended_lifecycle(assignment: OktaAssignment, policy: PlanPolicy) -> Intent:
    """Desired active = assigned, and the Okta user can work (SUSPENDED per policy)."""
    return _intent(assignment.app_status, assignment.user_status, policy.suspended)


@functools.lru_cache(maxsize=256)
def _intent(app_status: str | None, status: str | None, suspended: str) -> Intent:
    """Cached: a plan asks this of every user, and there are only a handful of status pairs."""
    if app_status is None or status is None:  # never read as ACTIVE (the listing refuses it before this)
        return Intent(Lifecycle.KEEP, "Okta's answer gave no status: left as it is")
    if app_status in INACTIVE_APP_STATUSES:
        return Intent(Lifecycle.INACTIVE, f"app assignment is {app_status} in Okta")
    if status in ACTIVE_USER_STATUSES:
        return Intent(Lifecycle.ACTIVE, "assigned and active in Okta")
    if status == "SUSPENDED":
        if suspended == "deactivate":
            return Intent(Lifecycle.INACTIVE, "Okta user is SUSPENDED (policy.suspended = deactivate)")
        return Intent(Lifecycle.KEEP, "Okta user is SUSPENDED (policy.suspended = keep)")
    if status == "DEPROVISIONED":
        return Intent(Lifecycle.INACTIVE, "Okta user is DEPROVISIONED")
    return Intent(Lifecycle.KEEP, f"Okta user is {status}: not yet active, left as it is")


def _action_for_pair(
    assignment: OktaAssignment, user: PlatformUser, projection: Projection, policy: PlanPolicy
) -> Action | None:
    intent = intended_lifecycle(assignment, policy)
    if intent.lifecycle is Lifecycle.INACTIVE:
        if user.active:
            return Action(
                ActionKind.DEACTIVATE,
                user.user_name,
                assignment.okta_user_id,
                user.scim_id,
                intent.reason,
                {"active": Change(True, False)},
            )
        return None
    wanted, current = projection.okta_values(assignment), projection.platform_values(user)
    if wanted == current and user.external_id == assignment.okta_user_id and user.active:
        return None  # in sync: what 99 % of users are, at the cost of one comparison
    return _pair_drift(assignment, user, intent, projection.changes(wanted, current))


def _pair_drift(
    assignment: OktaAssignment, user: PlatformUser, intent: Intent, changes: dict[str, Change]
) -> Action | None:
    """The action for a matched pair that is not plainly in sync (``changes``: the attributes that differ)."""

    def action(kind: ActionKind, reason: str) -> Action:
        return Action(kind, user.user_name, assignment.okta_user_id, user.scim_id, reason, changes)

    if user.external_id != assignment.okta_user_id:
        changes["externalId"] = Change(user.external_id, assignment.okta_user_id)
    if intent.lifecycle is Lifecycle.ACTIVE and not user.active:
        changes["active"] = Change(False, True)
        return action(ActionKind.REACTIVATE, "inactive on the platform, " + intent.reason)
    if "externalId" in changes:
        return action(ActionKind.LINK, "matched by userName, not linked to its Okta user")
    if changes:
        return action(ActionKind.UPDATE, "mapped attributes differ from Okta")
    return None


def _create(assignment: OktaAssignment, projection: Projection) -> Action:
    wanted = projection.desired(projection.okta_values(assignment))
    changes = {text: Change(None, value) for text, value in wanted.items()}
    changes["externalId"] = Change(None, assignment.okta_user_id)
    changes["active"] = Change(None, True)
    return Action(
        ActionKind.CREATE,
        assignment.user_name,
        assignment.okta_user_id,
        None,
        "assigned and active in Okta, missing on the platform",
        changes,
    )


def _action_for_leftover(user: PlatformUser, desired_ids: set[str], policy: PlanPolicy) -> Action | None:
    """A platform user no Okta assignment claimed."""

    okta_user_id = user.external_id if looks_like_okta_user_id(user.external_id) else None

    def action(kind: ActionKind, reason: str, changes: dict[str, Change] | None = None) -> Action:
        return Action(kind, user.user_name, okta_user_id, user.scim_id, reason, changes or {})

    if user.external_id in desired_ids:
        return action(
            ActionKind.CONFLICT, f"duplicate: Okta user {user.external_id} is matched to another platform user"
        )
    if okta_user_id is not None:
        if user.active:
            return action(
                ActionKind.DEACTIVATE, "no longer assigned to the app in Okta", {"active": Change(True, False)}
            )
        return None
    if policy.unmanaged == "deactivate":
        if user.active:
            return action(
                ActionKind.DEACTIVATE,
                "never managed by Okta (policy.unmanaged = deactivate)",
                {"active": Change(True, False)},
            )
        return None
    state = "active" if user.active else "inactive"
    return action(ActionKind.UNMANAGED, f"{state} platform user that Okta never managed")


def _user_names_after_plan(
    desired: Sequence[OktaAssignment],
    matching: Matching,
    projection: Projection,
    policy: PlanPolicy,
    wanted: frozenset[str],
) -> dict[str, PlatformUser]:
    """userName (casefolded) → the platform user that will hold it once the plan is applied, for the
    names in ``wanted`` (the few that creates would take: the rest are not looked up).

    A CREATE whose userName stays taken would only meet a 409: that is a CONFLICT.
    Matched users keep their name when they are to be deactivated, and take
    Okta's name otherwise; unclaimed platform users keep theirs.
    """
    held = {}
    for user in matching.unclaimed(matching.actual):
        name = user.user_name.casefold()
        if name in wanted:
            held[name] = user
    index = projection.user_name_index
    pairs = matching.pairs
    for assignment in desired:
        user = pairs.get(assignment.okta_user_id)
        if user is None:
            continue
        name = user.user_name
        if index is not None and intended_lifecycle(assignment, policy).lifecycle is not Lifecycle.INACTIVE:
            wanted_name = projection.okta_values(assignment)[index]
            name = user.user_name if wanted_name is UNKNOWN else str(wanted_name)
        folded = name.casefold()
        if folded in wanted:
            held[folded] = user
    return held


PairDecisions = dict[str, tuple[PlatformUser, Action | None]]
"""Okta user id → the action (or None: in sync) decided for it, with the very platform user it was paired with."""


def pair_actions(
    assignments: Iterable[OktaAssignment],
    users_by_scim_id: Mapping[str, PlatformUser],
    mapping: Mapping[str, SourceSpec],
    policy: PlanPolicy,
) -> PairDecisions:
    """What :func:`plan` would decide for each assignment paired with the user its stored SCIM id names.

    Those are the pairs the first matching pass makes, barring a duplicate. A
    run computes them for each page of assignments as it arrives, while later
    pages are still on the way, and hands them to :func:`plan` as ``ahead``;
    the plan takes an entry only for the very pair it matched, so the result is
    the same as without them, only sooner.
    """
    projection = projection_for(mapping)
    decided: PairDecisions = {}
    for assignment in assignments:
        scim_id = assignment.scim_id
        user = users_by_scim_id.get(scim_id) if scim_id is not None else None
        if user is not None:
            decided[assignment.okta_user_id] = (user, _action_for_pair(assignment, user, projection, policy))
    return decided


def plan(
    desired: Sequence[OktaAssignment],
    actual: Sequence[PlatformUser],
    mapping: Mapping[str, SourceSpec],
    policy: PlanPolicy,
    ahead: Mapping[str, tuple[PlatformUser, Action | None]] | None = None,
    users_by_scim_id: Mapping[str, PlatformUser] | None = None,
) -> Plan:
    """Compute the actions that bring ``actual`` in line with ``desired``.

    ``ahead`` holds pairs already decided by :func:`pair_actions` from the same
    records, mapping and policy; ``users_by_scim_id``, ``actual`` by SCIM id when the caller has it already.
    Raises SourceError, before any matching, when
    Okta's answer left unknown what the plan cannot do without (:func:`unknown_problems`).
    """
    projection = projection_for(mapping)
    if problems := unknown_problems(desired, projection):
        raise SourceError("; ".join(problems))
    matching = match(desired, actual, users_by_scim_id)
    decide = _Decisions(desired, matching, projection, policy, ahead or {})
    actions: list[Action] = list(matching.conflicts)
    in_sync = 0
    for found in decide.for_assignments():
        if found is None:
            in_sync += 1
        else:
            actions.append(found)
    desired_ids = {a.okta_user_id for a in desired}
    for user in matching.unclaimed(actual):
        if user.scim_id in matching.ambiguous:
            continue
        found = _action_for_leftover(user, desired_ids, policy)
        if found is None:
            in_sync += 1
        else:
            actions.append(found)

    actions = hold_taken_user_names(actions, actual)
    actions.sort(key=lambda a: (_KIND_ORDER[a.kind], a.user_name.casefold(), a.scim_id or ""))
    pairs = {okta_user_id: user.scim_id for okta_user_id, user in matching.pairs.items()}
    return Plan(tuple(actions), in_sync, pairs)


class _Decisions:
    """What each assignment needs, in order: its pair's action (decided ahead if it was), a create, or a
    conflict when its userName stays with another Okta user's platform user; None when nothing is to do."""

    def __init__(
        self,
        desired: Sequence[OktaAssignment],
        matching: Matching,
        projection: Projection,
        policy: PlanPolicy,
        ahead: Mapping[str, tuple[PlatformUser, Action | None]],
    ) -> None:
        self._desired, self._matching, self._projection, self._policy = desired, matching, projection, policy
        self._ahead = ahead
        self._names_kept: dict[str, PlatformUser] | None = None
        """Computed on the first unmatched assignment that could be created: most runs have none."""

    def for_assignments(self) -> Iterator[Action | None]:
        pairs, conflicted, ahead = self._matching.pairs, self._matching.conflicted, self._ahead
        projection, policy = self._projection, self._policy
        for assignment in self._desired:
            okta_user_id = assignment.okta_user_id
            user = pairs.get(okta_user_id)
            if user is None:
                if okta_user_id not in conflicted:  # a conflict is reported already
                    yield self._unpaired(assignment)
                continue
            decided = ahead.get(okta_user_id)
            if decided is not None and decided[0] is user:
                yield decided[1]
            else:
                yield _action_for_pair(assignment, user, projection, policy)

    def _created_names(self) -> frozenset[str]:
        """The userNames (casefolded) of the unmatched assignments Okta wants active: what a create takes."""
        return frozenset(
            a.user_name.casefold()
            for a in self._matching.unmatched(self._desired)
            if intended_lifecycle(a, self._policy).lifecycle is Lifecycle.ACTIVE
        )

    def _unpaired(self, assignment: OktaAssignment) -> Action | None:
        if intended_lifecycle(assignment, self._policy).lifecycle is not Lifecycle.ACTIVE:
            return None
        if self._names_kept is None:
            self._names_kept = _user_names_after_plan(
                self._desired, self._matching, self._projection, self._policy, self._created_names()
            )
        if (holder := self._names_kept.get(assignment.user_name.casefold())) is not None:
            return Action(
                ActionKind.CONFLICT,
                assignment.user_name,
                assignment.okta_user_id,
                None,
                f"missing, but its userName stays with platform user {holder.scim_id} of another Okta user",
            )
        return _create(assignment, self._projection)


def group_member_links(
    result: Plan, desired: Sequence[OktaAssignment], policy: PlanPolicy
) -> tuple[dict[str, str], frozenset[str]]:
    """Who can be a member of a pushed group: (Okta user id → SCIM id, Okta ids of users this plan creates).

    A user counts once the plan leaves it active on the platform or creates it;
    a user the plan deactivates (or leaves inactive) is no member: Okta's
    Group Push pushes only the members it provisions.
    """
    by_id = {a.okta_user_id: a for a in desired}
    links = {
        okta_user_id: scim_id
        for okta_user_id, scim_id in result.pairs.items()
        if intended_lifecycle(by_id[okta_user_id], policy).lifecycle is not Lifecycle.INACTIVE
    }
    created = frozenset(a.okta_user_id for a in result.actions if a.kind is ActionKind.CREATE and a.okta_user_id)
    return links, created
