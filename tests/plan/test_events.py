"""Events in, affected users out; the plan of a few users; the sliding-window gate. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from reconciler.config import KindLimit, ThresholdsConfig
from reconciler.config.mapping import DEFAULT_MAPPING
from reconciler.models.events import LogEvent, LogTarget
from reconciler.models.records import ActionKind
from reconciler.plan.events import AppScope, affected_by, plan_affected, wanted_user_name
from reconciler.plan.gate import Populations, evaluate_window
from tests.support.factories import assignment, in_sync_pair, okta_id, plan_of, platform_user

APP, OTHER_APP, GROUP = "0oa00000000000000app", "0oa000000000000other", "00g00000000000000grp"
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Policy:
    unmanaged: Literal["report", "deactivate"] = "report"
    suspended: Literal["deactivate", "keep"] = "keep"


def event(event_type: str, *targets: tuple[str, str], minute: int = 0, outcome: str = "SUCCESS") -> LogEvent:
    return LogEvent(
        f"uuid-{event_type}-{minute}-{len(targets)}",
        T0 + timedelta(minutes=minute),
        event_type,
        tuple(LogTarget(target_id, target_type) for target_type, target_id in targets),
        outcome,
    )


def user(n: int) -> tuple[str, str]:
    return ("User", okta_id(n))


SCOPE = AppScope(APP, frozenset({GROUP}))


@pytest.mark.parametrize(
    "event_type",
    [
        "application.user_membership.add",
        "application.user_membership.remove",
        "application.user_membership.update",
        "application.user_membership.change_username",
    ],
)
def test_app_membership_events_affect_their_user_only_for_this_app(event_type: str) -> None:
    ours = affected_by([event(event_type, user(1), ("AppInstance", APP))], SCOPE)
    theirs = affected_by([event(event_type, user(2), ("AppInstance", OTHER_APP))], SCOPE)
    assert list(ours.users) == [okta_id(1)] and ours.acted == 1
    assert theirs.nothing and theirs.ignored == 1


@pytest.mark.parametrize(
    "event_type",
    [
        "user.lifecycle.deactivate",
        "user.lifecycle.suspend",
        "user.account.update_profile",
        "user.lifecycle.delete.initiated",
    ],
)
def test_user_events_affect_the_user(event_type: str) -> None:
    assert list(affected_by([event(event_type, user(3))], SCOPE).users) == [okta_id(3)]


def test_user_events_of_users_the_app_is_not_known_to_hold_are_ignored_when_the_scope_knows() -> None:
    knowing = AppScope(APP, frozenset(), known_users={okta_id(1)})
    found = affected_by(
        [event("user.lifecycle.deactivate", user(1)), event("user.lifecycle.deactivate", user(2))], knowing
    )
    assert list(found.users) == [okta_id(1)] and found.ignored == 1


def test_group_membership_counts_only_for_the_apps_groups() -> None:
    ours = affected_by([event("group.user_membership.remove", user(4), ("UserGroup", GROUP))], SCOPE)
    theirs = affected_by([event("group.user_membership.add", user(5), ("UserGroup", "00g0000000000000none"))], SCOPE)
    assert list(ours.users) == [okta_id(4)]
    assert theirs.nothing and theirs.ignored == 1


def test_a_group_assigned_or_unassigned_brings_its_members_and_changes_the_scope() -> None:
    found = affected_by(
        [
            event("group.application_assignment.add", ("AppInstance", APP), ("UserGroup", "00g000000000000newgr")),
            event("group.application_assignment.remove", ("AppInstance", APP), ("UserGroup", GROUP), minute=1),
        ],
        SCOPE,
    )
    assert set(found.groups) == {"00g000000000000newgr", GROUP}
    assert found.groups_assigned == {"00g000000000000newgr"} and found.groups_unassigned == {GROUP}


def test_a_failed_push_is_counted_and_the_user_looked_at() -> None:
    found = affected_by(
        [event("application.provision.user.push", user(6), ("AppInstance", APP), outcome="FAILURE")], SCOPE
    )
    assert found.push_failures == 1 and okta_id(6) in found.users


def test_a_successful_push_leaves_nothing_to_repair() -> None:
    found = affected_by([event("application.provision.user.push_profile", user(6), ("AppInstance", APP))], SCOPE)
    assert found.nothing and found.ignored == 1 and found.push_failures == 0


def test_the_apps_configuration_changing_asks_for_a_full_audit() -> None:
    found = affected_by([event("application.lifecycle.update", ("AppInstance", APP))], SCOPE)
    assert found.full_audit and not found.users
    assert affected_by([event("application.lifecycle.update", ("AppInstance", OTHER_APP))], SCOPE).nothing


def test_unknown_events_are_ignored_and_a_user_keeps_its_earliest_change() -> None:
    found = affected_by(
        [
            event("user.session.start", user(7)),
            event("user.account.update_profile", user(8), minute=5),
            event("user.lifecycle.suspend", user(8), minute=2),
        ],
        SCOPE,
    )
    assert found.ignored == 1 and found.acted == 2
    assert found.users == {okta_id(8): T0 + timedelta(minutes=2)}


def test_an_unassigned_users_linked_platform_user_is_deactivated() -> None:
    linked = platform_user("user1@example.com", external_id=okta_id(1))
    result = plan_affected({okta_id(1)}, [], [linked], DEFAULT_MAPPING, Policy())
    assert [(a.kind, a.scim_id) for a in result.actions] == [(ActionKind.DEACTIVATE, linked.scim_id)]


def test_a_platform_user_linked_to_somebody_outside_the_batch_is_never_acted_on() -> None:
    wanted = assignment(1, "shared@example.com")
    strangers = platform_user("shared@example.com", external_id=okta_id(2))  # found by userName, linked to #2
    result = plan_affected({okta_id(1)}, [wanted], [strangers], DEFAULT_MAPPING, Policy())
    assert all(a.okta_user_id == okta_id(1) for a in result.actions)
    assert ActionKind.DEACTIVATE not in {a.kind for a in result.actions}


def test_a_batch_is_not_stopped_by_an_attribute_none_of_its_few_users_has() -> None:
    desired, actual = in_sync_pair(1)
    missing_title = dict(DEFAULT_MAPPING) | {"title": "profile.title"}
    result = plan_affected({okta_id(1)}, [desired], [actual], missing_title, Policy())
    assert result.in_sync == 1 and not result.actions
    assert wanted_user_name(desired, DEFAULT_MAPPING) == desired.user_name


def test_the_window_counts_recent_writes_with_the_batch() -> None:
    thresholds = ThresholdsConfig(limits={"deactivate": KindLimit(count=10, ratio=0.5)})
    populations = Populations(1000, 1000, 1000)
    assert not evaluate_window(plan_of(deactivate=3), {"deactivate": 7}, populations, thresholds, "10m").blocked
    blocked = evaluate_window(plan_of(deactivate=3), {"deactivate": 8}, populations, thresholds, "10m")
    assert blocked.blocked and "the last 10m" in blocked.reason and not blocked.allows(ActionKind.DEACTIVATE)


def test_the_window_judges_only_the_kinds_a_batch_plans() -> None:
    thresholds = ThresholdsConfig(limits={"deactivate": KindLimit(count=1, ratio=0.5), "update": KindLimit(100, 1)})
    decision = evaluate_window(plan_of(update=2), {"deactivate": 50}, None, thresholds, "10m")
    assert not decision.blocked
