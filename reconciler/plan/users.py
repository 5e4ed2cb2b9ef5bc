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

Who is who is :mod:`reconciler.plan.matching`'s; what one user needs,
:mod:`reconciler.plan.decisions`'; what the plan compares,
:mod:`reconciler.plan.projection`'s.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence

from reconciler.config.mapping import SourceSpec
from reconciler.errors import SourceError
from reconciler.models.records import Action, ActionKind, OktaAssignment, Plan, PlatformUser
from reconciler.plan.decisions import (
    ACTIVE_USER_STATUSES,
    INACTIVE_APP_STATUSES,
    Intent,
    Lifecycle,
    PlanPolicy,
    action_for_leftover,
    action_for_pair,
    create_action,
    intended_lifecycle,
)
from reconciler.plan.mapping import UNKNOWN
from reconciler.plan.matching import Matching, match_the_rest
from reconciler.plan.projection import Projection, UnknownTracker, projection_for, unknown_problems
from reconciler.plan.renames import hold_taken_user_names

__all__ = [
    "ACTIVE_USER_STATUSES",
    "INACTIVE_APP_STATUSES",
    "Intent",
    "Lifecycle",
    "PlanBuilder",
    "PlanPolicy",
    "group_member_links",
    "intended_lifecycle",
    "plan",
    "unknown_problems",
]

_KIND_ORDER = {kind: index for index, kind in enumerate(ActionKind)}


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
    pairs = matching.pairs
    for assignment in desired:
        user = pairs.get(assignment.okta_user_id)
        if user is None:
            continue
        folded = _name_after_plan(assignment, user, projection, policy).casefold()
        if folded in wanted:
            held[folded] = user
    return held


def _name_after_plan(assignment: OktaAssignment, user: PlatformUser, projection: Projection, policy: PlanPolicy) -> str:
    """The userName a matched user holds once the plan is applied: its own when deactivated (or when
    Okta's is unknown), Okta's otherwise."""
    index = projection.user_name_index
    if index is None or intended_lifecycle(assignment, policy).lifecycle is Lifecycle.INACTIVE:
        return user.user_name
    wanted_name = projection.okta_values(assignment)[index]
    return user.user_name if wanted_name is UNKNOWN else str(wanted_name)


def plan(
    desired: Sequence[OktaAssignment],
    actual: Sequence[PlatformUser],
    mapping: Mapping[str, SourceSpec],
    policy: PlanPolicy,
    built: PlanBuilder | None = None,
) -> Plan:
    """Compute the actions that bring ``actual`` in line with ``desired``.

    ``built``: a :class:`PlanBuilder` fed as pages arrived, finished when it saw exactly these records.
    Raises SourceError, before any action is returned, when Okta's answer left
    unknown what the plan cannot do without (:func:`unknown_problems`).
    """
    if built is not None and built.saw(desired, actual, mapping, policy):
        return built.finish()
    builder = PlanBuilder(actual, mapping, policy)
    builder.add(desired)
    return builder.finish()


