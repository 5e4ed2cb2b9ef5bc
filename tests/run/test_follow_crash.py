"""Crash safety of the System Log follower: SIGKILLed at random points, it repairs every Okta change once.

Real ``reconcile follow --once`` processes (forked pre-imported by
tests/support/crash_zygote.py) follow the Okta emulator's System Log and repair a
scim2-server tenant, each side behind a recording proxy (tests/support/wire_recorder.py)
that slows the wire enough for kills to land mid-work and shows what was really sent.
Each cycle changes Okta the ways an admin does (a deactivation, an unassignment, a
rename, a profile edit, a suspension and an unsuspension, a new assignment, a
reassignment, a reactivation, and a failed push: a profile edit whose push Okta logged
as FAILURE), then SIGKILLs followers at seeded moments anchored on the wire — while the
log is read, after a user's Okta record came back, mid-write, after the last write and
before the cursor's checkpoint — then lets one follower run to caught-up, and checks what
a person would:

- every change made in Okta is repaired (the platform holds what Okta wants of each user:
  userName, active, given and family name, one account each);
- no change was written twice (no identical write twice on the wire in a cycle, no
  userName twice on the platform);
- no deactivation on the wire targeted a user Okta wanted active;
- every write on the wire was journaled before it was sent;
- after every kill, the stored cursor is never ahead of a repair: each change whose event
  the stored cursor has passed is on the platform already;
- every run ended, a killed one as interrupted (``reconcile history`` shows none running).

``make test`` runs 30 kill points on SQLite and 6 on PostgreSQL; ``make chaos`` runs
``CHAOS_KILLS`` (default 300) per backend; ``CRASH_SEED`` changes the seed. Each prints its
figures and one JSON line.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from reconciler.config import fingerprint, load_config
from reconciler.models.records import WRITE_KINDS
from reconciler.models.runs import ActionStatus, RunMode, RunStatus
from reconciler.store import Store
from tests.conftest import Okta, all_users, provision
from tests.run.test_crash_safety import (
    EXIT_OK,
    Person,
    World,
    backend_of,
    check_history_as_a_user_would,
    duplicate_user_names,
    latest_run_id,
    platform_differences,
    scim_id_of,
    sets_inactive,
    unjournaled_writes,
    write_config,
    wrong_deactivations,
)
from tests.support.crash_zygote import ChildStarted, Zygote
from tests.support.wire_recorder import Exchange, RecordingProxy, proxied

SEED = int(os.environ.get("CRASH_SEED", "2026"))
DEFAULT_KILLS = {"sqlite": 30, "postgresql": 6}
CHAOS_KILLS = int(os.environ.get("CHAOS_KILLS", "300"))
KILLS_PER_CYCLE = 3
"""Followers killed in each cycle before one is let run to caught-up (fewer if one gets there first)."""
INITIAL_USERS = 16
OKTA_LATENCY_S = 0.02
SCIM_READ_LATENCY_S = 0.005
SCIM_WRITE_LATENCY_S = 0.04
CHILD_TIMEOUT_S = 60.0
SECONDS_PER_KILL_BUDGET = 3.0
INCREMENTAL = '\n[incremental]\npoll = "1s"\nrecheck_after = 0\nwindow = "1s"\n\n[policy]\nsuspended = "deactivate"\n'
"""No second look (a follower run ends once caught up); a sliding window short enough that the test's cycles,
on a small population, never add up past the gate's ratios; a suspension deactivates, so it is a repair to make."""
LOG_PATH = "/api/v1/logs"
RATE_LIMIT = 100_000
"""Per minute, on the emulator's log and apps buckets: each follower process claims its requests from the shared
budget a few at a time (reconciler/net/shared_pacing.py), so hundreds of short-lived processes would spend Okta's
120 log requests a minute on claims alone; pacing is tested elsewhere, not here."""


# --- what Okta wants, and the changes made to it --------------------------------------------------------


@dataclass
class OktaPerson(Person):
    suspended: bool = False
    given_name: str = ""
    family_name: str = ""
    changed_at: datetime | None = None
    """The latest ``published`` of the events this cycle's change to the user wrote; None: unchanged."""

    @property
    def wants_active(self) -> bool:
        return self.assigned and not self.deprovisioned and not self.suspended


