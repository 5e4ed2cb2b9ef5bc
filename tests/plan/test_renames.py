"""Writes onto a userName another platform user holds are conflicts in the plan, never writes."""

from __future__ import annotations

from reconciler.models.records import ActionKind, Change
from tests.plan.test_plan import run
from tests.support.factories import assignment, okta_id, platform_user
from tests.support.target_model import apply_to_model


def by_okta_id(result):
    return {a.okta_user_id: a for a in result.actions}


def test_a_rename_onto_a_name_another_platform_user_holds_is_a_conflict_naming_both():
    renamed = platform_user("old@example.com", external_id=okta_id(1), scim_id="s-renamed")
    holder = platform_user("ann@example.com", scim_id="s-holder")  # a user Okta never managed
    bystander = platform_user("bob@example.com", external_id=okta_id(2), given="Bob")
    result = run(
        [assignment(1, "ann@example.com", scim_id="s-renamed"), assignment(2, "bob@example.com", given="Robert")],
        [renamed, holder, bystander],
    )
    conflict = by_okta_id(result)[okta_id(1)]
    assert conflict.kind is ActionKind.CONFLICT and conflict.scim_id == "s-renamed"
    assert "s-renamed" in conflict.reason and "s-holder" in conflict.reason and "'ann@example.com'" in conflict.reason
    assert conflict.changes == {"userName": Change("old@example.com", "ann@example.com")}
    assert [(a.kind, a.okta_user_id) for a in result.writes] == [(ActionKind.UPDATE, okta_id(2))]


def test_the_taken_name_is_compared_case_insensitively_as_scim_does():
    renamed = platform_user("old@example.com", external_id=okta_id(1))
    holder = platform_user("ANN@Example.com", external_id=okta_id(2))
    desired = [assignment(1, "ann@example.com", scim_id=renamed.scim_id), assignment(2, "ANN@Example.com")]
    result = run(desired, [renamed, holder])
    assert [a.kind for a in result.actions] == [ActionKind.CONFLICT]
    assert "'ANN@Example.com'" in result.actions[0].reason


def test_a_reactivation_onto_a_taken_name_is_held_whole():
    sleeping = platform_user("old@example.com", external_id=okta_id(1), active=False)
    holder = platform_user("ann@example.com", external_id=okta_id(9), active=False)  # inactive: still holds it
    result = run([assignment(1, "ann@example.com", scim_id=sleeping.scim_id)], [sleeping, holder])
    assert by_okta_id(result)[okta_id(1)].kind is ActionKind.CONFLICT
    assert result.writes == ()


def test_two_okta_users_renamed_onto_one_new_name_both_conflict():
    a = platform_user("a@example.com", external_id=okta_id(1), scim_id="s-a")
    b = platform_user("b@example.com", external_id=okta_id(2), scim_id="s-b")
    desired = [assignment(1, "same@example.com", scim_id="s-a"), assignment(2, "Same@example.com", scim_id="s-b")]
    result = run(desired, [a, b])
    assert [a.kind for a in result.actions] == [ActionKind.CONFLICT, ActionKind.CONFLICT]
    first, second = by_okta_id(result)[okta_id(1)], by_okta_id(result)[okta_id(2)]
    assert "s-b" in first.reason and "s-a" in second.reason


def test_a_swap_of_two_names_holds_both_and_says_so():
    a = platform_user("a@example.com", external_id=okta_id(1), scim_id="s-a")
    b = platform_user("b@example.com", external_id=okta_id(2), scim_id="s-b")
    desired = [assignment(1, "b@example.com", scim_id="s-a"), assignment(2, "a@example.com", scim_id="s-b")]
    result = run(desired, [a, b])
    assert {a.kind for a in result.actions} == {ActionKind.CONFLICT} and len(result.actions) == 2
    assert all("swap" in action.reason for action in result.actions)
    again = run(desired, apply_to_model([a, b], result.actions))
    assert again.writes == (), "a swap stays held until a person frees a name"


def test_a_chain_of_renames_moves_the_holder_first_and_the_follower_on_the_next_run():
    leaving = platform_user("ann@example.com", external_id=okta_id(1), scim_id="s-leaving")
    following = platform_user("bob@example.com", external_id=okta_id(2), scim_id="s-following")
    desired = [
        assignment(1, "ann.old@example.com", scim_id="s-leaving"),
        assignment(2, "ann@example.com", scim_id="s-following"),
    ]
    first = run(desired, [leaving, following])
    assert [(a.kind, a.scim_id) for a in first.writes] == [(ActionKind.UPDATE, "s-leaving")]
    held = by_okta_id(first)[okta_id(2)]
    assert held.kind is ActionKind.CONFLICT and "next run" in held.reason and "'ann.old@example.com'" in held.reason
    second = run(desired, apply_to_model([leaving, following], first.actions))
    assert [(a.kind, a.scim_id) for a in second.writes] == [(ActionKind.UPDATE, "s-following")]


def test_a_create_onto_the_name_of_a_user_renamed_away_waits_for_the_next_run():
    leaving = platform_user("ann@example.com", external_id=okta_id(1), scim_id="s-leaving")
    desired = [assignment(1, "ann.old@example.com", scim_id="s-leaving"), assignment(2, "ann@example.com")]
    first = run(desired, [leaving])
    assert [(a.kind, a.scim_id) for a in first.writes] == [(ActionKind.UPDATE, "s-leaving")]
    assert by_okta_id(first)[okta_id(2)].kind is ActionKind.CONFLICT
    second = run(desired, apply_to_model([leaving], first.actions))
    assert [(a.kind, a.okta_user_id) for a in second.writes] == [(ActionKind.CREATE, okta_id(2))]
