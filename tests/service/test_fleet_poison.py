"""A poison tenant: its run kills its replica every time; after ``quarantine_after_interrupted`` (3) such deaths
it is quarantined, alerted once and shown by ``reconcile status``, and the other tenants keep their schedule.

Real ``reconcile serve`` replicas share a SQLite store; the Okta emulator and scim2-server serve the tenants
on 127.0.0.1. The poison tenant's SCIM endpoint accepts connections and never answers, so each of its runs
hangs until the test SIGKILLs the replica running it, as the OOM killer would. A killed replica is replaced
by a new one, as systemd's ``Restart=`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.config import fingerprint, load_fleet
from reconciler.models.runs import RunMode, RunStatus
from reconciler.service.fleet import Replica
from reconciler.store import Run, Store
from reconciler.store.runs import INTERRUPTED_RUN_ERROR
from reconciler.testing.scim_server import RunningScimServer
from tests.alerts.test_alerts import Webhook, webhook  # noqa: F401  (the fixture)
from tests.support.cli_runner import reconcile
from tests.support.fleet_lab import FleetLab, ReplicaProcess, fleet_lab, wait_for
from tests.support.service_process import eventually

INTERVAL_S = 1.5
TICK_S = 0.2
KILLS = 3
"""``quarantine_after_interrupted``'s default."""
HANG_S = 60.0
"""The bound on waiting for what the replicas do anyway: it only catches a hang."""


@contextlib.contextmanager
def silent_endpoint() -> Iterator[str]:
    """A SCIM base URL whose server takes every connection and never answers: a run on it hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # never accepted: the kernel completes the handshakes, nobody reads the requests
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/scim/v2"


def running_poison_run(lab: FleetLab, alive: dict[str, ReplicaProcess]) -> Run | None:
    """The poison tenant's run in flight on a live replica, if one has started."""
    return next(
        (r for r in lab.runs() if r.tenant == "tenant-01" and r.status is RunStatus.RUNNING and r.replica in alive),
        None,
    )


@pytest.mark.slow  # five replica processes started one after another: ~30 s on a loaded machine
def test_a_tenant_that_kills_its_replica_is_quarantined_alerted_once_and_the_others_keep_their_schedule(
    tmp_path: Path,
    scim_server: RunningScimServer,
    webhook: Webhook,  # noqa: F811
) -> None:
    with (
        silent_endpoint() as hanging,
        fleet_lab(
            tmp_path,
            scim_server,
            f"sqlite:///{tmp_path / 'fleet.db'}",
            tenants=3,
            users=2,
            interval_s=INTERVAL_S,
            tick_s=TICK_S,
            concurrency=2,
            scim_url_of=lambda number, url: hanging if number == 1 else url,
            extra=f'[alerts]\nurls = ["{webhook.url}"]\n',
        ) as lab,
    ):
        alive = {name: lab.start_replica(name) for name in ("replica-1", "replica-2")}
        for number in range(3, 3 + KILLS):
            wait_for(lambda: running_poison_run(lab, alive) is not None, HANG_S, "a run of the poison tenant")
            victim = running_poison_run(lab, alive)
            assert victim is not None and victim.replica is not None
            alive.pop(victim.replica).kill()
            if number < 2 + KILLS:  # systemd restarts it; after the last kill, the survivor is enough
                alive[f"replica-{number}"] = lab.start_replica(f"replica-{number}")

        quarantined_at = time.monotonic()

        wait_for(lambda: any("Quarantined" in post.get("title", "") for post in webhook.posts), HANG_S, "the alert")
        status = reconcile("--config", lab.config_path, "status", "--output", "json", env=lab.environment)
        text_status = reconcile("--config", lab.config_path, "status", env={**lab.environment, "COLUMNS": "250"})

        # The others keep running on schedule: two more runs each after the quarantine, and no poison run.
        seen = len(lab.runs())
        wait_for(
            lambda: all(
                sum(r.tenant == name and r.status is RunStatus.SUCCEEDED for r in lab.runs()[seen:]) >= 2
                for name in ("tenant-02", "tenant-03")
            ),
            HANG_S,
            "two more runs of each healthy tenant",
        )
        assert time.monotonic() - quarantined_at < 4 * INTERVAL_S + 3, "the healthy tenants fell behind"
        runs = lab.runs()

    poison_runs = [r for r in runs if r.tenant == "tenant-01"]
    assert len(poison_runs) == KILLS, "a quarantined tenant is not run again before quarantine_interval"
    assert all(r.status is RunStatus.INTERRUPTED and r.error == INTERRUPTED_RUN_ERROR for r in poison_runs)
    assert len({r.replica for r in poison_runs}) == KILLS, "each run killed a different replica"

    alerts = [post for post in webhook.posts if "Quarantined" in post.get("title", "")]
    assert len(alerts) == 1, [post["title"] for post in webhook.posts]
    assert "[tenant-01]" in alerts[0]["title"] and "3 runs in a row died with their replica" in alerts[0]["title"]

    assert status.code == 0, status.stderr
    rows = {row["tenant"]: row for row in status.json()["tenants"]}
    assert rows["tenant-01"]["quarantined"] is True and rows["tenant-01"]["consecutive_interrupted"] == KILLS
    assert not rows["tenant-02"]["quarantined"] and not rows["tenant-03"]["quarantined"], rows
    assert "quarantined, 3 died with their replica" in " ".join(text_status.stdout.split()), text_status.stdout

    for name in ("tenant-02", "tenant-03"):
        after = [r for r in runs[seen:] if r.tenant == name]
        assert all(r.status is RunStatus.SUCCEEDED for r in after), after
        starts = [r.started_at for r in after]
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
        assert all(INTERVAL_S - 0.05 <= gap <= INTERVAL_S + TICK_S + 1.5 for gap in gaps), (name, gaps)


