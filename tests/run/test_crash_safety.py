"""Crash safety: an apply killed with SIGKILL at random points converges, and two reconcilers never both write.

The kill test drives real ``reconcile`` processes (forked from a pre-imported
parent, tests/support/crash_zygote.py, so that a kill point costs a fraction of a
second instead of an import) against the Okta emulator and a real
scim2-server tenant, each behind a recording proxy (tests/support/wire_recorder.py)
that slows the wire down enough for kills to land mid-write and shows what was
really sent. Each cycle drifts both sides in every way (creates, a link,
hand edits, renames, unassignments, a deprovisioning, reassignments, a
re-activated user, users disabled on the platform), kills a few applies at
seeded random moments, anchored on what the wire shows (the reads begun, the
Okta listing answered, the k-th write sent), then lets one apply finish and
checks what a person would:

- the platform holds exactly what Okta wants (userName, active, externalId of
  every user), and a dry-run finds nothing to write;
- no userName appears twice (case-insensitively);
- no deactivation on the wire, over the whole test, targeted a user Okta
  wanted active;
- every write on the wire was journaled before it was sent (none lost);
- the store shows every run finished and every action succeeded, failed or
  interrupted: a killed run is ``interrupted`` once the next run has started.

``make test`` runs 50 kill points on SQLite and fewer on PostgreSQL; ``make
chaos`` runs the long version (``CHAOS_KILLS``, default 300 per backend;
``CRASH_SEED`` changes the seed). Each prints its figures and one JSON line.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.models.records import WRITE_KINDS, ActionKind
from reconciler.models.runs import ActionStatus, RunMode, RunStatus
from reconciler.store import ActionRecord, Run, Store
from reconciler.store.runs import INTERRUPTED_RUN_ERROR
from reconciler.store.urls import sqlite_path
from reconciler.testing.scenario import write_secret_file
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users, provision
from tests.support.cli_runner import reconcile
from tests.support.crash_zygote import REPO, ChildEnded, ChildStarted, Zygote
from tests.support.wire_recorder import Exchange, RecordingProxy, proxied

SEED = int(os.environ.get("CRASH_SEED", "2026"))
DEFAULT_KILLS = {"sqlite": 50, "postgresql": 10}
CHAOS_KILLS = int(os.environ.get("CHAOS_KILLS", "300"))
KILLS_PER_CYCLE = 5
"""Applies killed in each cycle before one is let finish (fewer if one finishes by itself first)."""
INITIAL_USERS = 40
OKTA_LATENCY_S = 0.08
"""Each Okta request: the reading phase lasts about this long."""
SCIM_READ_LATENCY_S = 0.005
SCIM_WRITE_LATENCY_S = 0.06
WRITE_CONCURRENCY = 2
CHILD_TIMEOUT_S = 60.0
"""A reconcile process that runs longer is killed by the zygote and fails the test."""
SECONDS_PER_KILL_BUDGET = 3.0
"""The overall deadline: this much per kill point (a kill point takes ~0.5 s), at least two minutes."""
EXIT_OK, EXIT_BUSY = 0, 75
RATE_LIMIT = 100_000
"""Per minute, on the emulator's apps bucket: each apply claims its Okta requests from the shared budget five at a
time (reconciler/net/shared_pacing.py), so sixty short-lived applies spend Okta's default 600 a minute (a 50 %
share) on claims alone and the next one waits half a minute for the window to reset. Pacing is tested elsewhere
(tests/okta/test_okta_source.py, tests/service/test_fleet_rate_budget.py), not here."""


# --- what Okta wants, and the drift made to it ---------------------------------------------------------


@dataclass
class Person:
    """An Okta user, as the test means it to be: the model the platform is checked against."""

    okta_id: str
    login: str
    assigned: bool = True
    deprovisioned: bool = False

    @property
    def wants_active(self) -> bool:
        return self.assigned and not self.deprovisioned


@dataclass
class World:
    """The Okta emulator and the SCIM tenant (written to directly, as Okta's pushes and people do), and the model."""

    okta: Okta
    platform: httpx.Client
    rng: random.Random
    people: dict[str, Person] = field(default_factory=dict)

    def populate(self, count: int) -> None:
        """``count`` assigned users, pushed to the platform as Okta would: in sync to begin with."""
        users = self.okta.emulator.add_assigned_users(self.okta.app_id, count, domain="seed.example.com")
        provision(self.okta, self.platform, [user.id for user in users])
        for user in users:
            self.people[user.id] = Person(user.id, user.profile["login"])

    def drift(self, cycle: int) -> None:
        """Drift of every kind, on users in sync: 3 creates, 1 link, 5 updates, 4 deactivations, 5 reactivations."""
        emulator, app_id = self.okta.emulator, self.okta.app_id
        active = [p for p in self.people.values() if p.wants_active]
        self.rng.shuffle(active)
        unassigned = [p for p in self.people.values() if not p.assigned]
        deprovisioned = [p for p in self.people.values() if p.deprovisioned]
        scim_ids = {str(user.get("externalId")): str(user["id"]) for user in all_users(self.platform)}

        for user in emulator.add_assigned_users(app_id, 3, domain=f"new{cycle}.example.com"):  # never pushed
            self.people[user.id] = Person(user.id, user.profile["login"])
        self._hand_made_account(cycle)
        for person in active[0:3]:
            self._patch(scim_ids[person.okta_id], "displayName", f"Edited by hand {cycle}")
        for person in active[3:5]:
            self._rename_in_okta(person, f"r{cycle}.{person.login}")
        for person in active[5:8]:
            emulator.unassign_user(app_id, person.okta_id)
            person.assigned = False
        for person in active[8:9]:
            emulator.set_user_status(person.okta_id, "DEPROVISIONED")
            person.deprovisioned = True
        for person in self.rng.sample(unassigned, min(2, len(unassigned))):
            emulator.assign_user(app_id, person.okta_id)
            person.assigned = True
        for person in deprovisioned[:1]:
            emulator.set_user_status(person.okta_id, "ACTIVE")
            person.deprovisioned = False
        for person in active[9:11]:
            self._patch(scim_ids[person.okta_id], "active", False)  # disabled by hand on the platform

    def _hand_made_account(self, cycle: int) -> None:
        """A newly assigned user whom someone already made by hand on the platform: no externalId (a link)."""
        [user] = self.okta.emulator.add_assigned_users(self.okta.app_id, 1, domain=f"hand{cycle}.example.com")
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user.profile["login"].upper(),
            "active": True,
        }
        self.platform.post("/Users", json=body).raise_for_status()
        self.people[user.id] = Person(user.id, user.profile["login"])

    def _rename_in_okta(self, person: Person, login: str) -> None:
        self.okta.emulator.update_user_profile(person.okta_id, login=login, email=login)
        self.okta.emulator.set_app_user(self.okta.app_id, person.okta_id, user_name=login)
        person.login = login

    def _patch(self, scim_id: str, attribute: str, value: Any) -> None:
        operations = [{"op": "replace", "value": {attribute: value}}]  # the form Okta itself sends
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}
        self.platform.patch(f"/Users/{scim_id}", json=body).raise_for_status()

    def wants_active_ids(self) -> frozenset[str]:
        return frozenset(p.okta_id for p in self.people.values() if p.wants_active)


