"""The safety gate between plan and apply. Pure: no I/O.

The worst thing this tool can do is deactivate hundreds of real users because
Okta answered with an empty or wrong list. So, before anything is sent:

- **source-shrink guard**: Okta's assignment count may not fall by more than
  ``max_source_drop_ratio`` since the last trusted run, nor be zero while the
  platform has active managed users. Either stops the whole run, whatever
  ``on_threshold`` says: a listing that looks wrong drives nothing.
- **per-kind limits**: a kind of write trips when its count is above
  ``max_<kind>`` or, from ``min_count_for_ratio`` actions on, above
  ``max_<kind>_ratio`` of its population (Okta's assignments for ``create``;
  the platform users Okta manages for the others).
  With ``on_threshold = "stop"`` nothing is applied; with ``"skip_gated"`` the
  kinds that did not trip are applied.

Entra calls the per-kind part "accidental deletions prevention"; this gate
applies it to every kind, and adds the source guard.

Group actions (``[groups]``) pass the same gate, with their own per-kind
limits (``max_create_group``, ``max_remove_members``, ...): the group kinds
are weighed against the pushed groups, the platform's pushed groups, or, for
``add_members`` and ``remove_members``, against memberships, counted in members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.config.policy_model import KindLimit, ThresholdsConfig
from reconciler.models.groups import (
    GROUP_WRITE_KINDS,
    GroupActionKind,
    GroupPlan,
    OktaGroup,
    PlatformGroup,
    looks_like_okta_group_id,
)
from reconciler.models.records import (
    WRITE_KINDS,
    ActionKind,
    OktaAssignment,
    Plan,
    PlatformUser,
    looks_like_okta_user_id,
)

_USER_KINDS = frozenset(kind.value for kind in ActionKind)

SOURCE = "source"
"""The ``kind`` of a trip of the source-shrink guard."""


@dataclass(frozen=True, slots=True)
class Trip:
    """One limit that tripped: ``kind`` is an action kind's value, or ``"source"``."""

    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class Populations:
    """The sizes the ratios are taken of, and the guard's baseline."""

    assignments: int
    """How many assignments Okta listed in this run."""
    managed: int
    """Platform users linked to an Okta user (their externalId is an Okta user id)."""
    managed_active: int
    previous_assignments: int | None = None
    """Okta's count at the last trusted run; None on a first run."""

    @classmethod
    def of(
        cls,
        desired: Sequence[OktaAssignment],
        actual: Sequence[PlatformUser],
        previous: int | None,
        managed: ManagedCount | None = None,
    ) -> Populations:
        """``managed``: :func:`managed_count` of ``actual``, when counted already."""
        count = managed if managed is not None else managed_count(actual)
        return cls(len(desired), count.managed, count.active, previous)


@dataclass(frozen=True, slots=True)
class ManagedCount:
    """Platform users linked to an Okta user, and how many of them are active."""

    managed: int
    active: int


def managed_count(actual: Sequence[PlatformUser]) -> ManagedCount:
    """Counted once the platform is read (a run does it while Okta's pages still come)."""
    managed = [u for u in actual if looks_like_okta_user_id(u.external_id)]
    return ManagedCount(len(managed), sum(u.active for u in managed))


@dataclass(frozen=True, slots=True)
class GroupPopulations:
    """What the group kinds' ratios are taken of."""

    pushed: int
    """Okta groups pushed in this run."""
    managed: int
    """Platform groups Okta pushed (their externalId is an Okta group id)."""
    wanted_members: int
    """Memberships Okta's pushed groups hold."""
    platform_members: int
    """Memberships the platform's pushed groups hold."""

    @classmethod
    def of(cls, desired: Sequence[OktaGroup], actual: Sequence[PlatformGroup]) -> GroupPopulations:
        managed = [g for g in actual if looks_like_okta_group_id(g.external_id)]
        return cls(
            len(desired),
            len(managed),
            sum(len(g.member_ids) for g in desired),
            sum(len(g.member_ids) for g in managed),
        )

    def of_kind(self, kind: GroupActionKind) -> int:
        if kind is GroupActionKind.ADD_MEMBERS:
            return self.wanted_members
        if kind is GroupActionKind.REMOVE_MEMBERS:
            return self.platform_members
        if kind is GroupActionKind.DELETE_GROUP:
            return self.managed
        return self.pushed


@dataclass(frozen=True, slots=True)
class GateDecision:
    trips: tuple[Trip, ...] = ()
    stop_all: bool = False
    """Nothing at all may be written."""

    @property
    def blocked(self) -> bool:
        return bool(self.trips)

    @property
    def gated_kinds(self) -> frozenset[ActionKind]:
        """The kinds of user write that may not be sent."""
        if self.stop_all:
            return WRITE_KINDS
        return frozenset(ActionKind(t.kind) for t in self.trips if t.kind in _USER_KINDS)

    @property
    def gated_group_kinds(self) -> frozenset[GroupActionKind]:
        """The kinds of group write that may not be sent."""
        if self.stop_all:
            return GROUP_WRITE_KINDS
        return frozenset(GroupActionKind(t.kind) for t in self.trips if t.kind in GroupActionKind.__members__.values())

    def allows(self, kind: ActionKind | GroupActionKind) -> bool:
        if isinstance(kind, GroupActionKind):
            return kind in GROUP_WRITE_KINDS and kind not in self.gated_group_kinds
        return kind in WRITE_KINDS and kind not in self.gated_kinds

    @property
    def reason(self) -> str:
        return "; ".join(t.reason for t in self.trips)


