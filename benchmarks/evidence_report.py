"""``reconcile report`` at 100,000 users and 1,000 runs: the page within 5 s and 5 MB (issue 23's target).

::

    python -m benchmarks.evidence_report [--users 100000] [--runs 1000] [--days 30]

A SQLite store is filled with a month of history as the tool records it, written straight into its tables (a
thousand real runs at 100,000 users would take hours to make): a first apply that creates every user, then full
audits every ``days / runs`` (nine dry-runs for each apply, a safety stop and a failure now and then), each finding
0 to 200 drifting users of every kind, the applies repairing what the dry-runs before them found, and an
incremental repair (a System Log deactivation, ``okta_changed_at`` set) between audits. Then ``reconcile report``
runs as a user would, in a child process, for the HTML page, the JSON and the CSV of the whole period: wall time,
peak memory (the child's ``VmHWM``, read every 10 ms while it runs) and file size. The summary ends with one JSON line:
``{"users", "runs", "actions", "html_s", "html_mb", "html_rss_mb", "json_s", "json_mb", "csv_s", "csv_mb"}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reconciler.config import fingerprint, load_config
from reconciler.store import Store
from reconciler.store.tables import ActionRecord, Run

TARGET_S = 5.0
TARGET_MB = 5.0
POLL_S = 0.01
KINDS = ("create", "update", "deactivate", "reactivate", "conflict")
CONFIG = """[okta]
org_url = "https://acme.okta.com"
app_id = "0oa1bench0000000000"
token_env = "BENCH_OKTA_TOKEN"

[scim]
base_url = "https://platform.example.com/scim/v2"
token_env = "BENCH_SCIM_TOKEN"

[store]
url = "sqlite:///{store}"
"""


@dataclass
class History:
    """What the bench wrote, to print beside the figures."""

    runs: int = 0
    actions: int = 0


def user(i: int) -> tuple[str, str]:
    return f"user{i:06d}@example.com", f"00u{i:017d}"


def created(i: int) -> dict[str, Any]:
    name, okta_id = user(i)
    given, family = f"Given{i}", f"Family{i}"
    return {
        "userName": {"before": None, "after": name},
        "name.givenName": {"before": None, "after": given},
        "name.familyName": {"before": None, "after": family},
        'emails[type eq "work"].value': {"before": None, "after": name},
        "displayName": {"before": None, "after": f"{given} {family}"},
        "externalId": {"before": None, "after": okta_id},
        "active": {"before": None, "after": True},
    }


def changes_of(kind: str, i: int) -> dict[str, Any]:
    if kind == "create":
        return created(i)
    if kind == "update":
        return {"name.familyName": {"before": f"Family{i}", "after": f"Renamed{i}"}}
    if kind in ("deactivate", "reactivate"):
        return {"active": {"before": kind == "deactivate", "after": kind == "reactivate"}}
    return {}


def action_row(run_id: int, kind: str, i: int, status: str, at: datetime, **extra: Any) -> dict[str, Any]:
    name, okta_id = user(i)
    done = at + timedelta(milliseconds=40) if status == "succeeded" else None
    return {
        "run_id": run_id, "scim_id": f"scim-{i}", "reason": f"{kind} found by the plan", "status": status,
        "error": "held by the safety gate: max_deactivate" if status == "skipped" and kind == "deactivate" else None,
        "created_at": at, "finished_at": done, "kind": kind, "user_name": name, "okta_user_id": okta_id,
        "changes": changes_of(kind, i), "okta_changed_at": extra.get("okta_changed_at"),
    }  # fmt: skip


def fill(url: str, target: str, users: int, runs: int, days: int, seed: int = 23) -> History:
    """A month of history of the target (config fingerprint) ``target`` in the store at ``url``."""
    rng = random.Random(seed)
    history = History()
    start = datetime.now(UTC) - timedelta(days=days)
    step = timedelta(days=days) / runs
    Store(url).close()  # the schema, at the newest revision
    engine = sa.create_engine(url)
    found: dict[str, list[int]] = {kind: [] for kind in KINDS}
    with engine.begin() as connection:
        for n in range(runs):
            at = start + step * n
            mode, status = _mode_and_status(n, rng)
            drift = {kind: ([] if n == 0 else rng.sample(range(users), rng.randint(0, 40))) for kind in KINDS}
            if n == 0:
                drift["create"] = list(range(users))
            run_id = _insert_run(connection, target, n, at, mode, status, drift, users)
            rows = _actions_of(run_id, mode, status, drift, found, at)
            if rows:
                connection.execute(sa.insert(ActionRecord), rows)
            history.runs += 1
            history.actions += len(rows)
            if n % 10 == 5:  # a System Log repair between audits
                incremental = _insert_run(connection, target, n, at + step / 2, "incremental", "succeeded", None, users)
                victim = rng.randrange(users)
                published = at + step / 2 - timedelta(seconds=rng.uniform(1, 20))
                row = action_row(
                    incremental, "deactivate", victim, "succeeded", at + step / 2, okta_changed_at=published
                )
                connection.execute(sa.insert(ActionRecord), [row])
                history.runs += 1
                history.actions += 1
    engine.dispose()
    return history


def _mode_and_status(n: int, rng: random.Random) -> tuple[str, str]:
    if n == 0:
        return "apply", "succeeded"
    if n % 97 == 0:
        return "apply", "blocked"
    if n % 131 == 0:
        return "dry-run", "failed"
    return ("apply", "succeeded") if n % 10 == 0 else ("dry-run", "drift")


def _insert_run(
    connection: sa.Connection, target: str, n: int, at: datetime, mode: str, status: str, drift: Any, users: int
) -> int:
    planned = {f"planned_{kind}": len(drift[kind]) for kind in KINDS} if drift and status != "failed" else {}
    row = {
        "started_at": at, "finished_at": at + timedelta(seconds=60), "mode": mode, "status": status,
        "config_fingerprint": target, "source_count": users, "managed_count": users,
        "applied": 0, "failed": 0, "replica": "bench pid 1", "started_by": None if n % 10 else "alice",
        "error": "the platform answered 503" if status == "failed" else None,
        **planned,
        **({"planned_link": 0, "planned_unmanaged": 0, "planned_in_sync": users - sum(planned.values())}
           if planned else {}),
    }  # fmt: skip
    return int(connection.execute(sa.insert(Run).values(**row)).inserted_primary_key[0])


def _actions_of(
    run_id: int, mode: str, status: str, drift: dict[str, list[int]], found: dict[str, list[int]], at: datetime
) -> list[dict[str, Any]]:
    if status == "failed":
        return []
    rows = []
    for kind, chosen in drift.items():
        if mode == "dry-run" or kind == "conflict":
            found[kind].extend(chosen)
            rows += [action_row(run_id, kind, i, "skipped", at) for i in chosen]
            continue
        held = status == "blocked" and kind == "deactivate"
        targets = chosen + found[kind]
        found[kind] = found[kind] if held else []
        rows += [action_row(run_id, kind, i, "skipped" if held else "succeeded", at) for i in targets]
    return rows


def timed_report(config: Path, out: Path, form: str) -> tuple[float, float, float]:
    """``reconcile report`` in a child process: its wall time, the file's size (MB) and the child's peak RSS (MB)."""
    command = [sys.executable, "-m", "reconciler", "--config", str(config), "report", "--format", form]
    command += ["--since", "60d", "--out", str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kb = 0
    while child.poll() is None:
        peak_kb = max(peak_kb, high_water_kb(child.pid))
        time.sleep(POLL_S)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        said = child.stderr.read().decode() if child.stderr else ""
        raise SystemExit(f"reconcile report --format {form} failed: {said}")
    return wall, out.stat().st_size / 1e6, peak_kb / 1024


def high_water_kb(pid: int) -> int:
    """The process's peak resident memory so far (``VmHWM``), 0 once it is gone.

    Read from /proc rather than ``ru_maxrss``: a child's ``ru_maxrss`` starts at its parent's resident size when
    it was spawned (the kernel carries the old address space's peak across ``exec``), which would show the
    bench's own memory, not the report's. ``VmHWM`` belongs to the address space the command runs in.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1])


