"""The safety gate, on plain plans: each limit, each kind, and the source-shrink guard."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.config import DEFAULT_LIMITS, KindLimit, ThresholdsConfig
from reconciler.gate import SOURCE, Populations, evaluate, scheduled_interval_s
from reconciler.records import WRITE_KINDS, ActionKind
from tests.factories import plan_of

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
