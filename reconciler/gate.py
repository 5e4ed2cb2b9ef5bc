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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.config import ThresholdsConfig
from reconciler.plan import looks_like_okta_user_id
from reconciler.records import WRITE_KINDS, ActionKind, OktaAssignment, Plan, PlatformUser

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
    def of(cls, desired: Sequence[OktaAssignment], actual: Sequence[PlatformUser], previous: int | None) -> Populations:
        managed = [u for u in actual if looks_like_okta_user_id(u.external_id)]
        return cls(len(desired), len(managed), sum(u.active for u in managed), previous)


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
        """The kinds of write that may not be sent."""
        if self.stop_all:
            return WRITE_KINDS
        return frozenset(ActionKind(t.kind) for t in self.trips if t.kind != SOURCE)

    def allows(self, kind: ActionKind) -> bool:
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
        count = summary.get(kind, 0)
        population = populations.assignments if kind == ActionKind.CREATE else populations.managed
        if count > limit.count:
            trips.append(Trip(kind, f"{count} {kind} planned, above max_{kind} = {limit.count}"))
        elif population and count >= thresholds.min_count_for_ratio and count / population > limit.ratio:
            trips.append(
                Trip(
                    kind,
                    f"{count} {kind} planned, {count / population:.1%} of {population}, "
                    f"above max_{kind}_ratio = {limit.ratio:g}",
                )
            )
    return trips


def evaluate(plan: Plan, populations: Populations, thresholds: ThresholdsConfig) -> GateDecision:
    """What the gate lets through for this plan."""
    from_source = source_trips(populations, thresholds)
    by_kind = kind_trips(plan, populations, thresholds)
    stop_all = bool(from_source) or (bool(by_kind) and thresholds.on_threshold == "stop")
    return GateDecision(tuple(from_source + by_kind), stop_all)


def quarantined(consecutive_failures: int, thresholds: ThresholdsConfig) -> bool:
    """After ``quarantine_after`` failed runs in a row, the target is in quarantine (Entra's term)."""
    return consecutive_failures >= thresholds.quarantine_after


def scheduled_interval_s(base_interval_s: float, consecutive_failures: int, thresholds: ThresholdsConfig) -> float:
    """How long the service waits before the next run: slower while quarantined, until a run succeeds.

    A run that keeps failing (a revoked token, a platform down for days) would
    otherwise retry every interval, alert every time and load both sides.
    """
    if quarantined(consecutive_failures, thresholds):
        return max(base_interval_s, thresholds.quarantine_interval_s)
    return base_interval_s
