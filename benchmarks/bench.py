"""``make bench``: requests, wall time, CPU and memory of a reconcile at 10,000 and 100,000 users.

::

    make bench                      # N = 10,000 and N = 100,000, the scim2-server comparison, the pacing check
    make bench N=10000              # one size only
    make bench N="10000 100000 300000"  # three sizes, their memory per user side by side
    make profile                    # pyinstrument's call tree of the 100,000-user dry-run, in profile/
    .venv/bin/python -m benchmarks.bench --help

For each N, N users are assigned to an Okta app with 1 % drift (create / update / deactivate in
equal parts, see :mod:`benchmarks.scenario`). Everything runs on 127.0.0.1, each in its own process:

- the project's Okta emulator (:mod:`benchmarks.okta_server`), every answer delayed by L (20 ms);
- a lightweight SCIM server of pre-generated users (:mod:`benchmarks.scim_page_server`), also L per
  request; for N ≤ 10,000 also the real ``scim2-server``, which has no latency injection;
- the reconciler (:mod:`benchmarks.runner`): a dry-run, the apply, and a dry-run again, which must
  find nothing to write. Its process holds nothing else, so its peak RSS and CPU are the reconciler's.

The bench fails (exit 1, "CHECK FAILED") unless the first dry-run's plan summary is exactly the
intended drift, the apply sends it all without failure, and the last dry-run has no write.
The safety gate would hold 334 deactivations at 100,000 (default ``max_deactivate = 50``), so the
bench's config raises every ``max_<kind>`` to N; the ratios stay at their defaults (1 % drift is
below each of them).

The table per N (lightweight server), one row per run:

- requests counted on the servers: Okta (the emulator's request log), SCIM GET, SCIM writes; in red
  where above the minimum: Okta ⌈N/500⌉ pages (an API token: no token request), SCIM ⌈M/page⌉ pages
  (M platform users, page = min(scim.page_size, the server's maxResults)) + 1 discovery, + one write
  per action;
- wall time (``perf_counter`` around ``reconcile()``) vs the floor
  max(Okta pages × L, L + ⌈(SCIM pages − 1)/read_concurrency⌉ × L) + ⌈writes/write_concurrency⌉ × L;
- CPU seconds of the run (``process_time``); the planning cost: ``plan()`` alone on the lists the
  dry-run read, CPU µs per assigned user (= CPU ms per 1,000 users); the peak RSS of the
  reconciler's process so far;
- under it, per user: the first dry-run's CPU (µs) and memory (bytes above the post-import RSS, below),
  and process start → first request (below);
- beside it the naive baseline (:func:`benchmarks.baselines.naive`), measured in the same session,
  on a sample of 5,000 lookups extrapolated linearly when N is larger (said so in the table).

Memory per user: the runner reads its current RSS right after its import (``/proc/self/statm``), before
any run; after each run its peak RSS so far (``ru_maxrss``). Each N has a fresh runner whose first run
is the dry-run, so the peak after it is the dry-run's own: (that peak − the post-import RSS) / N is
``bytes_per_user``. It includes what a run costs whatever N is (the store's session, what the reconciler
imports lazily, buffers), which weighs more at small N; with several sizes in one invocation the bench
also prints each added user's cost between two sizes, where those fixed costs cancel out.
(``--in-process`` measures the bench's own process: its figures then include the bench.)

Process start → first request (:mod:`benchmarks.first_request`): after the runs and the naive baseline,
against the same servers, a fresh ``reconcile --config CONFIG --dry-run --quiet`` (the console script)
is started three times (``--first-request-attempts``); from just before each spawn to the first request's
arrival at either server, by the servers' own clock on this machine; the best of three is the figure.

Against scim2-server the row compares our wall time with a raw floor: a bare httpx loop issuing the
same minimal requests against the same servers (:func:`benchmarks.baselines.raw_floor`); its
dry-run floor is measured before our runs, its apply floor after them (replaying our writes, the
creates under other userNames). Seeding scim2-server through POST /Users is timed apart.

Okta's rate limit stays out of these runs: every run (and the naive baseline) starts with a fresh
window of the emulator's default 600 requests a minute (``--okta-rate-limit`` changes it), of which
the reconciler may spend ``okta.rate_limit_share`` = 0.5; above ~136,000 users, where a run's pages
would come near that share, the bench raises the emulator's limit to match (the caption says so).
The pacing check is about the rate limit alone: a dry-run of 5,000 users (10 Okta pages) with the
emulator's limit at 12 a window, so 6 for the run: it must meet no 429, and take about one window
longer than without the limit.

After the tables of each N, one JSON line. Fields:

==================  =============================================================================
n                   assigned users
requests            all requests of the apply run (reads + writes), lightweight server
requests_min        the minimum for the apply run
wall_s              the apply run's wall time
floor_s             the apply run's floor
plan_us_per_user    ``plan()`` CPU µs per user, on the first dry-run's lists
rss_mb              the reconciler process's peak RSS over the three runs
naive_requests      the naive baseline's requests (exact)
naive_wall_s        its wall time (extrapolated from a sample when ``naive_sampled``)
cpu_us_per_user     the first dry-run's CPU seconds (``process_time``) over N, in µs
bytes_per_user      the first dry-run's peak RSS above the runner's post-import RSS, over N (above)
first_request_s     process start → first request of a fresh ``reconcile --dry-run``, best of three
==================  =============================================================================

then extra keys: ``first_request_attempts_s`` (each attempt), ``rss_after_import_mb`` and
``dry_run_peak_rss_mb`` (what ``bytes_per_user`` is made of), ``dry_run_*`` (the same for the
dry-run), ``recheck_writes`` (0 once converged), ``okta_429s``, ``latency_ms``, ``scim_server``
("lightweight"), ``scim2_*`` (the scim2-server comparison at that N: wall times and raw floors of
dry-run and apply, seeding time) and ``checks_passed``. The pacing check prints its own line,
marked ``"check": "pacing"``.
``--dry-run-only`` (what ``make profile`` uses) makes the first dry-run alone: its line has no apply,
recheck or naive keys. ``--first-request-attempts 0`` leaves out ``first_request_*``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from benchmarks import first_request, okta_server, scim_page_server
from benchmarks import runner as runner_module
from benchmarks.baselines import Endpoints, NaiveResult, RawResult, bounded, naive, raw_floor
from benchmarks.first_request import FirstRequest
from benchmarks.profiling import PROFILERS
from benchmarks.report import RunRow, json_line, naive_table, print_problems, runs_table
from benchmarks.scenario import Drift, Minimum, Person, Scenario, okta_pages
from benchmarks.serving import REPO_ROOT, ServerProcess, control

DEFAULT_SIZES = (10_000, 100_000)
DEFAULT_OKTA_RATE_LIMIT = 600
"""The emulator's (and Okta's) apps bucket, per minute."""
SCIM2_SEED_CONCURRENCY = 4
"""scim2-server's listen backlog is small: more connections at once get refused."""
RUNS = (
    {"name": "dry-run", "dry_run": True, "time_plan": True},
    {"name": "apply", "dry_run": False},
    {"name": "dry-run again", "dry_run": True},
)


