"""One replica of a fleet, in the test's event loop: its slots, its fairness, its leases, its metrics.

The tenants are real (an Okta emulator app and a scim2-server tenant each, tests/support/fleet_lab.py), the
store is a SQLite file, and the replica is :class:`reconciler.service.fleet.Replica` as ``reconcile serve`` builds it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from reconciler.config import MetricsConfig, fingerprint, load_fleet
from reconciler.models.runs import RunMode, RunStatus
from reconciler.service.fleet import Replica
from reconciler.service.health import ReplicaHealth
from reconciler.service.notify import Notifier
from reconciler.store import Run, Store
from reconciler.testing.scim_server import RunningScimServer, free_loopback_port
from tests.service.test_service import notify_listener, short_socket_path
from tests.support.cli_runner import reconcile
from tests.support.fleet_lab import fleet_lab
from tests.support.service_process import eventually
from tests.support.wire_recorder import RecordingProxy, proxied

SLOW_READ_S = 1.2
"""Each answer of the slow tenant's platform is this late: its runs take seconds."""


def most_at_once(runs: list[Run]) -> int:
    """The most runs that were in flight at one moment."""
    edges = sorted([(r.started_at, 1) for r in runs] + [(r.finished_at, -1) for r in runs if r.finished_at])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def idle_slot_seconds(runs: list[Run], start: datetime, end: datetime, slots: int) -> float:
    """Slot-seconds left empty between ``start`` and ``end``: the integral of (slots - runs in flight)."""
    edges = sorted([(r.started_at, 1) for r in runs] + [(r.finished_at or end, -1) for r in runs])
    level, idle, moment = 0, 0.0, start
    for at, step in edges:
        if at > moment and moment < end:
            idle += max(0, slots - level) * (min(at, end) - moment).total_seconds()
            moment = min(at, end)
        level += step
    return idle + max(0, slots - level) * max(0.0, (end - moment).total_seconds())


async def until_each_fast_tenant_ran_three_times_beside_a_slow_run(store: Store, bound_s: float = 30.0) -> None:
    """Serve until the slow tenant has finished a run and every other tenant has finished three: what the test
    weighs. Bounded: a replica that never gets there fails the assertions below."""
    deadline = asyncio.get_running_loop().time() + bound_s
    while asyncio.get_running_loop().time() < deadline:
        finished = [r for r in store.recent_runs(10_000) if r.finished_at is not None]
        counts = {name: sum(r.tenant == name for r in finished) for name in ("tenant-02", "tenant-03", "tenant-04")}
        if any(r.tenant == "tenant-01" for r in finished) and min(counts.values()) >= 3:
            return
        await asyncio.sleep(0.2)


async def test_a_long_run_holds_one_slot_and_the_other_tenants_keep_their_schedule(
    tmp_path: Path, scim_server: RunningScimServer
) -> None:
    upstream = scim_server.base_url.removesuffix("/v2")
    with (
        RecordingProxy(upstream, read_latency_s=SLOW_READ_S) as slow,
        fleet_lab(
            tmp_path,
            scim_server,
            f"sqlite:///{tmp_path / 'fleet.db'}",
            tenants=4,
            users=5,
            interval_s=1.0,
            tick_s=0.1,
            concurrency=2,
            scim_url_of=lambda number, url: proxied(url, slow) if number == 1 else url,
        ) as lab,
    ):
        fleet = load_fleet(lab.config_path, lab.environment)
        with Store(fleet.store.url, replica="solo") as store:
            replica = Replica(fleet, store)
            serving = asyncio.create_task(replica.run())
            await until_each_fast_tenant_ran_three_times_beside_a_slow_run(store)
            replica.request_stop()
            assert await asyncio.wait_for(serving, 30) == 0
            runs = list(reversed(store.recent_runs(10_000)))
            metrics = replica.metrics.render().decode()

    slow_runs = [r for r in runs if r.tenant == "tenant-01"]
    assert slow_runs and all(r.finished_at - r.started_at > timedelta(seconds=2) for r in slow_runs), slow_runs
    assert most_at_once(runs) <= 2, "more runs at once than service.concurrency"
    for name in ("tenant-02", "tenant-03", "tenant-04"):
        own = [r for r in runs if r.tenant == name]
        assert len(own) >= 3, (name, own)
        for previous, following in zip(own, own[1:], strict=False):
            # Once due (the interval after its last start, and that run over), a tenant waits only while both
            # slots are busy. A slot left empty for as long as the slow tenant's runs last (over 2 s) would be
            # a wait behind it; a little is the dispatcher's tick and claim, longer on a busy machine.
            assert previous.finished_at is not None
            due = max(previous.started_at + timedelta(seconds=1.0), previous.finished_at)
            idle = idle_slot_seconds(runs, due, following.started_at, slots=2)
            assert idle < SLOW_READ_S, (name, due, following.started_at, idle)
    assert all(r.status is RunStatus.SUCCEEDED for r in runs if r.tenant != "tenant-01")
    assert 'reconciler_tenant_runs_total{status="succeeded",tenant="tenant-02"}' in metrics
    assert 'reconciler_tenant_last_success_timestamp_seconds{tenant="tenant-03"}' in metrics
    assert 'reconciler_claims_total{outcome="started"}' in metrics