@dataclass
class OktaWorld(World):
    """Okta changed only through the emulator's API (so the System Log has an event for each change)."""

    def populate(self, count: int) -> None:
        users = self.okta.emulator.add_assigned_users(self.okta.app_id, count, domain="seed.example.com")
        provision(self.okta, self.platform, [user.id for user in users])
        for user in users:
            self.people[user.id] = self._person(user.id)

    def _person(self, okta_id: str) -> OktaPerson:
        profile = self.okta.emulator.user(okta_id).profile
        return OktaPerson(okta_id, profile["login"], given_name=profile["firstName"], family_name=profile["lastName"])

    def persons(self) -> list[OktaPerson]:
        return [p for p in self.people.values() if isinstance(p, OktaPerson)]

    def change(self, cycle: int) -> list[OktaPerson]:
        """One change of each kind an admin makes; returns the people changed."""
        emulator, app_id = self.okta.emulator, self.okta.app_id
        for person in self.persons():
            person.changed_at = None
        active = [p for p in self.persons() if p.wants_active]
        self.rng.shuffle(active)
        deactivate, unassign, rename, edit, suspend, failed_push = active[:6]
        edits: list[tuple[OktaPerson, Callable[[], object]]] = [
            (deactivate, lambda: emulator.set_user_status(deactivate.okta_id, "DEPROVISIONED")),
            (unassign, lambda: emulator.unassign_user(app_id, unassign.okta_id)),
            (rename, lambda: self._rename(rename, f"r{cycle}.{rename.login}")),
            (edit, lambda: emulator.update_user_profile(edit.okta_id, firstName=f"Edith{cycle}")),
            (suspend, lambda: emulator.set_user_status(suspend.okta_id, "SUSPENDED")),
            (failed_push, lambda: self._failed_push(failed_push, f"Pushed{cycle}")),
        ]
        for person in [p for p in self.persons() if not p.assigned][:1]:
            edits.append((person, lambda p=person: emulator.assign_user(app_id, p.okta_id)))
        for person in [p for p in self.persons() if p.deprovisioned][:1]:
            edits.append((person, lambda p=person: emulator.set_user_status(p.okta_id, "ACTIVE")))
        for person in [p for p in self.persons() if p.suspended][:1]:
            edits.append((person, lambda p=person: emulator.set_user_status(p.okta_id, "ACTIVE")))
        for person, edit_okta in edits:
            self._logged(person, edit_okta)
        deactivate.deprovisioned, unassign.assigned, suspend.suspended = True, False, True
        for person, _ in edits[6:]:
            person.assigned, person.deprovisioned, person.suspended = True, False, False
        edit.given_name = f"Edith{cycle}"
        failed_push.family_name = f"Pushed{cycle}"
        newcomer = emulator.create_user(login=f"new{cycle}@new.example.com", first_name="New", last_name=f"C{cycle}")
        self.people[newcomer.id] = new_person = self._person(newcomer.id)
        self._logged(new_person, lambda: emulator.assign_user(app_id, newcomer.id))
        return [p for p in self.persons() if p.changed_at is not None]

    def _logged(self, person: OktaPerson, edit_okta: Callable[[], object]) -> None:
        """Make the change; the person's ``changed_at`` is the latest ``published`` of the events it wrote."""
        before = len(self.okta.emulator.logged_events())
        edit_okta()
        published = [datetime.fromisoformat(e["published"]) for e in self.okta.emulator.logged_events()[before:]]
        assert published, "the change wrote no System Log event"
        person.changed_at = max(published + ([person.changed_at] if person.changed_at else []))

    def _rename(self, person: OktaPerson, login: str) -> None:
        self.okta.emulator.update_user_profile(person.okta_id, login=login, email=login)
        self.okta.emulator.set_app_user(self.okta.app_id, person.okta_id, user_name=login)
        person.login = login

    def _failed_push(self, person: OktaPerson, family_name: str) -> None:
        """Okta changed the user, tried to push it, and logged the push as failed."""
        self.okta.emulator.update_user_profile(person.okta_id, lastName=family_name)
        self.okta.emulator.record_push(self.okta.app_id, person.okta_id, "push_profile", "FAILURE")

    def differences(self, users: list[dict], people: list[OktaPerson] | None = None) -> list[str]:
        """How the platform differs from what Okta wants (of ``people``, or everyone)."""
        problems = platform_differences(self, users) if people is None else []
        by_okta_id = {str(u.get("externalId")): u for u in users}
        for person in self.persons() if people is None else people:
            user = by_okta_id.get(person.okta_id)
            if user is None:
                problems.append(f"{person.login}: not on the platform")
                continue
            name = user.get("name") or {}
            wanted = (person.login.casefold(), person.wants_active, person.given_name, person.family_name)
            found = (str(user["userName"]).casefold(), bool(user.get("active")), name.get("givenName"))
            if found + (name.get("familyName"),) != wanted:
                problems.append(
                    f"{person.login}: platform has {found + (name.get('familyName'),)}, Okta wants {wanted}"
                )
        return problems