@dataclass(frozen=True)
class Settings:
    latency_ms: float = 20.0
    page_size: int = 1000
    max_results: int = 1000
    read_concurrency: int = 4
    write_concurrency: int = 4
    rate_limit_share: float = 0.5
    naive_sample: int | None = 5000
    """None: measure the naive baseline whole."""
    okta_rate_limit: int | None = None
    """Requests per minute on the emulator's apps bucket; None: its default (600), or more where a run's
    pages would not fit in its share of it (:meth:`okta_rate_limit_for`)."""
    seed: int = 1
    keep_workdir: bool = False
    profile_dir: str | None = None
    """Each reconcile run's profile goes there (its wall time is then inflated)."""
    profiler: str = "cprofile"
    """cprofile or pyinstrument: :mod:`benchmarks.profiling`."""
    dry_run_only: bool = False
    """Only the first dry-run against the lightweight server: no apply, no recheck, no naive baseline."""
    first_request_attempts: int = 3
    """Fresh ``reconcile --dry-run`` processes timed to their first request (:mod:`benchmarks.first_request`)."""

    @property
    def latency_s(self) -> float:
        return self.latency_ms / 1000

    def okta_rate_limit_for(self, n: int) -> int:
        """The emulator's limit for N users: as set, else 600 a minute (its default), raised where a run's
        ⌈N/500⌉ pages, plus 10 %, exceed the run's share of it (above ~136,000 users), so that pacing stays
        out of the runs (the pacing check is about it)."""
        if self.okta_rate_limit:
            return self.okta_rate_limit
        return max(DEFAULT_OKTA_RATE_LIMIT, math.ceil(okta_pages(n) * 1.1 / self.rate_limit_share))


class CheckFailed(Exception):
    """The scenario did not play out as intended: the numbers would mean nothing."""


@dataclass
class Tokens:
    okta: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    scim: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def env(self) -> dict[str, str]:
        return {okta_server.TOKEN_ENV: self.okta, scim_page_server.TOKEN_ENV: self.scim}


# -- the Okta side -------------------------------------------------------------------------------


def start_okta(settings: Settings, tokens: Tokens, rate_window_s: float | None = None) -> ServerProcess:
    args = ["--latency-ms", str(settings.latency_ms), "--seed", str(settings.seed)]
    if rate_window_s is not None:
        args += ["--rate-window-s", str(rate_window_s)]
    return ServerProcess("benchmarks.okta_server", args, tokens.env())


def seed_okta(okta: ServerProcess, n: int, drift: Drift) -> tuple[str, Scenario]:
    seeded = control(okta, "/seed", {"assigned": n, "unassigned": drift.deactivate})
    assigned = [Person.from_row(row) for row in seeded["assigned"]]
    unassigned = [Person.from_row(row) for row in seeded["unassigned"]]
    return seeded["app_id"], Scenario.build(assigned, unassigned, drift)


def provision(okta: ServerProcess, app_id: str, links: Sequence[tuple[str, str]]) -> None:
    """Record in Okta the SCIM id of every assigned user that is on the platform, then warm its listing."""
    control(okta, "/provision", {"app_id": app_id, "links": list(links), "org_url": okta.urls["url"]})


# -- the SCIM side -------------------------------------------------------------------------------


