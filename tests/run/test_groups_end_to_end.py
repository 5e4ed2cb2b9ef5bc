"""Group Push reconciliation end to end: the Okta emulator, each real peer SCIM server, the real store.

The demo's drifted scenario with groups is built once: a group never pushed
(some of its members never pushed either), a group renamed in Okta, members
removed and added by hand on the platform, a hand-made platform group. A
dry-run, an apply and a second dry-run run against it, and each test checks one
situation by looking at the platform's groups afterwards. Further tests build
their own small worlds: conflicts, deletion, the gate, and membership churn.

Everything runs on each peer of ``tests.conftest.PEERS`` (scim2-server and the
django-scim2 project), but the large group (1,000 members; 5,000 under `slow`), which is about batching and
runs on scim2-server alone.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.config import Config, load_config
from reconciler.models.groups import GroupActionKind
from reconciler.models.runs import ActionStatus, RunStatus
from reconciler.run.outcome import RunOutcome
from reconciler.run.reconcile import reconcile
from reconciler.store import Store
from reconciler.testing.okta import OktaEmulator, okta_emulator_in_thread
from reconciler.testing.scenario import (
    GROUP_NAME,
    HAND_MADE_GROUP,
    NEVER_PUSHED_GROUP,
    RENAMED_GROUP,
    DriftCounts,
    push_group_like_okta,
    seed_scenario,
    write_local_config,
)
from tests.conftest import OKTA_TOKEN, PEERS, SCIM_TOKEN, Okta, all_users, empty_user_store, provision
from tests.support.cli_runner import reconcile as reconcile_cli
from tests.support.wire_recorder import Exchange, RecordingProxy, proxied

USERS = 80
RELAXED = "[thresholds]\nmax_deactivate_ratio = 0.5\n"
GROUPS = "[groups]\npush_assigned = true\n"


def groups_of(platform: httpx.Client) -> dict[str, dict]:
    """Every platform group by displayName, read the simple way."""
    response = platform.get("/Groups", params={"startIndex": 1, "count": 1000})
    response.raise_for_status()
    return {group["displayName"]: group for group in response.json().get("Resources", [])}


def member_ids(group: dict) -> set[str]:
    return {member["value"] for member in group.get("members") or []}


def scim_ids_by_okta_id(platform: httpx.Client) -> dict[str, str]:
    """Okta user id → SCIM id of each active platform user, over every page."""
    links, start = {}, 1
    while True:
        page = platform.get("/Users", params={"startIndex": start, "count": 1000}).raise_for_status().json()
        resources = page.get("Resources") or []
        links |= {u["externalId"]: u["id"] for u in resources if u.get("externalId") and u.get("active")}
        start += len(resources)
        if not resources or start > page["totalResults"]:
            return links


def run(config: Config, store: Store, *, dry_run: bool) -> RunOutcome:
    return asyncio.run(reconcile(config, store, dry_run=dry_run))


# --- the drifted scenario ------------------------------------------------------------------------


@dataclass
class Scenario:
    emulator: OktaEmulator
    links: dict[str, str]
    """Okta user id → SCIM id of each active platform user after the apply (the peer may be emptied since)."""
    before: dict[str, dict]
    after_dry_run: dict[str, dict]
    after_apply: dict[str, dict]
    dry_run: RunOutcome
    apply: RunOutcome
    second_dry_run: RunOutcome
    store: Store

    def okta_group(self, name: str) -> str:
        return next(g for g in self.emulator._groups.values() if g.name == name).id

    def wanted_members(self, name: str) -> set[str]:
        """The SCIM ids of the Okta group's members that the platform held as active users after the apply."""
        group = self.emulator.group(self.okta_group(name))
        return {self.links[m] for m in group.member_ids if m in self.links}