def duplicate_user_names(users: list[dict]) -> list[str]:
    counts = Counter(str(user["userName"]).casefold() for user in users)
    return sorted(name for name, count in counts.items() if count > 1)


def platform_differences(world: World, users: list[dict]) -> list[str]:
    """How the platform differs from what Okta wants: one line per difference (none when it matches)."""
    by_okta_id: dict[str, list[dict]] = {}
    for user in users:
        by_okta_id.setdefault(str(user.get("externalId")), []).append(user)
    problems = []
    if len(users) != len(world.people):
        problems.append(f"{len(users)} platform users for {len(world.people)} Okta users")
    for person in world.people.values():
        found = by_okta_id.get(person.okta_id, [])
        if len(found) != 1:
            problems.append(f"{person.login}: {len(found)} platform users linked to {person.okta_id}")
            continue
        [user] = found
        if str(user["userName"]).casefold() != person.login.casefold():
            problems.append(f"{person.login}: userName {user['userName']!r} on the platform")
        if bool(user.get("active")) != person.wants_active:
            problems.append(f"{person.login}: active={user.get('active')}, Okta wants {person.wants_active}")
    return problems


# --- the wire -------------------------------------------------------------------------------------------


def scim_id_of(exchange: Exchange) -> str | None:
    match = re.search(r"/Users/([^/?]+)$", exchange.path.split("?")[0])
    return match.group(1) if match else None