async def test_the_replica_that_finds_the_third_dead_run_quarantines_the_tenant_and_a_run_by_hand_lifts_it(
    tmp_path: Path,
    scim_server: RunningScimServer,
    webhook: Webhook,  # noqa: F811
) -> None:
    """In the test's event loop: the runs a dead replica left are written as it would have left them."""
    extra = f'[alerts]\nurls = ["{webhook.url}"]\n'
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with fleet_lab(tmp_path, scim_server, url, tenants=2, users=2, interval_s=3600.0, extra=extra) as lab:
        fleet = load_fleet(lab.config_path, lab.environment)
        poison = fingerprint(fleet.tenants[0])
        with Store(url, replica="dead") as dead, Store(url, replica="solo") as store:
            for _ in range(KILLS - 1):  # two deaths found already, and a third run left running
                dead.start_run(RunMode.APPLY, poison, tenant="tenant-01")
                dead.mark_interrupted(fingerprint=poison)
            third = dead.start_run(RunMode.APPLY, poison, tenant="tenant-01")

            replica = Replica(fleet, store)
            assert replica.dispatch() == ["tenant-02"], "the poison tenant is quarantined, not run"
            await eventually(lambda: not replica.in_flight(), 30, "tenant-02's run and the alert")
            assert replica.dispatch() == [], "quarantined: not due before quarantine_interval"
            quarantined = await asyncio.to_thread(reconcile, "--config", lab.config_path, "status", "--output", "json")

            # The operator runs it by hand once the cause is fixed: a run that ends on its own lifts it.
            by_hand = ("--config", lab.config_path, "--tenant", "tenant-01")
            assert (await asyncio.to_thread(reconcile, *by_hand, env=lab.environment)).code == 0
            lifted = await asyncio.to_thread(reconcile, "--config", lab.config_path, "status", "--output", "json")
            assert store.get_run(third).status is RunStatus.INTERRUPTED

    rows = {row["tenant"]: row for row in quarantined.json()["tenants"]}
    assert rows["tenant-01"]["quarantined"] and rows["tenant-01"]["consecutive_interrupted"] == KILLS, rows
    assert not rows["tenant-02"]["quarantined"]
    after = {row["tenant"]: row for row in lifted.json()["tenants"]}["tenant-01"]
    assert not after["quarantined"] and after["consecutive_interrupted"] == 0, after
    titles = [post["title"] for post in webhook.posts]
    assert [t.partition(": ")[2].partition(" in a row")[0] for t in titles if "Quarantined" in t] == [
        "Quarantined: 3 runs",
        "Resolved: Quarantined: 3 runs",
    ], titles
