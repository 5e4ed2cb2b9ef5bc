"""Incremental repair from Okta's System Log at 100,000 users: time to repair, and what it costs (the issue's Targets).

::

    python -m benchmarks.incremental [--n 100000] [--changes 100] [--over-s 60] [--poll-s 5] [--latency-ms 20]

N users assigned at rest, in sync on both sides (seeded directly: the emulator's ``/seed`` writes no System Log
event, and the lightweight SCIM server starts with the users Okta's pushes would have made, linked both ways),
each side 20 ms per round trip. The follower starts (in this process), which means a full audit first: that
audit is a dry-run, measured (requests on both sides) as what one full audit costs. Then ``--changes`` Okta
changes over ``--over-s`` seconds, made through the emulator's API so that it logs them as Okta would: equal
shares of deactivations, suspensions, unassignments, renames, profile edits and new assignments, and
``--failed-pushes`` profile edits whose push Okta logs as FAILURE. The follower polls every ``--poll-s``
(``recheck_after = 0``: the second look of each user 3 minutes later is not counted; ``policy.suspended =
"deactivate"``, so a suspension is a write to make). The bench waits until every change has its repair (or
a bound), then counts ``--idle-polls`` polls with nothing changing, stops, and checks the platform as a person
would: each changed user as Okta now wants it. From the SCIM server's record of writes: duplicates (the same
write twice) and wrong deactivations (of a user Okta wants active).

Time to repair is the follower's own figure (event ``published`` → platform write confirmed, its
``FollowListener.repaired``). Requests are counted by the servers (the emulator's request log, the SCIM server's
counts), the log's polls apart: ``requests_per_change`` = (requests − polls) / changes. The emulator's System
Log bucket keeps Okta's 120 a minute. The summary ends with one JSON line:
``{"n", "changes", "repaired", "p50_s", "p99_s", "max_s", "requests", "requests_per_change",
"full_audit_requests", "idle_requests_per_poll", "duplicates", "wrong_deactivations"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench import Settings, Tokens, scim_base_url, start_okta, start_scim_page_server, write_config
from benchmarks.scenario import Person, pushed_resource
from benchmarks.serving import ServerProcess, control
from reconciler.config import load_config
from reconciler.run.follower import Follower
from reconciler.run.outcome import RunOutcome
from reconciler.run.reconcile import reconcile
from reconciler.store import Store

KINDS = ("deactivate", "suspend", "unassign", "rename", "edit", "assign_new")
DEACTIVATING = frozenset({"deactivate", "suspend", "unassign"})
APPS_RATE_LIMIT = 1200
"""The emulator's apps bucket, a minute (Okta's default is 600 for many orgs, more for large ones): a full audit of
100,000 users (200 pages) and the single-user reads of the changes fit in half of it, the share the config gives."""
REPAIR_GRACE_POLLS = 6
"""After the last change, polls to wait for its repair at most: the bench always ends."""
JSON_KEYS = (
    "n",
    "changes",
    "repaired",
    "p50_s",
    "p99_s",
    "max_s",
    "requests",
    "requests_per_change",
    "full_audit_requests",
    "idle_requests_per_poll",
    "duplicates",
    "wrong_deactivations",
)


@dataclass
class Change:
    op: str
    okta_id: str | None
    value: str | None = None


@dataclass
class Listener:
    """The follower's reports (a :class:`reconciler.hooks.FollowListener`): each repair's time, and the polls."""

    repairs: list[float] = field(default_factory=list)
    polls: int = 0
    stop_reason: str | None = None

    def polled(self, read: int, ignored: int, acted: int, malformed: int, lag_s: float) -> None:
        self.polls += 1

    def repaired(self, seconds: float) -> None:
        self.repairs.append(seconds)

    def stopped(self, why: str) -> None:
        self.stop_reason = why


def plan_changes(people: Sequence[Person], count: int, failed_pushes: int, rng: random.Random) -> list[Change]:
    """``count`` changes to distinct users, ``failed_pushes`` of them failed pushes, the rest shared by kind."""
    chosen = iter(rng.sample(list(people), count))
    changes = [Change("failed_push", next(chosen).okta_id, f"Pushed{i}") for i in range(failed_pushes)]
    for i in range(count - failed_pushes):
        op = KINDS[i % len(KINDS)]
        person = next(chosen)
        value = {"rename": f"renamed.{person.login}", "edit": f"Edited{i}", "assign_new": f"new.hire.{i}@example.com"}
        changes.append(Change(op, None if op == "assign_new" else person.okta_id, value.get(op)))
    rng.shuffle(changes)
    return changes


def seed(okta: ServerProcess, n: int, users_file: Path) -> tuple[str, list[Person], dict[str, str]]:
    """N assigned users, written for the SCIM server as Okta pushed them and linked in Okta; okta id → SCIM id."""
    seeded = control(okta, "/seed", {"assigned": n, "unassigned": 0})
    people = [Person.from_row(row) for row in seeded["assigned"]]
    ids = random.Random(n)
    links: dict[str, str] = {}
    with users_file.open("w") as out:
        for person in people:
            links[person.okta_id] = scim_id = f"{ids.getrandbits(128):032x}"
            meta = {"resourceType": "User", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-01T00:00:00Z"}
            out.write(json.dumps({**pushed_resource(person), "id": scim_id, "meta": meta}) + "\n")
    control(okta, "/provision", {"app_id": seeded["app_id"], "links": list(links.items()), "org_url": okta.urls["url"]})
    control(okta, "/rate-limit", {"limit": APPS_RATE_LIMIT, "bucket": "/api/v1/apps"})
    return seeded["app_id"], people, links


def requests_of(okta: ServerProcess, scim: ServerProcess) -> tuple[int, int]:
    """(requests on both sides, of which System Log polls) so far: the bench subtracts two of these (a reset
    would also start fresh rate-limit windows, which the store's shared ledger does not know of)."""
    okta_stats, scim_stats = control(okta, "/stats"), control(scim, "/stats")
    scim_requests = sum(scim_stats.get(method, 0) for method in ("GET", "POST", "PUT", "PATCH", "DELETE"))
    return okta_stats["requests"] + scim_requests, okta_stats["log_requests"]


def since(mark: tuple[int, int], okta: ServerProcess, scim: ServerProcess) -> tuple[int, int]:
    now = requests_of(okta, scim)
    return now[0] - mark[0], now[1] - mark[1]


@dataclass
class Bench:
    args: argparse.Namespace
    okta: ServerProcess
    scim: ServerProcess
    app_id: str
    links: dict[str, str]
    listener: Listener = field(default_factory=Listener)
    full_audit_requests: int = 0
    figures: dict[str, Any] = field(default_factory=dict)

    async def full_audit(self, config: Any, store: Store) -> RunOutcome:
        mark = requests_of(self.okta, self.scim)
        outcome = await reconcile(config, store, dry_run=True)
        self.full_audit_requests = since(mark, self.okta, self.scim)[0]
        assert outcome.plan is not None and not [a for a in outcome.plan.actions if a.writes], "not at rest"
        return outcome

    async def run(self, config_path: Path, changes: list[Change]) -> list[Change]:
        config = load_config(config_path)
        args = self.args
        with Store(config.store.url) as store:
            async with Follower(config, store, lambda: self.full_audit(config, store), listener=self.listener) as f:
                stop = asyncio.Event()
                await f.start()  # the full audit (no cursor yet)
                mark = requests_of(self.okta, self.scim)
                writes_before = len(await asyncio.to_thread(_get, f"{self.scim.urls['control']}/writes"))
                following = asyncio.create_task(self._follow(f, stop))
                began = time.monotonic()
                for index, change in enumerate(changes):
                    await asyncio.sleep(max(0.0, began + index * args.over_s / len(changes) - time.monotonic()))
                    answer = await asyncio.to_thread(
                        control,
                        self.okta,
                        "/change",
                        {"op": change.op, "app_id": self.app_id, "user_id": change.okta_id, "value": change.value},
                    )
                    change.okta_id = answer["user_id"]
                deadline = time.monotonic() + REPAIR_GRACE_POLLS * args.poll_s
                while len(self.listener.repairs) < len(changes) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # a repair's own write round ends before the figures are taken
                self.figures["requests"], self.figures["polls"] = since(mark, self.okta, self.scim)
                self.figures["okta_by_path"] = control(self.okta, "/stats")["by_path"]
                writes = (await asyncio.to_thread(_get, f"{self.scim.urls['control']}/writes"))[writes_before:]
                mark, idle_polls = requests_of(self.okta, self.scim), self.listener.polls
                await asyncio.sleep(args.idle_polls * args.poll_s)
                idle_requests, idle_log = since(mark, self.okta, self.scim)
                self.figures["idle_polls"] = self.listener.polls - idle_polls
                self.figures["idle_requests_per_poll"] = round(idle_requests / max(1, idle_log), 2)
                stop.set()
                await following
        self.figures["wire_writes"] = writes
        return changes

    async def _follow(self, follower: Follower, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if (await follower.poll_safely()).caught_up:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.args.poll_s)
                except TimeoutError:
                    pass


def _get(url: str) -> Any:
    with httpx.Client(timeout=60) as client:
        response = client.get(url)
    response.raise_for_status()
    return response.json()


def repaired(scim_url: str, token: str, changes: list[Change], links: dict[str, str]) -> list[str]:
    """The changed users whose platform account is not what Okta now wants (empty: all repaired)."""
    problems = []
    with httpx.Client(base_url=scim_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for change in changes:
            found = client.get("/Users", params={"filter": f'externalId eq "{change.okta_id}"'}).json()["Resources"]
            if len(found) != 1:
                problems.append(f"{change.op} {change.okta_id}: {len(found)} platform users")
                continue
            user = found[0]
            wanted: dict[str, Any] = {"active": change.op not in DEACTIVATING}
            if change.op in ("rename", "assign_new"):
                wanted["userName"] = change.value
            got = {key: user.get(key) for key in wanted}
            if change.op == "edit":
                wanted["givenName"], got["givenName"] = change.value, (user.get("name") or {}).get("givenName")
            if change.op == "failed_push":
                wanted["familyName"], got["familyName"] = change.value, (user.get("name") or {}).get("familyName")
            if got != wanted:
                problems.append(f"{change.op} {change.okta_id}: platform has {got}, Okta wants {wanted}")
    return problems


def wire_checks(writes: list[Any], changes: list[Change], links: dict[str, str]) -> tuple[int, int]:
    """(duplicates, wrong deactivations) from the SCIM server's record of writes."""
    keys = Counter(json.dumps(write, sort_keys=True) for write in writes)
    duplicates = sum(count - 1 for count in keys.values())
    may_deactivate = {links.get(c.okta_id or "") for c in changes if c.op in DEACTIVATING}
    wrong = 0
    for method, user_id, body in writes:
        text = json.dumps(body)
        if method in ("PATCH", "PUT") and '"active": false' in text and user_id not in may_deactivate:
            wrong += 1
    return duplicates, wrong


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="users assigned at rest (default 100,000)")
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--failed-pushes", type=int, default=10)
    parser.add_argument("--over-s", type=float, default=60.0, help="the changes are spread over this long")
    parser.add_argument("--poll-s", type=float, default=5.0)
    parser.add_argument("--idle-polls", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    settings, tokens = Settings(latency_ms=args.latency_ms, seed=args.seed), Tokens()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as scratch:
        workdir = Path(scratch)
        with start_okta(settings, tokens) as okta:
            app_id, people, links = seed(okta, args.n, workdir / "users.jsonl")
            with start_scim_page_server(settings, tokens, workdir / "users.jsonl") as scim:
                config = write_config(workdir, settings, okta.urls["url"], app_id, scim_base_url(scim), args.n, "inc")
                config.write_text(
                    config.read_text()
                    + f'\n[incremental]\npoll = "{args.poll_s:g}s"\nrecheck_after = 0\n'
                    + '\n[policy]\nsuspended = "deactivate"\n'
                )
                changes = plan_changes(people, args.changes, args.failed_pushes, random.Random(args.seed))
                bench = Bench(args, okta, scim, app_id, links)
                os.environ.update(tokens.env())  # the config names the tokens' variables
                asyncio.run(bench.run(config, changes))
                problems = repaired(scim_base_url(scim), tokens.scim, changes, links)
    return report(args, bench, changes, problems, time.monotonic() - started)


def report(args: argparse.Namespace, bench: Bench, changes: list[Change], problems: list[str], wall_s: float) -> int:
    figures, repairs = bench.figures, bench.listener.repairs
    writes = figures["wire_writes"]
    duplicates, wrong = wire_checks(writes, changes, bench.links)
    requests, polls = figures["requests"], figures["polls"]
    per_change = (requests - polls) / len(changes)
    document = {
        "n": args.n,
        "changes": len(changes),
        "repaired": len(changes) - len(problems),
        "p50_s": round(statistics.median(repairs), 2) if repairs else None,
        "p99_s": round(percentile(repairs, 0.99), 2) if repairs else None,
        "max_s": round(max(repairs), 2) if repairs else None,
        "requests": requests,
        "requests_per_change": round(per_change, 2),
        "full_audit_requests": bench.full_audit_requests,
        "idle_requests_per_poll": figures["idle_requests_per_poll"],
        "duplicates": duplicates,
        "wrong_deactivations": wrong,
    }
    print(
        f"incremental repair: N = {args.n:,} at rest, {len(changes)} Okta changes over {args.over_s:g} s, "
        f"poll {args.poll_s:g} s, {args.latency_ms:g} ms per round trip on both sides ({wall_s:.0f} s in all)"
    )
    print(
        f"  repaired {document['repaired']}/{len(changes)}; {len(repairs)} writes confirmed; time to repair "
        f"p50 {document['p50_s']} s, p99 {document['p99_s']} s, max {document['max_s']} s (target p99 ≤ 15 s)"
    )
    print(
        f"  requests while changing: {requests} on both sides = {polls} polls of the log + "
        f"{requests - polls} for {len(changes)} changes ({per_change:.2f} per change; target ≤ 4)"
    )
    print(
        f"  one full audit (dry-run) of the same data: {bench.full_audit_requests} requests, "
        f"{bench.full_audit_requests / max(per_change, 1e-9):.0f}× the cost of one change"
    )
    print(
        f"  idle: {figures['idle_requests_per_poll']} requests per poll over {figures['idle_polls']} polls (target 1)"
    )
    print(f"  Okta requests by endpoint since the start (the full audit's included): {figures.get('okta_by_path')}")
    print(f"  on the wire: {len(writes)} writes, {duplicates} duplicates, {wrong} wrong deactivations")
    for problem in problems[:10]:
        print(f"  NOT REPAIRED: {problem}")
    print(json.dumps({key: document[key] for key in JSON_KEYS}))
    return 0 if not problems and duplicates == 0 and wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