def write_platform_users(scenario: Scenario, path: Path, seed: int) -> list[tuple[str, str]]:
    """The lightweight server's users (deterministic SCIM ids); returns (okta id, scim id) for assigned users."""
    ids = random.Random(seed)
    assigned = {person.okta_id for person in scenario.assigned}
    links = []
    with path.open("w") as out:
        for person, resource in scenario.platform_users():
            scim_id = uuid.UUID(int=ids.getrandbits(128)).hex
            meta = {"resourceType": "User", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-01T00:00:00Z"}
            out.write(json.dumps({**resource, "id": scim_id, "meta": meta}) + "\n")
            if person.okta_id in assigned:
                links.append((person.okta_id, scim_id))
    return links


def start_scim_page_server(settings: Settings, tokens: Tokens, users: Path) -> ServerProcess:
    args = ["--users", str(users), "--latency-ms", str(settings.latency_ms), "--max-results", str(settings.max_results)]
    return ServerProcess("benchmarks.scim_page_server", args, tokens.env())


def scim_base_url(server: ServerProcess) -> str:
    return f"{server.urls['url']}{server.urls['prefix']}"


async def seed_scim2_server(base_url: str, token: str, scenario: Scenario) -> list[tuple[str, str]]:
    """POST every platform user, as Okta's pushes would have; returns (okta id, scim id) for assigned users."""
    assigned = {person.okta_id for person in scenario.assigned}
    links: list[tuple[str, str]] = []
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        limits=httpx.Limits(max_connections=SCIM2_SEED_CONCURRENCY),
        timeout=120,
    ) as client:

        def push(person: Person, resource: dict[str, Any]) -> Any:
            async def send() -> None:
                response = await client.post("/Users", json=resource)
                response.raise_for_status()
                if person.okta_id in assigned:
                    links.append((person.okta_id, str(response.json()["id"])))

            return send

        await bounded(SCIM2_SEED_CONCURRENCY, [push(p, r) for p, r in scenario.platform_users()])
    return links


def warm_up(endpoints: Endpoints) -> None:
    """One small read, so that neither our first run nor the raw floor pays the server's first-request costs."""
    headers = {"Authorization": f"Bearer {endpoints.scim_token}"}
    with httpx.Client(headers=headers, timeout=120) as client:
        client.get(f"{endpoints.scim_url}/Users", params={"startIndex": 1, "count": 1}).raise_for_status()


def max_results_of(base_url: str, token: str) -> int | None:
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        response = client.get(f"{base_url}/ServiceProviderConfig")
    response.raise_for_status()
    value = (response.json().get("filter") or {}).get("maxResults")
    return int(value) if value else None


# -- the reconciler ------------------------------------------------------------------------------


def write_config(
    workdir: Path, settings: Settings, org_url: str, app_id: str, scim_url: str, n: int, name: str
) -> Path:
    """The reconciler's config: tokens by environment variable, every ``max_<kind>`` raised to N."""
    limits = "\n".join(f"max_{kind} = {n}" for kind in ("create", "update", "deactivate", "reactivate", "link"))
    config = workdir / f"{name}.toml"
    config.write_text(
        f'[okta]\norg_url = "{org_url}"\napp_id = "{app_id}"\nauth = "api_token"\n'
        f'token_env = "{okta_server.TOKEN_ENV}"\nrate_limit_share = {settings.rate_limit_share}\n\n'
        f'[scim]\nbase_url = "{scim_url}"\ntoken_env = "{scim_page_server.TOKEN_ENV}"\n'
        f"page_size = {settings.page_size}\nread_concurrency = {settings.read_concurrency}\n"
        f"write_concurrency = {settings.write_concurrency}\n\n"
        f'[store]\nurl = "sqlite:///{(workdir / f"{name}.db").resolve()}"\n\n'
        f"[thresholds]\n{limits}\n"
    )
    return config


