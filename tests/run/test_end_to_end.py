"""Every situation end to end: the Okta emulator, each real peer SCIM server, the real store.

One drifted scenario (the demo's) is built once; a dry-run, an apply and a
second dry-run run against it, and each test checks one situation the way a
person would: by looking at the platform's users afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.config import load_config
from reconciler.models.records import Action, ActionKind
from reconciler.models.runs import ActionStatus, RunStatus
from reconciler.run.outcome import RunOutcome
from reconciler.run.reconcile import reconcile
from reconciler.scim.page import RELEASED
from reconciler.store import Store
from reconciler.testing.okta import OktaEmulator, okta_emulator_in_thread
from reconciler.testing.scenario import DriftCounts, seed_scenario, write_local_config
from tests.conftest import OKTA_TOKEN, PEERS, SCIM_TOKEN, empty_user_store

USERS = 80
DRIFT = DriftCounts()


@dataclass
class Scenario:
    before: dict[str, dict]
    after_dry_run: dict[str, dict]
    after_apply: dict[str, dict]
    dry_run: RunOutcome
    apply: RunOutcome
    second_dry_run: RunOutcome
    store: Store

    def planned(self, kind: ActionKind) -> list[Action]:
        assert self.dry_run.plan is not None
        return [a for a in self.dry_run.plan.actions if a.kind is kind]


def _snapshot(client: httpx.Client) -> dict[str, dict]:
    response = client.get("/Users", params={"startIndex": 1, "count": 1000})
    response.raise_for_status()
    return {user["id"]: user for user in response.json()["Resources"]}


async def _seed(emulator: OktaEmulator, scim_url: str) -> str:
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    async with httpx.AsyncClient(base_url=scim_url, headers=headers, limits=httpx.Limits(max_connections=4)) as client:
        return await seed_scenario(emulator, client, USERS, DRIFT)


@pytest.fixture(scope="module", params=PEERS)
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """The drifted scenario, built and reconciled once on each peer SCIM server."""
    scim_url = empty_user_store(request, request.param)
    emulator = OktaEmulator(seed=5, api_tokens=[OKTA_TOKEN])
    with (
        okta_emulator_in_thread(emulator) as org_url,
        httpx.Client(base_url=scim_url, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as platform,
    ):
        app_id = asyncio.run(_seed(emulator, scim_url))
        state = tmp_path_factory.mktemp("state")
        relaxed = "[thresholds]\nmax_deactivate_ratio = 0.5\n"  # 10 of 70 managed users: above the 10 % default
        config = load_config(write_local_config(state, org_url, app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, relaxed))
        with Store(config.store.url) as store:
            before = _snapshot(platform)
            dry_run = asyncio.run(reconcile(config, store, dry_run=True))
            after_dry_run = _snapshot(platform)
            applied = asyncio.run(reconcile(config, store, dry_run=False))
            after_apply = _snapshot(platform)
            second = asyncio.run(reconcile(config, store, dry_run=True))
            yield Scenario(before, after_dry_run, after_apply, dry_run, applied, second, store)


def test_dry_run_finds_every_situation(scenario: Scenario) -> None:
    assert scenario.dry_run.status is RunStatus.DRIFT
    assert scenario.dry_run.plan is not None
    summary = scenario.dry_run.plan.summary()
    assert summary == {
        "create": DRIFT.never_pushed,
        "update": DRIFT.hand_edited + DRIFT.renamed_in_okta,
        "deactivate": DRIFT.unassigned_still_active + DRIFT.deprovisioned_in_okta,
        "reactivate": DRIFT.disabled_on_platform,
        "link": DRIFT.hand_made_account,
        "conflict": 1,
        "unmanaged": 2,
        "in_sync": summary["in_sync"],
    }
    assert summary["in_sync"] > 0


def test_dry_run_changes_nothing_on_the_platform(scenario: Scenario) -> None:
    assert scenario.after_dry_run == scenario.before


def test_missing_users_are_created_linked_and_active(scenario: Scenario) -> None:
    by_name = {u["userName"].casefold(): u for u in scenario.after_apply.values()}
    for action in scenario.planned(ActionKind.CREATE):
        user = by_name[action.user_name.casefold()]
        assert user["externalId"] == action.okta_user_id
        assert user["active"] is True
        assert user["emails"][0]["value"] == action.changes['emails[type eq "work"].value'].after


def test_hand_edits_are_reverted(scenario: Scenario) -> None:
    edited = [a for a in scenario.planned(ActionKind.UPDATE) if "displayName" in a.changes]
    assert len(edited) == DRIFT.hand_edited
    for action in edited:
        assert scenario.before[action.scim_id]["displayName"] == "EDITED BY HAND"
        assert scenario.after_apply[action.scim_id]["displayName"] == action.changes["displayName"].after


def test_rename_in_okta_updates_the_same_platform_user(scenario: Scenario) -> None:
    renames = [a for a in scenario.planned(ActionKind.UPDATE) if "userName" in a.changes]
    assert len(renames) == DRIFT.renamed_in_okta
    for action in renames:
        user = scenario.after_apply[action.scim_id]
        assert user["userName"] == action.changes["userName"].after
        carrying_okta_id = [u for u in scenario.after_apply.values() if u.get("externalId") == action.okta_user_id]
        assert carrying_okta_id == [user], "a rename must not leave a second user behind"


def test_unassigned_and_deprovisioned_users_are_deactivated_not_deleted(scenario: Scenario) -> None:
    deactivations = scenario.planned(ActionKind.DEACTIVATE)
    assert deactivations
    for action in deactivations:
        assert scenario.after_apply[action.scim_id]["active"] is False
    assert set(scenario.before) <= set(scenario.after_apply), "nothing is ever deleted"


def test_users_disabled_on_the_platform_are_reactivated(scenario: Scenario) -> None:
    for action in scenario.planned(ActionKind.REACTIVATE):
        assert scenario.before[action.scim_id]["active"] is False
        assert scenario.after_apply[action.scim_id]["active"] is True


def test_hand_made_accounts_are_linked_not_duplicated(scenario: Scenario) -> None:
    for action in scenario.planned(ActionKind.LINK):
        assert not scenario.before[action.scim_id].get("externalId")  # django-scim2 answers ""
        assert scenario.after_apply[action.scim_id]["externalId"] == action.okta_user_id
    names = [u["userName"].casefold() for u in scenario.after_apply.values()]
    assert len(names) == len(set(names))


def test_conflicts_and_unmanaged_users_are_left_untouched(scenario: Scenario) -> None:
    reported = scenario.planned(ActionKind.CONFLICT) + scenario.planned(ActionKind.UNMANAGED)
    assert len(reported) == 3
    for action in reported:
        assert action.scim_id is not None
        assert scenario.after_apply[action.scim_id] == scenario.before[action.scim_id]


def test_apply_records_every_write_as_succeeded(scenario: Scenario) -> None:
    assert scenario.apply.status is RunStatus.SUCCEEDED
    assert scenario.dry_run.plan is not None
    records = scenario.store.actions_of(scenario.apply.run_id)
    written = [r for r in records if r.status is not ActionStatus.SKIPPED]
    assert len(written) == len(scenario.dry_run.plan.writes)
    assert {r.status for r in written} == {ActionStatus.SUCCEEDED}
    run = scenario.store.get_run(scenario.apply.run_id)
    assert run is not None and run.applied == len(written) and run.failed == 0


def test_second_dry_run_has_nothing_left_to_write(scenario: Scenario) -> None:
    plan = scenario.second_dry_run.plan
    assert plan is not None
    assert plan.writes == ()
    # every Okta user the scenario made: assigned ones in line, unassigned ones inactive
    assert plan.summary()["in_sync"] == USERS


def test_suspended_users_are_deactivated_when_policy_says_so(
    okta, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    person = okta.emulator.add_assigned_users(okta.app_id, 1)[0]
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    config_path = write_local_config(
        tmp_path, okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, '[policy]\nsuspended = "deactivate"\n'
    )
    with Store(load_config(config_path).store.url) as store:
        asyncio.run(reconcile(load_config(config_path), store, dry_run=False))
        okta.emulator.set_user_status(person.id, "SUSPENDED")
        outcome = asyncio.run(reconcile(load_config(config_path), store, dry_run=False))
    assert outcome.plan is not None and [a.kind for a in outcome.plan.actions] == [ActionKind.DEACTIVATE]
    (user,) = platform.get("/Users", headers=headers).json()["Resources"]
    assert user["externalId"] == person.id and user["active"] is False


def test_the_run_lets_go_of_what_it_read_of_users_in_sync_and_keeps_what_it_writes_to(scenario: Scenario) -> None:
    """A user found in sync is named by no action: its kept attributes are released (a sixth of a large
    run's memory); every user an action names keeps them, for its PATCH and for a saved plan."""
    outcome = scenario.dry_run
    assert outcome.plan is not None
    named = {a.scim_id for a in outcome.plan.actions if a.scim_id is not None}
    released = [u for u in outcome.actual if u.resource is RELEASED]
    assert len(released) >= outcome.plan.in_sync - DRIFT.unassigned_still_active - 5 > 0
    assert not named & {u.scim_id for u in released}
    assert all(dict(u.resource)["id"] == u.scim_id for u in outcome.actual if u.scim_id in named)