def sets_inactive(exchange: Exchange) -> bool:
    """A PATCH or PUT that sets ``active`` to false, in any of the forms SCIM allows."""
    body = exchange.body if isinstance(exchange.body, dict) else {}
    if exchange.method == "PUT":
        return body.get("active") is False
    if exchange.method != "PATCH":
        return False
    for operation in body.get("Operations", []):
        value = operation.get("value")
        if str(operation.get("op", "")).lower() != "replace":
            continue
        if operation.get("path") == "active" and value is False:
            return True
        if not operation.get("path") and isinstance(value, dict) and value.get("active") is False:
            return True
    return False


def wrong_deactivations(writes: list[Exchange], users: list[dict], wanted_active: frozenset[str]) -> list[str]:
    """Deactivations sent to platform users whom Okta wanted active at the time."""
    owner = {str(user["id"]): str(user.get("externalId")) for user in users}
    return [
        f"{exchange.method} {exchange.path} deactivated {owner.get(scim_id_of(exchange) or '')}"
        for exchange in writes
        if sets_inactive(exchange) and owner.get(scim_id_of(exchange) or "") in wanted_active
    ]


def unjournaled_writes(writes: list[Exchange], records: list[ActionRecord], users: list[dict]) -> list[str]:
    """Writes that reached the platform with no action recorded before they were sent: lost to the audit trail."""
    user_names = {str(user["id"]): str(user["userName"]).casefold() for user in users}

    def journaled(exchange: Exchange) -> bool:
        earlier = [r for r in records if r.created_at <= exchange.arrived_at and r.kind in WRITE_KINDS]
        if exchange.method == "POST":
            name = str((exchange.body or {}).get("userName", "")).casefold()
            return any(r.kind is ActionKind.CREATE and r.user_name.casefold() == name for r in earlier)
        scim_id = scim_id_of(exchange)
        return any(
            r.scim_id == scim_id or r.user_name.casefold() == user_names.get(scim_id or "") for r in earlier
        )  # a 409 on create links the user found by its userName

    return [_unjournaled(exchange, records) for exchange in writes if not journaled(exchange)]


def _unjournaled(exchange: Exchange, records: list[ActionRecord]) -> str:
    """The write, and what the journal holds of its user at any time: enough to tell a write never journaled from
    one journaled under another name or with a clock that stepped back (wall clocks of two processes)."""
    name = str((exchange.body or {}).get("userName", "")).casefold()
    scim_id = scim_id_of(exchange)
    same = [
        f"{r.kind.value} {r.user_name} {r.status.value} at {r.created_at.isoformat()}"
        for r in records
        if r.user_name.casefold() == name or (scim_id is not None and r.scim_id == scim_id)
    ]
    return f"{exchange.method} {exchange.path} userName={name!r} at {exchange.arrived_at.isoformat()}; journal: {same}"


# --- one killed apply -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPlan:
    """Where to aim a kill: a moment on the wire to wait for, then a random delay after it."""

    aim: str
    """early (from the fork), reading, planning or writing."""
    fired: Callable[[list[Exchange], list[Exchange]], bool]
    """Given the attempt's Okta and SCIM exchanges so far: has the anchor moment come?"""
    delay_s: float


def okta_listing_done(okta: list[Exchange]) -> bool:
    """The last page of the app's assignments was answered (no ``rel="next"`` link)."""
    return any(
        "/users" in e.path and e.status == 200 and 'rel="next"' not in e.answer_headers.get("Link", "")
        for e in okta
        if e.answered is not None
    )