@pytest.fixture(scope="module", params=PEERS)
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    scim_url = empty_user_store(request, request.param)
    emulator = OktaEmulator(seed=8, api_tokens=[OKTA_TOKEN])
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    with okta_emulator_in_thread(emulator) as org_url, httpx.Client(base_url=scim_url, headers=headers) as platform:
        app_id = asyncio.run(_seed(emulator, scim_url))
        state = tmp_path_factory.mktemp("groups")
        config = load_config(
            write_local_config(state, org_url, app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, RELAXED + GROUPS)
        )
        with Store(config.store.url) as store:
            before = groups_of(platform)
            dry_run = run(config, store, dry_run=True)
            after_dry_run = groups_of(platform)
            applied = run(config, store, dry_run=False)
            after_apply = groups_of(platform)
            links = scim_ids_by_okta_id(platform)
            second = run(config, store, dry_run=True)
            yield Scenario(emulator, links, before, after_dry_run, after_apply, dry_run, applied, second, store)


async def _seed(emulator: OktaEmulator, scim_url: str) -> str:
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    async with httpx.AsyncClient(base_url=scim_url, headers=headers, limits=httpx.Limits(max_connections=4)) as client:
        return await seed_scenario(emulator, client, USERS, DriftCounts(), groups=True)


def test_dry_run_finds_every_group_situation(scenario: Scenario) -> None:
    assert scenario.dry_run.status is RunStatus.DRIFT
    group_plan = scenario.dry_run.group_plan
    assert group_plan is not None
    by_kind = {kind: [a.name for a in group_plan.actions if a.kind is kind] for kind in GroupActionKind}
    assert by_kind[GroupActionKind.CREATE_GROUP] == [NEVER_PUSHED_GROUP]
    assert by_kind[GroupActionKind.RENAME_GROUP] == [RENAMED_GROUP[1]]
    assert by_kind[GroupActionKind.ADD_MEMBERS] == [GROUP_NAME]
    assert by_kind[GroupActionKind.REMOVE_MEMBERS] == [GROUP_NAME]
    assert by_kind[GroupActionKind.UNMANAGED] == [HAND_MADE_GROUP]
    assert not by_kind[GroupActionKind.DELETE_GROUP] and not by_kind[GroupActionKind.CONFLICT]
    (added,) = [a for a in group_plan.actions if a.kind is GroupActionKind.ADD_MEMBERS]
    assert len(added.members) == 3, "the three members removed by hand"


def test_dry_run_changes_no_group(scenario: Scenario) -> None:
    assert scenario.after_dry_run == scenario.before


def test_a_group_never_pushed_is_created_with_members_whose_users_were_created_first(scenario: Scenario) -> None:
    created = scenario.after_apply[NEVER_PUSHED_GROUP]
    assert created["externalId"] == scenario.okta_group(NEVER_PUSHED_GROUP)
    assert member_ids(created) == scenario.wanted_members(NEVER_PUSHED_GROUP)
    created_users = {a.okta_user_id for a in scenario.apply.plan.actions if a.kind.value == "create"}  # type: ignore[union-attr]
    okta_members = set(scenario.emulator.group(scenario.okta_group(NEVER_PUSHED_GROUP)).member_ids)
    assert okta_members <= created_users, "every member of this group was a user never pushed"
    assert len(member_ids(created)) == len(okta_members)


def test_a_group_renamed_in_okta_is_renamed_in_place(scenario: Scenario) -> None:
    old, new = RENAMED_GROUP
    assert old not in scenario.after_apply
    assert scenario.after_apply[new]["id"] == scenario.before[old]["id"]
    assert member_ids(scenario.after_apply[new]) == member_ids(scenario.before[old])


def test_hand_edited_members_are_put_back(scenario: Scenario) -> None:
    trainees = scenario.after_apply[GROUP_NAME]
    assert trainees["id"] == scenario.before[GROUP_NAME]["id"]
    assert member_ids(trainees) == scenario.wanted_members(GROUP_NAME)
    assert member_ids(trainees) != member_ids(scenario.before[GROUP_NAME])