# --- the wire and the kills ---------------------------------------------------------------------------------


def duplicate_writes(writes: list[Exchange]) -> list[str]:
    """The same write sent twice: a create of one userName, or one body sent to one user."""
    keys = Counter(
        ("POST", str((e.body or {}).get("userName", "")).casefold())
        if e.method == "POST"
        else (e.method, scim_id_of(e) or e.path, json.dumps(e.body, sort_keys=True))
        for e in writes
    )
    return sorted(f"{key[0]} {key[1]}" for key, count in keys.items() if count > 1)


@dataclass(frozen=True)
class KillPlan:
    aim: str
    """log, okta, writing or checkpoint: the moment on the wire the kill waits for."""
    fired: Callable[[list[Exchange], list[Exchange]], bool]
    delay_s: float


def user_read(exchange: Exchange, app_id: str) -> bool:
    return f"/api/v1/apps/{app_id}/users/" in exchange.path and exchange.answered is not None


def writes_done(scim: list[Exchange]) -> bool:
    writes = [e for e in scim if e.is_write]
    return bool(writes) and all(e.answered is not None for e in writes)


def choose_kill(rng: random.Random, app_id: str) -> KillPlan:
    """Seeded: reading the log, after reading Okta, mid-write, and between the last write and the checkpoint."""
    roll = rng.random()
    if roll < 0.2:
        return KillPlan("log", lambda okta, scim: any(LOG_PATH in e.path for e in okta), rng.uniform(0, OKTA_LATENCY_S))
    if roll < 0.4:
        return KillPlan("okta", lambda okta, scim: any(user_read(e, app_id) for e in okta), rng.uniform(0, 0.02))
    if roll < 0.75:
        k = rng.randint(1, 6)
        return KillPlan(
            "writing", lambda okta, scim: sum(e.is_write for e in scim) >= k, rng.uniform(0, SCIM_WRITE_LATENCY_S)
        )
    return KillPlan("checkpoint", lambda okta, scim: writes_done(scim), rng.uniform(0, 0.06))


@dataclass
class Attempt:
    aim: str
    killed: bool
    phase: str | None = None
    run_id: int | None = None
    """The incremental run the kill left running (None: none was)."""


@dataclass
class Rig:
    zygote: Zygote
    okta_proxy: RecordingProxy
    scim_proxy: RecordingProxy
    store: Store
    config: Path
    logs: Path
    fingerprint: str

    def start(self) -> ChildStarted:
        log = self.logs / f"follow-{len(list(self.logs.iterdir())) + 1}.log"
        return self.zygote.start(["--config", str(self.config), "follow", "--once"], log, CHILD_TIMEOUT_S)

    def incremental_runs_after(self, run_id: int) -> list:  # noqa: ANN201
        return [r for r in self.store.recent_runs(20) if (r.id or 0) > run_id and r.mode is RunMode.INCREMENTAL]


def killed_follower(rig: Rig, world: OktaWorld, rng: random.Random, changed: list[OktaPerson]) -> Attempt:
    """Start a follower, kill it at a seeded moment (unless it catches up first); check the cursor after."""
    plan = choose_kill(rng, world.okta.app_id)
    before = latest_run_id(rig.store)
    okta_mark, scim_mark = len(rig.okta_proxy.exchanges()), len(rig.scim_proxy.exchanges())
    child = rig.start()
    ended = False
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while time.monotonic() < deadline:
        if rig.zygote.ended_within(0.002):
            ended = True
            break
        if plan.fired(rig.okta_proxy.exchanges(okta_mark), rig.scim_proxy.exchanges(scim_mark)):
            ended = rig.zygote.ended_within(plan.delay_s)
            break
    if not ended:
        rig.zygote.kill(child)
    outcome = rig.zygote.wait(child, CHILD_TIMEOUT_S + 10)
    log = child.log.read_text(errors="replace")
    assert not outcome.timed_out, f"a follower outlived {CHILD_TIMEOUT_S} s:\n{log}"
    rig.scim_proxy.wait_idle()  # a killed follower's last writes land, as a real server would process them
    cursor_never_ahead_of_a_repair(rig, world, changed)
    if not outcome.killed:
        assert outcome.exit_code == EXIT_OK, f"a follower left alone exited {outcome.exit_code}:\n{log}"
        return Attempt(plan.aim, killed=False)
    runs = rig.incremental_runs_after(before)
    running = [r.id for r in runs if r.status is RunStatus.RUNNING]
    okta_seen = [e for e in rig.okta_proxy.exchanges(okta_mark) if e.arrived <= (outcome.killed_at or 0)]
    if running:
        intents = [r for r in rig.store.actions_of(running[0] or 0) if r.kind in WRITE_KINDS]
        phase = "writing" if intents else "reading users"
    elif runs:
        phase = "checkpointing"  # the batch recorded its end; the cursor may or may not have been saved
    else:
        phase = "reading the log" if any(LOG_PATH in e.path for e in okta_seen) else "starting"
    return Attempt(plan.aim, killed=True, phase=phase, run_id=running[0] if running else None)