def choose_kill(rng: random.Random) -> KillPlan:
    """Seeded: mostly mid-write, the rest during start-up, reading and planning."""
    roll = rng.random()
    if roll < 0.1:
        return KillPlan("early", lambda okta, scim: True, rng.uniform(0.0, 0.3))
    if roll < 0.3:
        return KillPlan("reading", lambda okta, scim: bool(scim), rng.uniform(0.0, OKTA_LATENCY_S * 1.5))
    if roll < 0.4:
        return KillPlan("planning", lambda okta, scim: okta_listing_done(okta), rng.uniform(0.0, 0.02))
    k = rng.randint(1, 6)
    return KillPlan(
        "writing", lambda okta, scim: sum(e.is_write for e in scim) >= k, rng.uniform(0.0, SCIM_WRITE_LATENCY_S)
    )


@dataclass
class Attempt:
    aim: str
    killed: bool
    phase: str | None = None
    """Where the kill landed, by the evidence: starting, reading, planning or writing; None if not killed."""
    run_id: int | None = None
    exit_code: int | None = None
    writes_in_flight: int = 0
    """Writes sent whose answer the killed process never got: their outcome is unknown to it."""


@dataclass
class Rig:
    """Everything one crash test drives."""

    zygote: Zygote
    okta_proxy: RecordingProxy
    scim_proxy: RecordingProxy
    store: Store
    config: Path
    logs: Path

    def start(self, *extra: str) -> ChildStarted:
        """A ``reconcile --config F --quiet *extra`` process; its output goes to ``logs/run-N.log``."""
        argv = ["--config", str(self.config), "--quiet", *extra]
        return self.zygote.start(argv, self.logs / f"run-{len(list(self.logs.iterdir())) + 1}.log", CHILD_TIMEOUT_S)

    def log_of(self, child: ChildStarted) -> str:
        return child.log.read_text(errors="replace")


def latest_run_id(store: Store) -> int:
    runs = store.recent_runs(1)
    return runs[0].id or 0 if runs else 0


def killed_apply(rig: Rig, rng: random.Random) -> Attempt:
    """Start an apply, kill it at a seeded moment (unless it ends first), and find where the kill landed."""
    plan = choose_kill(rng)
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
    assert not outcome.timed_out, f"a reconcile run outlived {CHILD_TIMEOUT_S} s:\n{rig.log_of(child)}"
    attempt = Attempt(plan.aim, outcome.killed, exit_code=outcome.exit_code)
    new_runs = [run for run in rig.store.recent_runs(5) if (run.id or 0) > before]
    assert len(new_runs) <= 1
    attempt.run_id = new_runs[0].id if new_runs else None
    if outcome.killed:
        attempt.phase = kill_phase(rig, new_runs[0] if new_runs else None, outcome, okta_mark, scim_mark)
        attempt.writes_in_flight = writes_in_flight(rig.scim_proxy.exchanges(scim_mark), outcome)
    else:
        assert outcome.exit_code == EXIT_OK, f"an apply left alone exited {outcome.exit_code}:\n{rig.log_of(child)}"
    return attempt


def kill_phase(rig: Rig, run: Run | None, outcome: ChildEnded, okta_mark: int, scim_mark: int) -> str:
    """Where the kill landed, from the evidence: the store's run row and journal, and the wire."""
    assert outcome.killed_at is not None
    if run is None:
        return "starting"  # configuration, store, run lock: no run row yet
    assert run.status is RunStatus.RUNNING, "a killed run cannot have recorded its own end"
    wire_writes = [e for e in rig.scim_proxy.exchanges(scim_mark) if e.is_write and e.arrived <= outcome.killed_at]
    intents = [r for r in rig.store.actions_of(run.id or 0) if r.kind in WRITE_KINDS]
    if wire_writes or intents:
        return "writing"
    okta = [e for e in rig.okta_proxy.exchanges(okta_mark) if (e.answered or float("inf")) <= outcome.killed_at]
    if run.summary is not None or okta_listing_done(okta):
        return "planning"
    return "reading"