def test_a_hand_made_group_is_left_alone(scenario: Scenario) -> None:
    """Compared as a group: django-scim2 shows each member's current displayName, which the user run repairs."""
    after, before = scenario.after_apply[HAND_MADE_GROUP], scenario.before[HAND_MADE_GROUP]
    assert {k: v for k, v in after.items() if k != "members"} == {k: v for k, v in before.items() if k != "members"}
    assert member_ids(after) == member_ids(before)


def test_the_second_dry_run_finds_no_group_drift(scenario: Scenario) -> None:
    group_plan = scenario.second_dry_run.group_plan
    assert group_plan is not None and group_plan.writes == ()
    assert group_plan.summary()["in_sync"] == 3
    assert scenario.apply.status is RunStatus.SUCCEEDED, scenario.apply.error


def test_the_store_records_each_group_action_and_its_outcome(scenario: Scenario) -> None:
    records = scenario.store.group_actions_of(scenario.apply.run_id)
    writes = [r for r in records if r.kind.value not in ("conflict", "unmanaged")]
    assert len(writes) == 4 and all(r.status is ActionStatus.SUCCEEDED for r in writes)
    created = next(r for r in records if r.kind.value == "create_group")
    assert created.scim_id == scenario.after_apply[NEVER_PUSHED_GROUP]["id"]
    run = scenario.store.get_run(scenario.dry_run.run_id)
    assert run is not None and run.group_summary is not None
    assert run.group_summary["create_group"] == 1


# --- small worlds ----------------------------------------------------------------------------------


@pytest.fixture
def world(okta: Okta, peer_url: str, tmp_path: Path) -> Iterator[World]:
    with httpx.Client(base_url=peer_url, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as platform:
        yield World(okta, platform, peer_url, tmp_path)


@dataclass
class World:
    okta: Okta
    platform: httpx.Client
    scim_url: str
    tmp_path: Path

    def config(self, groups: str = GROUPS, extra: str = "") -> Config:
        path = write_local_config(
            self.tmp_path / "state", self.okta.org_url, self.okta.app_id, self.scim_url, OKTA_TOKEN, SCIM_TOKEN,
            groups + extra,
        )  # fmt: skip
        return load_config(path)

    def users(self, count: int) -> list[str]:
        """``count`` users assigned to the app and pushed to the platform; their Okta ids."""
        people = self.okta.emulator.add_assigned_users(self.okta.app_id, count)
        ids = [p.id for p in people]
        provision(self.okta, self.platform, ids)
        return ids

    def okta_group(self, name: str, members: list[str], *, assigned: bool = True) -> str:
        emulator = self.okta.emulator
        group = emulator.create_group(name)
        for member in members:
            emulator.add_group_member(group.id, member)
        if assigned:
            emulator.assign_group(self.okta.app_id, group.id)
        return group.id

    def reconcile(self, config: Config, *, dry_run: bool = False) -> RunOutcome:
        with Store(config.store.url) as store:
            return run(config, store, dry_run=dry_run)


def _post_group(platform: httpx.Client, name: str, external_id: str | None = None, members: list[str] = ()) -> str:  # type: ignore[assignment]
    body: dict = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}
    if external_id:
        body["externalId"] = external_id
    body["members"] = [{"value": m} for m in members]
    return str(platform.post("/Groups", json=body).raise_for_status().json()["id"])


def test_two_platform_groups_with_the_okta_groups_name_are_a_conflict_and_both_stay(world: World) -> None:
    users = world.users(3)
    world.okta_group("Engineering", users)
    first, second = _post_group(world.platform, "Engineering"), _post_group(world.platform, "ENGINEERING")
    before = groups_of(world.platform)
    outcome = world.reconcile(world.config())
    assert outcome.group_plan is not None
    assert [a.kind for a in outcome.group_plan.actions] == [GroupActionKind.CONFLICT]
    assert first in outcome.group_plan.actions[0].reason and second in outcome.group_plan.actions[0].reason
    assert groups_of(world.platform) == before
    assert outcome.status is RunStatus.SUCCEEDED


