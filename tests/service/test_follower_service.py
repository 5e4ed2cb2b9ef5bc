"""``serve`` with its System Log follower: an Okta change repaired between full audits, seen in /metrics."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from reconciler.config import fingerprint, load_config
from reconciler.models.runs import RunMode, RunStatus
from reconciler.service.single import Service
from reconciler.store import Store
from reconciler.testing.scim_server import free_loopback_port
from tests.conftest import Okta, all_users
from tests.service.test_metrics import samples, value
from tests.service.test_service import eventually, running, service_config
from tests.support.service_process import service_process

FOLLOW = '[incremental]\npoll = "1s"\nrecheck_after = 0\n'


def active(platform: httpx.Client, okta_user_id: str) -> bool | None:
    return next((u["active"] for u in all_users(platform) if u.get("externalId") == okta_user_id), None)


async def test_serve_repairs_an_okta_change_between_audits_and_counts_it(
    tmp_path: Path, okta: Okta, scim_url: str, platform: httpx.Client
) -> None:
    people = okta.emulator.add_assigned_users(okta.app_id, 3)
    port = free_loopback_port()
    config_file = service_config(
        tmp_path, okta, scim_url, interval="1h", metrics_listen=f"127.0.0.1:{port}", extra=FOLLOW
    )
    config = load_config(config_file)
    with Store(config.store.url) as store, service_process(config_file) as child:
        await eventually(lambda: store.log_cursor(fingerprint(config)) is not None, 30, "the follower's first audit")
        assert active(platform, people[0].id) is True
        okta.emulator.unassign_user(okta.app_id, people[0].id)  # an hour before the next scheduled audit

        await eventually(lambda: active(platform, people[0].id) is False, 15, "the unassignment repaired")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            scraped = samples((await http.get("/metrics")).text)
            health = await http.get("/healthz")
        child.signal(signal.SIGTERM)
        assert await child.wait_exit(15) == 0, child.log
        runs = store.recent_runs(50)
        incremental = [r for r in runs if r.mode is RunMode.INCREMENTAL and r.applied]
        full = [r for r in runs if r.mode is not RunMode.INCREMENTAL and r.status is RunStatus.SUCCEEDED]

    assert value(scraped, "reconciler_time_to_repair_seconds_count") == 1
    assert (value(scraped, "reconciler_log_events_total", outcome="acted") or 0) >= 1
    assert (value(scraped, "reconciler_log_events_total", outcome="read") or 0) >= 1
    assert value(scraped, "reconciler_follower_following") == 1
    assert (value(scraped, "reconciler_incremental_runs_total", status="succeeded") or 0) >= 1
    assert value(scraped, "reconciler_actions_total", kind="deactivate", outcome="succeeded") == 1
    assert value(scraped, "reconciler_runs_total", status="succeeded") == len(full), "batches are not counted as runs"
    assert health.status_code == 200
    [repair] = incremental
    assert repair.status is RunStatus.SUCCEEDED and repair.applied == 1


async def test_without_log_access_the_follower_stays_off_says_so_and_audits_go_on(
    tmp_path: Path, okta: Okta, scim_url: str
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 1)
    okta.emulator.deny_logs()
    config = load_config(service_config(tmp_path, okta, scim_url, interval="1h", extra=FOLLOW))
    with Store(config.store.url) as store:
        service = Service(config, store, environ={})
        async with running(service):
            await eventually(lambda: service.follower is not None and service.follower.off, 20, "the follower off")
            assert service.follower is not None and service.follower.task is not None
            await eventually(lambda: service.follower.task.done(), 5, "the follower's task to end")
            outcome = await service.run_once()
            states = store.alert_states(fingerprint(config))
    assert "okta.logs.read" in (service.follower.off or "")
    assert outcome is not None and outcome.status is RunStatus.SUCCEEDED, "the full audits go on"
    assert "follower_off" in states, "told once through the alert channel, and remembered"
    assert value(samples(service.metrics.render().decode()), "reconciler_follower_following") == 0