def writes_in_flight(exchanges: list[Exchange], outcome: ChildEnded) -> int:
    """Writes that had arrived when the kill came and whose answer was not delivered before it."""
    assert outcome.killed_at is not None
    return sum(
        e.is_write
        and e.arrived <= outcome.killed_at
        and (not e.delivered or e.answered is None or e.answered > outcome.killed_at)
        for e in exchanges
    )


def completed_apply(rig: Rig) -> dict[str, Any]:
    """An apply let finish; returns its JSON document."""
    child = rig.start("--output", "json")
    outcome = rig.zygote.wait(child, CHILD_TIMEOUT_S + 10)
    log = rig.log_of(child)
    assert outcome.exit_code == EXIT_OK, f"the completing apply exited {outcome.exit_code}:\n{log}"
    return json.loads(log[log.index("{") :])


# --- the figures ----------------------------------------------------------------------------------------------


@dataclass
class Figures:
    backend: str
    seed: int
    kills: int = 0
    cycles: int = 0
    applies_finished_before_their_kill: int = 0
    kills_with_a_write_in_flight: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    aims: Counter[str] = field(default_factory=Counter)
    writes_on_wire: int = 0
    deactivations_on_wire: int = 0
    duplicates: int = 0
    wrong_deactivations: int = 0
    actions_lost: int = 0
    runs_interrupted: int = 0
    actions_interrupted: int = 0
    actions_failed: int = 0
    seconds: float = 0.0

    def report(self) -> str:
        document = {
            "backend": self.backend,
            "seed": self.seed,
            "kills": self.kills,
            "cycles": self.cycles,
            "kill_phases": dict(sorted(self.phases.items())),
            "kill_aims": dict(sorted(self.aims.items())),
            "kills_with_a_write_in_flight": self.kills_with_a_write_in_flight,
            "applies_finished_before_their_kill": self.applies_finished_before_their_kill,
            "writes_on_wire": self.writes_on_wire,
            "deactivations_on_wire": self.deactivations_on_wire,
            "duplicates": self.duplicates,
            "wrong_deactivations": self.wrong_deactivations,
            "actions_lost": self.actions_lost,
            "runs_marked_interrupted": self.runs_interrupted,
            "actions_marked_interrupted": self.actions_interrupted,
            "actions_failed": self.actions_failed,
            "seconds": round(self.seconds, 1),
        }
        return "crash-safety " + json.dumps(document)


# --- fixtures -----------------------------------------------------------------------------------------------


def write_config(
    state: Path, org_url: str, app_id: str, scim_url: str, store_url: str, write_concurrency: int = WRITE_CONCURRENCY
) -> Path:
    """A config as deployed (token files, mode 0600), with thresholds that let every cycle's drift through."""
    state.mkdir(parents=True, exist_ok=True)
    write_secret_file(state / "okta.token", OKTA_TOKEN + "\n")
    write_secret_file(state / "scim.token", SCIM_TOKEN + "\n")
    config = state / "config.toml"
    config.write_text(
        f'[okta]\norg_url = "{org_url}"\napp_id = "{app_id}"\nauth = "api_token"\ntoken_file = "okta.token"\n'
        "timeout_s = 20\n\n"
        f'[scim]\nbase_url = "{scim_url}"\ntoken_file = "scim.token"\ntimeout_s = 20\n'
        f"write_concurrency = {write_concurrency}\n\n"
        f'[store]\nurl = "{store_url}"\n\n'
        "[thresholds]\nmax_create_ratio = 1.0\nmax_update_ratio = 1.0\nmax_deactivate_ratio = 1.0\n"
        "max_reactivate_ratio = 1.0\nmax_link_ratio = 1.0\nmax_source_drop_ratio = 0.9\n"
    )
    return config


def backend_of(store_url: str) -> str:
    return "sqlite" if sqlite_path(store_url) is not None else "postgresql"


# --- the crash test --------------------------------------------------------------------------------------------