class RunnerProcess:
    """:mod:`benchmarks.runner`, started early so that its import overlaps the seeding.

    Measure nothing before :meth:`wait_imported` returns: the import is CPU-bound. Its stderr
    (the reconciler's warnings) goes to ours.
    """

    def __init__(self, tokens: Tokens) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **tokens.env()},
            cwd=REPO_ROOT,
        )
        self.imported: dict[str, Any] | None = None

    def wait_imported(self) -> dict[str, Any]:
        if self.imported is None:
            self.imported = self._read_line("importing reconciler.run.reconcile")
        return self.imported

    def run(self, job_path: Path) -> dict[str, Any]:
        self.wait_imported()
        assert self.process.stdin is not None
        self.process.stdin.write(f"{job_path}\n".encode())
        self.process.stdin.flush()
        result = self._read_line("running the job")
        self.process.wait()
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _read_line(self, doing: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip():
            code = self.process.wait()
            raise CheckFailed(f"the reconciler's runner exited with code {code} while {doing}")
        return dict(json.loads(line))


class InProcessRunner:
    """The runner's work done in the bench's own process (``--in-process``, for the smoke test).

    Quicker where ``reconciler.run.reconcile`` is already imported, but the peak RSS and CPU
    then include the bench's own.
    """

    def __init__(self) -> None:
        self.imported: dict[str, Any] | None = None
        self._module: Any = None

    def wait_imported(self) -> dict[str, Any]:
        if self.imported is None:
            self._module, import_s = runner_module.timed_import()
            self.imported = runner_module.after_import(import_s)
        return self.imported

    def run(self, job_path: Path) -> dict[str, Any]:
        self.wait_imported()
        job = json.loads(job_path.read_text())
        return asyncio.run(runner_module.run_job(job, self._module, self.imported))

    def stop(self) -> None:
        pass


Runner = RunnerProcess | InProcessRunner


def run_reconciler(
    runner: Runner,
    workdir: Path,
    config: Path,
    okta: ServerProcess,
    scim_url: str,
    scim_control: str | None,
    *,
    runs: Sequence[Mapping[str, Any]] = RUNS,
    capture_writes: Path | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Hand the runner its job: the runs to make with this config, and where the counters are."""
    job = {
        "config": str(config),
        "okta_control": okta.urls["control"],
        "scim_control": scim_control,
        "scim_base_url": scim_url,
        "runs": list(runs),
        "capture_writes": str(capture_writes) if capture_writes else None,
        "profile_dir": settings.profile_dir if settings else None,
        "profiler": settings.profiler if settings else None,
    }
    job_path = workdir / f"{config.stem}-job.json"
    job_path.write_text(json.dumps(job))
    return runner.run(job_path)


def row_of(run: Mapping[str, Any], minimum: Minimum, n: int, *, server_counts: bool) -> RunRow:
    """A table row from one run of the runner's result."""
    if server_counts:
        counts = run["scim_server"]
        scim_get = counts.get("GET", 0)
        writes = sum(counts.get(method, 0) for method in ("POST", "PATCH", "PUT", "DELETE"))
    else:
        counts = run["scim_client"]
        scim_get = counts.get("GET", 0)
        writes = sum(count for method, count in counts.items() if method != "GET")
    plan_cpu = run.get("plan_cpu_s")
    return RunRow(
        name=run["name"],
        okta=run["okta"]["requests"],
        scim_get=scim_get,
        scim_writes=writes,
        minimum=minimum,
        wall_s=run["wall_s"],
        cpu_s=run["cpu_s"],
        rss_mb=run["rss_mb"],
        plan_us_per_user=None if plan_cpu is None else plan_cpu / n * 1e6,
        okta_429s=run["okta"]["status_429"],
    )


def check_runs(scenario: Scenario, runs: Sequence[Mapping[str, Any]], where: str) -> list[str]:
    """What did not go as the scenario intends: each line says expected vs found."""
    problems = []
    by_name = {run["name"]: run for run in runs}
    dry, apply, again = by_name.get("dry-run"), by_name.get("apply"), by_name.get("dry-run again")
    if dry is not None:
        if dry["summary"] != scenario.expected_dry_run():
            problems.append(f"{where}: dry-run plan {dry['summary']} != intended {scenario.expected_dry_run()}")
        if dry["status"] not in ("drift",):
            problems.append(f"{where}: dry-run status {dry['status']!r} (error: {dry['error']})")
    if apply is not None:
        wanted = scenario.drift.writes
        if apply["status"] != "succeeded" or apply["applied"] != wanted or apply["failed"]:
            problems.append(
                f"{where}: apply {apply['status']!r}, {apply['applied']} applied / {apply['failed']} failed "
                f"of {wanted} (error: {apply['error']})"
            )
    if again is not None:
        if again["writes_planned"] != 0 or again["summary"] != scenario.expected_converged():
            problems.append(
                f"{where}: dry-run after the apply {again['summary']} != converged {scenario.expected_converged()}"
            )
    return problems


# -- one size against the lightweight server ------------------------------------------------------


@dataclass
class SizeReport:
    n: int
    rows: list[RunRow]
    naive: NaiveResult | None
    problems: list[str]
    import_s: float
    rss_mb: float
    rss_after_import_bytes: int = 0
    """The runner's current RSS right after its import: what the runs' memory is measured above."""
    dry_run_peak_bytes: int = 0
    """The runner's peak RSS once the first dry-run is done (its first run: that run's peak)."""
    first_request: FirstRequest | None = None
    profile_files: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_us_per_user(self) -> float:
        return self.rows[0].cpu_s / self.n * 1e6

    @property
    def bytes_per_user(self) -> float:
        return (self.dry_run_peak_bytes - self.rss_after_import_bytes) / self.n


def measure_lightweight(
    n: int, settings: Settings, workdir: Path, tokens: Tokens, runner: Runner
) -> tuple[SizeReport, Scenario]:
    """Seed both sides, make the reconciler's three runs, run the naive baseline, time fresh processes to their
    first request (``--dry-run-only``: the first dry-run alone)."""
    drift = Drift.for_size(n)
    runs = RUNS[:1] if settings.dry_run_only else RUNS
    naive_result, first, problems = None, None, []
    with start_okta(settings, tokens) as okta:
        if settings.okta_rate_limit_for(n) != DEFAULT_OKTA_RATE_LIMIT:
            control(okta, "/rate-limit", {"limit": settings.okta_rate_limit_for(n)})
        app_id, scenario = seed_okta(okta, n, drift)
        users = workdir / f"users-{n}.jsonl"
        provision(okta, app_id, write_platform_users(scenario, users, settings.seed))
        with start_scim_page_server(settings, tokens, users) as scim:
            scim_url = scim_base_url(scim)
            endpoints = Endpoints(okta.urls["url"], tokens.okta, app_id, scim_url, tokens.scim)
            config = write_config(workdir, settings, okta.urls["url"], app_id, scim_url, n, f"lightweight-{n}")
            result = run_reconciler(
                runner, workdir, config, okta, scim_url, scim.urls["control"], runs=runs, settings=settings
            )
            if not settings.dry_run_only:
                control(okta, "/reset", {})  # a fresh rate-limit window: the naive baseline lists Okta too
                user_names = [person.login for person in scenario.assigned]
                naive_result = asyncio.run(
                    naive(endpoints, user_names, settings.naive_sample, settings.read_concurrency)
                )
            if settings.first_request_attempts:
                first = time_first_request(settings, workdir, n, config, app_id, (okta, scim), tokens, problems)
    minimums = scenario.minimums(min(settings.page_size, settings.max_results))[: len(runs)]
    rows = []
    for run, minimum in zip(result["runs"], minimums, strict=True):
        row = row_of(run, minimum, n, server_counts=True)
        floor = minimum.floor_s(settings.latency_s, settings.read_concurrency, settings.write_concurrency)
        rows.append(replace(row, floor_s=floor))
    problems += check_runs(scenario, result["runs"], f"N={n} lightweight")
    report = SizeReport(
        n,
        rows,
        naive_result,
        problems,
        result["import_s"],
        result["runs"][-1]["rss_mb"],
        rss_after_import_bytes=result["rss_after_import_bytes"],
        dry_run_peak_bytes=result["runs"][0]["peak_rss_bytes"],
        first_request=first,
        profile_files=[path for run in result["runs"] for path in run["profile_files"]],
    )
    report.fields = lightweight_fields(report, settings, result["runs"])
    return report, scenario


def time_first_request(
    settings: Settings,
    workdir: Path,
    n: int,
    config: Path,
    app_id: str,
    servers: tuple[ServerProcess, ServerProcess],
    tokens: Tokens,
    problems: list[str],
) -> FirstRequest | None:
    """Fresh ``reconcile --dry-run`` processes against the Okta and SCIM ``servers``, each with a copy of the
    store ``config``'s runs left; None, and a problem said, if one sent no request."""
    okta, scim = servers
    scim_url = scim_base_url(scim)
    try:
        return first_request.measure(
            lambda name: write_config(workdir, settings, okta.urls["url"], app_id, scim_url, n, f"{name}-{n}"),
            config.with_suffix(".db"),
            servers,
            {**os.environ, **tokens.env()},
            settings.first_request_attempts,
        )
    except first_request.FirstRequestFailed as error:
        problems.append(f"N={n} first request: {error}")
        return None


def lightweight_fields(report: SizeReport, settings: Settings, runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON line's fields (the module's docstring); with ``--dry-run-only``, those of the dry-run alone."""
    dry, apply, again = (report.rows + [None, None])[:3]
    naive = report.naive
    first = report.first_request
    fields = {
        "n": report.n,
        "requests": apply and apply.requests,
        "requests_min": apply and apply.minimum.requests,
        "wall_s": apply and round(apply.wall_s, 3),
        "floor_s": apply and round(apply.floor_s or 0.0, 3),
        "plan_us_per_user": round(dry.plan_us_per_user or 0.0, 2),
        "rss_mb": round(report.rss_mb, 1),
        "naive_requests": naive and naive.requests,
        "naive_wall_s": naive and round(naive.wall_s, 3),
        "cpu_us_per_user": round(report.cpu_us_per_user, 2),
        "bytes_per_user": round(report.bytes_per_user),
        "first_request_s": first and round(first.best_s, 3),
        "first_request_attempts_s": first and [round(seconds, 3) for seconds in first.attempts_s],
        "rss_after_import_mb": round(report.rss_after_import_bytes / 2**20, 1),
        "dry_run_peak_rss_mb": round(report.dry_run_peak_bytes / 2**20, 1),
        "dry_run_requests": dry.requests,
        "dry_run_requests_min": dry.minimum.requests,
        "dry_run_wall_s": round(dry.wall_s, 3),
        "dry_run_floor_s": round(dry.floor_s or 0.0, 3),
        "dry_run_cpu_s": round(dry.cpu_s, 3),
        "apply_cpu_s": apply and round(apply.cpu_s, 3),
        "dry_run_summary": runs[0]["summary"],
        "recheck_writes": again and runs[2]["writes_planned"],
        "okta_429s": sum(row.okta_429s for row in report.rows),
        "naive_sampled": naive and naive.sampled,
        "naive_lookups_measured": naive and naive.lookups,
        "latency_ms": settings.latency_ms,
        "read_concurrency": settings.read_concurrency,
        "write_concurrency": settings.write_concurrency,
        "scim_page": min(settings.page_size, settings.max_results),
        "scim_server": "lightweight",
        "import_s": round(report.import_s, 3),
    }
    return {key: value for key, value in fields.items() if value is not None}


def print_lightweight(console: Console, report: SizeReport, scenario: Scenario, settings: Settings) -> None:
    drift = scenario.drift
    title = (
        f"N = {report.n:,} assigned · drift {drift.writes:,} ({drift.create:,} create / {drift.update:,} update / "
        f"{drift.deactivate:,} deactivate) · M = {scenario.platform_count:,} platform users · "
        "lightweight SCIM server (benchmarks/scim_page_server.py: pre-generated users) · "
        f"L = {settings.latency_ms:g} ms"
    )
    caption = (
        f"Requests counted on the servers; red = above the minimum. SCIM page = "
        f"min(page_size {settings.page_size}, maxResults {settings.max_results}); read concurrency "
        f"{settings.read_concurrency}, write concurrency {settings.write_concurrency}. Floor = max(Okta pages × L, "
        f"L + ⌈(SCIM pages − 1)/{settings.read_concurrency}⌉ × L) + ⌈writes/{settings.write_concurrency}⌉ × L. "
        "The emulator's listing is serialised before the timed runs (warm_listing), as Okta's is. "
        "Plan µs/user (= ms per 1,000 users): plan() alone, CPU, on the dry-run's lists. "
        "Peak RSS: the reconciler's process, cumulative. "
        f"Okta: rate limit {settings.okta_rate_limit_for(report.n)}/min on the apps bucket, a fresh window per run, "
        f"{sum(row.okta_429s for row in report.rows)} 429s."
    )
    console.print(runs_table(title, report.rows, caption))
    console.print(per_user_line(report))
    if report.naive is not None:
        console.print(naive_table(report.naive, report.rows[0]))
    for path in report.profile_files:
        console.print(f"profile written: {path}")
    print_problems(console, report.problems)


def per_user_line(report: SizeReport) -> str:
    """The issue's per-user figures, under the table: the first dry-run's CPU and memory; the first request."""
    line = (
        f"Per user, first dry-run: {report.cpu_us_per_user:,.1f} µs of CPU · {report.bytes_per_user:,.0f} bytes "
        f"of memory (its peak RSS {report.dry_run_peak_bytes / 2**20:,.0f} MB above the "
        f"{report.rss_after_import_bytes / 2**20:,.0f} MB right after the import, over N)"
    )
    first = report.first_request
    if first is not None:
        attempts = ", ".join(f"{seconds:.2f}" for seconds in first.attempts_s)
        line += (
            f"\nProcess start → first request: {first.best_s:.2f} s, best of {len(first.attempts_s)} ({attempts} s), "
            f"a fresh `{first.command} --config … --dry-run --quiet` against the same servers after the runs"
        )
    return line


def print_memory_by_size(console: Console, reports: Sequence[SizeReport]) -> None:
    """The first dry-run's memory above the imports at each N side by side, and what each added user cost
    between two sizes (the fixed costs of a run cancel out there)."""
    if len(reports) < 2:
        return
    by_size = " · ".join(f"N = {r.n:,}: {r.bytes_per_user:,.0f}" for r in reports)
    steps = " · ".join(
        f"{a.n:,} → {b.n:,}: {(b.bytes_per_user * b.n - a.bytes_per_user * a.n) / (b.n - a.n):,.0f}"
        for a, b in itertools.pairwise(reports)
        if b.n != a.n
    )
    console.print(f"Memory above the imports per user, first dry-run (bytes): {by_size}; per added user: {steps}")


# -- N against scim2-server -------------------------------------------------------------------------


def renamed_creates(writes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our writes, for the raw floor to replay after our apply: PATCHes as they were (idempotent),
    creates under another userName and externalId (the originals exist now and would answer 409)."""
    replayed = []
    for write in writes:
        if write["method"] == "POST" and write["body"]:
            body = json.loads(write["body"])
            body["userName"] = "raw." + body["userName"]
            body["externalId"] = "raw-" + str(body.get("externalId"))
            write = {**write, "body": json.dumps(body)}
        replayed.append(write)
    return replayed


def measure_scim2(
    n: int, settings: Settings, workdir: Path, tokens: Tokens, runner: Runner
) -> tuple[SizeReport, dict[str, Any]]:
    """The same scenario against the real scim2-server: our runs vs a bare client's, seeding timed apart."""
    from reconciler.testing.scim_server import run_scim2_server

    drift = Drift.for_size(n)
    with start_okta(settings, tokens) as okta, run_scim2_server(tokens.scim) as scim2:
        if settings.okta_rate_limit_for(n) != DEFAULT_OKTA_RATE_LIMIT:
            control(okta, "/rate-limit", {"limit": settings.okta_rate_limit_for(n)})
        app_id, scenario = seed_okta(okta, n, drift)
        started = time.perf_counter()
        links = asyncio.run(seed_scim2_server(scim2.base_url, tokens.scim, scenario))
        seed_s = time.perf_counter() - started
        provision(okta, app_id, links)
        page = min(settings.page_size, max_results_of(scim2.base_url, tokens.scim) or settings.page_size)
        endpoints = Endpoints(okta.urls["url"], tokens.okta, app_id, scim2.base_url, tokens.scim)
        config = write_config(workdir, settings, okta.urls["url"], app_id, scim2.base_url, n, f"scim2-{n}")
        runner.wait_imported()
        warm_up(endpoints)
        raw_read = asyncio.run(raw_floor(endpoints, page, settings.read_concurrency))
        captured = workdir / f"scim2-{n}-writes.json"
        result = run_reconciler(
            runner,
            workdir,
            config,
            okta,
            scim2.base_url,
            None,
            capture_writes=captured,
            settings=settings,
        )
        writes = renamed_creates(json.loads(captured.read_text()))
        raw_apply = asyncio.run(
            raw_floor(endpoints, page, settings.read_concurrency, writes, settings.write_concurrency)
        )
    minimums = scenario.minimums(page)
    raws: list[RawResult | None] = [raw_read, raw_apply, None]
    rows = [
        replace(row_of(run, minimum, n, server_counts=False), raw=raw)
        for run, minimum, raw in zip(result["runs"], minimums, raws, strict=True)
    ]
    problems = check_runs(scenario, result["runs"], f"N={n} scim2-server")
    report = SizeReport(n, rows, NaiveResult(0, 0, 0, 0, 0), problems, result["import_s"], rows[-1].rss_mb)
    extra = {
        "scim2_dry_run_wall_s": round(rows[0].wall_s, 3),
        "scim2_dry_run_raw_floor_s": round(raw_read.wall_s, 3),
        "scim2_wall_s": round(rows[1].wall_s, 3),
        "scim2_raw_floor_s": round(raw_apply.wall_s, 3),
        "scim2_requests": rows[1].requests,
        "scim2_requests_min": rows[1].minimum.requests,
        "scim2_dry_run_requests": rows[0].requests,
        "scim2_seed_s": round(seed_s, 2),
        "scim2_page": page,
    }
    return report, extra


def print_scim2(console: Console, report: SizeReport, extra: Mapping[str, Any], settings: Settings) -> None:
    title = (
        f"N = {report.n:,} against the real scim2-server (no latency injection: raw speed) · Okta emulator "
        f"L = {settings.latency_ms:g} ms · seeding the platform by POST /Users took {extra['scim2_seed_s']:.1f} s "
        "(not counted)"
    )
    caption = (
        "SCIM requests counted by httpx in the reconciler's process (scim2-server counts nothing); Okta on the "
        f"emulator. Raw floor = a bare httpx loop issuing the same minimal requests (Okta pages; SCIM discovery and "
        f"pages of {extra['scim2_page']}, {settings.read_concurrency} at a time; our writes, "
        f"{settings.write_concurrency} at a time) against the same servers: dry-run floor measured before our runs, "
        "apply floor after them (PATCHes replayed as sent, creates under other userNames). wall/floor = ours / raw."
    )
    console.print(runs_table(title, report.rows, caption))
    print_problems(console, report.problems)


# -- pacing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PacingSettings:
    n: int = 5000
    rate_limit: int = 12
    """Requests per window on the emulator's apps bucket: with share 0.5, 6 per window, so 10 pages need 2."""
    window_s: float = 60.0


def measure_pacing(
    settings: Settings, pacing: PacingSettings, workdir: Path, tokens: Tokens, runner: Runner
) -> tuple[dict[str, Any], list[str]]:
    """A dry-run whose Okta pages exceed the run's share of one rate-limit window: zero 429s, one wait."""
    drift = Drift.for_size(pacing.n)
    window = None if pacing.window_s == 60.0 else pacing.window_s
    with start_okta(settings, tokens, window) as okta:
        app_id, scenario = seed_okta(okta, pacing.n, drift)
        users = workdir / f"users-pacing-{pacing.n}.jsonl"
        provision(okta, app_id, write_platform_users(scenario, users, settings.seed))
        control(okta, "/rate-limit", {"limit": pacing.rate_limit, "bucket": okta_server.APPS_BUCKET})
        with start_scim_page_server(settings, tokens, users) as scim:
            scim_url = scim_base_url(scim)
            config = write_config(workdir, settings, okta.urls["url"], app_id, scim_url, pacing.n, "pacing")
            runs = [{"name": "dry-run", "dry_run": True}]
            result = run_reconciler(
                runner,
                workdir,
                config,
                okta,
                scim_url,
                scim.urls["control"],
                runs=runs,
                settings=settings,
            )
    run = result["runs"][0]
    pages = okta_pages(pacing.n)
    budget = max(1, math.floor(pacing.rate_limit * settings.rate_limit_share))
    windows = math.ceil(pages / budget)
    implied = (windows - 1) * pacing.window_s + (pages - (windows - 1) * budget) * settings.latency_s
    fields = {
        "check": "pacing",
        "n": pacing.n,
        "okta_pages": pages,
        "okta_requests": run["okta"]["requests"],
        "okta_429s": run["okta"]["status_429"],
        "rate_limit_per_window": pacing.rate_limit,
        "window_s": pacing.window_s,
        "rate_limit_share": settings.rate_limit_share,
        "budget_per_window": budget,
        "wall_s": round(run["wall_s"], 3),
        "implied_s": round(implied, 3),
    }
    problems = check_runs(scenario, result["runs"], "pacing")
    if run["okta"]["status_429"]:
        problems.append(f"pacing: {run['okta']['status_429']} Okta 429s (expected none)")
    return fields, problems


def print_pacing(console: Console, fields: Mapping[str, Any], problems: Sequence[str]) -> None:
    from rich.table import Table

    table = Table(
        title=(
            f"Okta pacing: N = {fields['n']:,} ({fields['okta_pages']} pages), emulator limit "
            f"{fields['rate_limit_per_window']} per {fields['window_s']:g} s window on /api/v1/apps, "
            f"okta.rate_limit_share = {fields['rate_limit_share']:g} → {fields['budget_per_window']} per window"
        ),
        title_justify="left",
        caption=(
            "implied = (windows needed − 1) × window + the last window's pages × L: the time the budget allows, "
            "not counting the pacer's 1 s safety margin past X-Rate-Limit-Reset."
        ),
        caption_justify="left",
    )
    for header in ("Okta requests", "429s", "wall s", "implied s", "wall/implied"):
        table.add_column(header, justify="right")
    ratio = fields["wall_s"] / fields["implied_s"] if fields["implied_s"] else 0.0
    color = "green" if fields["okta_429s"] == 0 else "bold red"
    table.add_row(
        str(fields["okta_requests"]),
        f"[{color}]{fields['okta_429s']}[/]",
        f"{fields['wall_s']:.2f}",
        f"{fields['implied_s']:.2f}",
        f"{ratio:.2f}×",
    )
    console.print(table)
    print_problems(console, problems)


# -- the command ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="assigned users (repeatable); default 10000 and 100000")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="injected per-request latency L (default 20)")
    parser.add_argument("--page-size", type=int, default=1000, help="scim.page_size (default 1000)")
    parser.add_argument("--max-results", type=int, default=1000, help="the lightweight server's maxResults")
    parser.add_argument("--read-concurrency", type=int, default=4)
    parser.add_argument("--write-concurrency", type=int, default=4)
    parser.add_argument("--naive-sample", type=int, default=5000, help="naive lookups measured (default 5000)")
    parser.add_argument("--naive-full", action="store_true", help="measure the naive baseline whole")
    parser.add_argument("--okta-rate-limit", type=int, default=None, help="emulator apps bucket, per minute")
    parser.add_argument("--scim2-max-n", type=int, default=10_000, help="compare with scim2-server up to this N")
    parser.add_argument("--no-scim2", action="store_true", help="skip the scim2-server comparison")
    parser.add_argument("--no-pacing", action="store_true", help="skip the Okta pacing check (about a minute)")
    parser.add_argument("--pacing-n", type=int, default=5000)
    parser.add_argument("--pacing-rate-limit", type=int, default=12)
    parser.add_argument("--pacing-window-s", type=float, default=60.0, help="the emulator's window (Okta: 60)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep configs, stores and users files")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="write each reconcile run's profile there (wall times are then inflated: not for the record)",
    )
    parser.add_argument(
        "--profiler",
        choices=PROFILERS,
        default="cprofile",
        help="with --profile-dir: cProfile stats (.prof) or pyinstrument's call tree (.html, .txt); "
        "pyinstrument needs the `profile` extra (make profile installs it)",
    )
    parser.add_argument(
        "--dry-run-only",
        action="store_true",
        help="only the first dry-run against the lightweight server (no apply, recheck or naive baseline)",
    )
    parser.add_argument(
        "--first-request-attempts",
        type=int,
        default=3,
        help="fresh `reconcile --dry-run` processes timed to their first request, per N (default 3; 0: none)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the reconciler in the bench's own process (smoke test): its peak RSS and CPU include the bench",
    )
    parser.add_argument(
        "--fast-start",
        action="store_true",
        help="import the reconciler while the first servers seed (quicker; the import time shown is then inflated)",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        latency_ms=args.latency_ms,
        page_size=args.page_size,
        max_results=args.max_results,
        read_concurrency=args.read_concurrency,
        write_concurrency=args.write_concurrency,
        naive_sample=None if args.naive_full else args.naive_sample,
        okta_rate_limit=args.okta_rate_limit,
        keep_workdir=args.keep_workdir,
        profile_dir=str(args.profile_dir.resolve()) if args.profile_dir else None,
        profiler=args.profiler,
        dry_run_only=args.dry_run_only,
        first_request_attempts=args.first_request_attempts,
    )


def make_console() -> Console:
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


@contextmanager
def started_runner(tokens: Tokens, *, wait: bool, in_process: bool = False) -> Iterator[Runner]:
    """The reconciler's process; with ``wait``, imported before anything else starts (a clean import time)."""
    saved = {name: os.environ.get(name) for name in tokens.env()}
    if in_process:
        os.environ.update(tokens.env())  # the config names the tokens' variables
    runner: Runner = InProcessRunner() if in_process else RunnerProcess(tokens)
    try:
        if wait:
            runner.wait_imported()
        yield runner
    finally:
        runner.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure_size(
    console: Console, n: int, args: argparse.Namespace, settings: Settings, workdir: Path, first: bool
) -> SizeReport:
    """Both tables of one N and its JSON line; the lightweight server's report (``checks_passed`` in its fields)."""
    started = time.perf_counter()
    tokens = Tokens()
    with started_runner(tokens, wait=first and not args.fast_start, in_process=args.in_process) as runner:
        report, scenario = measure_lightweight(n, settings, workdir, tokens, runner)
    if first:
        note = " (measured while the servers started: inflated)" if args.fast_start else ""
        if args.in_process:
            note = " (--in-process: imported by the bench itself; peak RSS and CPU below include the bench)"
        console.print(
            f"import reconciler.run.reconcile: {report.import_s:.2f} s in a fresh interpreter{note}; "
            "in no wall time below"
        )
    print_lightweight(console, report, scenario, settings)
    fields = dict(report.fields)
    problems = list(report.problems)
    if not args.no_scim2 and n <= args.scim2_max_n:
        tokens = Tokens()
        with started_runner(tokens, wait=False, in_process=args.in_process) as runner:
            scim2_report, extra = measure_scim2(n, settings, workdir, tokens, runner)
        print_scim2(console, scim2_report, extra, settings)
        fields.update(extra)
        problems += scim2_report.problems
    fields["checks_passed"] = not problems
    report.fields = fields
    console.print(f"[dim]N = {n:,}: {time.perf_counter() - started:.0f} s in all, seeding included[/]")
    print(json_line(fields), flush=True)
    return report


def check_pacing(console: Console, args: argparse.Namespace, settings: Settings, workdir: Path) -> bool:
    pacing = PacingSettings(args.pacing_n, args.pacing_rate_limit, args.pacing_window_s)
    tokens = Tokens()
    with started_runner(tokens, wait=False, in_process=args.in_process) as runner:
        fields, problems = measure_pacing(settings, pacing, workdir, tokens, runner)
    print_pacing(console, fields, problems)
    fields["checks_passed"] = not problems
    print(json_line(fields), flush=True)
    return not problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    console = make_console()
    workdir = Path(tempfile.mkdtemp(prefix="okta-reconciler-bench-"))
    if settings.profile_dir:
        if settings.profiler == "pyinstrument" and importlib.util.find_spec("pyinstrument") is None:
            console.print("[bold red]--profiler pyinstrument needs pyinstrument:[/] pip install -e '.[profile]'")
            return 2
        Path(settings.profile_dir).mkdir(parents=True, exist_ok=True)
        console.print(
            f"[yellow]profiling every run ({settings.profiler}) into {settings.profile_dir}: wall times inflated[/]"
        )
    console.print(
        f"okta-reconciler benchmark · {os.cpu_count()} CPUs · Python {sys.version.split()[0]} · "
        f"servers and reconciler each in their own process on 127.0.0.1 · work dir {workdir}"
    )
    passed = True
    try:
        reports = []
        for index, n in enumerate(args.n or DEFAULT_SIZES):
            reports.append(measure_size(console, n, args, settings, workdir, first=index == 0))
            passed = reports[-1].fields["checks_passed"] and passed
        print_memory_by_size(console, reports)
        if not args.no_pacing:
            passed = check_pacing(console, args, settings, workdir) and passed
    except CheckFailed as error:
        console.print(f"[bold red]BENCH FAILED:[/] {error}")
        passed = False
    finally:
        if settings.keep_workdir:
            console.print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
