"""Incremental repair end to end: Okta changes → the emulator's System Log → the follower → scim2-server.

Each test starts from both sides in sync (the follower's own first full audit), changes Okta the way an
admin would, polls until caught up, and looks at the platform's users as a person would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.config import fingerprint
from reconciler.models.runs import RunStatus
from tests.conftest import Okta
from tests.support.following import Org, follow, make_org


@pytest.fixture
def org(okta: Okta, platform: httpx.Client, scim_url: str, tmp_path: Path) -> Iterator[Org]:
    made = make_org(okta, platform, scim_url, tmp_path / "state", users=6)
    with made.store:
        yield made


def test_the_first_start_audits_and_a_second_resumes_from_the_cursor(org: Org) -> None:
    asyncio.run(follow(org))
    assert set(org.by_external_id()) == set(org.user_ids), "the full audit created everyone"
    cursor = org.store.log_cursor(fingerprint(org.config))
    assert cursor is not None and cursor.next_url and "after=" in cursor.next_url
    runs_before = len(org.store.recent_runs(100))
    asyncio.run(follow(org))
    assert len(org.store.recent_runs(100)) == runs_before, "no audit, and no batch with nothing changed"


def test_each_kind_of_okta_change_is_repaired_by_one_incremental_run(org: Org) -> None:
    asyncio.run(follow(org))
    emulator, app = org.okta.emulator, org.okta.app_id
    deactivated, unassigned, renamed, edited, pushed = org.user_ids[:5]
    emulator.set_user_status(deactivated, "DEPROVISIONED")
    emulator.unassign_user(app, unassigned)
    emulator.set_app_user(app, renamed, user_name="renamed@example.com")
    emulator.update_user_profile(edited, firstName="Edith")
    newcomer = emulator.create_user(login="new.comer@example.com", first_name="New", last_name="Comer")
    emulator.assign_user(app, newcomer.id)
    emulator.record_push(app, pushed)  # Okta says its own push failed: looked at, found in sync

    asyncio.run(follow(org))

    platform = org.by_external_id()
    assert platform[deactivated]["active"] is False
    assert platform[unassigned]["active"] is False
    assert platform[renamed]["userName"] == "renamed@example.com"
    assert platform[edited]["name"]["givenName"] == "Edith"
    assert platform[newcomer.id]["userName"] == "new.comer@example.com" and platform[newcomer.id]["active"]
    assert platform[pushed]["active"] and platform[org.user_ids[5]]["active"]
    (run,) = org.incremental_runs()
    assert run.status is RunStatus.SUCCEEDED and run.applied == 5


def test_events_read_again_repair_nothing_twice(org: Org) -> None:
    """At least once, never twice: a crash between the writes and the checkpoint re-reads the same events."""
    asyncio.run(follow(org))
    emulator, app = org.okta.emulator, org.okta.app_id
    emulator.unassign_user(app, org.user_ids[0])
    emulator.update_user_profile(org.user_ids[1], lastName="Twice")
    before = org.store.log_cursor(fingerprint(org.config))
    asyncio.run(follow(org))
    assert org.incremental_runs()[0].applied == 2
    org.store.save_log_cursor(fingerprint(org.config), before)  # as if the checkpoint never happened

    asyncio.run(follow(org))

    again = org.incremental_runs()
    assert len(again) == 2 and again[0].applied == 0 and again[0].status is RunStatus.SUCCEEDED
    assert org.by_external_id()[org.user_ids[1]]["name"]["familyName"] == "Twice"
