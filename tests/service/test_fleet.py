"""Three replicas and ten tenants on a real PostgreSQL: the fleet as an operator runs it.

Each replica is a real ``reconcile serve`` process; the Okta emulator (an app per
tenant) and scim2-server (a tenant each) serve on 127.0.0.1. Everything asserted is
read back from the store, as ``reconcile status`` and an auditor would read it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from reconciler.models.runs import RunStatus
from reconciler.store import Run
from reconciler.testing.scim_server import RunningScimServer
from tests.support.cli_runner import reconcile
from tests.support.fleet_lab import FleetLab, fleet_lab, running_runs, wait_for

TENANTS = 10
INTERVAL_S = 4.0
TICK_S = 0.5
SOAK_S = 12.0
"""How long the three replicas serve at least, all told: three intervals, so that every tenant runs three times
(its first run, one across the kill, one more), each gap checked on schedule."""
HANG_S = 120.0
"""The bound on waiting for what the replicas do anyway: it only catches a hang."""


@pytest.fixture
def pg_url(postgres) -> str:  # type: ignore[no-untyped-def]
    return postgres.create_database("fleet")


def just_started(runs: list[Run], replica: str) -> bool:
    """A run of ``replica`` is recorded running and started less than 100 ms ago."""
    now = datetime.now(UTC)
    return any((now - run.started_at).total_seconds() < 0.1 for run in running_runs(runs, replica))


def fewest_successes(runs: list[Run]) -> int:
    """The fewest successful runs any tenant has had (0 while one has none)."""
    successes = Counter(run.tenant for run in runs if run.status is RunStatus.SUCCEEDED)
    return min(successes.values()) if len(successes) == TENANTS else 0


def poll_status(lab: FleetLab) -> dict:
    """``reconcile status --output json`` until it shows a tenant held by a replica (runs are short)."""
    deadline = time.monotonic() + 20
    while True:
        answer = reconcile("--config", lab.config_path, "status", "--output", "json")
        assert answer.code == 0, answer.stderr
        document = answer.json()
        if any(row["held_by"] for row in document["tenants"]) or time.monotonic() > deadline:
            return document
        time.sleep(0.1)


def by_tenant(runs: list[Run]) -> dict[str, list[Run]]:
    grouped: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        assert run.tenant is not None, f"run {run.id} has no tenant"
        grouped[run.tenant].append(run)
    return grouped


def test_three_replicas_reconcile_ten_tenants_on_schedule_and_take_over_a_killed_one(
    tmp_path: Path, scim_server: RunningScimServer, pg_url: str
) -> None:
    with fleet_lab(
        tmp_path, scim_server, pg_url, tenants=TENANTS, interval_s=INTERVAL_S, tick_s=TICK_S, okta_latency_ms=150
    ) as lab:
        started = time.monotonic()
        replicas = [lab.start_replica(name) for name in ("replica-a", "replica-b", "replica-c")]
        wait_for(
            lambda: len({r.tenant for r in lab.runs() if r.status is RunStatus.SUCCEEDED}) == 10,
            60,
            "a first successful run of every tenant",
        )

        # reconcile status, while they serve: every tenant, its last run, and which replica holds which.
        status = poll_status(lab)

        # SIGKILL a replica just after it started a run: the run cannot have ended (it waits on Okta for longer).
        victim = replicas[0]
        wait_for(lambda: just_started(lab.runs(), victim.name), 30, f"{victim.name} to start a run", poll_s=0.02)
        victim.kill()
        killed_at = datetime.now(UTC)
        orphaned = running_runs(lab.runs(), victim.name)

        # The soak's length at least, then until every tenant has run three times: a loaded machine makes runs
        # slower, not fewer (the gaps between them are checked below, whatever the load).
        time.sleep(max(0.0, SOAK_S - (time.monotonic() - started)))
        wait_for(lambda: fewest_successes(lab.runs()) >= 3, HANG_S, "three successful runs of every tenant")
        for replica in replicas[1:]:
            assert replica.stop() == 0, replica.log
        runs = lab.runs()

    assert all(run.status is not RunStatus.RUNNING for run in runs), "a run was left running after a clean stop"
    tenants = by_tenant(runs)
    assert sorted(tenants) == [t.name for t in lab.tenants]
    assert {run.replica for run in runs} == {"replica-a", "replica-b", "replica-c"}, "the work was not shared"

    for name, history in tenants.items():
        history.sort(key=lambda run: run.started_at)
        for earlier, later in zip(history, history[1:], strict=False):
            # Never two runs of one tenant at once, whichever replicas ran them. A killed run has no recorded
            # end (it is marked interrupted by the replica that takes its tenant over): it ended with its replica.
            ended = earlier.finished_at
            if ended is None:
                assert earlier.id in {run.id for run in orphaned}, f"{name}: run {earlier.id} has no end"
                ended = killed_at
            assert ended <= later.started_at, (
                f"{name}: run {earlier.id} ({earlier.replica}) overlaps run {later.id} ({later.replica})"
            )
            gap = (later.started_at - earlier.started_at).total_seconds()
            if earlier.status is RunStatus.SUCCEEDED:
                # On schedule: not before its interval (no replica ran it again early) ...
                assert gap >= INTERVAL_S - 0.05, f"{name}: runs {earlier.id} and {later.id} only {gap:.2f} s apart"
                # ... and not much after: an interval, a tick, and the time a busy replica takes.
                assert gap <= INTERVAL_S + TICK_S + 3.0, f"{name}: {gap:.2f} s between runs {earlier.id} and {later.id}"
        assert sum(run.status is RunStatus.SUCCEEDED for run in history) >= 3, f"{name}: too few runs: {history}"

    # The killed replica's runs: interrupted, and each tenant taken over by another replica within a few ticks.
    assert orphaned
    for dead in orphaned:
        record = next(run for run in runs if run.id == dead.id)
        assert record.status is RunStatus.INTERRUPTED, record
        after = [r for r in tenants[record.tenant] if r.started_at > record.started_at]
        assert after and after[0].replica != victim.name and after[0].status is RunStatus.SUCCEEDED, after[:1]
        took_over_in = (after[0].started_at - killed_at).total_seconds()
        assert took_over_in < 5, f"{record.tenant} taken over {took_over_in:.1f} s after its replica was killed"

    # Status seen while serving: every tenant, its last run, and who held a tenant.
    listed = {row["tenant"]: row for row in status["tenants"]}
    assert sorted(listed) == [t.name for t in lab.tenants]
    assert all(row["last_run"] is not None and row["last_run"]["replica"] for row in listed.values()), listed
    holders = {row["held_by"] for row in listed.values() if row["held_by"]}
    assert holders and all(h.startswith("reconcile replica-") for h in holders), holders

    # Each tenant's own tokens reached its runs, and no log line.
    secrets = [t.okta_token for t in lab.tenants] + [scim_server.token]
    for replica in replicas:
        assert "tenant tenant-" in replica.log
        assert not [secret for secret in secrets if secret in replica.log], f"a token in {replica.name}'s log"

    # And the platform side is really in line: every tenant's users were created on its own SCIM tenant.
    for tenant in lab.tenants:
        answer = httpx.get(
            f"{tenant.scim_url}/Users", params={"count": 1000}, headers={"Authorization": f"Bearer {scim_server.token}"}
        ).json()
        assert answer["totalResults"] == 20, tenant.name
