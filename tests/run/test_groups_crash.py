"""Group writes killed with SIGKILL converge: no duplicate group, memberships as Okta has them, every run settled.

Real ``reconcile`` processes (forked by tests/support/crash_zygote.py) apply against the
Okta emulator and a real scim2-server tenant behind a recording proxy that slows
writes down (tests/support/wire_recorder.py). Before each attempt the Okta side drifts a
little (a member in, a member out, a new group, a new user in a group); the
apply is then killed right after its k-th ``/Groups`` write reached the server,
for a few seeded k, so kills land after a group's POST and between the batches
of a membership change. A last apply is left to finish, and the test checks
what a person would: each Okta group has exactly one platform group, with
Okta's name and members, a dry-run finds nothing to write, and the store shows
every killed run interrupted.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.models.runs import ActionStatus, RunStatus
from reconciler.store import Store
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, provision
from tests.run.test_groups_end_to_end import groups_of, member_ids, scim_ids_by_okta_id
from tests.support.cli_runner import reconcile
from tests.support.crash_zygote import ChildStarted, Zygote
from tests.support.wire_recorder import RecordingProxy, proxied

KILLS = 6
CHILD_TIMEOUT_S = 60.0
RELAXED = (
    "[groups]\npush_assigned = true\nmember_batch = 3\n"
    "[thresholds]\nmax_remove_members_ratio = 1.0\nmax_create_group_ratio = 1.0\nmax_source_drop_ratio = 0.9\n"
)


@dataclass
class Rig:
    okta: Okta
    zygote: Zygote
    proxy: RecordingProxy
    platform: httpx.Client
    config: Path
    logs: Path
    rng: random.Random
    users: list[str]

    def start(self, *extra: str) -> ChildStarted:
        log = self.logs / f"run-{len(list(self.logs.iterdir())) + 1}.log"
        return self.zygote.start(["--config", str(self.config), "--quiet", *extra], log, CHILD_TIMEOUT_S)

    def drift(self, round_: int) -> None:
        """A little Okta-side change each round, so that every apply has group writes to make."""
        emulator, app_id = self.okta.emulator, self.okta.app_id
        for group_id in list(emulator._apps[app_id].group_ids):
            members = set(emulator.group(group_id).member_ids)
            for user in self.rng.sample(self.users, 4):
                if user in members:
                    emulator.remove_group_member(group_id, user)
                else:
                    emulator.add_group_member(group_id, user)
        newcomer = emulator.add_assigned_users(app_id, 1, domain=f"round{round_}.example.com")[0].id
        group = emulator.create_group(f"Round {round_}")
        for member in [newcomer, *self.rng.sample(self.users, 5)]:
            emulator.add_group_member(group.id, member)
        emulator.assign_group(app_id, group.id)
        self.users.append(newcomer)


@pytest.fixture
def rig(okta: Okta, scim_url: str, tmp_path: Path) -> Iterator[Rig]:
    users = [u.id for u in okta.emulator.add_assigned_users(okta.app_id, 30)]
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    with (
        Zygote() as zygote,
        RecordingProxy(str(httpx.URL(scim_url).copy_with(path="/")), write_latency_s=0.1) as proxy,
        httpx.Client(base_url=scim_url, headers=headers) as platform,
    ):
        provision(okta, platform, users)
        for name in ("Engineering", "Sales", "Security Champions"):
            group = okta.emulator.create_group(name)
            for member in random.Random(name).sample(users, 12):
                okta.emulator.add_group_member(group.id, member)
            okta.emulator.assign_group(okta.app_id, group.id)
        config = write_local_config(
            tmp_path / "state", okta.org_url, okta.app_id, proxied(scim_url, proxy), OKTA_TOKEN, SCIM_TOKEN, RELAXED
        )
        logs = tmp_path / "logs"
        logs.mkdir()
        yield Rig(okta, zygote, proxy, platform, config, logs, random.Random(2026), users)


def group_writes_since(rig: Rig, mark: int) -> int:
    return sum(1 for e in rig.proxy.exchanges(mark) if e.is_write and "/Groups" in e.path and e.status is not None)


def killed_after_group_write(rig: Rig, k: int) -> bool:
    """Start an apply and kill it once its k-th /Groups write was answered; False if it ended first."""
    mark = len(rig.proxy.exchanges())
    child = rig.start()
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while time.monotonic() < deadline:
        if rig.zygote.ended_within(0.005):
            rig.zygote.wait(child, 10)
            return False
        if group_writes_since(rig, mark) >= k:
            rig.zygote.kill(child)
            ended = rig.zygote.wait(child, CHILD_TIMEOUT_S)
            assert ended.killed or ended.exit_code == 0, child.log.read_text(errors="replace")
            return ended.killed
    raise AssertionError(f"no {k} group writes within {CHILD_TIMEOUT_S} s:\n{child.log.read_text(errors='replace')}")


def test_group_writes_killed_mid_apply_converge_without_duplicates(rig: Rig) -> None:
    killed_runs = 0
    for round_ in range(KILLS):
        rig.drift(round_)
        killed_runs += killed_after_group_write(rig, rig.rng.randint(1, 6))
        rig.proxy.wait_idle()
    print(f"{killed_runs} of {KILLS} applies killed mid group writes")
    assert killed_runs >= KILLS // 2, "most kills must land while group writes are going on"

    finished = rig.start()
    ended = rig.zygote.wait(finished, CHILD_TIMEOUT_S + 10)
    assert ended.exit_code == 0, finished.log.read_text(errors="replace")

    groups = groups_of(rig.platform)
    names = Counter(name.casefold() for name in groups)
    assert [name for name, count in names.items() if count > 1] == [], "a killed create must not leave a duplicate"
    emulator, links = rig.okta.emulator, scim_ids_by_okta_id(rig.platform)
    for group_id in emulator._apps[rig.okta.app_id].group_ids:
        okta_group = emulator.group(group_id)
        platform_group = groups[okta_group.name]
        assert platform_group["externalId"] == group_id
        assert member_ids(platform_group) == {links[m] for m in okta_group.member_ids}, okta_group.name
    assert reconcile("--config", rig.config, "--dry-run").code == 0, "nothing left to do"

    with Store(f"sqlite:///{rig.config.parent / 'reconciler.db'}") as store:
        runs = store.recent_runs(50)
        assert sum(run.status is RunStatus.INTERRUPTED for run in runs) == killed_runs
        for run in runs:
            assert run.status is not RunStatus.RUNNING
            statuses = {record.status for record in store.group_actions_of(run.id or 0)}
            assert ActionStatus.PENDING not in statuses, f"run {run.id} left a group action pending"
