"""The store on real databases: a SQLite file, and a PostgreSQL server started for the session.

Every test that takes ``store_url`` runs on both, each time on a new, empty
database (tests/support/postgres.py; in CI the PostgreSQL half must run).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.config import fingerprint, load_config
from reconciler.models.records import Action, ActionKind, Change, Plan
from reconciler.models.runs import ActionStatus, RunMode, RunStatus
from reconciler.store import AlertState, Store, StoreError
from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
FINGERPRINT = "f" * 64
OTHER_TARGET = "0" * 64


def create(user_name: str = "ada@example.com") -> Action:
    return Action(
        kind=ActionKind.CREATE,
        user_name=user_name,
        okta_user_id="00u1ada",
        scim_id=None,
        reason="assigned in Okta, missing on the platform",
        changes={"userName": Change(None, user_name), "name.givenName": Change(None, "Ada")},
    )


def deactivate(scim_id: str = "scim-2") -> Action:
    return Action(
        kind=ActionKind.DEACTIVATE,
        user_name="bob@example.com",
        okta_user_id="00u2bob",
        scim_id=scim_id,
        reason="unassigned in Okta, active on the platform",
        changes={"active": Change(True, False)},
    )


# --- runs -------------------------------------------------------------------------------------


def test_a_run_round_trips(store: Store) -> None:
    before = datetime.now(UTC)
    run_id = store.start_run(RunMode.APPLY, FINGERPRINT)

    run = store.get_run(run_id)
    assert run is not None
    assert (run.mode, run.status, run.config_fingerprint) == (RunMode.APPLY, RunStatus.RUNNING, FINGERPRINT)
    assert run.started_at.tzinfo is not None and run.started_at >= before - timedelta(seconds=1)
    assert (run.finished_at, run.summary, run.error) == (None, None, None)


def test_plan_counts_are_kept_per_kind(store: Store) -> None:
    run_id = store.start_run("dry-run", FINGERPRINT)
    plan = Plan(actions=(create(), create("eve@example.com"), deactivate()), in_sync=7)

    store.record_plan_counts(run_id, plan.summary())

    run = store.get_run(run_id)
    assert run is not None
    assert run.summary == plan.summary()
    assert (run.planned_create, run.planned_deactivate, run.planned_in_sync, run.planned_update) == (2, 1, 7, 0)


def test_unknown_summary_keys_are_refused(store: Store) -> None:
    run_id = store.start_run("dry-run", FINGERPRINT)
    with pytest.raises(ValueError, match="delete"):
        store.record_plan_counts(run_id, {"delete": 1})


def test_finishing_a_run_counts_its_outcomes(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    for succeeded in (True, True, False):
        store.record_outcome(store.record_intent(run_id, create()), succeeded, None if succeeded else "HTTP 500")

    store.finish_run(run_id, RunStatus.PARTIAL, error="1 action failed")

    run = store.get_run(run_id)
    assert run is not None and run.finished_at is not None
    assert (run.status, run.applied, run.failed, run.error) == (RunStatus.PARTIAL, 2, 1, "1 action failed")
    assert run.finished_at >= run.started_at


def test_actions_still_pending_when_a_run_finishes_are_interrupted(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    store.record_intent(run_id, create())

    store.finish_run(run_id, RunStatus.INTERRUPTED, "interrupted: KeyboardInterrupt")

    [record] = store.actions_of(run_id)
    assert record.status == ActionStatus.INTERRUPTED and record.error is not None


def test_a_run_cannot_finish_as_running(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    with pytest.raises(ValueError):
        store.finish_run(run_id, "running")


def test_unknown_ids_are_lookup_errors(store: Store) -> None:
    assert store.get_run(999) is None
    with pytest.raises(LookupError):
        store.finish_run(999, RunStatus.FAILED)
    with pytest.raises(LookupError):
        store.record_outcome(999, succeeded=True)


def test_recent_runs_are_latest_first_and_limited(store: Store) -> None:
    run_ids = [store.start_run("dry-run", FINGERPRINT) for _ in range(5)]

    assert [run.id for run in store.recent_runs()] == run_ids[::-1]
    assert [run.id for run in store.recent_runs(limit=2)] == run_ids[:2:-1]


# --- actions ----------------------------------------------------------------------------------


def test_an_intent_is_committed_before_its_outcome(store: Store, store_url: str) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    action_id = store.record_intent(run_id, create())

    with Store(store_url) as other_process:
        [pending] = other_process.actions_of(run_id)
    assert pending.id == action_id
    assert (pending.status, pending.finished_at, pending.scim_id) == (ActionStatus.PENDING, None, None)

    store.record_outcome(action_id, succeeded=True, scim_id="scim-new")

    [done] = store.actions_of(run_id)
    assert (done.status, done.error, done.scim_id) == (ActionStatus.SUCCEEDED, None, "scim-new")
    assert done.finished_at is not None and done.finished_at >= done.created_at


def test_an_action_round_trips_with_its_changes(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    action = deactivate()

    store.record_outcome(store.record_intent(run_id, action), succeeded=False, error="HTTP 403: forbidden")

    [record] = store.actions_of(run_id)
    assert (record.kind, record.user_name, record.okta_user_id, record.scim_id, record.reason) == (
        ActionKind.DEACTIVATE,
        action.user_name,
        action.okta_user_id,
        action.scim_id,
        action.reason,
    )
    assert record.changes == action.to_json()["changes"] == {"active": {"before": True, "after": False}}
    assert (record.status, record.error) == (ActionStatus.FAILED, "HTTP 403: forbidden")


def test_an_outcome_without_scim_id_keeps_the_planned_one(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    store.record_outcome(store.record_intent(run_id, deactivate("scim-2")), succeeded=True)
    assert store.actions_of(run_id)[0].scim_id == "scim-2"


def test_actions_are_listed_per_run_in_recorded_order(store: Store) -> None:
    first, second = store.start_run("apply", FINGERPRINT), store.start_run("apply", FINGERPRINT)
    store.record_intent(first, create("a@example.com"))
    store.record_intent(second, create("x@example.com"))
    store.record_intent(first, create("b@example.com"))

    assert [a.user_name for a in store.actions_of(first)] == ["a@example.com", "b@example.com"]
    assert [a.user_name for a in store.actions_of(second)] == ["x@example.com"]


def test_skipped_actions_are_recorded_together(store: Store) -> None:
    run_id = store.start_run("dry-run", FINGERPRINT)
    conflict = Action(ActionKind.CONFLICT, "dup@example.com", "00u3", None, "two platform users match")

    store.record_skipped(run_id, [create(), conflict])

    records = store.actions_of(run_id)
    assert [(r.kind, r.status) for r in records] == [
        (ActionKind.CREATE, ActionStatus.SKIPPED),
        (ActionKind.CONFLICT, ActionStatus.SKIPPED),
    ]


# --- a crash ----------------------------------------------------------------------------------


def test_runs_left_running_are_marked_interrupted(store: Store) -> None:
    crashed = store.start_run("apply", FINGERPRINT)
    done_id = store.record_intent(crashed, create("done@example.com"))
    store.record_outcome(done_id, succeeded=True)
    in_flight_id = store.record_intent(crashed, create("inflight@example.com"))
    finished = store.start_run("dry-run", FINGERPRINT)
    store.finish_run(finished, RunStatus.SUCCEEDED)

    assert store.mark_interrupted() == [crashed]

    run = store.get_run(crashed)
    assert run is not None and run.error is not None
    assert (run.status, run.applied, run.failed) == (RunStatus.INTERRUPTED, 1, 0)
    statuses = {record.id: record.status for record in store.actions_of(crashed)}
    assert statuses == {done_id: ActionStatus.SUCCEEDED, in_flight_id: ActionStatus.INTERRUPTED}
    untouched = store.get_run(finished)
    assert untouched is not None and untouched.status == RunStatus.SUCCEEDED


def test_runs_started_after_the_cutoff_are_left_running(store: Store) -> None:
    cutoff = datetime.now(UTC)
    current = store.start_run("apply", FINGERPRINT)

    assert store.mark_interrupted(started_before=cutoff) == []
    run = store.get_run(current)
    assert run is not None and run.status == RunStatus.RUNNING


def test_the_store_survives_reopening(store_url: str) -> None:
    with Store(store_url) as first:
        run_id = first.start_run("apply", FINGERPRINT)
        first.record_intent(run_id, create())
    with Store(store_url) as second:
        assert [run.id for run in second.recent_runs()] == [run_id]
        assert len(second.actions_of(run_id)) == 1


def test_only_the_given_target_s_runs_are_marked_interrupted(store: Store) -> None:
    mine, theirs = store.start_run("apply", FINGERPRINT), store.start_run("apply", OTHER_TARGET)

    assert store.mark_interrupted(fingerprint=FINGERPRINT) == [mine]

    run = store.get_run(theirs)
    assert run is not None and run.status == RunStatus.RUNNING


# --- what the gate and the alerts read ----------------------------------------------------------


def test_the_source_baseline_and_the_failure_streak(store: Store) -> None:
    def finished(status: RunStatus, source_count: int | None = None, target: str = FINGERPRINT) -> int:
        run_id = store.start_run("apply", target)
        if source_count is not None:
            store.record_populations(run_id, source_count, source_count - 1)
        store.finish_run(run_id, status)
        return run_id

    finished(RunStatus.SUCCEEDED, 100)
    finished(RunStatus.DRIFT, 120)
    finished(RunStatus.BLOCKED, 3)  # the suspicious listing is no baseline
    finished(RunStatus.FAILED)
    finished(RunStatus.FAILED, target=OTHER_TARGET)
    latest = finished(RunStatus.FAILED)

    assert store.last_trusted_source_count(FINGERPRINT, latest) == 120
    assert store.last_trusted_source_count(OTHER_TARGET, latest) is None
    assert store.consecutive_failures(FINGERPRINT) == 2
    assert store.consecutive_failures(OTHER_TARGET) == 1


def test_alert_states_round_trip_per_target(store: Store) -> None:
    since = datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    state = AlertState(
        config_fingerprint=FINGERPRINT, key="drift:create", title="12 to create ✓", active_since=since, last_run_id=7
    )
    store.save_alert_state(state)
    store.save_alert_state(
        AlertState(config_fingerprint=OTHER_TARGET, key="failed", title="x", active_since=since, last_run_id=8)
    )

    sent = since + timedelta(hours=1)
    store.save_alert_state(AlertState(**{**state.model_dump(), "last_sent_at": sent, "last_run_id": 9}))

    [stored] = store.alert_states(FINGERPRINT).values()
    assert (stored.key, stored.title, stored.last_run_id) == ("drift:create", "12 to create ✓", 9)
    assert stored.active_since == since and stored.active_since.tzinfo is not None
    assert stored.last_sent_at == sent
    store.remove_alert_state(FINGERPRINT, "drift:create")
    store.remove_alert_state(FINGERPRINT, "never-there")
    assert store.alert_states(FINGERPRINT) == {}
    assert list(store.alert_states(OTHER_TARGET)) == ["failed"]


def test_changes_keep_their_json_types(store: Store) -> None:
    run_id = store.start_run("apply", FINGERPRINT)
    changes = {
        "emails": Change([{"value": "a@example.com", "primary": True}], [{"value": "é@example.com", "type": "work"}]),
        "active": Change(None, True),
        "x": Change(1.5, 0),
    }
    store.record_intent(run_id, Action(ActionKind.UPDATE, "a@example.com", "00u1", "s1", "attributes differ", changes))

    [record] = store.actions_of(run_id)
    assert record.changes == {
        "emails": {
            "before": [{"value": "a@example.com", "primary": True}],
            "after": [{"value": "é@example.com", "type": "work"}],
        },
        "active": {"before": None, "after": True},
        "x": {"before": 1.5, "after": 0},
    }


# --- PostgreSQL specifics -------------------------------------------------------------------


def test_a_plain_postgresql_url_means_psycopg(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    with Store(url.replace("postgresql+psycopg://", "postgresql://")) as store:
        assert store.engine.dialect.driver == "psycopg"
        assert store.get_run(store.start_run("dry-run", FINGERPRINT)) is not None


def test_an_unreachable_server_is_a_store_error_with_the_password_masked(unused_port: int) -> None:
    url = f"postgresql+psycopg://reconciler:hunter2-secret@127.0.0.1:{unused_port}/reconciler"
    with pytest.raises(StoreError) as raised:
        Store(url)
    message = str(raised.value)
    assert "hunter2-secret" not in message
    assert f"cannot use the store at postgresql+psycopg://reconciler:***@127.0.0.1:{unused_port}/reconciler" in message


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- SQLite specifics -------------------------------------------------------------------------


def test_sqlite_creates_the_parent_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "reconciler.db"
    with Store(f"sqlite:///{path}") as store:
        store.start_run("dry-run", FINGERPRINT)
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert path.is_file()


def test_the_store_holds_no_secret(tmp_path: Path) -> None:
    okta_token, scim_token = "00okta-SECRET-5e8f1a2b3c4d", "scim-SECRET-9a8b7c6d5e4f"
    config = load_config(REPO / "config.example.toml", {"OKTA_API_TOKEN": okta_token, "SCIM_TOKEN": scim_token})
    database = tmp_path / "db" / "reconciler.db"

    with Store(f"sqlite:///{database}") as store:
        run_id = store.start_run("apply", fingerprint(config))
        store.record_plan_counts(run_id, Plan((create(), deactivate()), in_sync=3).summary())
        store.record_outcome(store.record_intent(run_id, create()), True, scim_id="scim-1")
        store.record_outcome(store.record_intent(run_id, deactivate()), False, "HTTP 500")
        store.finish_run(run_id, RunStatus.PARTIAL, "1 action failed")

    stored = b"".join(path.read_bytes() for path in database.parent.iterdir())
    assert b"ada@example.com" in stored  # the data is there, readable
    assert okta_token.encode() not in stored and scim_token.encode() not in stored
