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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from reconciler.models.scim_path import values_equal
from reconciler.plan.mapping import UNKNOWN, CompiledMapping, compile_mapping, desired_attributes, unknown_problems
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


@dataclass
class _Matching:
    """The state of the three matching passes."""

    actual: Sequence[PlatformUser]
    pairs: dict[str, PlatformUser] = field(default_factory=dict)
    """Okta user id → the platform user it claimed."""
    claimed: set[str] = field(default_factory=set)
    """SCIM ids claimed by some Okta user."""
    conflicts: list[Action] = field(default_factory=list)
    conflicted: set[str] = field(default_factory=set)
    """Okta user ids left unmatched because of a conflict."""
    ambiguous: set[str] = field(default_factory=set)
    """SCIM ids of platform users caught in an ambiguous match: never acted on."""

    def claim(self, assignment: OktaAssignment, user: PlatformUser) -> None:
        self.pairs[assignment.okta_user_id] = user
        self.claimed.add(user.scim_id)

    def conflict(self, assignment: OktaAssignment, reason: str, candidates: Sequence[PlatformUser] = ()) -> None:
        """Record an ambiguous match; its candidate platform users are left untouched."""
        self.conflicted.add(assignment.okta_user_id)
        self.ambiguous.update(u.scim_id for u in candidates)
        scim_id = candidates[0].scim_id if len(candidates) == 1 else None
        self.conflicts.append(
            Action(ActionKind.CONFLICT, assignment.user_name, assignment.okta_user_id, scim_id, reason)
        )

    def unclaimed(self, users: Iterable[PlatformUser]) -> list[PlatformUser]:
        return [u for u in users if u.scim_id not in self.claimed]


def _match_by_stored_scim_id(desired: Sequence[OktaAssignment], matching: _Matching) -> None:
    by_scim_id = {u.scim_id: u for u in matching.actual}
    for assignment in desired:
        user = by_scim_id.get(assignment.scim_id or "")
        if user is not None and user.scim_id not in matching.claimed:
            matching.claim(assignment, user)


def _match_by_external_id(desired: Sequence[OktaAssignment], matching: _Matching) -> None:
    by_external_id: dict[str, list[PlatformUser]] = defaultdict(list)
    for user in matching.unclaimed(matching.actual):  # a user claimed here carries no other Okta user's id
        if user.external_id:
            by_external_id[user.external_id].append(user)
    for assignment in _unmatched(desired, matching):
        candidates = matching.unclaimed(by_external_id.get(assignment.okta_user_id, []))
        if len(candidates) == 1:
            matching.claim(assignment, candidates[0])
        elif len(candidates) > 1:
            ids = ", ".join(sorted(u.scim_id for u in candidates))
            matching.conflict(
                assignment, f"{len(candidates)} platform users carry this Okta user id: {ids}", candidates
            )


def _match_by_user_name(desired: Sequence[OktaAssignment], matching: _Matching) -> None:
    by_name: dict[str, list[PlatformUser]] = defaultdict(list)
    for user in matching.unclaimed(matching.actual):  # a user claimed here holds no other name
        by_name[user.user_name.casefold()].append(user)
    wanted_by: dict[str, list[OktaAssignment]] = defaultdict(list)
    for assignment in _unmatched(desired, matching):
        wanted_by[assignment.user_name.casefold()].append(assignment)
    for name, assignments in wanted_by.items():
        if len(assignments) > 1:
            for assignment in assignments:
                matching.conflict(assignment, f"{len(assignments)} Okta users share the userName {name!r}")
            continue
        _match_one_by_user_name(assignments[0], matching.unclaimed(by_name.get(name, [])), matching)


def _match_one_by_user_name(assignment: OktaAssignment, candidates: list[PlatformUser], matching: _Matching) -> None:
    if not candidates:
        return
    if len(candidates) > 1:
        ids = ", ".join(sorted(u.scim_id for u in candidates))
        matching.conflict(assignment, f"userName matches {len(candidates)} platform users: {ids}", candidates)
        return
    user = candidates[0]
    if looks_like_okta_user_id(user.external_id):
        matching.conflict(
            assignment,
            f"userName is held by platform user {user.scim_id}, linked to another Okta user {user.external_id}",
        )
        return
    matching.claim(assignment, user)


def _unmatched(desired: Sequence[OktaAssignment], matching: _Matching) -> list[OktaAssignment]:
    return [a for a in desired if a.okta_user_id not in matching.pairs and a.okta_user_id not in matching.conflicted]


def attribute_changes(assignment: OktaAssignment, user: PlatformUser, mapping: CompiledMapping) -> dict[str, Change]:
    """The mapped attributes whose platform value differs from Okta's (unknown Okta values skipped)."""
    changes = {}
    for attribute in mapping:
        wanted = attribute.read(assignment)
        if wanted is UNKNOWN:
            continue
        current = attribute.read_current(user.resource)
        if wanted != current and not values_equal(attribute.path, wanted, current):
            changes[attribute.text] = Change(current, wanted)
    return changes


