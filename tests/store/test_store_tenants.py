"""The store of a fleet: runs record their tenant and replica; every target's state in a few queries; who runs what.

Each test runs on a SQLite file and on PostgreSQL (the ``store_url`` fixture). A
lock held elsewhere is held by a real second process (``tests.store.test_locks.Holder``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console

from reconciler.cli.render import render_history, run_document
from reconciler.models.runs import SUCCESSFUL, RunMode, RunStatus
from reconciler.store import Store, TenantState
from reconciler.store.locks import LockBusy, lock_holders, lock_path
from reconciler.store.store import default_replica_name
from reconciler.store.urls import sqlite_path
from tests.store.test_locks import Holder

ACME, GLOBEX, INITECH, UMBRELLA, NEVER = (f"{n:x}" * 64 for n in range(10, 15))
"""Config fingerprints (sha256 hex) of five targets."""


def finished(store: Store, fingerprint: str, status: RunStatus, tenant: str | None = None) -> int:
    run_id = store.start_run("apply", fingerprint, tenant)
    store.finish_run(run_id, status)
    return run_id


# --- tenant and replica -----------------------------------------------------------------------


def test_a_run_records_its_tenant_and_replica(store_url: str) -> None:
    with Store(store_url, replica="replica-a") as named, Store(store_url) as unnamed:
        assert unnamed.replica == default_replica_name() == f"{socket.gethostname()} pid {os.getpid()}"
        tenant_run = named.start_run("dry-run", ACME, tenant="acme")
        single_run = unnamed.start_run("apply", GLOBEX)

        run = named.get_run(tenant_run)
        assert run is not None and (run.tenant, run.replica, run.config_fingerprint) == ("acme", "replica-a", ACME)
        other = named.get_run(single_run)
        assert other is not None and (other.tenant, other.replica) == (None, default_replica_name())
        document = run_document(run, [])
        assert (document["tenant"], document["replica"]) == ("acme", "replica-a")


def test_history_shows_tenants_and_replicas_only_when_there_are_any(store_url: str) -> None:
    def shown(runs: list[Any]) -> str:
        console = Console(record=True, width=200)
        render_history(console, runs)
        return console.export_text()

    with Store(store_url, replica="replica-a") as a, Store(store_url, replica="replica-b") as b:
        finished(a, GLOBEX, RunStatus.SUCCEEDED)
        single = shown(a.recent_runs())
        assert "tenant" not in single and "replica-a" not in single

        finished(a, ACME, RunStatus.SUCCEEDED, tenant="acme")
        one_replica = shown(a.recent_runs())
        assert "tenant" in one_replica and "acme" in one_replica and " by " not in one_replica

        finished(b, INITECH, RunStatus.FAILED, tenant="initech")
        fleet = shown(a.recent_runs())
        assert all(text in fleet for text in ("tenant", "acme", "initech", "replica-a", "replica-b"))


# --- tenant_states ----------------------------------------------------------------------------


def test_tenant_states_of_several_targets(store: Store) -> None:
    assert SUCCESSFUL == {RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.BLOCKED}
    # Interleaved, as a fleet's runs are.
    acme_ok = finished(store, ACME, RunStatus.SUCCEEDED, "acme")
    finished(store, GLOBEX, RunStatus.FAILED)
    globex_ok = finished(store, GLOBEX, RunStatus.SUCCEEDED)
    umbrella_partial = finished(store, UMBRELLA, RunStatus.PARTIAL)
    for _ in range(3):
        finished(store, ACME, RunStatus.FAILED, "acme")
    finished(store, INITECH, RunStatus.FAILED)
    finished(store, INITECH, RunStatus.FAILED)
    finished(store, INITECH, RunStatus.INTERRUPTED)  # breaks the streak: it did not fail
    finished(store, UMBRELLA, RunStatus.DRIFT)  # breaks it too, and is no success
    finished(store, UMBRELLA, RunStatus.FAILED)
    initech_last = finished(store, INITECH, RunStatus.FAILED)
    globex_running = store.start_run("apply", GLOBEX)
    finished(store, GLOBEX, RunStatus.FAILED)  # finished after a run that is still running (started later)
    acme_running = store.start_run("apply", ACME, "acme")

    states = store.tenant_states([ACME, GLOBEX, INITECH, UMBRELLA, NEVER, ACME])

    assert list(states) == [ACME, GLOBEX, INITECH, UMBRELLA, NEVER]
    assert states[NEVER] == TenantState(None, None, 0) == TenantState()

    def finished_at(run_id: int) -> object:
        run = store.get_run(run_id)
        assert run is not None and run.finished_at is not None
        return run.finished_at

    acme = states[ACME]
    assert acme.latest is not None and (acme.latest.id, acme.latest.status) == (acme_running, RunStatus.RUNNING)
    assert acme.latest.tenant == "acme"
    assert (acme.last_success_at, acme.consecutive_failures) == (finished_at(acme_ok), 3)

    globex = states[GLOBEX]
    assert globex.latest is not None and globex.latest.id == globex_running + 1
    assert (globex.last_success_at, globex.consecutive_failures) == (finished_at(globex_ok), 1)

    initech = states[INITECH]
    assert initech.latest is not None and initech.latest.id == initech_last
    assert (initech.last_success_at, initech.consecutive_failures) == (None, 1)

    umbrella = states[UMBRELLA]
    assert umbrella.latest is not None and umbrella.latest.status is RunStatus.FAILED
    assert (umbrella.last_success_at, umbrella.consecutive_failures) == (finished_at(umbrella_partial), 1)

    for target, state in states.items():
        assert store.consecutive_failures(target) == state.consecutive_failures
        assert store.last_success_at(target) == state.last_success_at
    assert store.tenant_states([]) == {}


def test_tenant_states_of_some_modes_only_see_those_runs_as_the_latest(store: Store) -> None:
    """The fleet's schedule counts from the service's applies: an operator's dry-run must not postpone one."""
    applied = finished(store, ACME, RunStatus.SUCCEEDED, "acme")
    audit = store.start_run("dry-run", ACME, "acme")
    store.finish_run(audit, RunStatus.DRIFT)
    latest = store.tenant_states([ACME, NEVER])[ACME].latest
    assert latest is not None and latest.id == audit
    of_applies = store.tenant_states([ACME, NEVER], [RunMode.APPLY])
    assert of_applies[ACME].latest is not None and of_applies[ACME].latest.id == applied
    assert of_applies[NEVER] == TenantState()


