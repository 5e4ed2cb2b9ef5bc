"""Tenants reconciled per minute with 1, 2 and 3 replicas: the last part of `make bench`, or `make bench-fleet`.

::

    make bench-fleet
    .venv/bin/python -m benchmarks.fleet --help

One session, everything on 127.0.0.1: a throwaway PostgreSQL (tests/support/postgres.py), the Okta emulator
with an app per tenant (every answer delayed by ``--latency-ms``), and one scim2-server with a tenant per
tenant (tests/support/fleet_lab.py). For each replica count, in the order 1, 2, 3, then again 3, 2, 1 (so that a
drift of the machine over the session weighs on every count alike), a fresh database, then the replicas
(``reconcile serve`` processes, ``service.concurrency`` runs each) serve T tenants whose ``interval`` is
shorter than a run: every tenant is due again as soon as its run ends, so the fleet runs flat out. After
every tenant's first run (which creates its users), the runs that end successfully within a window of
``--window-s`` seconds are counted from the store.

Reported per count: tenant runs per minute (both rounds), the ratio to one replica, each replica's peak
RSS (VmHWM) and the CPU seconds all replicas used; then one JSON line. The machine's cores bound the
ratios: the replicas, scim2-server and the emulator share them (``nproc`` is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from reconciler.models.runs import RunStatus
from reconciler.testing.scim_server import RunningScimServer, run_scim2_server
from tests.support.fleet_lab import FleetLab, ReplicaProcess, fleet_lab, wait_for
from tests.support.postgres import PostgresServer, given_postgres, start_postgres

SCIM_TOKEN = "bench-fleet-scim-token"


@dataclass(frozen=True)
class Measure:
    replicas: int
    runs: int
    window_s: float
    peak_rss_mb: tuple[float, ...]
    cpu_s: float
    not_succeeded: int
    """Runs of the session that ended otherwise than succeeded (the check wants none)."""

    @property
    def per_minute(self) -> float:
        return self.runs * 60 / self.window_s


def process_stats(pid: int) -> tuple[float, float]:
    """(peak RSS in MiB, CPU seconds) of a live process, from /proc."""
    peak_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_kb = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return peak_kb / 1024, cpu_s


def measure(lab: FleetLab, replicas: int, window_s: float) -> Measure:
    started = [lab.start_replica(f"replica-{n}") for n in range(1, replicas + 1)]
    wait_for(
        lambda: len({r.tenant for r in lab.runs() if r.status is RunStatus.SUCCEEDED}) == len(lab.tenants),
        180,
        "a first run of every tenant",
        poll_s=0.5,
    )
    begin = datetime.now(UTC)
    cpu_before = sum(process_stats(r.process.pid)[1] for r in started)
    time.sleep(window_s)
    end = begin + timedelta(seconds=window_s)
    stats = [process_stats(r.process.pid) for r in started]
    stop_all(started)
    done = [
        r
        for r in lab.runs()
        if r.status is RunStatus.SUCCEEDED and r.finished_at is not None and begin <= r.finished_at < end
    ]
    cpu = sum(s[1] for s in stats) - cpu_before
    bad = sum(1 for r in lab.runs() if r.status is not RunStatus.SUCCEEDED)
    return Measure(replicas, len(done), window_s, tuple(round(s[0], 1) for s in stats), round(cpu, 1), bad)


def stop_all(replicas: Sequence[ReplicaProcess]) -> None:
    for replica in replicas:
        replica.process.terminate()
    for replica in replicas:
        replica.process.wait(60)  # a second SIGTERM would cancel the runs in flight: wait instead
        replica.close()


def one_count(
    postgres: PostgresServer, scim: RunningScimServer, workdir: Path, replicas: int, args: argparse.Namespace
) -> Measure:
    url = postgres.create_database("bench_fleet")
    try:
        with fleet_lab(
            workdir / f"r{replicas}-{time.monotonic_ns()}",
            scim,
            url,
            tenants=args.tenants,
            users=args.users,
            interval_s=0.5,
            tick_s=0.2,
            concurrency=args.concurrency,
            okta_latency_ms=args.latency_ms,
        ) as lab:
            return measure(lab, replicas, args.window_s)
    finally:
        postgres.drop_database(url)


def report(console: Console, results: dict[int, list[Measure]], args: argparse.Namespace) -> dict:
    base = statistics.mean(m.per_minute for m in results[1])
    table = Table(
        title=f"Fleet: {args.tenants} tenants of {args.users} users, {args.concurrency} runs per replica, "
        f"Okta latency {args.latency_ms:g} ms, {os.cpu_count()} CPUs",
        title_justify="left",
    )
    for column in ("Replicas", "Tenant runs / min (rounds)", "Mean", "vs 1 replica", "Peak RSS per replica", "CPU s"):
        table.add_column(column, justify="right")
    fields: dict = {"check": "fleet", "tenants": args.tenants, "users": args.users, "window_s": args.window_s}
    for count, measures in sorted(results.items()):
        mean = statistics.mean(m.per_minute for m in measures)
        rounds = " / ".join(f"{m.per_minute:.0f}" for m in measures)
        rss = max(max(m.peak_rss_mb) for m in measures)
        cpu = statistics.mean(m.cpu_s for m in measures)
        table.add_row(str(count), rounds, f"{mean:.0f}", f"{mean / base:.2f}x", f"{rss:.0f} MiB", f"{cpu:.1f}")
        fields[f"replicas_{count}"] = {"per_minute": round(mean, 1), "ratio": round(mean / base, 2), "rss_mb": rss}
    console.print(table)
    return fields


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=12)
    parser.add_argument("--users", type=int, default=50, help="assigned users per tenant")
    parser.add_argument("--concurrency", type=int, default=2, help="service.concurrency: runs per replica")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the Okta emulator's delay per answer")
    parser.add_argument("--window-s", type=float, default=20.0, help="the measured window per count and round")
    parser.add_argument("--max-replicas", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, postgres: PostgresServer | None = None) -> int:
    """Exit 0, or 1 ("CHECK FAILED") when a window counted no run or a run did not succeed.

    ``postgres``: a running server to use (the tests pass theirs); by default one is started.
    """
    args = parse_args(argv)
    console = Console()
    if postgres is None:
        given = os.environ.get("RECONCILER_TEST_POSTGRES_URL")
        postgres = given_postgres(given) if given else start_postgres()
        owned = True
    else:
        owned = False
    counts = list(range(1, args.max_replicas + 1))
    results: dict[int, list[Measure]] = {count: [] for count in counts}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-fleet-") as workdir,
            run_scim2_server(SCIM_TOKEN, ["--dynamic-tenants"]) as scim,
        ):
            for count in [*counts, *reversed(counts)]:
                result = one_count(postgres, scim, Path(workdir), count, args)
                console.print(f"{count} replica(s): {result.runs} runs in {result.window_s:g} s")
                results[count].append(result)
    finally:
        if owned:
            postgres.stop()
    fields = report(console, results, args)
    problems = [f"{m.replicas} replica(s): no run in the window" for ms in results.values() for m in ms if not m.runs]
    problems += [
        f"{m.replicas} replica(s): {m.not_succeeded} run(s) did not succeed"
        for ms in results.values()
        for m in ms
        if m.not_succeeded
    ]
    fields["checks_passed"] = not problems
    for problem in problems:
        console.print(f"[red]CHECK FAILED:[/] {problem}")
    print(json.dumps(fields))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