class PlanBuilder:
    """One plan, built as Okta's pages arrive: :meth:`add` each page in order, then :meth:`finish`.

    A run reads the platform first and Okta's pages one round trip after
    another, so nearly all the work of a plan (the first matching pass, and
    the decision for each pair it makes) is done on each page while the next
    is on its way. What is left for :meth:`finish` follows the drift: the later
    passes, creates, leftovers, held renames. The result is exactly
    :func:`plan`'s over the same records, in the same order: :func:`plan` is
    this builder given everything at once.
    """

    def __init__(
        self,
        actual: Sequence[PlatformUser],
        mapping: Mapping[str, SourceSpec],
        policy: PlanPolicy,
        *,
        whole_listing: bool = True,
    ) -> None:
        """``whole_listing``: False for a few users picked from the app (an incremental batch), in which an
        attribute nobody has a value for says nothing about the org's profiles."""
        self._projection, self._policy = projection_for(mapping), policy
        self._by_scim_id = {u.scim_id: u for u in actual}
        self._unknown = UnknownTracker(self._projection, judge_absence=whole_listing)
        self.desired: list[OktaAssignment] = []
        self.actual = actual
        self._matching = Matching(actual)
        self._decided: list[tuple[int, Action]] = []
        """(position in the listing, action) of the pairs the first pass made; in sync ones are counted."""
        self._in_sync = 0
        self._others: list[tuple[int, OktaAssignment]] = []
        """The assignments the first pass left, with their positions: decided by :meth:`finish`."""
        self._failure: Exception | None = None
        self._pair_ids: dict[str, str] = {}
        """Okta user id → the SCIM id of the first pass's pairs, in their order."""
        self._plan: Plan | None = None
        self._lifecycles: dict[tuple[str | None, str | None], bool] = {}
        self._slow_pairs: list[tuple[OktaAssignment, PlatformUser]] = []
        """The first pass's pairs not found in sync inline (a rename, a deactivation: the drift)."""

    def saw(
        self,
        desired: Sequence[OktaAssignment],
        actual: Sequence[PlatformUser],
        mapping: Mapping[str, SourceSpec],
        policy: PlanPolicy,
    ) -> bool:
        """Whether this builder was made for these very records (in this order), mapping and policy."""
        return (
            self._projection is projection_for(mapping)
            and self._policy is policy
            and _same_records(self.desired, desired)
            and _same_records(self.actual, actual)
        )

    def add(self, assignments: Iterable[OktaAssignment], settled: Callable[[PlatformUser], None] | None = None) -> None:
        """The next assignments of Okta's listing, in its order: the first pass, and each pair's action.

        Written for the common case, a pair in sync, decided inline at the cost of a few lookups and one
        comparison of values; anything else goes through :func:`action_for_pair`. ``settled`` is told each
        platform user found in sync here: no action of this plan will name it.
        """
        pairs, claimed, by_scim_id = self._matching.pairs, self._matching.claimed, self._by_scim_id
        desired, others, pair_ids, tracker = self.desired, self._others, self._pair_ids, self._unknown
        projection, same_values, lifecycles = self._projection, self._projection.same_values, self._lifecycles
        name_index = projection.user_name_index
        in_sync_here = 0
        for index, assignment in enumerate(assignments, start=len(desired)):
            desired.append(assignment)
            okta_user_id = assignment.okta_user_id
            wanted = assignment.values if assignment.projection is projection else projection.read_okta(assignment)
            if not tracker.complete or name_index is None:
                tracker.see(assignment, wanted)
            elif type(name := wanted[name_index]) is not str or not name:  # the common case decided inline
                tracker.see(assignment, wanted)
            scim_id = assignment.scim_id
            user = by_scim_id.get(scim_id) if scim_id is not None and scim_id not in claimed else None
            if user is None or okta_user_id in pairs:  # a repeated Okta id: decided with the rest
                others.append((index, assignment))
                continue
            pairs[okta_user_id] = user
            pair_ids[okta_user_id] = user.scim_id
            claimed.add(scim_id)  # type: ignore[arg-type]
            kept_active = lifecycles.get((assignment.app_status, assignment.user_status))
            if kept_active is None:
                kept_active = self._kept_active(assignment)
            try:
                in_sync = kept_active and user.active and user.external_id == okta_user_id and same_values(wanted, user)
            except Exception:  # a value too deep to compare: action_for_pair meets it again, and it is kept
                in_sync = False
            if in_sync:
                in_sync_here += 1
                if settled is not None:
                    settled(user)
            else:
                self._slow_pairs.append((assignment, user))
                self._decide_pair(index, assignment, user)
        self._in_sync += in_sync_here

    def _kept_active(self, assignment: OktaAssignment) -> bool:
        """Whether Okta leaves the user active or as it is (not INACTIVE), per status pair, cached."""
        key = (assignment.app_status, assignment.user_status)
        found = self._lifecycles.get(key)
        if found is None:
            found = self._lifecycles[key] = (
                intended_lifecycle(assignment, self._policy).lifecycle is not Lifecycle.INACTIVE
            )
        return found

    def _decide_pair(self, index: int, assignment: OktaAssignment, user: PlatformUser) -> None:
        try:
            found = self._pair_action(assignment, user)
        except Exception as error:  # raised by finish(), after Okta's answer is judged, as plan() would
            self._failure = self._failure or error
            return
        if found is None:
            self._in_sync += 1
        else:
            self._decided.append((index, found))

    def _pair_action(self, assignment: OktaAssignment, user: PlatformUser) -> Action | None:
        return action_for_pair(assignment, user, self._projection, self._policy)

    def finish(self) -> Plan:
        """The plan; SourceError when Okta's answer left unknown what it cannot do without."""
        if problems := self._unknown.problems(self.desired):
            raise SourceError("; ".join(problems))
        if self._failure is not None:
            raise self._failure
        if self._plan is not None:
            return self._plan
        matching = self._matching
        first_pass = len(matching.pairs)
        left = matching.unclaimed(matching.actual)
        match_the_rest(matching, matching.unmatched([a for _, a in self._others]), left)
        found = self._decided + self._decide_the_rest()
        found.sort(key=lambda entry: entry[0])
        actions = list(matching.conflicts) + [action for _, action in found]
        listed = _OktaIds(matching.pairs, {a.okta_user_id for _, a in self._others})
        for user in left:
            if user.scim_id in matching.claimed or user.scim_id in matching.ambiguous:
                continue
            leftover = action_for_leftover(user, listed, self._policy)
            if leftover is None:
                self._in_sync += 1
            else:
                actions.append(leftover)
        actions = hold_taken_user_names(actions, matching.actual)
        actions.sort(key=lambda a: (_KIND_ORDER[a.kind], a.user_name.casefold(), a.scim_id or ""))
        pairs = self._pair_ids | {
            okta_user_id: user.scim_id
            for okta_user_id, user in itertools.islice(matching.pairs.items(), first_pass, None)
        }
        self._plan = Plan(tuple(actions), self._in_sync, pairs)
        return self._plan

    def _decide_the_rest(self) -> list[tuple[int, Action]]:
        """What each assignment the first pass left needs: its pair's action (a later pass matched it), a
        create, or a conflict when its userName stays with another Okta user's platform user."""
        pairs, conflicted = self._matching.pairs, self._matching.conflicted
        found = []
        names_kept: dict[str, PlatformUser] | None = None
        for index, assignment in self._others:
            user = pairs.get(assignment.okta_user_id)
            if user is not None:
                action = self._pair_action(assignment, user)
            elif assignment.okta_user_id in conflicted:  # its conflict is reported already
                continue
            elif intended_lifecycle(assignment, self._policy).lifecycle is not Lifecycle.ACTIVE:
                action = None
            else:
                if names_kept is None:
                    names_kept = self._names_kept(self._created_names())
                action = self._create_or_conflict(assignment, names_kept)
            if action is None:
                self._in_sync += 1
            else:
                found.append((index, action))
        return found

    def _names_kept(self, wanted: frozenset[str]) -> dict[str, PlatformUser]:
        """:func:`_user_names_after_plan` for the names creates would take, without its walk over every pair
        when none can be held: a pair found in sync keeps its name (Okta's is the platform's), so only a
        user holding one of them now, or a pair decided otherwise that takes one, can."""
        matching, projection, policy = self._matching, self._projection, self._policy
        held_now = any(user.user_name.casefold() in wanted for user in matching.actual)
        others = ((a, matching.pairs.get(a.okta_user_id)) for _, a in self._others)
        taken = any(
            _name_after_plan(assignment, user, projection, policy).casefold() in wanted
            for assignment, user in itertools.chain(self._slow_pairs, others)
            if user is not None
        )
        if not held_now and not taken:
            return {}
        return _user_names_after_plan(self.desired, matching, projection, policy, wanted)

    def _created_names(self) -> frozenset[str]:
        """The userNames (casefolded) of the unmatched assignments Okta wants active: what a create takes."""
        pairs, conflicted = self._matching.pairs, self._matching.conflicted
        return frozenset(
            a.user_name.casefold()
            for _, a in self._others
            if a.okta_user_id not in pairs
            and a.okta_user_id not in conflicted
            and intended_lifecycle(a, self._policy).lifecycle is Lifecycle.ACTIVE
        )

    def _create_or_conflict(self, assignment: OktaAssignment, names_kept: Mapping[str, PlatformUser]) -> Action:
        if (holder := names_kept.get(assignment.user_name.casefold())) is not None:
            return Action(
                ActionKind.CONFLICT,
                assignment.user_name,
                assignment.okta_user_id,
                None,
                f"missing, but its userName stays with platform user {holder.scim_id} of another Okta user",
            )
        return create_action(assignment, self._projection)


class _OktaIds:
    """The listing's Okta user ids, without a set of them all: every one is paired or was left by the first pass."""

    def __init__(self, paired: Mapping[str, object], others: set[str]) -> None:
        self._paired, self._others = paired, others

    def __contains__(self, okta_user_id: object) -> bool:
        return okta_user_id in self._paired or okta_user_id in self._others


def _same_records(seen: Sequence[object], read: Sequence[object]) -> bool:
    return len(seen) == len(read) and all(a is b for a, b in zip(seen, read, strict=True))


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
