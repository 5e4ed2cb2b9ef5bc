"""When a tenant is due: the pure part of the fleet (reconciler.service.schedule.next_due, due_tenants).

Every replica computes the same answer from the same store rows, so these are plain
functions of a tenant's configuration, its state in the store and the time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from reconciler.config import (
    Config,
    OktaConfig,
    PolicyConfig,
    ScheduleConfig,
    ScimConfig,
    StoreConfig,
    ThresholdsConfig,
    fingerprint,
)
from reconciler.models.runs import RunMode, RunStatus
from reconciler.secret import Secret
from reconciler.service.schedule import due_tenants, next_due
from reconciler.store import Run, TenantState

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def tenant(name: str, **schedule: object) -> Config:
    return Config(
        OktaConfig("https://example.okta.com", f"0oa{name}", "api_token", Secret("t")),
        ScimConfig(f"https://{name}.example.com/scim", Secret("s")),
        mapping={},
        policy=PolicyConfig(),
        store=StoreConfig(),
        schedule=replace(ScheduleConfig(jitter_s=0.0), **schedule),
        tenant=name,
    )


def last_run(status: RunStatus, started: datetime, run_id: int = 7) -> Run:
    return Run(id=run_id, started_at=started, mode=RunMode.APPLY, status=status, config_fingerprint="x")


def state(status: RunStatus | None = None, started: datetime = NOW, failures: int = 0) -> TenantState:
    latest = last_run(status, started) if status is not None else None
    return TenantState(latest=latest, last_success_at=None, consecutive_failures=failures)


def test_a_tenant_is_due_one_interval_after_its_latest_run_started() -> None:
    config = tenant("acme", interval_s=600.0)
    assert next_due(config, state(RunStatus.SUCCEEDED, NOW - timedelta(minutes=4)), NOW) == NOW + timedelta(minutes=6)
    assert next_due(config, state(RunStatus.FAILED, NOW - timedelta(minutes=11)), NOW) == NOW - timedelta(minutes=1)


def test_a_tenant_never_run_is_due_since_the_replica_started_unless_run_at_start_is_off() -> None:
    started = NOW - timedelta(minutes=2)
    assert next_due(tenant("acme"), state(), NOW, since=started) == started
    assert next_due(tenant("acme"), state(), NOW) == NOW
    later = tenant("acme", run_at_start=False, interval_s=300.0)
    assert next_due(later, state(), NOW, since=started) == started + timedelta(minutes=5)
    assert next_due(later, state(), NOW + timedelta(minutes=4), since=started) == started + timedelta(minutes=5)


def test_a_run_cut_off_is_due_again_at_once() -> None:
    """Left running by a killed replica, or interrupted by a stop: another replica takes it on its next tick."""
    began = NOW - timedelta(seconds=5)
    for status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
        assert next_due(tenant("acme", interval_s=3600.0), state(status, began), NOW) == began


def test_a_cron_tenant_is_due_at_the_first_fire_time_after_its_latest_run() -> None:
    config = tenant("acme", cron="0 3 * * *")
    started = datetime(2026, 11, 29, 3, 0, 2, tzinfo=UTC)
    assert next_due(config, state(RunStatus.SUCCEEDED, started), NOW) == datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def test_a_quarantined_tenant_waits_the_quarantine_interval() -> None:
    config = replace(tenant("acme", interval_s=60.0), thresholds=ThresholdsConfig(quarantine_after=3))
    started = NOW - timedelta(minutes=5)
    assert next_due(config, state(RunStatus.FAILED, started, failures=2), NOW) == started + timedelta(minutes=1)
    assert next_due(config, state(RunStatus.FAILED, started, failures=3), NOW) == started + timedelta(hours=6)


def test_jitter_is_the_same_on_every_replica_and_within_the_bound() -> None:
    config = tenant("acme", interval_s=600.0, jitter_s=120.0)
    seen = state(RunStatus.SUCCEEDED, NOW)
    due = next_due(config, seen, NOW)
    assert due == next_due(config, seen, NOW + timedelta(seconds=30)), "replicas reading later must agree"
    assert NOW + timedelta(minutes=10) <= due <= NOW + timedelta(minutes=12)
    spread = {next_due(tenant(f"t{n}", interval_s=600.0, jitter_s=120.0), seen, NOW) for n in range(20)}
    assert len(spread) > 15, "many tenants on one schedule must not start at the same instant"


def test_the_most_overdue_tenant_is_offered_first_and_running_ones_are_skipped() -> None:
    configs = [tenant(name, interval_s=60.0) for name in ("a", "b", "c", "d")]
    states = {
        fingerprint(configs[0]): state(RunStatus.SUCCEEDED, NOW - timedelta(seconds=70)),
        fingerprint(configs[1]): state(RunStatus.SUCCEEDED, NOW - timedelta(seconds=300)),
        fingerprint(configs[2]): state(RunStatus.SUCCEEDED, NOW - timedelta(seconds=10)),
        fingerprint(configs[3]): state(RunStatus.SUCCEEDED, NOW - timedelta(seconds=200)),
    }
    assert [d.name for d in due_tenants(configs, states, NOW)] == ["b", "d", "a"]
    assert [d.name for d in due_tenants(configs, states, NOW, skip=[fingerprint(configs[1])])] == ["d", "a"]


def test_tenants_never_run_are_not_overtaken_by_tenants_that_run_again_and_again() -> None:
    """Twelve tenants, two slots, an interval shorter than a round: each waiting tenant gets its turn.

    A tenant never run used to be due "now", which is later than the due time of a tenant that ran a
    moment ago and is already due again: the first tenants ran over and over while the others never ran.
    """
    configs = [tenant(f"t{n:02d}", interval_s=0.5) for n in range(12)]
    started = NOW
    ran: list[str] = []
    states: dict[str, TenantState] = {}
    clock = started
    for run_id in range(1, 25):  # two slots: each tick runs the two most overdue, for one second
        clock += timedelta(seconds=0.5)
        for due in due_tenants(configs, states, clock, since=started)[:2]:
            ran.append(due.name)
            latest = Run(
                id=run_id, started_at=clock, mode=RunMode.APPLY, status=RunStatus.SUCCEEDED, config_fingerprint="x"
            )
            states[fingerprint(due.config)] = TenantState(latest=latest)
    assert set(ran[:12]) == {f"t{n:02d}" for n in range(12)}, ran[:12]
    assert all(ran.count(name) >= 3 for name in set(ran)), ran