def test_tenant_states_issues_the_same_few_statements_for_3_or_50_targets(store: Store) -> None:
    targets = [f"{n:064x}" for n in range(50)]
    for target in targets[::2]:
        finished(store, target, RunStatus.FAILED)
        finished(store, target, RunStatus.SUCCEEDED)
        finished(store, target, RunStatus.FAILED)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        few = store.tenant_states(targets[:3])
        few_statements, statements[:] = len(statements), []
        many = store.tenant_states(targets)
        many_statements = len(statements)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)

    assert few_statements == many_statements <= 4
    assert len(many) == 50 and few == {target: many[target] for target in targets[:3]}
    assert [many[t].consecutive_failures for t in targets[:4]] == [1, 0, 1, 0]


# --- lock_holders -----------------------------------------------------------------------------


def test_lock_holders_names_a_live_holder_and_forgets_a_killed_one(
    store: Store, store_url: str, request: pytest.FixtureRequest
) -> None:
    assert store.lock_holders([ACME, GLOBEX]) == {}
    child = Holder(store_url, ACME, replica="replica-a")
    request.addfinalizer(child.close)

    with store.run_lock(INITECH):  # this process's lock of another target: not asked about, not reported
        holders = store.lock_holders([ACME, GLOBEX])
        assert list(holders) == [ACME]
        assert holders[ACME].startswith("reconcile replica-a, since ")
        assert lock_holders(store_url, [ACME]) == holders  # the same without a Store's engine
        assert set(store.lock_holders([ACME, INITECH])) == {ACME, INITECH}
    with pytest.raises(LockBusy) as busy:
        with store.run_lock(ACME):
            pytest.fail("the lock was taken twice")
    assert busy.value.holder == holders[ACME]

    child.kill()  # SIGKILL: the kernel (SQLite's flock) or the server (PostgreSQL) frees the lock, nothing else

    path = sqlite_path(store_url)
    if path is not None:  # the file stays behind, still naming its dead holder: that is not a lock
        assert json.loads(lock_path(path, ACME).read_text())["holder"] == "reconcile replica-a"
    deadline = time.monotonic() + 4
    while store.lock_holders([ACME, GLOBEX]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.lock_holders([ACME, GLOBEX]) == {}
    with store.run_lock(ACME):  # the probes left nothing held
        assert store.lock_holders([ACME])[ACME].startswith(f"reconcile pid {os.getpid()} on ")


def test_lock_holders_of_a_store_name_its_replica(store_url: str) -> None:
    with Store(store_url, replica="replica-b") as store, store.run_lock(ACME):
        [holder] = store.lock_holders([ACME, GLOBEX]).values()
        assert holder.startswith("reconcile replica-b, since ")
        with Store(store_url) as other, pytest.raises(LockBusy, match="held by reconcile replica-b, since "):
            with other.run_lock(ACME):
                pass
