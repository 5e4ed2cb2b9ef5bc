"""What the follower must withstand: no log access, unreadable and foreign events, late and skewed events,
a spent log bucket, a burst of deactivations, a group's fan-out. Real emulator, real scim2-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from reconciler.models.runs import RunStatus
from reconciler.run.follower import Follower, FollowerOff
from reconciler.run.reconcile import reconcile
from reconciler.testing.okta import OktaEmulator, okta_emulator_in_thread
from tests.conftest import OKTA_TOKEN, Okta
from tests.support.following import Org, follow, make_org


@pytest.fixture
def org(okta: Okta, platform: httpx.Client, scim_url: str, tmp_path: Path) -> Iterator[Org]:
    made = make_org(okta, platform, scim_url, tmp_path / "state")
    yield made
    made.store.close()


def test_a_token_without_log_access_turns_the_follower_off_and_full_audits_go_on(org: Org) -> None:
    asyncio.run(follow(org))
    org.okta.emulator.deny_logs()
    with pytest.raises(FollowerOff, match=r"okta\.logs\.read"):
        asyncio.run(follow(org))
    assert org.heard.stops and "okta.logs.read" in org.heard.stops[0]
    org.okta.emulator.update_user_profile(org.user_ids[0], lastName="Audited")
    audit = asyncio.run(reconcile(org.config, org.store, dry_run=False))
    assert audit.status is RunStatus.SUCCEEDED
    assert org.by_external_id()[org.user_ids[0]]["name"]["familyName"] == "Audited"


def test_unreadable_and_foreign_events_are_skipped_and_counted_never_fatal(org: Org) -> None:
    asyncio.run(follow(org))
    emulator = org.okta.emulator
    emulator.add_log_event({"eventType": "user.lifecycle.deactivate", "published": "not a time"})
    other = emulator.create_app(label="Another app")
    stranger = emulator.create_user(login="stranger@example.com", first_name="S", last_name="T")
    emulator.assign_user(other.id, stranger.id)
    emulator.update_user_profile(org.user_ids[1], lastName="Afterwards")
    org.heard.polls.clear()

    asyncio.run(follow(org))

    assert org.heard.total(3) == 1, "one unreadable event, counted"
    assert org.heard.total(1) >= 2, "the other app's creation and assignment, ignored"
    assert org.by_external_id()[org.user_ids[1]]["name"]["familyName"] == "Afterwards"
    assert stranger.id not in org.by_external_id()
    assert len(org.heard.repairs) == 1 and 0 <= org.heard.repairs[0] < 30


def test_late_events_are_still_read_by_following_the_cursor(org: Org) -> None:
    """Okta publishes events seconds late, out of ``published`` order: the cursor follows persistence."""
    asyncio.run(follow(org))
    org.okta.emulator.set_log_delay(1.0)
    org.okta.emulator.unassign_user(org.okta.app_id, org.user_ids[2])

    asyncio.run(follow(org, polls=30, until=lambda: org.by_external_id()[org.user_ids[2]]["active"] is False))

    assert org.incremental_runs()[0].applied == 1


def test_a_burst_is_held_to_the_limits_over_the_sliding_window(okta: Okta, platform, scim_url, tmp_path) -> None:  # noqa: ANN001
    org = make_org(okta, platform, scim_url, tmp_path / "state", "\n[thresholds]\nmax_deactivate = 2\n")
    asyncio.run(follow(org))
    emulator, app = okta.emulator, okta.app_id
    emulator.unassign_user(app, org.user_ids[0])
    emulator.unassign_user(app, org.user_ids[1])
    asyncio.run(follow(org))
    emulator.unassign_user(app, org.user_ids[2])
    asyncio.run(follow(org))

    platform_users = org.by_external_id()
    assert [platform_users[u]["active"] for u in org.user_ids[:3]] == [False, False, True]
    last = org.incremental_runs()[0]
    assert last.status is RunStatus.BLOCKED and "max_deactivate = 2" in (last.error or "")
    assert "the last 10m" in (last.error or "")
    org.store.close()


def test_a_group_assigned_then_unassigned_brings_its_members_and_takes_them_away(org: Org) -> None:
    asyncio.run(follow(org))
    emulator, app = org.okta.emulator, org.okta.app_id
    group = emulator.create_group("Contractors")
    members = [
        emulator.create_user(login=f"contractor{n}@example.com", first_name="C", last_name=str(n)) for n in range(3)
    ]
    for member in members:
        emulator.add_group_member(group.id, member.id)
    emulator.assign_group(app, group.id)
    asyncio.run(follow(org))
    assert all(org.by_external_id()[m.id]["active"] for m in members)

    emulator.unassign_group(app, group.id)
    asyncio.run(follow(org))
    assert not any(org.by_external_id()[m.id]["active"] for m in members)


def test_a_spent_log_bucket_is_waited_out_without_starving_the_full_audit(
    tmp_path: Path, scim_url: str, platform
) -> None:  # noqa: ANN001
    emulator = OktaEmulator(seed=3, api_tokens=[OKTA_TOKEN], rate_limit_window_s=2.0)
    app = emulator.create_app()
    with okta_emulator_in_thread(emulator) as org_url:
        org = make_org(Okta(emulator, org_url, app.id), platform, scim_url, tmp_path / "state")
        asyncio.run(follow(org))
        emulator.set_rate_limit(1, "/api/v1/logs")
        headers = {"Authorization": f"SSWS {OKTA_TOKEN}"}
        with httpx.Client(base_url=org_url, headers=headers) as client:
            spent = [client.get("/api/v1/logs", params={"limit": 1}).status_code for _ in range(2)]
        assert spent[-1] == 429
        started = time.monotonic()
        audit = asyncio.run(reconcile(org.config, org.store, dry_run=True))
        assert audit.status is RunStatus.SUCCEEDED and audit.okta_429s == 0 and time.monotonic() - started < 2
        emulator.set_rate_limit(120, "/api/v1/logs")
        emulator.unassign_user(app.id, org.user_ids[3])
        asyncio.run(follow(org))
        assert org.by_external_id()[org.user_ids[3]]["active"] is False
        org.store.close()


def test_a_clock_minutes_behind_loses_nothing(tmp_path: Path, scim_url: str, platform) -> None:  # noqa: ANN001
    """Okta's clock five minutes behind ours: polling restarts ``overlap`` before, so its events are read."""
    emulator = OktaEmulator(seed=4, api_tokens=[OKTA_TOKEN], clock=lambda: time.time() - 300)
    app = emulator.create_app()
    with okta_emulator_in_thread(emulator) as org_url:
        org = make_org(Okta(emulator, org_url, app.id), platform, scim_url, tmp_path / "state")
        asyncio.run(follow(org))
        emulator.update_user_profile(org.user_ids[0], firstName="Skewed")
        asyncio.run(follow(org))
        assert org.by_external_id()[org.user_ids[0]]["name"]["givenName"] == "Skewed"
        org.store.close()


def test_a_refused_cursor_restarts_from_the_last_event_and_a_refused_restart_is_a_failure(org: Org) -> None:
    async def scenario() -> None:
        audit = lambda: reconcile(org.config, org.store, dry_run=False)  # noqa: E731
        async with Follower(org.config, org.store, audit, listener=org.heard) as follower:
            await follower.start()
            await follower.poll_safely()
            follower.url = follower.url.split("after=")[0] + "after=not-a-cursor"  # type: ignore[union-attr]
            assert not (await follower.poll_safely()).caught_up and "after=" not in (follower.url or "")
            org.okta.emulator.update_user_profile(org.user_ids[0], lastName="Restarted")
            while not (await follower.poll_safely()).caught_up:
                pass
            assert org.by_external_id()[org.user_ids[0]]["name"]["familyName"] == "Restarted"
            too_old = follower.clock() - timedelta(days=200)  # Okta refuses a since more than 180 days back
            follower.url = follower.log_reader.start_url(too_old)  # type: ignore[union-attr]
            assert (await follower.poll_safely()).caught_up and follower.failing_since is not None

    asyncio.run(scenario())
