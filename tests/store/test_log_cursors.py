"""The System Log follower's part of the store, on a SQLite file and on PostgreSQL: its cursor, the writes of
the sliding window, when Okta changed each repaired user, and incremental runs kept out of what full audits
decide (the source-shrink baseline, the last full audit, the last success and the failure streaks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from reconciler.models.log import RECENT_UUIDS_KEPT, LogCursor
from reconciler.models.records import Action, ActionKind, Change
from reconciler.models.runs import ActionStatus, RunMode, RunStatus
from reconciler.store import Store, db_upgrade, schema_status
from tests.store.test_migrations import FINGERPRINT, HEAD, columns_of, insert_run_and_action, migrate, tables_of
from tests.store.test_migrations import url as url  # the fixture: a SQLite file, then PostgreSQL

OTHER = "b" * 64
NEXT = "https://acme.okta.com/api/v1/logs?after=1722458113945_1&limit=1000&filter=eventType+sw+%22user.%22"
PUBLISHED = datetime(2026, 12, 5, 23, 59, 58, 123000, tzinfo=UTC)


def cursor(uuids: tuple[str, ...] = ("e1", "e2"), *, next_url: str | None = NEXT) -> LogCursor:
    now = datetime.now(UTC)
    return LogCursor(next_url, PUBLISHED, uuids, now, now - timedelta(seconds=3))


def action(kind: ActionKind, user: str) -> Action:
    return Action(kind, f"{user}@example.com", user, f"scim-{user}", "drift", {"active": Change(True, False)})


def run_with(store: Store, mode: RunMode, outcomes: dict[str, tuple[ActionKind, ActionStatus]], fp: str) -> int:
    """A finished run of ``mode`` whose actions (by Okta user id) ended as given."""
    run_id = store.start_run(mode, fp)
    for user, (kind, status) in outcomes.items():
        if status is ActionStatus.SKIPPED:
            store.record_skipped(run_id, [action(kind, user)])
            continue
        action_id = store.record_intent(run_id, action(kind, user))
        if status in (ActionStatus.SUCCEEDED, ActionStatus.FAILED):
            succeeded = status is ActionStatus.SUCCEEDED
            store.record_outcome(action_id, succeeded, None if succeeded else "the platform answered 409")
    if all(status is not ActionStatus.PENDING for _, status in outcomes.values()):
        store.finish_run(run_id, RunStatus.PARTIAL)
    return run_id


# --- the cursor -------------------------------------------------------------------------------


def test_a_cursor_round_trips_and_none_is_saved_before(url: str) -> None:
    saved = cursor()
    with Store(url) as store:
        assert store.log_cursor(FINGERPRINT) is None
        store.save_log_cursor(FINGERPRINT, saved, tenant="acme")
    with Store(url) as reopened:
        assert reopened.log_cursor(FINGERPRINT) == saved
        assert reopened.log_cursor(OTHER) is None
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT fingerprint, tenant FROM log_cursors")).all()
    finally:
        engine.dispose()
    assert rows == [(FINGERPRINT, "acme")]


def test_saving_again_replaces_the_targets_cursor_and_no_other(url: str) -> None:
    with Store(url) as store:
        store.save_log_cursor(FINGERPRINT, cursor(("e1",)))
        store.save_log_cursor(OTHER, cursor(("x1",)))
        later = LogCursor(None, PUBLISHED + timedelta(minutes=1), ("e1", "e2", "e3"), datetime.now(UTC), None)
        store.save_log_cursor(FINGERPRINT, later)

        assert store.log_cursor(FINGERPRINT) == later
        other = store.log_cursor(OTHER)
        assert other is not None and (other.next_url, other.recent_uuids) == (NEXT, ("x1",))


def test_only_the_newest_uuids_are_kept(url: str) -> None:
    uuids = tuple(f"event-{n:05}" for n in range(RECENT_UUIDS_KEPT + 1500))
    with Store(url) as store:
        store.save_log_cursor(FINGERPRINT, cursor(uuids))
        kept = store.log_cursor(FINGERPRINT)
    assert kept is not None and kept.recent_uuids == uuids[-RECENT_UUIDS_KEPT:]
    assert kept.recent_uuids[0] == "event-01500" and kept.recent_uuids[-1] == uuids[-1]


def test_a_dropped_cursor_is_gone_and_dropping_none_is_harmless(url: str) -> None:
    with Store(url) as store:
        store.save_log_cursor(FINGERPRINT, cursor())
        store.save_log_cursor(OTHER, cursor())
        store.drop_log_cursor(FINGERPRINT)
        store.drop_log_cursor(FINGERPRINT)
        assert store.log_cursor(FINGERPRINT) is None
        assert store.log_cursor(OTHER) is not None


# --- the writes of the sliding window ---------------------------------------------------------


def test_writes_since_counts_by_kind_every_write_that_may_have_reached_the_platform(url: str) -> None:
    d, c, u, r = ActionKind.DEACTIVATE, ActionKind.CREATE, ActionKind.UPDATE, ActionKind.REACTIVATE
    since = datetime.now(UTC) - timedelta(seconds=1)
    with Store(url) as store:
        outcomes = {
            "00u1": (d, ActionStatus.SUCCEEDED),
            "00u2": (d, ActionStatus.FAILED),  # may have been applied before its answer was lost
            "00u3": (d, ActionStatus.SKIPPED),  # held by the gate: never sent
            "00u4": (c, ActionStatus.SUCCEEDED),
            "00u5": (u, ActionStatus.SUCCEEDED),
            "00u6": (ActionKind.CONFLICT, ActionStatus.SKIPPED),
        }
        run_with(store, RunMode.INCREMENTAL, outcomes, FINGERPRINT)
        pending = run_with(store, RunMode.INCREMENTAL, {"00u7": (r, ActionStatus.PENDING)}, FINGERPRINT)
        run_with(store, RunMode.INCREMENTAL, {"00u8": (d, ActionStatus.SUCCEEDED)}, OTHER)  # another target
        run_with(store, RunMode.APPLY, {"00u9": (d, ActionStatus.SUCCEEDED)}, FINGERPRINT)  # a full run: gated whole

        assert store.writes_since(FINGERPRINT, since) == {"deactivate": 2, "create": 1, "update": 1, "reactivate": 1}
        store.mark_interrupted(fingerprint=FINGERPRINT)  # a crash left it: its outcome is unknown, still counted
        [interrupted] = store.actions_of(pending)
        assert interrupted.status is ActionStatus.INTERRUPTED
        assert store.writes_since(FINGERPRINT, since)["reactivate"] == 1
        assert store.writes_since(OTHER, since) == {"deactivate": 1}


def test_the_window_starts_at_the_first_write_recorded_at_or_after_since(url: str) -> None:
    with Store(url) as store:
        first = run_with(
            store, RunMode.INCREMENTAL, {"00u1": (ActionKind.DEACTIVATE, ActionStatus.SUCCEEDED)}, FINGERPRINT
        )
        second = run_with(
            store, RunMode.INCREMENTAL, {"00u2": (ActionKind.DEACTIVATE, ActionStatus.SUCCEEDED)}, FINGERPRINT
        )
        [older], [newer] = store.actions_of(first), store.actions_of(second)

        assert store.writes_since(FINGERPRINT, older.created_at) == {"deactivate": 2}
        assert store.writes_since(FINGERPRINT, older.created_at + timedelta(microseconds=1)) == {"deactivate": 1}
        assert store.writes_since(FINGERPRINT, newer.created_at + timedelta(microseconds=1)) == {}


# --- when Okta changed each repaired user -----------------------------------------------------


def test_mark_okta_changes_sets_each_users_time_on_that_runs_actions_only(url: str) -> None:
    at_1, at_2 = PUBLISHED, PUBLISHED + timedelta(seconds=7)
    with Store(url) as store:
        outcomes = {
            "00u1": (ActionKind.DEACTIVATE, ActionStatus.SUCCEEDED),
            "00u2": (ActionKind.UPDATE, ActionStatus.FAILED),
        }
        run_id = run_with(
            store, RunMode.INCREMENTAL, {**outcomes, "00u3": (ActionKind.CREATE, ActionStatus.SKIPPED)}, FINGERPRINT
        )
        other_run = run_with(
            store, RunMode.INCREMENTAL, {"00u1": (ActionKind.DEACTIVATE, ActionStatus.SUCCEEDED)}, FINGERPRINT
        )

        store.mark_okta_changes(run_id, {"00u1": at_1, "00u2": at_2, "00u404": at_2})
        store.mark_okta_changes(run_id, {})

        changed = {a.okta_user_id: a.okta_changed_at for a in store.actions_of(run_id)}
        assert changed == {"00u1": at_1, "00u2": at_2, "00u3": None}
        assert [a.okta_changed_at for a in store.actions_of(other_run)] == [None]


# --- incremental runs are no full audit -------------------------------------------------------


def _full_or_incremental(store: Store, mode: RunMode, status: RunStatus, counts: tuple[int, int]) -> int:
    run_id = store.start_run(mode, FINGERPRINT)
    store.record_populations(run_id, *counts)
    store.finish_run(run_id, status)
    return run_id


def test_an_incremental_run_is_never_the_source_shrink_baseline_nor_the_last_full_audit(url: str) -> None:
    with Store(url) as store:
        assert store.last_full_audit(FINGERPRINT) is None
        audit = _full_or_incremental(store, RunMode.DRY_RUN, RunStatus.DRIFT, (1000, 990))
        _full_or_incremental(store, RunMode.APPLY, RunStatus.BLOCKED, (400, 990))  # a suspicious listing
        _full_or_incremental(store, RunMode.INCREMENTAL, RunStatus.SUCCEEDED, (3, 3))  # a few users, not a count
        current = store.start_run(RunMode.APPLY, FINGERPRINT)

        assert store.last_trusted_source_count(FINGERPRINT, current) == 1000
        last = store.last_full_audit(FINGERPRINT)
        assert last is not None and (last.id, last.source_count, last.managed_count) == (audit, 1000, 990)
        assert store.last_full_audit(OTHER) is None

        store.record_populations(current, 1001, 995)
        store.finish_run(current, RunStatus.SUCCEEDED)
        applied = store.last_full_audit(FINGERPRINT)
        assert applied is not None and (applied.id, applied.mode) == (current, RunMode.APPLY)


def test_incremental_runs_neither_make_nor_break_the_audits_success_and_failure_streaks(url: str) -> None:
    with Store(url) as store:
        good = store.start_run(RunMode.APPLY, FINGERPRINT)
        store.finish_run(good, RunStatus.SUCCEEDED)
        ended = store.get_run(good)
        for _ in range(2):
            failed = store.start_run(RunMode.APPLY, FINGERPRINT)
            store.finish_run(failed, RunStatus.FAILED, "the platform answered 503")
            repaired = store.start_run(RunMode.INCREMENTAL, FINGERPRINT)
            store.finish_run(repaired, RunStatus.SUCCEEDED)
        for _ in range(5):  # a follower retrying a failing batch at each poll
            batch = store.start_run(RunMode.INCREMENTAL, FINGERPRINT)
            store.finish_run(batch, RunStatus.FAILED, "the platform answered 503")

        assert store.consecutive_failures(FINGERPRINT) == 2
        assert ended is not None and store.last_success_at(FINGERPRINT) == ended.finished_at
        state = store.tenant_states([FINGERPRINT])[FINGERPRINT]
        assert (state.consecutive_failures, state.last_success_at) == (2, ended.finished_at)
        assert state.latest is not None and state.latest.mode is RunMode.INCREMENTAL  # history shows it


# --- revision 0006 ----------------------------------------------------------------------------


def test_a_store_at_0005_upgrades_keeping_its_runs_and_actions_then_follows(url: str) -> None:
    migrate(url, "upgrade", "0005")
    run_id = insert_run_and_action(url)
    assert "log_cursors" not in tables_of(url) and "okta_changed_at" not in columns_of(url, "actions")
    status = schema_status(url)
    assert (status.state, status.current, status.pending) == ("behind", "0005", ("0006", "0007"))

    assert db_upgrade(url) == HEAD

    with Store(url) as store:
        [run] = store.recent_runs()
        assert (run.id, run.mode, run.status, run.applied) == (run_id, RunMode.APPLY, RunStatus.SUCCEEDED, 1)
        [kept] = store.actions_of(run_id)
        assert (kept.user_name, kept.status, kept.okta_changed_at) == ("ada@example.com", ActionStatus.SUCCEEDED, None)
        assert store.log_cursor(FINGERPRINT) is None
        saved = cursor()
        store.save_log_cursor(FINGERPRINT, saved)
        assert store.log_cursor(FINGERPRINT) == saved
        assert store.writes_since(FINGERPRINT, datetime(2025, 1, 1, tzinfo=UTC)) == {}  # a full apply's write

    migrate(url, "downgrade", "0005")  # a developer's path: it must work on both backends
    assert "log_cursors" not in tables_of(url) and "okta_changed_at" not in columns_of(url, "actions")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT run_id, user_name FROM actions")).all() == [
                (run_id, "ada@example.com")
            ]
    finally:
        engine.dispose()
    assert db_upgrade(url) == HEAD