def _action_for_pair(
    assignment: OktaAssignment, user: PlatformUser, mapping: CompiledMapping, policy: PlanPolicy
) -> Action | None:
    intent = intended_lifecycle(assignment, policy)

    def action(kind: ActionKind, reason: str, changes: dict[str, Change]) -> Action:
        return Action(kind, user.user_name, assignment.okta_user_id, user.scim_id, reason, changes)

    if intent.lifecycle is Lifecycle.INACTIVE:
        if user.active:
            return action(ActionKind.DEACTIVATE, intent.reason, {"active": Change(True, False)})
        return None
    changes = attribute_changes(assignment, user, mapping)
    if user.external_id != assignment.okta_user_id:
        changes["externalId"] = Change(user.external_id, assignment.okta_user_id)
    if intent.lifecycle is Lifecycle.ACTIVE and not user.active:
        changes["active"] = Change(False, True)
        return action(ActionKind.REACTIVATE, "inactive on the platform, " + intent.reason, changes)
    if "externalId" in changes:
        return action(ActionKind.LINK, "matched by userName, not linked to its Okta user", changes)
    if changes:
        return action(ActionKind.UPDATE, "mapped attributes differ from Okta", changes)
    return None


def _create(assignment: OktaAssignment, mapping: CompiledMapping) -> Action:
    changes = {text: Change(None, value) for text, value in desired_attributes(assignment, mapping).items()}
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
    desired: Sequence[OktaAssignment], matching: _Matching, mapping: CompiledMapping, policy: PlanPolicy
) -> dict[str, PlatformUser]:
    """userName (casefolded) → the platform user that will hold it once the plan is applied.

    A CREATE whose userName stays taken would only meet a 409: that is a CONFLICT.
    Matched users keep their name when they are to be deactivated, and take
    Okta's name otherwise; unclaimed platform users keep theirs.
    """
    held = {u.user_name.casefold(): u for u in matching.unclaimed(matching.actual)}
    read_user_name = next((a.read for a in mapping if a.text == "userName"), None)
    for assignment in desired:
        user = matching.pairs.get(assignment.okta_user_id)
        if user is None:
            continue
        name = user.user_name
        if intended_lifecycle(assignment, policy).lifecycle is not Lifecycle.INACTIVE:
            wanted = read_user_name(assignment) if read_user_name is not None else UNKNOWN
            name = user.user_name if wanted is UNKNOWN else str(wanted)
        held[name.casefold()] = user
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
    compiled = compile_mapping(mapping)
    decided: PairDecisions = {}
    for assignment in assignments:
        user = users_by_scim_id.get(assignment.scim_id or "")
        if user is not None:
            action = _action_for_pair(assignment, user, compiled, policy)
            decided[assignment.okta_user_id] = (user, action)
    return decided


def plan(
    desired: Sequence[OktaAssignment],
    actual: Sequence[PlatformUser],
    mapping: Mapping[str, SourceSpec],
    policy: PlanPolicy,
    ahead: Mapping[str, tuple[PlatformUser, Action | None]] | None = None,
) -> Plan:
    """Compute the actions that bring ``actual`` in line with ``desired``.

    ``ahead`` holds pairs already decided by :func:`pair_actions` from the same
    records, mapping and policy. Raises SourceError, before any matching, when
    Okta's answer left unknown what the plan cannot do without (:func:`unknown_problems`).
    """
    ahead = ahead or {}
    compiled = compile_mapping(mapping)
    if problems := unknown_problems(desired, compiled):
        raise SourceError("; ".join(problems))
    matching = _Matching(actual)
    _match_by_stored_scim_id(desired, matching)
    _match_by_external_id(desired, matching)
    _match_by_user_name(desired, matching)

    actions: list[Action] = list(matching.conflicts)
    in_sync = 0
    names_kept = _user_names_after_plan(desired, matching, compiled, policy)
    for assignment in desired:
        if assignment.okta_user_id not in matching.pairs and assignment.okta_user_id in matching.conflicted:
            continue  # its conflict is reported already
        found = _action_for_assignment(assignment, matching, compiled, policy, names_kept, ahead)
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


def _action_for_assignment(
    assignment: OktaAssignment,
    matching: _Matching,
    mapping: CompiledMapping,
    policy: PlanPolicy,
    names_kept: Mapping[str, PlatformUser],
    ahead: Mapping[str, tuple[PlatformUser, Action | None]],
) -> Action | None:
    """What an assignment needs: its pair's action (decided ahead if it was), a create, or a conflict
    when its userName stays with another Okta user's platform user; None when nothing is to do."""
    user = matching.pairs.get(assignment.okta_user_id)
    if user is not None:
        decided = ahead.get(assignment.okta_user_id)
        if decided is not None and decided[0] is user:
            return decided[1]
        return _action_for_pair(assignment, user, mapping, policy)
    if intended_lifecycle(assignment, policy).lifecycle is not Lifecycle.ACTIVE:
        return None
    if (holder := names_kept.get(assignment.user_name.casefold())) is not None:
        return Action(
            ActionKind.CONFLICT,
            assignment.user_name,
            assignment.okta_user_id,
            None,
            f"missing, but its userName stays with platform user {holder.scim_id} of another Okta user",
        )
    return _create(assignment, mapping)


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