def run_crash_test(
    okta: Okta, platform: httpx.Client, scim_url: str, store_url: str, zygote: Zygote, tmp_path: Path, kills: int
) -> Figures:
    figures = Figures(backend_of(store_url), SEED)
    rng = random.Random(SEED)
    world = World(okta, platform, random.Random(SEED + 1))
    world.populate(INITIAL_USERS)
    okta.emulator.set_rate_limit(RATE_LIMIT, "/api/v1/apps")
    started = time.monotonic()
    deadline = started + max(120.0, kills * SECONDS_PER_KILL_BUDGET)
    logs = tmp_path / "logs"
    logs.mkdir()
    with (
        RecordingProxy(okta.org_url, read_latency_s=OKTA_LATENCY_S) as okta_proxy,
        RecordingProxy(scim_url, read_latency_s=SCIM_READ_LATENCY_S, write_latency_s=SCIM_WRITE_LATENCY_S) as scim,
        Store(store_url) as store,
    ):
        config = write_config(
            tmp_path / "state",
            okta_proxy.url,
            okta.app_id,
            proxied(scim_url, scim),
            store_url,
        )
        rig = Rig(zygote, okta_proxy, scim, store, config, logs)
        attempts: list[Attempt] = []
        while figures.kills < kills:
            assert time.monotonic() < deadline, f"only {figures.kills} kills before the deadline"
            attempts += one_cycle(rig, world, rng, figures, kills - figures.kills)
        check_the_journal(store, attempts, figures)
        check_history_as_a_user_would(config, attempts)
    figures.seconds = time.monotonic() - started
    return figures


def one_cycle(rig: Rig, world: World, rng: random.Random, figures: Figures, kills_left: int) -> list[Attempt]:
    """Drift, kill applies until one finishes by itself or the cycle's kills are done, finish, check."""
    figures.cycles += 1
    world.drift(figures.cycles)
    wanted_active = world.wants_active_ids()
    wire_mark, run_mark = len(rig.scim_proxy.exchanges()), latest_run_id(rig.store)
    attempts = []
    for _ in range(min(KILLS_PER_CYCLE, kills_left)):
        attempt = killed_apply(rig, rng)
        attempts.append(attempt)
        if not attempt.killed:
            figures.applies_finished_before_their_kill += 1
            break
        figures.kills += 1
        figures.aims[attempt.aim] += 1
        figures.phases[attempt.phase or "?"] += 1
        figures.kills_with_a_write_in_flight += attempt.writes_in_flight > 0
    completed_apply(rig)
    rig.scim_proxy.wait_idle()

    dry_run = reconcile("--config", rig.config, "--dry-run", "--output", "json", "--quiet")
    assert dry_run.code == EXIT_OK, f"a dry-run after the cycle found drift:\n{dry_run.stdout}{dry_run.stderr}"
    users = all_users(world.platform)
    writes = [e for e in rig.scim_proxy.exchanges(wire_mark) if e.is_write]
    duplicates = duplicate_user_names(users)
    wrong = wrong_deactivations(writes, users, wanted_active)
    runs = [run.id for run in rig.store.recent_runs(1000) if (run.id or 0) > run_mark]
    lost = unjournaled_writes(writes, [r for run_id in runs for r in rig.store.actions_of(run_id or 0)], users)
    figures.writes_on_wire += len(writes)
    figures.deactivations_on_wire += sum(sets_inactive(e) for e in writes)
    figures.duplicates += len(duplicates)
    figures.wrong_deactivations += len(wrong)
    figures.actions_lost += len(lost)

    assert duplicates == [], f"cycle {figures.cycles}: userNames twice on the platform: {duplicates}"
    assert platform_differences(world, users) == []
    assert wrong == [], f"cycle {figures.cycles}: users Okta wants active were deactivated: {wrong}"
    assert lost == [], f"cycle {figures.cycles}: writes sent without an action recorded first: {lost}"
    return attempts


