"""A fleet's replicas follow their tenants' System Logs: one replica per tenant (its follow lease), a killed
one's tenants taken over from the stored cursor, the leases let go on stop and on a reload that drops a tenant.

Real ``reconcile serve`` replicas (or a :class:`Replica` in the test's loop), the Okta emulator (an app per
tenant) and scim2-server (a tenant each) on 127.0.0.1, and the store the fleet shares.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from reconciler.config import fingerprint, load_fleet
from reconciler.models.runs import RunMode, RunStatus
from reconciler.run.follower import follow_lease_name
from reconciler.service.fleet import Replica
from reconciler.store import Store
from reconciler.testing.scim_server import RunningScimServer
from tests.service.test_metrics import samples, value
from tests.support.fleet_lab import LabTenant, fleet_lab, wait_for
from tests.support.service_process import eventually

FOLLOW = 'poll = "1s"\nrecheck_after = 0\n'
HANG_S = 60.0
"""The bound on waiting for what the replicas do anyway: it only catches a hang."""


def platform_active(tenant: LabTenant, token: str, okta_user_id: str) -> bool | None:
    """Whether the tenant's platform has the Okta user active (None: not there)."""
    answer = httpx.get(
        f"{tenant.scim_url}/Users", params={"count": 1000}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    answer.raise_for_status()
    users = answer.json().get("Resources", [])
    return next((u["active"] for u in users if u.get("externalId") == okta_user_id), None)


def test_each_tenant_is_followed_by_one_replica_and_a_killed_ones_tenant_is_taken_over_from_its_cursor(
    tmp_path: Path,
    scim_server: RunningScimServer,
    postgres,  # type: ignore[no-untyped-def]
) -> None:
    url = postgres.create_database("follow")
    with fleet_lab(
        tmp_path, scim_server, url, tenants=2, users=3, interval_s=3600.0, tick_s=0.2, incremental=FOLLOW
    ) as lab:
        fleet = load_fleet(lab.config_path, lab.environment)
        targets = {t.tenant: fingerprint(t) for t in fleet.tenants}
        leases = {name: follow_lease_name(fp) for name, fp in targets.items()}
        replicas = {name: lab.start_replica(name) for name in ("replica-a", "replica-b")}
        with Store(url) as store:

            def followers() -> dict[str, str]:
                held = store.lock_holders(leases.values())
                return {name: held.get(lease, "") for name, lease in leases.items()}

            def settled() -> bool:
                holders = followers()
                cursors = all(store.log_cursor(fp) is not None for fp in targets.values())
                return cursors and {h.partition(",")[0] for h in holders.values()} == {
                    "reconcile replica-a",
                    "reconcile replica-b",
                }

            wait_for(settled, HANG_S, "each tenant followed by its own replica, past its first audit")
            victim_name = followers()["tenant-01"].partition(",")[0].removeprefix("reconcile ")
            survivor = replicas["replica-b" if victim_name == "replica-a" else "replica-a"]
            person = lab.emulator.listed_user_ids(lab.tenants[0].app_id)[0]
            assert platform_active(lab.tenants[0], scim_server.token, person) is True

            replicas[victim_name].kill()
            killed_at = datetime.now(UTC)
            cursor_before = store.log_cursor(targets["tenant-01"])
            lab.emulator.unassign_user(lab.tenants[0].app_id, person)

            wait_for(
                lambda: platform_active(lab.tenants[0], scim_server.token, person) is False,
                HANG_S,
                "the unassignment repaired by the replica that took tenant-01 over",
            )
            taken_over_by = followers()["tenant-01"]
            assert cursor_before is not None

            def checkpointed() -> bool:  # the write shows on the platform before the batch's checkpoint is saved
                after = store.log_cursor(targets["tenant-01"])
                return after is not None and after.updated_at > cursor_before.updated_at

            wait_for(checkpointed, HANG_S, "the cursor checkpointed after the repair")
            cursor_after = store.log_cursor(targets["tenant-01"])
            assert survivor.stop() == 0, survivor.log
            released = followers()
            runs = [r for r in store.recent_runs(1000) if r.tenant == "tenant-01"]

    assert taken_over_by.startswith(f"reconcile {survivor.name}"), taken_over_by
    full_audits_after = [r for r in runs if r.mode is RunMode.APPLY and r.started_at >= killed_at]
    assert full_audits_after == [], "the take-over resumed from the stored cursor, with no full audit"
    assert len([r for r in runs if r.mode is RunMode.APPLY]) == 1, "one full audit for the follower's start"
    repairs = [r for r in runs if r.mode is RunMode.INCREMENTAL and r.applied and r.replica == survivor.name]
    assert [(r.status, r.applied) for r in repairs] == [(RunStatus.SUCCEEDED, 1)]
    assert cursor_before is not None and cursor_after is not None
    assert cursor_after.updated_at > cursor_before.updated_at and cursor_after.high_water > cursor_before.high_water
    assert released == {"tenant-01": "", "tenant-02": ""}, "a stopped replica lets its follow leases go"


async def test_a_replica_follows_within_its_share_shows_it_in_metrics_and_lets_go_on_reload_and_stop(
    tmp_path: Path, scim_server: RunningScimServer
) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with fleet_lab(tmp_path, scim_server, url, tenants=2, users=2, interval_s=3600.0, incremental=FOLLOW) as lab:
        fleet = load_fleet(lab.config_path, lab.environment)
        leases = [follow_lease_name(fingerprint(t)) for t in fleet.tenants]
        with Store(url, replica="solo") as store:
            replica = Replica(fleet, store)
            serving = asyncio.create_task(replica.run())
            await eventually(lambda: len(store.lock_holders(leases)) == 2, 30, "both tenants followed")
            await eventually(lambda: all(store.log_cursor(fingerprint(t)) for t in fleet.tenants), 30, "the audits")
            await eventually(  # a follower shows as following once it has polled: wait for both, not one
                lambda: all(
                    value(samples(replica.metrics.render().decode()), "reconciler_follower_following", tenant=name)
                    for name in ("tenant-01", "tenant-02")
                ),
                10,
                "both tenants' followers polling",
            )
            scraped = samples(replica.metrics.render().decode())

            # A reload that turns tenant-02's following off lets its lease go, from the next tick.
            second = fleet.tenants[1]
            off = replace(second, incremental=replace(second.incremental, enabled=False))
            replica.adopt(replace(fleet, tenants=(fleet.tenants[0], off)))
            await eventually(lambda: list(store.lock_holders(leases)) == [leases[0]], 10, "tenant-02 let go")
            after_reload = samples(replica.metrics.render().decode())

            replica.request_stop()
            assert await asyncio.wait_for(serving, 30) == 0
            after_stop = store.lock_holders(leases)
            runs = store.recent_runs(100)

    assert value(scraped, "reconciler_tenants_followed") == 2
    assert value(scraped, "reconciler_follower_following", tenant="tenant-01") == 1
    assert value(after_reload, "reconciler_tenants_followed") == 1
    assert value(after_reload, "reconciler_follower_following", tenant="tenant-02") == 0
    assert after_stop == {}, "a stopped replica lets its follow leases go"
    audits = sorted(r.tenant or "" for r in runs if r.mode is RunMode.APPLY)
    assert audits == ["tenant-01", "tenant-02"], "each follower took its tenant's scheduled run as its audit"
