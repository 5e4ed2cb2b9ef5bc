"""The safety gate, on plain plans: each limit, each kind, and the source-shrink guard."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.config import KindLimit, ThresholdsConfig
from reconciler.config.policy_model import DEFAULT_LIMITS, GROUP_LIMITS
from reconciler.models.groups import GroupAction, GroupActionKind, GroupPlan
from reconciler.models.records import WRITE_KINDS, ActionKind
from reconciler.plan.gate import SOURCE, GroupPopulations, Populations, evaluate
from reconciler.service.schedule import scheduled_interval_s
from tests.support.factories import plan_of

KINDS = sorted(DEFAULT_LIMITS)


def populations(assignments: int = 1000, managed: int = 1000, previous: int | None = None) -> Populations:
    return Populations(assignments=assignments, managed=managed, managed_active=managed, previous_assignments=previous)


THRESHOLDS = ThresholdsConfig(limits={kind: KindLimit(count=20, ratio=0.1) for kind in KINDS})


def test_a_routine_plan_passes() -> None:
    decision = evaluate(plan_of(create=5, update=19, deactivate=3), populations(), THRESHOLDS)
    assert not decision.blocked and not decision.stop_all
    assert all(decision.allows(kind) for kind in WRITE_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_trips_above_its_absolute_limit(kind: str) -> None:
    decision = evaluate(plan_of(**{kind: 21}), populations(assignments=100_000, managed=100_000), THRESHOLDS)
    assert [t.kind for t in decision.trips] == [kind]
    assert f"max_{kind} = 20" in decision.reason
    assert evaluate(plan_of(**{kind: 20}), populations(), THRESHOLDS).trips == ()


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_trips_above_its_ratio(kind: str) -> None:
    decision = evaluate(plan_of(**{kind: 11}), populations(assignments=100, managed=100), THRESHOLDS)
    assert [t.kind for t in decision.trips] == [kind]
    assert f"max_{kind}_ratio = 0.1" in decision.reason


def test_ratio_is_taken_of_assignments_for_creates_and_of_managed_users_otherwise() -> None:
    few_managed = populations(assignments=1000, managed=50)
    assert evaluate(plan_of(create=15), few_managed, THRESHOLDS).trips == ()
    assert [t.kind for t in evaluate(plan_of(deactivate=15), few_managed, THRESHOLDS).trips] == ["deactivate"]


def test_ratio_applies_only_from_min_count_for_ratio() -> None:
    tiny = populations(assignments=5, managed=5)
    assert evaluate(plan_of(deactivate=4), tiny, THRESHOLDS).trips == ()
    strict = replace(THRESHOLDS, min_count_for_ratio=1)
    assert evaluate(plan_of(deactivate=4), tiny, strict).blocked


def test_on_threshold_stop_holds_every_kind() -> None:
    decision = evaluate(plan_of(deactivate=30, create=1), populations(), THRESHOLDS)
    assert decision.stop_all
    assert not decision.allows(ActionKind.CREATE) and not decision.allows(ActionKind.DEACTIVATE)


def test_on_threshold_skip_gated_holds_only_the_tripped_kinds() -> None:
    decision = evaluate(plan_of(deactivate=30, create=1), populations(), replace(THRESHOLDS, on_threshold="skip_gated"))
    assert not decision.stop_all
    assert decision.allows(ActionKind.CREATE) and not decision.allows(ActionKind.DEACTIVATE)


def test_an_empty_okta_listing_against_active_managed_users_always_stops() -> None:
    skip = replace(THRESHOLDS, on_threshold="skip_gated")
    decision = evaluate(plan_of(deactivate=3), populations(assignments=0, managed=3), skip)
    assert decision.stop_all and [t.kind for t in decision.trips][0] == SOURCE
    assert "no assignment" in decision.reason


def test_an_empty_okta_listing_with_an_empty_platform_is_fine() -> None:
    assert not evaluate(plan_of(), populations(assignments=0, managed=0), THRESHOLDS).blocked


def test_source_drop_beyond_the_ratio_since_the_last_trusted_run_stops() -> None:
    decision = evaluate(plan_of(), populations(assignments=790, previous=1000), THRESHOLDS)
    assert decision.stop_all and decision.trips[0].kind == SOURCE
    assert "1000 to 790" in decision.reason
    assert not evaluate(plan_of(), populations(assignments=800, previous=1000), THRESHOLDS).blocked


def test_no_baseline_on_a_first_run() -> None:
    assert not evaluate(plan_of(), populations(assignments=10, previous=None), THRESHOLDS).blocked


def test_the_service_slows_down_while_quarantined_and_resumes_after_a_success() -> None:
    thresholds = replace(THRESHOLDS, quarantine_after=3, quarantine_interval_s=6 * 3600)
    assert scheduled_interval_s(1800, 2, thresholds) == 1800
    assert scheduled_interval_s(1800, 3, thresholds) == 6 * 3600
    assert scheduled_interval_s(1800, 0, thresholds) == 1800, "a success ends the quarantine"
    assert scheduled_interval_s(12 * 3600, 5, thresholds) == 12 * 3600, "never faster than the schedule"


# --- group kinds ---------------------------------------------------------------------------------

GROUP_KINDS = sorted(GROUP_LIMITS)
GROUP_THRESHOLDS = replace(THRESHOLDS, group_limits={kind: KindLimit(count=20, ratio=0.1) for kind in GROUP_KINDS})


def group_plan_of(kind: str, count: int) -> GroupPlan:
    """``count`` groups of ``kind``, or, for the membership kinds, one action naming ``count`` members."""
    if kind in ("add_members", "remove_members"):
        members = tuple(f"00u{n:017d}" for n in range(count))
        return GroupPlan((GroupAction(GroupActionKind(kind), "Eng", "00g1", "g-1", members),))
    return GroupPlan(tuple(GroupAction(GroupActionKind(kind), f"G{n}", f"00g{n}", f"g-{n}") for n in range(count)))


def group_populations(size: int) -> GroupPopulations:
    return GroupPopulations(pushed=size, managed=size, wanted_members=size, platform_members=size)


@pytest.mark.parametrize("kind", GROUP_KINDS)
def test_each_group_kind_trips_above_its_absolute_limit(kind: str) -> None:
    big = group_populations(1_000_000)
    decision = evaluate(plan_of(), populations(), GROUP_THRESHOLDS, (group_plan_of(kind, 21), big))
    assert [t.kind for t in decision.trips] == [kind]
    assert f"max_{kind} = 20" in decision.reason
    assert not evaluate(plan_of(), populations(), GROUP_THRESHOLDS, (group_plan_of(kind, 20), big)).blocked


@pytest.mark.parametrize("kind", GROUP_KINDS)
def test_each_group_kind_trips_above_its_ratio(kind: str) -> None:
    decision = evaluate(plan_of(), populations(), GROUP_THRESHOLDS, (group_plan_of(kind, 11), group_populations(100)))
    assert [t.kind for t in decision.trips] == [kind]
    assert f"max_{kind}_ratio = 0.1" in decision.reason


def test_emptying_one_large_group_trips_remove_members_though_it_is_one_action() -> None:
    """One REMOVE_MEMBERS action of 5,000 members is weighed as 5,000, against the platform's memberships."""
    plan = group_plan_of("remove_members", 5000)
    decision = evaluate(plan_of(), populations(), ThresholdsConfig(), (plan, group_populations(5000)))
    assert [t.kind for t in decision.trips] == ["remove_members"]
    assert "5000 members planned" in decision.reason
    assert decision.stop_all and not decision.allows(ActionKind.CREATE)