def source_trips(populations: Populations, thresholds: ThresholdsConfig) -> list[Trip]:
    """The source-shrink guard: an empty or suddenly smaller Okta listing."""
    if populations.assignments == 0 and populations.managed_active > 0:
        return [
            Trip(
                SOURCE,
                f"Okta listed no assignment while the platform has {populations.managed_active} "
                "active users Okta manages: check okta.app_id and the app's assignments",
            )
        ]
    previous = populations.previous_assignments
    if previous:
        floor = previous * (1 - thresholds.max_source_drop_ratio)
        if populations.assignments < floor:
            drop = 1 - populations.assignments / previous
            return [
                Trip(
                    SOURCE,
                    f"Okta's assignments fell from {previous} to {populations.assignments} ({drop:.0%}), "
                    f"more than max_source_drop_ratio = {thresholds.max_source_drop_ratio:g} "
                    "since the last successful run",
                )
            ]
    return []


def kind_trips(plan: Plan, populations: Populations, thresholds: ThresholdsConfig) -> list[Trip]:
    """The per-kind limits, absolute and as a share of the kind's population."""
    summary = plan.summary()
    trips = []
    for kind, limit in thresholds.limits.items():
        trip = _limit_trip(kind, kind, summary.get(kind, 0), _population_of(kind, populations), limit, thresholds)
        trips += [trip] if trip else []
    return trips


def _limit_trip(
    kind: str, what: str, count: int, population: int, limit: KindLimit, thresholds: ThresholdsConfig
) -> Trip | None:
    """A trip when ``count`` is above the kind's count, or (from min_count_for_ratio on) above its ratio."""
    planned = f"{count} {what} planned"
    if count > limit.count:
        return Trip(kind, f"{planned}, above max_{kind} = {limit.count}")
    if population and count >= thresholds.min_count_for_ratio and count / population > limit.ratio:
        share = f"{count / population:.1%} of {population}"
        return Trip(kind, f"{planned}, {share}, above max_{kind}_ratio = {limit.ratio:g}")
    return None


def group_trips(plan: GroupPlan, populations: GroupPopulations, thresholds: ThresholdsConfig) -> list[Trip]:
    """The group kinds' limits; ``add_members`` and ``remove_members`` weigh members, the others groups."""
    counts = _group_counts(plan)
    trips = []
    for kind, limit in thresholds.group_limits.items():
        unit = "members" if kind.endswith("_members") else "groups"
        population = populations.of_kind(GroupActionKind(kind))
        trip = _limit_trip(kind, unit, counts.get(kind, 0), population, limit, thresholds)
        trips += [Trip(kind, f"{kind}: {trip.reason}")] if trip else []
    return trips


def _group_counts(plan: GroupPlan) -> dict[str, int]:
    """Groups per kind, but members for the membership kinds (a new group's members are additions too)."""
    members = plan.member_counts()
    return plan.summary() | {
        "add_members": members["add_members"] + members["create_group"],
        "remove_members": members["remove_members"],
    }


def evaluate(
    plan: Plan,
    populations: Populations,
    thresholds: ThresholdsConfig,
    groups: tuple[GroupPlan, GroupPopulations] | None = None,
) -> GateDecision:
    """What the gate lets through for this plan (and its group plan, when groups are pushed)."""
    from_source = source_trips(populations, thresholds)
    by_kind = kind_trips(plan, populations, thresholds)
    if groups is not None:
        by_kind += group_trips(*groups, thresholds)
    stop_all = bool(from_source) or (bool(by_kind) and thresholds.on_threshold == "stop")
    return GateDecision(tuple(from_source + by_kind), stop_all)


def evaluate_window(
    plan: Plan, recent: Mapping[str, int], populations: Populations | None, thresholds: ThresholdsConfig, window: str
) -> GateDecision:
    """The gate of an incremental batch: each kind it plans, counted with the writes of that kind that every
    incremental run sent within the sliding ``window`` (``recent``), against the same per-kind limits.

    So a burst of events cannot deactivate, one small batch after another, what one run may not. The
    ratios are taken of the last full audit's populations (``populations``; None before any: counts only).
    No source-shrink guard: a batch reads no listing.
    """
    summary = plan.summary()
    trips = []
    for kind, limit in thresholds.limits.items():
        planned = summary.get(kind, 0)
        if not planned:
            continue
        total = planned + recent.get(kind, 0)
        population = 0 if populations is None else _population_of(kind, populations)
        what = f"{kind} (this batch's {planned} and those of the last {window})"
        trip = _limit_trip(kind, what, total, population, limit, thresholds)
        trips += [trip] if trip else []
    return GateDecision(tuple(trips), bool(trips) and thresholds.on_threshold == "stop")


def _population_of(kind: str, populations: Populations) -> int:
    return populations.assignments if kind == ActionKind.CREATE else populations.managed