def cursor_never_ahead_of_a_repair(rig: Rig, world: OktaWorld, changed: list[OktaPerson]) -> None:
    """Each change whose event the stored cursor has passed is on the platform already."""
    cursor = rig.store.log_cursor(rig.fingerprint)
    if cursor is None or cursor.high_water is None:
        return
    passed = [p for p in changed if p.changed_at is not None and p.changed_at <= cursor.high_water]
    problems = world.differences(all_users(world.platform), passed)
    assert problems == [], f"the stored cursor ({cursor.high_water}) is ahead of repairs: {problems}"


def completed_follower(rig: Rig) -> None:
    child = rig.start()
    outcome = rig.zygote.wait(child, CHILD_TIMEOUT_S + 10)
    assert outcome.exit_code == EXIT_OK, f"the completing follower exited {outcome.exit_code}:\n" + (
        child.log.read_text(errors="replace")
    )


# --- the figures ---------------------------------------------------------------------------------------------


@dataclass
class Figures:
    backend: str
    seed: int
    kills: int = 0
    cycles: int = 0
    changes: int = 0
    repaired: int = 0
    followers_caught_up_before_their_kill: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    aims: Counter[str] = field(default_factory=Counter)
    writes_on_wire: int = 0
    duplicates: int = 0
    wrong_deactivations: int = 0
    writes_not_journaled: int = 0
    runs_interrupted: int = 0
    seconds: float = 0.0

    def report(self) -> str:
        document = {
            "backend": self.backend,
            "seed": self.seed,
            "kills": self.kills,
            "cycles": self.cycles,
            "changes": self.changes,
            "repaired": self.repaired,
            "kill_phases": dict(sorted(self.phases.items())),
            "kill_aims": dict(sorted(self.aims.items())),
            "followers_caught_up_before_their_kill": self.followers_caught_up_before_their_kill,
            "writes_on_wire": self.writes_on_wire,
            "duplicates": self.duplicates,
            "wrong_deactivations": self.wrong_deactivations,
            "writes_not_journaled": self.writes_not_journaled,
            "runs_marked_interrupted": self.runs_interrupted,
            "seconds": round(self.seconds, 1),
        }
        return "follow-crash-safety " + json.dumps(document)


# --- the test ------------------------------------------------------------------------------------------------


def run_follow_crash_test(
    okta: Okta, platform: httpx.Client, scim_url: str, store_url: str, zygote: Zygote, tmp_path: Path, kills: int
) -> Figures:
    figures = Figures(backend_of(store_url), SEED)
    rng = random.Random(SEED)
    world = OktaWorld(okta, platform, random.Random(SEED + 1))
    world.populate(INITIAL_USERS)
    for bucket in (LOG_PATH, "/api/v1/apps"):
        okta.emulator.set_rate_limit(RATE_LIMIT, bucket)
    started = time.monotonic()
    deadline = started + max(60.0, kills * SECONDS_PER_KILL_BUDGET)
    (logs := tmp_path / "logs").mkdir()
    with (
        RecordingProxy(okta.org_url, read_latency_s=OKTA_LATENCY_S) as okta_proxy,
        RecordingProxy(scim_url, read_latency_s=SCIM_READ_LATENCY_S, write_latency_s=SCIM_WRITE_LATENCY_S) as scim,
        Store(store_url) as store,
    ):
        config = write_config(tmp_path / "state", okta_proxy.url, okta.app_id, proxied(scim_url, scim), store_url)
        config.write_text(config.read_text() + INCREMENTAL)
        rig = Rig(zygote, okta_proxy, scim, store, config, logs, fingerprint(load_config(config)))
        completed_follower(rig)  # the first start: a full audit (both sides in sync), then the cursor
        attempts: list[Attempt] = []
        while figures.kills < kills:
            assert time.monotonic() < deadline, f"only {figures.kills} kills before the deadline"
            attempts += one_cycle(rig, world, rng, figures, kills - figures.kills)
        check_the_journal(store, attempts, figures)
        check_history_as_a_user_would(config, attempts)
    figures.seconds = time.monotonic() - started
    return figures