def check_the_journal(store: Store, attempts: list[Attempt], figures: Figures) -> None:
    """Every run finished, every killed one interrupted; every write action succeeded, failed or was interrupted."""
    runs = store.recent_runs(100_000)
    assert [run.id for run in runs if run.status is RunStatus.RUNNING] == []
    killed_runs = {a.run_id for a in attempts if a.killed and a.run_id is not None}
    for run in runs:
        if run.id in killed_runs:
            assert (run.status, run.error) == (RunStatus.INTERRUPTED, INTERRUPTED_RUN_ERROR), run
    statuses: Counter[ActionStatus] = Counter()
    for run in runs:
        for record in store.actions_of(run.id or 0):
            if run.mode is RunMode.APPLY and record.kind in WRITE_KINDS:
                assert record.status in (ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.INTERRUPTED), record
            assert record.status is not ActionStatus.PENDING, record
            statuses[record.status] += 1
    figures.runs_interrupted = sum(run.status is RunStatus.INTERRUPTED for run in runs)
    figures.actions_interrupted = statuses[ActionStatus.INTERRUPTED]
    figures.actions_failed = statuses[ActionStatus.FAILED]
    assert figures.runs_interrupted == len(killed_runs)


def check_history_as_a_user_would(config: Path, attempts: list[Attempt]) -> None:
    """``reconcile history`` shows each killed run as interrupted and none as still running."""
    shown = reconcile("--config", config, "history", "--limit", "100000", "--output", "json")
    assert shown.code == EXIT_OK, shown.stderr
    status = {run["run_id"]: run["status"] for run in shown.json()}
    assert "running" not in status.values()
    assert {status[a.run_id] for a in attempts if a.killed and a.run_id is not None} <= {"interrupted"}


@pytest.mark.cpu_bound
def test_an_apply_killed_at_random_points_converges_without_duplicates_or_wrong_deactivations(
    okta: Okta, platform: httpx.Client, scim_url: str, store_url: str, zygote: Zygote, tmp_path: Path
) -> None:
    kills = DEFAULT_KILLS[backend_of(store_url)]
    figures = run_crash_test(okta, platform, scim_url, store_url, zygote, tmp_path, kills)

    print(figures.report())
    assert figures.kills >= kills
    assert ({"reading", "planning", "writing"} if kills >= 50 else {"writing"}) <= set(figures.phases)
    assert figures.phases["writing"] >= kills // 3
    assert (figures.duplicates, figures.wrong_deactivations, figures.actions_lost) == (0, 0, 0)


@pytest.mark.slow
@pytest.mark.chaos
def test_chaos_an_apply_killed_at_hundreds_of_random_points_converges(
    okta: Okta, platform: httpx.Client, scim_url: str, store_url: str, zygote: Zygote, tmp_path: Path
) -> None:
    figures = run_crash_test(okta, platform, scim_url, store_url, zygote, tmp_path, CHAOS_KILLS)

    print(figures.report())
    assert figures.kills >= CHAOS_KILLS
    assert {"starting", "reading", "planning", "writing"} <= set(figures.phases)
    assert (figures.duplicates, figures.wrong_deactivations, figures.actions_lost) == (0, 0, 0)


def test_a_killed_run_shows_as_interrupted_at_once_and_a_live_one_as_running(
    okta: Okta, platform: httpx.Client, scim_url: str, store_url: str, zygote: Zygote, tmp_path: Path
) -> None:
    """``history`` and ``show`` tell a dead run from a live one without waiting for the next run."""
    world = World(okta, platform, random.Random(SEED))
    world.populate(10)
    world.drift(1)
    with (
        RecordingProxy(okta.org_url) as okta_proxy,
        RecordingProxy(scim_url, write_latency_s=1.0) as scim,
    ):
        config = write_config(
            tmp_path / "state",
            okta_proxy.url,
            okta.app_id,
            proxied(scim_url, scim),
            store_url,
            write_concurrency=1,
        )
        child = zygote.start(["--config", str(config), "--quiet"], tmp_path / "apply.log", CHILD_TIMEOUT_S)
        try:
            assert scim.wait_for(lambda exchanges: any(e.is_write for e in exchanges), 30), "no write was sent"
            alive = reconcile("--config", config, "history", "--output", "json")
            assert [run["status"] for run in alive.json()] == ["running"], "a live run is not to be touched"
        finally:
            zygote.kill(child)
        assert zygote.wait(child, 30).killed
        scim.wait_idle()

    [run] = reconcile("--config", config, "history", "--output", "json").json()
    assert (run["status"], run["error"]) == ("interrupted", INTERRUPTED_RUN_ERROR)
    shown = reconcile("--config", config, "show", str(run["run_id"]), "--output", "json").json()
    outcomes = Counter(action["status"] for action in shown["actions"])
    assert set(outcomes) <= {"succeeded", "interrupted"} and outcomes["interrupted"] >= 1, outcomes


