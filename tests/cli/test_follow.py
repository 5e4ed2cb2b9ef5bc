"""``reconcile follow``: the System Log follower on the command line, against the emulator and scim2-server.

Each test starts as a user would (``follow --once`` audits first when there is no cursor), changes Okta the
way an admin would, runs ``follow --once`` again, and looks at the platform and at ``history``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.config import fingerprint, load_config
from reconciler.run.follower import follow_lease_name
from reconciler.store import Store
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users
from tests.support.cli_runner import reconcile
from tests.support.scim_fault_server import FaultServer

FAST = '[incremental]\npoll = "1s"\nrecheck_after = 0\n'


@pytest.fixture
def follow_config(tmp_path: Path, okta: Okta, scim_url: str) -> Path:
    return write_local_config(tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, FAST)


def by_external_id(platform: httpx.Client) -> dict[str, dict]:
    return {u.get("externalId"): u for u in all_users(platform)}


def incremental_history(config_file: Path) -> list[dict]:
    listed = reconcile("--config", config_file, "history", "--output", "json").json()
    return [run for run in listed if run["mode"] == "incremental"]


def test_follow_once_repairs_each_kind_of_okta_change_as_incremental_runs(
    okta: Okta, platform: httpx.Client, scim_url: str, tmp_path: Path
) -> None:
    suspended_off = FAST + '[policy]\nsuspended = "deactivate"\n'
    follow_config = write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, suspended_off
    )
    emulator, app = okta.emulator, okta.app_id
    users = [u.id for u in emulator.add_assigned_users(app, 7)]
    member = emulator.create_user(login="member@example.com", first_name="Group", last_name="Member")
    group = emulator.create_group("Engineering")
    emulator.add_group_member(group.id, member.id)
    emulator.assign_group(app, group.id)  # the member holds the app only through the group
    users.append(member.id)
    first = reconcile("--config", follow_config, "follow", "--once")
    assert first.code == 0, first.stderr
    assert "full audit" in first.stdout and set(users) <= set(by_external_id(platform))

    deactivated, unassigned, renamed, edited, suspended, pushed, _, via_group = users
    emulator.set_user_status(deactivated, "DEPROVISIONED")
    emulator.unassign_user(app, unassigned)
    emulator.set_app_user(app, renamed, user_name="renamed@example.com")
    emulator.update_user_profile(edited, firstName="Edith")
    emulator.set_user_status(suspended, "SUSPENDED")
    emulator.remove_group_member(group.id, via_group)
    newcomer = emulator.create_user(login="new.comer@example.com", first_name="New", last_name="Comer")
    emulator.assign_user(app, newcomer.id)
    emulator.record_push(app, pushed)  # a push Okta says failed: looked at, found in sync

    second = reconcile("--config", follow_config, "follow", "--once")

    assert second.code == 0, second.stderr
    assert "(incremental)" in second.stdout and "full audit" not in second.stdout, "the cursor was resumed"
    platform_users = by_external_id(platform)
    for gone in (deactivated, unassigned, suspended, via_group):
        assert platform_users[gone]["active"] is False, (users.index(gone), second.stdout)
    assert platform_users[renamed]["userName"] == "renamed@example.com"
    assert platform_users[edited]["name"]["givenName"] == "Edith"
    assert platform_users[newcomer.id]["active"] is True
    assert platform_users[pushed]["active"] is True
    runs = incremental_history(follow_config)
    assert runs and sum(run["applied"] for run in runs) == 7, runs
    assert all(run["status"] == "succeeded" for run in runs)


def test_follow_dry_run_plans_records_and_sends_nothing_keeping_the_cursor(
    okta: Okta, platform: httpx.Client, follow_config: Path
) -> None:
    [user] = [u.id for u in okta.emulator.add_assigned_users(okta.app_id, 1)]
    assert reconcile("--config", follow_config, "follow", "--once").code == 0
    config = load_config(follow_config)
    with Store(config.store.url) as store:
        before = store.log_cursor(fingerprint(config))
    okta.emulator.update_user_profile(user, lastName="Planned")

    dry = reconcile("--config", follow_config, "follow", "--once", "--dry-run")

    assert dry.code == 2, dry.stderr  # as `reconcile --dry-run`: drift found
    assert "1 planned" in dry.stdout
    assert by_external_id(platform)[user]["name"]["familyName"] != "Planned"
    [run] = incremental_history(follow_config)
    assert run["status"] == "drift" and run["applied"] == 0
    with Store(config.store.url) as store:
        assert store.log_cursor(fingerprint(config)) == before, "a dry run leaves the cursor where it was"
    live = reconcile("--config", follow_config, "follow", "--once")
    assert live.code == 0 and by_external_id(platform)[user]["name"]["familyName"] == "Planned"


def test_follow_without_log_access_names_the_scope_and_exits_non_zero(okta: Okta, follow_config: Path) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 1)
    assert reconcile("--config", follow_config, "follow", "--once").code == 0
    okta.emulator.deny_logs()

    denied = reconcile("--config", follow_config, "follow", "--once")

    assert denied.code == 1
    assert "okta.logs.read" in denied.stderr and "full audits go on" in denied.stderr


def test_follow_refuses_a_target_another_follower_holds(okta: Okta, follow_config: Path) -> None:
    """One follower per log: serve (or a replica) holding the follow lease keeps a second one out."""
    okta.emulator.add_assigned_users(okta.app_id, 1)
    config = load_config(follow_config)
    with Store(config.store.url) as store, store.run_lock(follow_lease_name(fingerprint(config))):
        busy = reconcile("--config", follow_config, "follow", "--once")
    assert busy.code == 75 and "follow:" in busy.stderr
    assert reconcile("--config", follow_config, "follow", "--once").code == 0


@pytest.fixture
def unfiltered_scim() -> Iterator[str]:
    """A SCIM server, in a thread of its own, that announces no filter support."""
    ready, done, urls = threading.Event(), None, []

    async def serve() -> None:
        nonlocal done
        done = asyncio.Event()
        async with FaultServer(service_provider_config={"filter": {"supported": False}}) as server:
            urls.append(server.base_url)
            ready.set()
            await done.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield urls[0]
    loop.call_soon_threadsafe(done.set)  # type: ignore[union-attr]
    thread.join(10)


def test_follow_against_a_platform_without_filters_says_so(okta: Okta, unfiltered_scim: str, tmp_path: Path) -> None:
    config_file = write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, unfiltered_scim, OKTA_TOKEN, SCIM_TOKEN, FAST
    )

    refused = reconcile("--config", config_file, "follow", "--once")

    assert refused.code == 1
    assert "does not support SCIM filters" in refused.stderr and "incremental.enabled = false" in refused.stderr


def test_ctrl_c_stops_follow_cleanly_with_the_cursor_saved(okta: Okta, follow_config: Path) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    config = load_config(follow_config)
    cursor_saved = threading.Event()

    def interrupt_once_following() -> None:
        with Store(config.store.url) as store:
            while not cursor_saved.wait(0.05):
                if store.log_cursor(fingerprint(config)) is not None:
                    cursor_saved.set()
        os.kill(os.getpid(), signal.SIGINT)  # the follower's handler takes it: it stops, not pytest

    watcher = threading.Thread(target=interrupt_once_following, daemon=True)
    watcher.start()

    stopped = reconcile("--config", follow_config, "follow")

    watcher.join(10)
    assert cursor_saved.is_set() and stopped.code == 0, stopped.stderr
    assert "full audit" in stopped.stdout