def filled_in_a_child(store: Path, target: str, args: argparse.Namespace) -> History:
    """:func:`fill` in a process of its own: the bench's own memory stays small, so the report's children, forked
    from it, show their own peak and not the filler's pages."""
    command = [sys.executable, "-m", "benchmarks.evidence_report", "--fill", str(store), "--target", target]
    command += ["--users", str(args.users), "--runs", str(args.runs), "--days", str(args.days)]
    made = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    return History(**json.loads(made.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--fill", type=Path, help=argparse.SUPPRESS)  # the child of filled_in_a_child
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill is not None:
        history = fill(f"sqlite:///{args.fill}", args.target, args.users, args.runs, args.days)
        print(json.dumps(dataclasses.asdict(history)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        root = Path(folder)
        store = root / "reconciler.db"
        config = root / "config.toml"
        config.write_text(CONFIG.format(store=store))
        started = time.perf_counter()
        target = fingerprint(load_config(config))
        history = fill(f"sqlite:///{store}", target, args.users, args.runs, args.days)
        print(f"filled the store: {history.runs:,} runs, {history.actions:,} actions "
              f"({store.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")  # fmt: skip
        figures: dict[str, Any] = {"users": args.users, "runs": history.runs, "actions": history.actions}
        for form in ("html", "json", "csv"):
            wall, size, rss = timed_report(config, root / f"report.{form}", form)
            figures |= {f"{form}_s": round(wall, 2), f"{form}_mb": round(size, 2), f"{form}_rss_mb": round(rss)}
            print(f"reconcile report --format {form}: {wall:.2f} s, {size:.2f} MB, peak RSS {rss:.0f} MB")
    html_ok = figures["html_s"] <= TARGET_S and figures["html_mb"] <= TARGET_MB
    print(f"target: the page within {TARGET_S:g} s and {TARGET_MB:g} MB: {'met' if html_ok else 'MISSED'}")
    print(json.dumps(figures))
    return 0 if html_ok else 1


if __name__ == "__main__":
    for variable in ("BENCH_OKTA_TOKEN", "BENCH_SCIM_TOKEN"):  # the report reads no secret; loading the config does
        os.environ.setdefault(variable, "not-a-real-token-only-the-bench")
    sys.exit(main())