# --- two reconcilers at once --------------------------------------------------------------------------------------


@dataclass
class Finished:
    pid: int
    code: int
    stdout: str
    stderr: str
    ended: float


def run_at_once(commands: list[list[str]], timeout_s: float = 120.0) -> list[Finished]:
    """Start every command at the same moment; wait for all (killing any past ``timeout_s``)."""
    environment = {k: v for k, v in os.environ.items() if k != "RECONCILER_CONFIG"}
    environment["PYTHONPATH"] = str(REPO)
    processes = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=environment,
        )
        for command in commands
    ]
    ended: dict[int, float] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(ended) < len(processes) and time.monotonic() < deadline:
            for index, process in enumerate(processes):
                if index not in ended and process.poll() is not None:
                    ended[index] = time.monotonic()
            time.sleep(0.01)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    finished = []
    for index, process in enumerate(processes):
        stdout, stderr = process.communicate(timeout=10)
        finished.append(Finished(process.pid, process.returncode, stdout, stderr, ended.get(index, float("inf"))))
    return finished


def test_two_reconcilers_started_at_once_on_one_target_only_one_writes(
    okta: Okta, platform: httpx.Client, scim_url: str, store_url: str, tmp_path: Path
) -> None:
    world = World(okta, platform, random.Random(SEED))
    world.populate(20)
    world.drift(1)
    wanted_active = world.wants_active_ids()
    # Slow enough that the first to take the lock holds it long after the other's start-up (1.5-3 s of imports).
    with (
        RecordingProxy(okta.org_url, read_latency_s=1.0) as okta_proxy,
        RecordingProxy(scim_url, write_latency_s=0.05) as scim,
    ):
        config = write_config(
            tmp_path / "state",
            okta_proxy.url,
            okta.app_id,
            proxied(scim_url, scim),
            store_url,
            write_concurrency=1,
        )
        command = [sys.executable, "-m", "reconciler", "--config", str(config), "--output", "json", "--quiet"]
        first, second = run_at_once([command, command])
        scim.wait_idle()
        writes = [e for e in scim.exchanges() if e.is_write]

    by_code = {result.code: result for result in (first, second)}
    assert sorted(by_code) == [EXIT_OK, EXIT_BUSY], f"{first}\n{second}"
    writer, refused = by_code[EXIT_OK], by_code[EXIT_BUSY]
    assert f"held by reconcile pid {writer.pid} on " in refused.stderr
    assert "Gave up without waiting; nothing was done" in refused.stderr
    assert refused.stdout == ""
    assert refused.ended < writer.ended, "the refused reconciler should not wait for the other to finish"

    applied = json.loads(writer.stdout)
    planned_writes = sum(applied["summary"][kind.value] for kind in WRITE_KINDS)
    assert planned_writes >= 15 and applied["applied"] == planned_writes and applied["failed"] == 0
    assert len(writes) == planned_writes, "every write was sent once, by one reconciler"
    with Store(store_url) as store:
        [run] = store.recent_runs()
        assert (run.mode, run.status, run.applied) == (RunMode.APPLY, RunStatus.SUCCEEDED, planned_writes)
    users = all_users(platform)
    assert duplicate_user_names(users) == []
    assert platform_differences(world, users) == []
    assert wrong_deactivations(writes, users, wanted_active) == []