def test_a_group_matched_by_name_is_linked_then_kept_through_a_rename(world: World) -> None:
    users = world.users(2)
    group_id = world.okta_group("Sales", users)
    hand_made = _post_group(world.platform, "sales")
    world.reconcile(world.config())
    linked = groups_of(world.platform)["Sales"]
    assert (linked["id"], linked["externalId"]) == (hand_made, group_id)
    world.okta.emulator.rename_group(group_id, "Sales EMEA")
    world.reconcile(world.config())
    assert groups_of(world.platform)["Sales EMEA"]["id"] == hand_made


def test_push_by_name_and_id_picks_only_those_groups(world: World) -> None:
    users = world.users(4)
    world.okta_group("Engineering", users[:2])
    world.okta_group("Sales", users[2:])
    unassigned = world.okta_group("Auditors", users[1:3], assigned=False)
    outcome = world.reconcile(world.config(f'[groups]\npush = ["engineering", "{unassigned}"]\n'))
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    groups = groups_of(world.platform)
    assert set(groups) == {"Engineering", "Auditors"}
    links = scim_ids_by_okta_id(world.platform)
    assert member_ids(groups["Auditors"]) == {links[u] for u in users[1:3]}


def test_an_unpushed_group_is_deleted_only_with_delete_unpushed(world: World) -> None:
    users = world.users(2)
    kept, dropped = world.okta_group("Kept", users), world.okta_group("Dropped", users)
    hand_made = _post_group(world.platform, "Hand made", "hr-1")
    world.reconcile(world.config())
    world.okta.emulator.unassign_group(world.okta.app_id, dropped)

    reported = world.reconcile(world.config())
    assert reported.group_plan is not None
    assert sorted(a.name for a in reported.group_plan.actions if a.kind is GroupActionKind.UNMANAGED) == [
        "Dropped",
        "Hand made",
    ]
    assert set(groups_of(world.platform)) == {"Kept", "Dropped", "Hand made"}

    deleting = world.reconcile(world.config(GROUPS + "delete_unpushed = true\n"))
    assert deleting.status is RunStatus.SUCCEEDED, deleting.error
    groups = groups_of(world.platform)
    assert set(groups) == {"Kept", "Hand made"} and groups["Hand made"]["id"] == hand_made
    assert groups["Kept"]["externalId"] == kept


def test_emptying_a_large_group_is_blocked_by_the_gate_and_nothing_is_sent(world: World) -> None:
    users = world.users(30)
    group_id = world.okta_group("Everyone", users)
    world.reconcile(world.config())
    for user in users:
        world.okta.emulator.remove_group_member(group_id, user)
    before = groups_of(world.platform)
    outcome = world.reconcile(world.config(extra="[thresholds]\nmax_remove_members = 20\n"))
    assert outcome.status is RunStatus.BLOCKED
    assert "max_remove_members = 20" in (outcome.error or "")
    assert groups_of(world.platform) == before
    with Store(world.config().store.url) as store:
        records = store.group_actions_of(outcome.run_id)
    assert [r.status for r in records] == [ActionStatus.SKIPPED]
    assert "safety gate" in (records[0].error or "")


def test_a_member_unassigned_from_the_app_is_deactivated_and_leaves_its_groups(world: World) -> None:
    """Okta pushes only the members it provisions: a member no longer assigned leaves the platform group."""
    users = world.users(3)
    group_id = world.okta_group("Engineering", users, assigned=False)
    small_population = "[thresholds]\nmax_source_drop_ratio = 0.5\n"  # 1 of 3 unassigned is 33 %
    config = world.config(f'[groups]\npush = ["{group_id}"]\n', small_population)
    world.reconcile(config)
    links = scim_ids_by_okta_id(world.platform)
    world.okta.emulator.unassign_user(world.okta.app_id, users[0])
    outcome = world.reconcile(config)
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert member_ids(groups_of(world.platform)["Engineering"]) == {links[users[1]], links[users[2]]}
    departed = next(u for u in all_users(world.platform) if u["id"] == links[users[0]])
    assert departed["active"] is False