def one_cycle(rig: Rig, world: OktaWorld, rng: random.Random, figures: Figures, kills_left: int) -> list[Attempt]:
    """Change Okta, kill followers until one catches up by itself or the cycle's kills are done, finish, check."""
    figures.cycles += 1
    changed = world.change(figures.cycles)
    wanted_active = world.wants_active_ids()
    wire_mark, run_mark = len(rig.scim_proxy.exchanges()), latest_run_id(rig.store)
    attempts = []
    for _ in range(min(KILLS_PER_CYCLE, kills_left)):
        attempt = killed_follower(rig, world, rng, changed)
        attempts.append(attempt)
        if not attempt.killed:
            figures.followers_caught_up_before_their_kill += 1
            break
        figures.kills += 1
        figures.aims[attempt.aim] += 1
        figures.phases[attempt.phase or "?"] += 1
    completed_follower(rig)
    rig.scim_proxy.wait_idle()

    users = all_users(world.platform)
    writes = [e for e in rig.scim_proxy.exchanges(wire_mark) if e.is_write]
    runs = [run.id or 0 for run in rig.store.recent_runs(1000) if (run.id or 0) > run_mark]
    duplicates = duplicate_writes(writes) + duplicate_user_names(users)
    wrong = wrong_deactivations(writes, users, wanted_active)
    lost = unjournaled_writes(writes, [r for run_id in runs for r in rig.store.actions_of(run_id)], users)
    unrepaired = world.differences(users)
    figures.changes += len(changed)
    figures.repaired += len(changed) - len(world.differences(users, changed))
    figures.writes_on_wire += len(writes)
    figures.duplicates += len(duplicates)
    figures.wrong_deactivations += len(wrong)
    figures.writes_not_journaled += len(lost)

    assert unrepaired == [], f"cycle {figures.cycles}: Okta changes not repaired: {unrepaired}"
    assert duplicates == [], f"cycle {figures.cycles}: written twice: {duplicates}"
    assert wrong == [], f"cycle {figures.cycles}: users Okta wants active were deactivated: {wrong}"
    assert lost == [], f"cycle {figures.cycles}: writes sent without an action recorded first: {lost}"
    assert sum(sets_inactive(e) for e in writes) >= 3, "the cycle's deactivation, unassignment and suspension"
    return attempts


def check_the_journal(store: Store, attempts: list[Attempt], figures: Figures) -> None:
    """Every run ended; each run a kill left running is interrupted; no action is left pending."""
    runs = store.recent_runs(100_000)
    assert [run.id for run in runs if run.status is RunStatus.RUNNING] == []
    killed_runs = {a.run_id for a in attempts if a.run_id is not None}
    for run in runs:
        assert (run.status is RunStatus.INTERRUPTED) == (run.id in killed_runs), run
        statuses = {record.status for record in store.actions_of(run.id or 0)}
        assert ActionStatus.PENDING not in statuses, run
    figures.runs_interrupted = len(killed_runs)


@pytest.mark.cpu_bound
def test_a_follower_killed_at_random_points_repairs_every_change_once(
    okta: Okta, platform: httpx.Client, scim_url: str, store_url: str, zygote: Zygote, tmp_path: Path
) -> None:
    kills = DEFAULT_KILLS[backend_of(store_url)]
    figures = run_follow_crash_test(okta, platform, scim_url, store_url, zygote, tmp_path, kills)

    print(figures.report())
    assert figures.kills >= kills
    assert figures.phases["writing"] >= kills // 4
    assert figures.changes == figures.repaired > 0
    assert (figures.duplicates, figures.wrong_deactivations, figures.writes_not_journaled) == (0, 0, 0)


@pytest.mark.slow
@pytest.mark.chaos
def test_chaos_a_follower_killed_at_hundreds_of_random_points_repairs_every_change_once(
    okta: Okta, platform: httpx.Client, scim_url: str, store_url: str, zygote: Zygote, tmp_path: Path
) -> None:
    figures = run_follow_crash_test(okta, platform, scim_url, store_url, zygote, tmp_path, CHAOS_KILLS)

    print(figures.report())
    assert figures.kills >= CHAOS_KILLS
    assert {"reading the log", "reading users", "writing", "checkpointing"} <= set(figures.phases)
    assert figures.changes == figures.repaired > 0
    assert (figures.duplicates, figures.wrong_deactivations, figures.writes_not_journaled) == (0, 0, 0)