def test_a_new_groups_members_count_as_additions() -> None:
    created = GroupPlan((GroupAction(GroupActionKind.CREATE_GROUP, "Eng", "00g1", members=("00u1",) * 30),))
    decision = evaluate(plan_of(), populations(), GROUP_THRESHOLDS, (created, group_populations(1000)))
    assert [t.kind for t in decision.trips] == ["add_members"]


def test_skip_gated_holds_only_the_tripped_group_kind_and_lets_users_through() -> None:
    thresholds = replace(GROUP_THRESHOLDS, on_threshold="skip_gated")
    decision = evaluate(
        plan_of(create=3), populations(), thresholds, (group_plan_of("delete_group", 21), group_populations(10**6))
    )
    assert decision.gated_group_kinds == {GroupActionKind.DELETE_GROUP}
    assert decision.allows(ActionKind.CREATE) and decision.allows(GroupActionKind.ADD_MEMBERS)
    assert not decision.allows(GroupActionKind.DELETE_GROUP)
    assert not decision.allows(GroupActionKind.UNMANAGED)


def test_a_user_trip_with_stop_holds_group_writes_too() -> None:
    decision = evaluate(
        plan_of(deactivate=21),
        populations(),
        GROUP_THRESHOLDS,
        (group_plan_of("add_members", 1), group_populations(100)),
    )
    assert decision.stop_all and not decision.allows(GroupActionKind.ADD_MEMBERS)