def test_pushing_a_name_no_assigned_group_has_fails_the_run_naming_the_setting(world: World) -> None:
    users = world.users(1)
    world.okta_group("Auditors", users, assigned=False)
    outcome = world.reconcile(world.config('[groups]\npush = ["Auditors"]\n'))
    assert outcome.status is RunStatus.FAILED
    assert "groups.push" in (outcome.error or "") and "Auditors" in (outcome.error or "")
    assert groups_of(world.platform) == {}


def test_membership_churn_converges_round_after_round(world: World) -> None:
    """Bounded rounds of random membership changes in Okta and by hand on the platform; each apply converges."""
    rng = random.Random(8)
    users = world.users(40)
    groups = {name: world.okta_group(name, rng.sample(users, 10)) for name in ("Red", "Green", "Blue")}
    config = world.config(extra="[thresholds]\nmax_remove_members_ratio = 1.0\n")  # churn, not a mass removal
    for _round in range(6):
        for group_id in groups.values():
            members = set(world.okta.emulator.group(group_id).member_ids)
            for user in rng.sample(users, 6):
                if user in members:
                    world.okta.emulator.remove_group_member(group_id, user)
                else:
                    world.okta.emulator.add_group_member(group_id, user)
        platform_groups = groups_of(world.platform)
        if platform_groups:
            victim = platform_groups[rng.choice(sorted(platform_groups))]
            stray = rng.choice(sorted(scim_ids_by_okta_id(world.platform).values()))
            operation = {"op": "add", "path": "members", "value": [{"value": stray}]}
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [operation]}
            world.platform.patch(f"/Groups/{victim['id']}", json=body).raise_for_status()
        outcome = world.reconcile(config)
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        links = scim_ids_by_okta_id(world.platform)
        for name, group_id in groups.items():
            wanted = {links[m] for m in world.okta.emulator.group(group_id).member_ids}
            assert member_ids(groups_of(world.platform)[name]) == wanted, f"round {_round}, group {name}"
    again = world.reconcile(config, dry_run=True)
    assert again.group_plan is not None and again.group_plan.writes == ()


def test_a_pushed_group_on_the_platform_with_okta_push_is_in_sync(world: World) -> None:
    users = world.users(2)
    group_id = world.okta_group("Ops", users)
    links = scim_ids_by_okta_id(world.platform)
    asyncio.run(_push_group(world.scim_url, "Ops", group_id, [links[u] for u in users]))
    outcome = world.reconcile(world.config(), dry_run=True)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.group_plan is not None and outcome.group_plan.summary()["in_sync"] == 1


async def _push_group(scim_url: str, name: str, group_id: str, members: list[str]) -> None:
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    async with httpx.AsyncClient(base_url=scim_url, headers=headers) as client:
        await push_group_like_okta(client, name, group_id, members)


# --- a large group ---------------------------------------------------------------------------------

LARGE = 5000


def group_writes(proxy: RecordingProxy, since: int = 0) -> list[Exchange]:
    return [e for e in proxy.exchanges(since) if e.is_write and e.path.rpartition("/v2/")[2].startswith("Groups")]


def members_named(exchange: Exchange) -> int:
    """How many members one write names: in a POST body, in PATCH add values, or as PATCH remove filters."""
    if exchange.method == "POST":
        return len(exchange.body.get("members", []))
    return sum(len(op.get("value", [])) if op["op"] == "add" else 1 for op in exchange.body["Operations"])


