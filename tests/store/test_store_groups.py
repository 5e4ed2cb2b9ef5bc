"""The store's group actions (``group_actions``, ``runs.planned_groups``) on real databases.

Every test that takes ``store`` runs on a SQLite file and on PostgreSQL, each
time on a new, empty database (the fixtures of tests/conftest.py, as tests/store/test_store.py).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reconciler.models.groups import GroupAction, GroupActionKind, GroupPlan
from reconciler.models.records import Action, ActionKind
from reconciler.models.runs import ActionStatus, RunStatus
from reconciler.store import GroupActionRecord, Store
from reconciler.store.journal import INTERRUPTED_ACTION_ERROR
from reconciler.store.tables import GROUP_SUMMARY_KEYS

FINGERPRINT = "f" * 64
OTHER_TARGET = "0" * 64
OKTA_GROUP_ID = "00g" + "E" * 17


def create_group(name: str = "Engineering", members: tuple[str, ...] = ("00u1ada", "00u2bob")) -> GroupAction:
    return GroupAction(GroupActionKind.CREATE_GROUP, name, OKTA_GROUP_ID, members=members)


def remove_members(scim_id: str = "grp-7") -> GroupAction:
    return GroupAction(
        GroupActionKind.REMOVE_MEMBERS,
        "Engineering",
        OKTA_GROUP_ID,
        scim_id,
        members=("scim-9",),
        reason="not members of the Okta group",
    )


def unmanaged() -> GroupAction:
    return GroupAction(GroupActionKind.UNMANAGED, "Hand made", scim_id="grp-hand", reason="no pushed Okta group")


def user_create() -> Action:
    return Action(ActionKind.CREATE, "ada@example.com", "00u1ada", None, "assigned in Okta, missing on the platform")


# --- the group plan's counts ----------------------------------------------------------------------


def test_group_plan_counts_round_trip(store: Store) -> None:
    run_id = store.start_run("dry-run", FINGERPRINT)
    plan = GroupPlan((create_group(), create_group("Ops"), remove_members(), unmanaged()), in_sync=5)

    store.record_group_plan_counts(run_id, plan.summary())

    run = store.get_run(run_id)
    assert run is not None
    assert run.group_summary == plan.summary()
    assert set(plan.summary()) == set(GROUP_SUMMARY_KEYS)
    assert (run.group_summary["create_group"], run.group_summary["in_sync"], run.group_summary["delete_group"]) == (
        2,
        5,
        0,
    )


def test_group_plan_counts_missing_kinds_count_zero(store: Store) -> None:
    run_id = store.start_run("dry-run", FINGERPRINT)
    store.record_group_plan_counts(run_id, {"add_members": 3})

    run = store.get_run(run_id)
    assert run is not None and run.group_summary is not None
    assert run.group_summary == {key: 3 if key == "add_members" else 0 for key in GROUP_SUMMARY_KEYS}


def test_a_run_that_planned_no_groups_has_no_group_summary(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    store.record_plan_counts(run_id, {"create": 1, "in_sync": 2})
    store.finish_run(run_id, RunStatus.SUCCEEDED)

    run = store.get_run(run_id)
    assert run is not None and run.summary is not None
    assert (run.planned_groups, run.group_summary) == (None, None)
    with store.engine.connect() as connection:  # SQL NULL, not a JSON null: "IS NULL" finds it
        nulls = connection.execute(sa.text("SELECT count(*) FROM runs WHERE planned_groups IS NULL")).scalar()
    assert nulls == 1


def test_unknown_group_summary_keys_are_refused(store: Store) -> None:
    run_id = store.start_run("dry-run", FINGERPRINT)
    with pytest.raises(ValueError, match="create"):
        store.record_group_plan_counts(run_id, {"create": 1})  # a user kind, not a group kind
    with pytest.raises(ValueError, match="delete_everything"):
        store.record_group_plan_counts(run_id, {"create_group": 1, "delete_everything": 1})
    run = store.get_run(run_id)
    assert run is not None and run.group_summary is None  # nothing was written


def test_group_plan_counts_of_an_unknown_run_are_a_lookup_error(store: Store) -> None:
    with pytest.raises(LookupError):
        store.record_group_plan_counts(999, {"in_sync": 1})


# --- intents and outcomes -------------------------------------------------------------------------


def test_a_group_intent_is_committed_before_its_outcome(store: Store, store_url: str) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    action = create_group()
    action_id = store.record_group_intent(run_id, action)

    with Store(store_url) as other_process:
        [pending] = other_process.group_actions_of(run_id)
    assert pending.id == action_id
    assert (pending.status, pending.finished_at, pending.scim_id, pending.error) == (
        ActionStatus.PENDING,
        None,
        None,
        None,
    )
    assert (pending.kind, pending.group_name, pending.okta_group_id) == (
        GroupActionKind.CREATE_GROUP,
        "Engineering",
        OKTA_GROUP_ID,
    )
    assert (pending.members, pending.member_count, pending.reason) == (["00u1ada", "00u2bob"], 2, "")

    store.record_group_outcome(action_id, succeeded=True, scim_id="grp-new")

    [done] = store.group_actions_of(run_id)
    assert (done.status, done.error, done.scim_id) == (ActionStatus.SUCCEEDED, None, "grp-new")
    assert done.finished_at is not None and done.finished_at >= done.created_at
    assert done.created_at.tzinfo is not None


def test_a_failed_group_outcome_keeps_the_planned_scim_id_and_the_error(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    action_id = store.record_group_intent(run_id, remove_members("grp-7"))

    store.record_group_outcome(action_id, succeeded=False, error="HTTP 403: forbidden")

    [record] = store.group_actions_of(run_id)
    assert (record.kind, record.scim_id, record.status, record.error) == (
        GroupActionKind.REMOVE_MEMBERS,
        "grp-7",
        ActionStatus.FAILED,
        "HTTP 403: forbidden",
    )
    assert (record.members, record.member_count, record.reason) == (["scim-9"], 1, "not members of the Okta group")


def test_a_failed_create_group_may_record_the_id_it_learned(store: Store) -> None:
    """A group created whose members could not all be added: failed, but its id is known."""
    run_id = store.start_run("apply", FINGERPRINT)
    action_id = store.record_group_intent(run_id, create_group())

    store.record_group_outcome(action_id, False, "2 member(s) not added", "grp-half")

    [record] = store.group_actions_of(run_id)
    assert (record.status, record.scim_id, record.error) == (ActionStatus.FAILED, "grp-half", "2 member(s) not added")


def test_an_unknown_group_action_id_is_a_lookup_error(store: Store) -> None:
    with pytest.raises(LookupError, match="group_actions"):
        store.record_group_outcome(999, succeeded=True)


def test_five_thousand_members_round_trip_in_order(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    members = tuple(f"00u{i:017d}" for i in range(5_000))

    store.record_group_intent(run_id, create_group("Everyone", members))
    store.record_group_skipped(run_id, [create_group("Everyone too", members)], "not sent: dry-run")

    intent, skipped = store.group_actions_of(run_id)
    assert intent.members == list(members) and intent.member_count == 5_000
    assert skipped.members == list(members) and skipped.member_count == 5_000


def test_group_actions_are_listed_per_run_in_recorded_order(store: Store) -> None:
    first, second = store.start_run("apply", FINGERPRINT), store.start_run("apply", FINGERPRINT)
    store.record_group_intent(first, create_group("A"))
    store.record_group_intent(second, create_group("X"))
    store.record_group_skipped(first, [create_group("B")])
    store.record_group_intent(first, create_group("C"))

    assert [r.group_name for r in store.group_actions_of(first)] == ["A", "B", "C"]
    assert [r.group_name for r in store.group_actions_of(second)] == ["X"]
    assert store.group_actions_of(999) == []
    assert store.actions_of(first) == []  # user actions are another table


# --- skipped ----------------------------------------------------------------------------------------


def test_skipped_group_actions_are_recorded_together_with_why(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    why = "not sent: blocked by the safety gate (max_remove_members = 20)"

    store.record_group_skipped(run_id, [unmanaged()])
    store.record_group_skipped(run_id, (a for a in [create_group(), remove_members()]), why)
    store.record_group_skipped(run_id, [])

    records = store.group_actions_of(run_id)
    assert [(r.kind, r.status, r.error) for r in records] == [
        (GroupActionKind.UNMANAGED, ActionStatus.SKIPPED, None),
        (GroupActionKind.CREATE_GROUP, ActionStatus.SKIPPED, why),
        (GroupActionKind.REMOVE_MEMBERS, ActionStatus.SKIPPED, why),
    ]
    assert all(r.finished_at is None for r in records)
    assert records[0].scim_id == "grp-hand" and records[0].okta_group_id is None


def test_every_group_kind_is_stored_and_read_back(store: Store) -> None:
    run_id = store.start_run("dry-run", FINGERPRINT)
    actions = [GroupAction(kind, f"group {kind.value}", OKTA_GROUP_ID) for kind in GroupActionKind]

    store.record_group_skipped(run_id, actions)

    assert [r.kind for r in store.group_actions_of(run_id)] == list(GroupActionKind)
    assert all(isinstance(r, GroupActionRecord) for r in store.group_actions_of(run_id))


# --- counting and interruption ----------------------------------------------------------------------


def test_finishing_a_run_counts_user_and_group_outcomes(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    store.record_outcome(store.record_intent(run_id, user_create()), True, scim_id="scim-1")
    store.record_outcome(store.record_intent(run_id, user_create()), False, "HTTP 500")
    store.record_group_outcome(store.record_group_intent(run_id, create_group()), True, scim_id="grp-1")
    store.record_group_outcome(store.record_group_intent(run_id, create_group("Ops")), True, scim_id="grp-2")
    store.record_group_outcome(store.record_group_intent(run_id, remove_members()), False, "HTTP 409")
    store.record_group_skipped(run_id, [unmanaged()])  # neither applied nor failed

    store.finish_run(run_id, RunStatus.PARTIAL, "2 actions failed")

    run = store.get_run(run_id)
    assert run is not None
    assert (run.status, run.applied, run.failed) == (RunStatus.PARTIAL, 3, 2)


def test_group_actions_pending_when_a_run_finishes_are_interrupted(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    done = store.record_group_intent(run_id, create_group())
    store.record_group_outcome(done, True, scim_id="grp-1")
    in_flight = store.record_group_intent(run_id, remove_members())

    store.finish_run(run_id, RunStatus.INTERRUPTED, "interrupted: KeyboardInterrupt")

    records = {r.id: r for r in store.group_actions_of(run_id)}
    assert (records[done].status, records[in_flight].status) == (ActionStatus.SUCCEEDED, ActionStatus.INTERRUPTED)
    assert records[in_flight].error == INTERRUPTED_ACTION_ERROR
    run = store.get_run(run_id)
    assert run is not None and (run.applied, run.failed) == (1, 0)


def test_runs_left_running_turn_their_pending_group_actions_interrupted(store: Store) -> None:
    crashed = store.start_run("apply", FINGERPRINT)
    user_done = store.record_intent(crashed, user_create())
    store.record_outcome(user_done, True, scim_id="scim-1")
    user_in_flight = store.record_intent(crashed, user_create())
    group_done = store.record_group_intent(crashed, create_group())
    store.record_group_outcome(group_done, True, scim_id="grp-1")
    group_failed = store.record_group_intent(crashed, create_group("Ops"))
    store.record_group_outcome(group_failed, False, "HTTP 500")
    group_in_flight = store.record_group_intent(crashed, remove_members())
    store.record_group_skipped(crashed, [unmanaged()])
    other = store.start_run("apply", OTHER_TARGET)
    other_in_flight = store.record_group_intent(other, create_group())

    assert store.mark_interrupted(fingerprint=FINGERPRINT) == [crashed]

    run = store.get_run(crashed)
    assert run is not None
    assert (run.status, run.applied, run.failed) == (RunStatus.INTERRUPTED, 2, 1)
    assert {r.id: r.status for r in store.actions_of(crashed)} == {
        user_done: ActionStatus.SUCCEEDED,
        user_in_flight: ActionStatus.INTERRUPTED,
    }
    statuses = {r.id: r.status for r in store.group_actions_of(crashed)}
    assert [statuses[i] for i in (group_done, group_failed, group_in_flight)] == [
        ActionStatus.SUCCEEDED,
        ActionStatus.FAILED,
        ActionStatus.INTERRUPTED,
    ]
    assert list(statuses.values()).count(ActionStatus.SKIPPED) == 1  # a skipped one stays skipped
    [untouched] = store.group_actions_of(other)
    assert (untouched.id, untouched.status) == (other_in_flight, ActionStatus.PENDING)


def test_settling_abandoned_runs_interrupts_their_group_actions(store: Store) -> None:
    abandoned = store.start_run("apply", FINGERPRINT)
    in_flight = store.record_group_intent(abandoned, create_group())

    assert store.settle_abandoned_runs(FINGERPRINT) == [abandoned]

    [record] = store.group_actions_of(abandoned)
    assert (record.id, record.status, record.error) == (in_flight, ActionStatus.INTERRUPTED, INTERRUPTED_ACTION_ERROR)
    run = store.get_run(abandoned)
    assert run is not None and run.status is RunStatus.INTERRUPTED


def test_group_actions_survive_reopening(store_url: str) -> None:
    with Store(store_url) as first:
        run_id = first.start_run("apply", FINGERPRINT)
        first.record_group_plan_counts(run_id, {"create_group": 1, "in_sync": 2})
        first.record_group_intent(run_id, create_group())
    with Store(store_url) as second:
        [record] = second.group_actions_of(run_id)
        assert record.status is ActionStatus.PENDING
        run = second.get_run(run_id)
        assert run is not None and run.group_summary is not None and run.group_summary["in_sync"] == 2
