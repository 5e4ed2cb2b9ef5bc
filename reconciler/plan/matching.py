"""Who is who: each Okta assignment paired with at most one platform user, in three passes.

Matching order: AppUser.externalId = SCIM id, then SCIM externalId = Okta
user id, then userName (case-insensitive). Each platform user is claimed by at
most one Okta user; a second platform user for the same Okta user is a
duplicate (what a missed rename leaves behind) and becomes a CONFLICT.

The first pass pairs nearly every user of a run Okta provisioned, page by
page as Okta answers (:meth:`reconciler.plan.users.PlanBuilder.add`); the
later passes (:func:`match_the_rest`) look only at what it left, so their cost
follows the drift, not the population. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reconciler.models.records import Action, ActionKind, OktaAssignment, PlatformUser, looks_like_okta_user_id


@dataclass
class Matching:
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
        claimed = self.claimed
        return [u for u in users if u.scim_id not in claimed]

    def unmatched(self, desired: Sequence[OktaAssignment]) -> list[OktaAssignment]:
        pairs, conflicted = self.pairs, self.conflicted
        return [a for a in desired if a.okta_user_id not in pairs and a.okta_user_id not in conflicted]


def match_the_rest(matching: Matching, unmatched: Sequence[OktaAssignment], left: Sequence[PlatformUser]) -> None:
    """The second and third passes, over what the first left unmatched (in the order of the listing) and
    ``left`` unclaimed."""
    if unmatched:
        _match_by_external_id(unmatched, left, matching)
        _match_by_user_name(matching.unmatched(unmatched), matching.unclaimed(left), matching)


def _match_by_external_id(
    unmatched: Sequence[OktaAssignment], unclaimed: Sequence[PlatformUser], matching: Matching
) -> None:
    by_external_id: dict[str, list[PlatformUser]] = defaultdict(list)
    for user in unclaimed:  # a user claimed by the first pass carries no other Okta user's id
        if user.external_id:
            by_external_id[user.external_id].append(user)
    claimed = matching.claimed
    for assignment in unmatched:
        found = by_external_id.get(assignment.okta_user_id)
        if found is None:
            continue
        if len(found) == 1:  # the common case, a user Okta provisioned but never stored the SCIM id of
            if found[0].scim_id not in claimed:
                matching.claim(assignment, found[0])
            continue
        candidates = matching.unclaimed(found)
        if len(candidates) == 1:
            matching.claim(assignment, candidates[0])
        elif len(candidates) > 1:
            ids = ", ".join(sorted(u.scim_id for u in candidates))
            matching.conflict(
                assignment, f"{len(candidates)} platform users carry this Okta user id: {ids}", candidates
            )


def _match_by_user_name(
    unmatched: Sequence[OktaAssignment], unclaimed: Sequence[PlatformUser], matching: Matching
) -> None:
    by_name: dict[str, list[PlatformUser]] = defaultdict(list)
    for user in unclaimed:  # a user claimed by an earlier pass holds no other name
        by_name[user.user_name.casefold()].append(user)
    wanted_by: dict[str, list[OktaAssignment]] = defaultdict(list)
    for assignment in unmatched:
        wanted_by[assignment.user_name.casefold()].append(assignment)
    for name, assignments in wanted_by.items():
        if len(assignments) > 1:
            for assignment in assignments:
                matching.conflict(assignment, f"{len(assignments)} Okta users share the userName {name!r}")
            continue
        _match_one_by_user_name(assignments[0], matching.unclaimed(by_name.get(name, [])), matching)


def _match_one_by_user_name(assignment: OktaAssignment, candidates: list[PlatformUser], matching: Matching) -> None:
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
