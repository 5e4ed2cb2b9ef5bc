"""Every situation of the planner, one at a time, on plain records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec
import pytest

from reconciler.config.mapping import DEFAULT_MAPPING
from reconciler.errors import SourceError
from reconciler.models.records import ActionKind, Change
from reconciler.plan.users import plan
from tests.support.factories import assignment, in_sync_pair, okta_id, platform_user

EMAIL = 'emails[type eq "work"].value'


@dataclass(frozen=True)
class Policy:
    unmanaged: Literal["report", "deactivate"] = "report"
    suspended: Literal["deactivate", "keep"] = "keep"


def run(desired, actual, **policy):
    return plan(desired, actual, DEFAULT_MAPPING, Policy(**policy))


def only(result):
    assert len(result.actions) == 1, result.actions
    return result.actions[0]


def test_identical_states_are_in_sync():
    desired, actual = in_sync_pair(1)
    result = run([desired], [actual])
    assert result.actions == ()
    assert result.summary()["in_sync"] == 1


def test_missing_user_is_created_with_every_mapped_attribute():
    action = only(run([assignment(1, "ann@example.com", given="Ann")], []))
    assert action.kind is ActionKind.CREATE
    assert action.changes["userName"] == Change(None, "ann@example.com")
    assert action.changes["name.givenName"] == Change(None, "Ann")
    assert action.changes["externalId"] == Change(None, okta_id(1))
    assert action.changes["active"] == Change(None, True)


def test_changed_attribute_is_an_update_with_before_and_after():
    desired = assignment(1, given="Anna")
    actual = platform_user(desired.user_name, external_id=desired.okta_user_id, given="Ann")
    action = only(run([desired], [actual]))
    assert action.kind is ActionKind.UPDATE
    assert action.changes == {
        "name.givenName": Change("Ann", "Anna"),
        "displayName": Change("Ann Family", "Anna Family"),
    }


def test_user_name_and_email_compare_without_case():
    desired = assignment(1, "Ann@Example.com")
    actual = platform_user("ann@example.com", external_id=desired.okta_user_id, email="ANN@EXAMPLE.COM")
    assert run([desired], [actual]).actions == ()


def test_given_name_compares_with_case():
    desired = assignment(1, given="ann")
    actual = platform_user(desired.user_name, external_id=desired.okta_user_id, given="Ann", display_name="ann Family")
    assert only(run([desired], [actual])).changes == {"name.givenName": Change("Ann", "ann")}


def test_unassigned_user_still_active_is_deactivated():
    actual = platform_user("gone@example.com", external_id=okta_id(9))
    action = only(run([], [actual]))
    assert action.kind is ActionKind.DEACTIVATE
    assert action.changes == {"active": Change(True, False)}
    assert action.okta_user_id == okta_id(9)


def test_unassigned_user_already_inactive_is_in_sync():
    assert run([], [platform_user("gone@example.com", external_id=okta_id(9), active=False)]).actions == ()


@pytest.mark.parametrize(("app_status", "user_status"), [("ACTIVE", "DEPROVISIONED"), ("INACTIVE", "ACTIVE")])
def test_inactive_in_okta_is_deactivated(app_status, user_status):
    desired = assignment(1, app_status=app_status, user_status=user_status)
    actual = platform_user(desired.user_name, external_id=desired.okta_user_id)
    assert only(run([desired], [actual])).kind is ActionKind.DEACTIVATE


def test_inactive_in_okta_and_missing_is_not_created():
    assert run([assignment(1, user_status="DEPROVISIONED")], []).actions == ()


def test_suspended_user_is_kept_by_default_and_deactivated_by_policy():
    desired = assignment(1, user_status="SUSPENDED")
    actual = platform_user(desired.user_name, external_id=desired.okta_user_id)
    assert run([desired], [actual]).actions == ()
    assert only(run([desired], [actual], suspended="deactivate")).kind is ActionKind.DEACTIVATE


def test_suspended_user_kept_is_neither_created_nor_reactivated():
    desired = assignment(1, user_status="SUSPENDED")
    inactive = platform_user(desired.user_name, external_id=desired.okta_user_id, active=False)
    assert run([desired], [inactive]).actions == ()
    assert run([desired], []).actions == ()


def test_inactive_on_platform_but_active_in_okta_is_reactivated():
    desired = assignment(1)
    actual = platform_user(desired.user_name, external_id=desired.okta_user_id, active=False)
    action = only(run([desired], [actual]))
    assert action.kind is ActionKind.REACTIVATE
    assert action.changes == {"active": Change(False, True)}


def test_match_by_user_name_without_link_is_a_link():
    desired = assignment(1, "ann@example.com")
    actual = platform_user("ANN@example.com", external_id=None)
    action = only(run([desired], [actual]))
    assert action.kind is ActionKind.LINK
    assert action.scim_id == actual.scim_id
    assert action.changes["externalId"] == Change(None, okta_id(1))
    assert "userName" not in action.changes, "userName differs only in case: not a change"


def test_stored_scim_id_wins_over_user_name():
    desired_name = "new-name@example.com"
    linked = platform_user("old-name@example.com", external_id=okta_id(1))
    desired = assignment(1, desired_name, scim_id=linked.scim_id)
    action = only(run([desired], [linked]))
    assert action.kind is ActionKind.UPDATE
    assert action.changes["userName"] == Change("old-name@example.com", desired_name)


def test_rename_is_an_update_not_a_create():
    linked = platform_user("old@example.com", external_id=okta_id(1))
    action = only(run([assignment(1, "new@example.com")], [linked]))
    assert action.kind is ActionKind.UPDATE
    assert action.scim_id == linked.scim_id


def test_duplicate_left_by_a_missed_rename_is_a_conflict_and_the_kept_one_is_used():
    old = platform_user("old@example.com", external_id=okta_id(1))
    new = platform_user("new@example.com", external_id=okta_id(1))
    desired = assignment(1, "new@example.com", scim_id=new.scim_id)
    action = only(run([desired], [old, new]))
    assert action.kind is ActionKind.CONFLICT
    assert action.scim_id == old.scim_id


def test_two_platform_users_with_one_okta_id_and_no_stored_link_is_a_conflict():
    a = platform_user("a@example.com", external_id=okta_id(1))
    b = platform_user("b@example.com", external_id=okta_id(1))
    result = run([assignment(1, "a@example.com")], [a, b])
    kinds = [x.kind for x in result.actions]
    assert ActionKind.CONFLICT in kinds
    assert not result.writes


def test_user_name_matching_two_platform_users_is_a_conflict():
    result = run(
        [assignment(1, "ann@example.com")], [platform_user("ann@example.com"), platform_user("ANN@example.com")]
    )
    conflict = [a for a in result.actions if a.kind is ActionKind.CONFLICT]
    assert len(conflict) == 1 and conflict[0].okta_user_id == okta_id(1)
    assert not result.writes


def test_user_name_held_by_another_okta_users_account_is_a_conflict_not_a_link():
    held = platform_user("ann@example.com", external_id=okta_id(2), active=False)
    action = only(run([assignment(1, "ann@example.com")], [held]))
    assert action.kind is ActionKind.CONFLICT


def test_platform_user_okta_never_managed_is_reported():
    action = only(run([], [platform_user("svc@example.com", external_id=None)]))
    assert action.kind is ActionKind.UNMANAGED
    assert action.okta_user_id is None


def test_platform_user_with_foreign_external_id_is_unmanaged_not_deactivated():
    assert only(run([], [platform_user("hr@example.com", external_id="HR-1234")])).kind is ActionKind.UNMANAGED


def test_unmanaged_policy_deactivate():
    action = only(run([], [platform_user("svc@example.com")], unmanaged="deactivate"))
    assert action.kind is ActionKind.DEACTIVATE


def test_a_user_whose_okta_status_is_unknown_is_never_read_as_active():
    """The listing refuses an answer without a status (tests/okta); the plan, given one, acts on nothing of it."""
    for unknown in (assignment(1, user_status=None), assignment(1, app_status=None)):  # type: ignore[arg-type]
        assert run([unknown], []).actions == (), "not created"
        inactive = platform_user(unknown.user_name, external_id=unknown.okta_user_id, active=False)
        assert run([unknown], [inactive]).actions == (), "not reactivated"
        active = platform_user(unknown.user_name, external_id=unknown.okta_user_id)
        assert run([unknown], [active]).actions == (), "not deactivated"


def test_attribute_okta_does_not_carry_for_one_user_is_left_alone():
    profile = dict(assignment(1).app_profile)
    del profile["displayName"]
    desired = msgspec.structs.replace(assignment(1), app_profile=profile)
    actual = platform_user(desired.user_name, external_id=desired.okta_user_id, display_name="Hand edited")
    other, other_actual = in_sync_pair(2)
    assert run([desired, other], [actual, other_actual]).actions == ()


def test_attribute_okta_carries_for_no_user_stops_the_plan():
    profile = dict(assignment(1).app_profile)
    del profile["displayName"]
    desired = msgspec.structs.replace(assignment(1), app_profile=profile)
    actual = platform_user(desired.user_name, external_id=desired.okta_user_id, display_name="Hand edited")
    with pytest.raises(SourceError, match=r'mapping\."displayName": no user\'s Okta profile has a value'):
        run([desired], [actual])


def test_user_name_okta_gives_no_value_for_stops_the_plan():
    mapping = {**DEFAULT_MAPPING, "userName": "profile.email"}
    known, unknown = assignment(1), assignment(2, email=None)
    with pytest.raises(SourceError, match=rf"mapping\.userName: .* 1 user\(s\): {unknown.okta_user_id} "):
        plan([known, unknown], [], mapping, Policy())


def test_create_whose_user_name_stays_taken_is_a_conflict():
    leaving = assignment(1, "ann@example.com", user_status="DEPROVISIONED")
    account = platform_user("ann@example.com", external_id=okta_id(1))
    newcomer = assignment(2, "ANN@example.com")
    result = run([leaving, newcomer], [account])
    kinds = sorted(a.kind.value for a in result.actions)
    assert kinds == ["conflict", "deactivate"]


def test_summary_counts_each_kind():
    d1, a1 = in_sync_pair(1)
    result = run([d1, assignment(2)], [a1, platform_user("svc@example.com")])
    assert result.summary() == {
        "create": 1,
        "update": 0,
        "deactivate": 0,
        "reactivate": 0,
        "link": 0,
        "conflict": 0,
        "unmanaged": 1,
        "in_sync": 1,
    }