@pytest.mark.cpu_bound
@pytest.mark.parametrize(
    "size",
    [pytest.param(LARGE, marks=pytest.mark.slow, id="5000"), pytest.param(LARGE // 5, id="1000")],
)
def test_a_large_group_is_created_and_changed_in_batches(okta: Okta, scim_url: str, tmp_path: Path, size: int) -> None:
    """Batches counted on the wire. 5,000 members (``make test-slow``: ~40 s, most of it scim2-server's) or 1,000."""
    people = [p.id for p in okta.emulator.add_assigned_users(okta.app_id, size)]
    group = okta.emulator.create_group("Everyone")
    for person in people:
        okta.emulator.add_group_member(group.id, person)
    okta.emulator.assign_group(okta.app_id, group.id)
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    with (
        RecordingProxy(str(httpx.URL(scim_url).copy_with(path="/"))) as proxy,
        httpx.Client(base_url=scim_url, headers=headers) as platform,
    ):
        links = provision(okta, platform, people)  # the users are there already: this test is about the group
        created = reconcile_large(okta, proxy, scim_url, tmp_path, member_batch=100)
        assert created.status is RunStatus.SUCCEEDED, created.error
        writes = group_writes(proxy)
        assert [e.method for e in writes] == ["POST"] + ["PATCH"] * (size // 100 - 1)
        assert all(members_named(e) == 100 for e in writes), "100 members per request"
        assert member_ids(groups_of(platform)["Everyone"]) == {links[p] for p in people}

        # scim2-server spends ~0.3 s per member removed from a 5,000-member group: 1 % leave, half of them a request
        leavers = size // 100
        for person in people[:leavers]:
            okta.emulator.remove_group_member(group.id, person)
        mark = len(proxy.exchanges())
        changed = reconcile_large(okta, proxy, scim_url, tmp_path, member_batch=leavers // 2)
        assert changed.status is RunStatus.SUCCEEDED, changed.error
        removals = group_writes(proxy, mark)
        assert len(removals) == 2 and all(members_named(e) == leavers // 2 for e in removals)
        assert member_ids(groups_of(platform)["Everyone"]) == {links[p] for p in people[leavers:]}
        again = reconcile_large(okta, proxy, scim_url, tmp_path, member_batch=leavers // 2, dry_run=True)
        assert again.status is RunStatus.SUCCEEDED


def reconcile_large(
    okta: Okta, proxy: RecordingProxy, scim_url: str, tmp_path: Path, *, member_batch: int, dry_run: bool = False
) -> RunOutcome:
    groups = GROUPS + f"member_batch = {member_batch}\n"
    path = write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, proxied(scim_url, proxy), OKTA_TOKEN, SCIM_TOKEN, groups
    )
    config = load_config(path)
    with Store(config.store.url) as store:
        return run(config, store, dry_run=dry_run)


def test_group_drift_alone_makes_a_dry_run_exit_2_and_shows_in_json_and_show(world: World) -> None:
    users = world.users(2)
    world.okta_group("Engineering", users)
    config = world.config()
    assert config.source_path is not None
    result = reconcile_cli("--config", config.source_path, "--dry-run", "--output", "json")
    assert result.code == 2, result.stderr
    document = result.json()
    assert document["summary"]["in_sync"] == 2, "the users are in line: the drift is the group's"
    assert [(a["kind"], a["name"]) for a in document["groups"]["actions"]] == [("create_group", "Engineering")]
    shown = reconcile_cli("--config", config.source_path, "show", str(document["run_id"]), "--output", "json").json()
    assert shown["group_summary"]["create_group"] == 1
    assert [(a["kind"], a["status"]) for a in shown["group_actions"]] == [("create_group", "skipped")]
    text = reconcile_cli("--config", config.source_path, "--dry-run")
    assert "CREATE_GROUP (1)" in text.stdout and "Engineering" in text.stdout