async def test_a_tenant_whose_lease_someone_else_holds_is_left_to_them_and_run_once_released(
    tmp_path: Path, scim_server: RunningScimServer
) -> None:
    with fleet_lab(
        tmp_path, scim_server, f"sqlite:///{tmp_path / 'fleet.db'}", tenants=2, users=3, interval_s=3600.0
    ) as lab:
        fleet = load_fleet(lab.config_path, lab.environment)
        held_tenant = fleet.tenants[0]
        with Store(fleet.store.url, replica="solo") as store, Store(fleet.store.url, replica="other") as other:
            replica = Replica(fleet, store)
            # An operator's audit of tenant-02 does not count as its scheduled run.
            audit = ("--config", lab.config_path, "--tenant", "tenant-02", "--dry-run")
            assert (await asyncio.to_thread(reconcile, *audit, env=lab.environment)).code == 2
            with other.run_lock(fingerprint(held_tenant)):
                assert replica.dispatch() == ["tenant-02"]
                holders = store.lock_holders([fingerprint(held_tenant)])
                assert "reconcile other" in holders[fingerprint(held_tenant)], holders
                await eventually(lambda: not replica.running, 30, "tenant-02's run to end")
                assert replica.dispatch() == [], "tenant-02 is not due for an hour, tenant-01 is still held"
            assert replica.dispatch() == ["tenant-01"]
            await eventually(lambda: not replica.running, 30, "tenant-01's run to end")
            assert replica.dispatch() == []
            runs = store.recent_runs(100)
    assert sorted((r.tenant, r.mode, r.status, r.replica) for r in runs if r.replica == "solo") == [
        ("tenant-01", RunMode.APPLY, RunStatus.SUCCEEDED, "solo"),
        ("tenant-02", RunMode.APPLY, RunStatus.SUCCEEDED, "solo"),
    ]


async def test_sighup_adds_a_tenant_from_the_next_tick_and_a_bad_file_is_rejected(
    tmp_path: Path, scim_server: RunningScimServer
) -> None:
    with fleet_lab(
        tmp_path, scim_server, f"sqlite:///{tmp_path / 'fleet.db'}", tenants=2, users=2, interval_s=3600.0
    ) as lab:
        original = lab.config_path.read_text()
        first, second = original.split("[[tenants]]\n")[1:]
        lab.config_path.write_text(original.replace("[[tenants]]\n" + second, ""))  # only tenant-01 at first
        with Store(load_fleet(lab.config_path, lab.environment).store.url, replica="solo") as store:
            replica = Replica(load_fleet(lab.config_path, lab.environment), store, environ=lab.environment)
            assert replica.dispatch() == ["tenant-01"]
            await eventually(lambda: not replica.running, 30, "tenant-01's run to end")

            lab.config_path.write_text(original.replace('name = "tenant-02"', 'name = "Tenant Two!"'))
            assert replica.reload() is False, "a bad file must be rejected"
            assert [t.tenant for t in replica.fleet.tenants] == ["tenant-01"], "the running file is kept"
            assert replica.dispatch() == []

            lab.config_path.write_text(original)
            assert replica.reload() is True
            assert replica.dispatch() == ["tenant-02"]
            await eventually(lambda: not replica.running, 30, "tenant-02's run to end")
    assert first  # the file had both tenants to begin with


