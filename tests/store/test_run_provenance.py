"""Revision 0007 on a SQLite file and on PostgreSQL: who started each run and which saved plan an ``apply-plan``
run applied, kept on the run; a store at 0006 upgrades keeping its runs, which say nobody started them."""

from __future__ import annotations

import sqlalchemy as sa

from reconciler.models.runs import RunMode, RunStatus
from reconciler.store import Store, db_upgrade, schema_status
from tests.store.test_migrations import FINGERPRINT, HEAD, columns_of, insert_run_and_action, migrate
from tests.store.test_migrations import url as url  # the fixture: a SQLite file, then PostgreSQL


def test_a_run_keeps_who_started_it_and_the_dry_run_of_the_plan_it_applied(url: str) -> None:
    with Store(url, started_by="alice") as store:
        dry_run = store.start_run(RunMode.DRY_RUN, FINGERPRINT)
        store.finish_run(dry_run, RunStatus.DRIFT)
        applied = store.start_run(RunMode.APPLY_PLAN, FINGERPRINT, plan_run_id=dry_run)
        store.finish_run(applied, RunStatus.SUCCEEDED)
    with Store(url) as service:
        scheduled = service.start_run(RunMode.APPLY, FINGERPRINT)
    with Store(url) as reopened:
        runs = {run.id: run for run in reopened.recent_runs()}
    assert (runs[dry_run].started_by, runs[dry_run].plan_run_id) == ("alice", None)
    assert (runs[applied].started_by, runs[applied].plan_run_id) == ("alice", dry_run)
    assert (runs[scheduled].started_by, runs[scheduled].plan_run_id) == (None, None)


def test_a_store_at_0006_upgrades_keeping_its_runs_started_by_nobody_known(url: str) -> None:
    migrate(url, "upgrade", "0006")
    run_id = insert_run_and_action(url)
    assert "started_by" not in columns_of(url, "runs")
    assert schema_status(url).pending == ("0007",)

    assert db_upgrade(url) == HEAD == "0007"

    with Store(url) as store:
        run = store.get_run(run_id)
        assert run is not None and run.status is RunStatus.SUCCEEDED and run.applied == 1
        assert (run.started_by, run.plan_run_id) == (None, None)
    engine = sa.create_engine(url)
    try:
        assert "ix_runs_started_at" in {index["name"] for index in sa.inspect(engine).get_indexes("runs")}
    finally:
        engine.dispose()