async def test_a_replica_serves_metrics_and_health_tells_systemd_and_its_stop_leaves_no_run_running(
    tmp_path: Path, scim_server: RunningScimServer
) -> None:
    port = free_loopback_port()
    socket_path = short_socket_path()
    with (
        fleet_lab(
            tmp_path, scim_server, f"sqlite:///{tmp_path / 'fleet.db'}", tenants=3, users=2, okta_latency_ms=600
        ) as lab,
        notify_listener(socket_path) as notifications,
    ):
        fleet = replace(load_fleet(lab.config_path, lab.environment), metrics=MetricsConfig(f"127.0.0.1:{port}"))
        with Store(fleet.store.url, replica="solo") as store:
            replica = Replica(fleet, store, notifier=Notifier({"NOTIFY_SOCKET": socket_path}))
            serving = asyncio.create_task(replica.run())
            await eventually(lambda: len(replica.running) == 2, 30, "two runs in flight")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await client.get("/healthz")
                metrics = ""

                async def scrape() -> bool:  # the per-tenant gauges follow the store at each tick
                    nonlocal metrics
                    metrics = (await client.get("/metrics")).text
                    return 'reconciler_tenant_running{tenant="tenant-01"} 1.0' in metrics

                for _ in range(50):
                    if await scrape():
                        break
                    await asyncio.sleep(0.1)
            replica.request_stop("SIGTERM")
            assert await asyncio.wait_for(serving, 30) == 0
            runs = store.recent_runs(100)
        messages = notifications()
    assert health.status_code == 200 and health.text.startswith("ok"), health.text
    assert "reconciler_runs_in_flight 2.0" in metrics
    assert 'reconciler_tenant_running{tenant="tenant-01"} 1.0' in metrics
    assert messages[0].startswith("READY=1") and "3 tenant(s)" in messages[0], messages
    assert any("running here: tenant-01, tenant-02" in m for m in messages), messages
    assert any(m.startswith("STOPPING=1") for m in messages), messages
    assert len(runs) == 2, "no tenant is claimed once the stop is asked for"
    assert all(run.status is RunStatus.SUCCEEDED for run in runs), [(r.tenant, r.status) for r in runs]


def test_a_replica_is_unhealthy_once_it_stops_looking_for_due_tenants() -> None:
    now = [1000.0]
    health = ReplicaHealth(tick_s=5.0, started_at=1000.0, clock=lambda: now[0])
    assert health.check() == (True, "ok: starting")
    now[0] += 30
    health.last_tick_at = now[0]
    assert health.check() == (True, "ok: looked for due tenants 0 s ago")
    now[0] += 3 * 5.0 + 30 + 1
    health.last_error = "OperationalError: the store is down"
    healthy, why = health.check()
    assert not healthy and "no look for due tenants for 46 s" in why and "the store is down" in why


async def test_a_run_whose_lease_is_lost_is_cancelled_and_the_tenant_run_again(
    tmp_path: Path,
    scim_server: RunningScimServer,
    postgres,
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    """The lock's PostgreSQL session ends under a run (a failover, a cut): the run must not go on unleased."""
    url = postgres.create_database("lease")
    with fleet_lab(tmp_path, scim_server, url, tenants=1, users=3, interval_s=3600.0, okta_latency_ms=1500) as lab:
        fleet = load_fleet(lab.config_path, lab.environment)
        with Store(url, replica="solo") as store:
            replica = Replica(fleet, store)
            assert replica.dispatch() == ["tenant-01"]
            await asyncio.sleep(0.3)  # the run waits on Okta
            admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                ended = connection.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": "reconcile solo"},
                ).all()
            admin.dispose()
            assert ended == [(True,)], "exactly the lease's session"
            await eventually(lambda: not replica.running, 30, "the unleased run to stop")
            assert replica.dispatch() == ["tenant-01"], "a run cut off is due again at once"
            await eventually(lambda: not replica.running, 30, "the new run to end")
            runs = list(reversed(store.recent_runs(10)))
    assert [run.status for run in runs] == [RunStatus.INTERRUPTED, RunStatus.SUCCEEDED]
    assert "tenant-01: lost its lease" in caplog.text
