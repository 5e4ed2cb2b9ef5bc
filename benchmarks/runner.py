"""The reconciler under test, in a process that holds nothing else.

::

    python -m benchmarks.runner     # then, on stdin, the path of a JOB.json the bench wrote

It first imports ``reconciler.run.reconcile`` (timed: the import is no part of any run's wall time)
and says so on stdout (``{"import_s": …}``), then waits for the job on stdin, so that the bench
can start it early and seed the servers meanwhile; the result is one JSON line on stdout.

The bench keeps the scenario (hundreds of thousands of dicts) and the baselines in its own
process and runs the reconciler here, so that this process's peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``) and CPU time (``time.process_time``) are the
reconciler's alone. Per run (dry-run, apply, dry-run again) it resets the servers' counters,
calls ``reconciler.run.reconcile.reconcile`` and reads the counters back.

Memory: right after the import it reads its current RSS (``/proc/self/statm``), the baseline the
bench subtracts; after each run, the peak RSS so far (``ru_maxrss``, which never goes down: after
the first run it is that run's peak, after the apply the larger of both). Between the import and
the first run it only loads the config and opens the store, so the first dry-run's peak above
the post-import RSS is what reading, deciding and reporting N users cost (plus whatever the
reconciler imports lazily during its run).

Requests to the SCIM server are also counted here, on the client side, by wrapping
``httpx.AsyncHTTPTransport`` (each HTTP exchange, retries included): scim2-server counts
nothing itself. During the apply run the writes sent (method, path, body) can be captured to
a file, for the bench's raw floor to replay.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import json
import logging
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from benchmarks.profiling import run_profiler

if TYPE_CHECKING:
    import httpx

IMPORTED = "reconciler.run.reconcile"


@dataclass
class ClientTally:
    """SCIM requests seen by httpx in this process, by method; write bodies when capturing."""

    netloc: str
    counts: Counter[str] = field(default_factory=Counter)
    capturing: bool = False
    writes: list[dict[str, Any]] = field(default_factory=list)

    def see(self, request: httpx.Request) -> None:
        if request.url.netloc.decode() != self.netloc:
            return
        self.counts[request.method] += 1
        if self.capturing and request.method != "GET":
            body = request.content.decode() if request.content else None
            self.writes.append({"method": request.method, "path": request.url.raw_path.decode(), "body": body})


@contextmanager
def tally_installed(tally: ClientTally) -> Iterator[ClientTally]:
    """Count every request any httpx.AsyncClient of this process sends through the default transport.

    The transport is restored on exit, so that an in-process job leaves httpx as it found it.
    """
    import httpx

    original = httpx.AsyncHTTPTransport.handle_async_request

    async def counted(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        tally.see(request)
        return await original(self, request)

    httpx.AsyncHTTPTransport.handle_async_request = counted  # type: ignore[method-assign]
    try:
        yield tally
    finally:
        httpx.AsyncHTTPTransport.handle_async_request = original  # type: ignore[method-assign]


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far, in bytes (``ru_maxrss`` is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    """This process's resident set size now: the second field of ``/proc/self/statm``, in pages."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def after_import(import_s: float) -> dict[str, Any]:
    """What the runner says once imported: the import's seconds and the RSS the runs are measured above."""
    return {"import_s": import_s, "rss_after_import_mb": peak_rss_mb(), "rss_after_import_bytes": current_rss_bytes()}


async def _control(client: httpx.AsyncClient, url: str | None, action: str) -> dict[str, Any] | None:
    if url is None:
        return None
    if action == "reset":
        (await client.post(f"{url}/reset")).raise_for_status()
        return None
    response = await client.get(f"{url}/stats")
    response.raise_for_status()
    return dict(response.json())


def timed_import() -> tuple[Any, float]:
    """``reconciler.run.reconcile`` and the seconds its import took (in this fresh interpreter, dependencies
    included)."""
    started = time.perf_counter()
    module = importlib.import_module(IMPORTED)
    return module, time.perf_counter() - started


@dataclass
class Session:
    """What every run of a job shares."""

    job: dict[str, Any]
    config: Any
    store: Any
    reconcile: Any
    kwargs: dict[str, Any]
    tally: ClientTally
    control: httpx.AsyncClient


async def run_job(job: dict[str, Any], reconcile_module: Any, imported: dict[str, Any]) -> dict[str, Any]:
    """Each run of the job in turn; the result holds what each measured and what the servers counted."""
    import httpx

    from reconciler.config import load_config
    from reconciler.store import Store

    config = load_config(job["config"], os.environ)
    reconcile = reconcile_module.reconcile
    kwargs: dict[str, Any] = {}
    if "write_concurrency" in inspect.signature(reconcile).parameters:
        kwargs["write_concurrency"] = config.scim.write_concurrency
    result: dict[str, Any] = {**imported, "runs": []}
    tally = ClientTally(urlsplit(job["scim_base_url"]).netloc)
    async with httpx.AsyncClient(timeout=120) as control:
        with tally_installed(tally), Store(config.store.url) as store:
            session = Session(job, config, store, reconcile, kwargs, tally, control)
            for spec in job["runs"]:
                result["runs"].append(await one_run(session, spec))
    result["write_concurrency"] = kwargs.get("write_concurrency")
    if job.get("capture_writes"):
        Path(job["capture_writes"]).write_text(json.dumps(tally.writes))
    return result


async def one_run(session: Session, spec: dict[str, Any]) -> dict[str, Any]:
    """Reset the counters, reconcile once (timed; profiled with ``profile_dir``), read the counters."""
    job, tally = session.job, session.tally
    for url in (job["okta_control"], job.get("scim_control")):
        await _control(session.control, url, "reset")
    tally.counts.clear()
    tally.capturing = bool(job.get("capture_writes")) and not spec["dry_run"]
    profiler = run_profiler(job, spec["name"])
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    profiler.start()
    outcome = await session.reconcile(session.config, session.store, dry_run=spec["dry_run"], **session.kwargs)
    profiler.stop()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    tally.capturing = False
    run = {
        "name": spec["name"],
        "dry_run": spec["dry_run"],
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_mb": peak_rss_mb(),
        "peak_rss_bytes": peak_rss_bytes(),
        "profiled": profiler.enabled,
        "status": str(getattr(outcome.status, "value", outcome.status)),
        "error": outcome.error,
        "summary": outcome.plan.summary() if outcome.plan is not None else None,
        "writes_planned": len(outcome.plan.writes) if outcome.plan is not None else None,
        "applied": outcome.applied.succeeded,
        "failed": outcome.applied.failed,
        "desired": len(outcome.desired),
        "actual": len(outcome.actual),
        "okta": await _control(session.control, job["okta_control"], "stats"),
        "scim_server": await _control(session.control, job.get("scim_control"), "stats"),
        "scim_client": dict(tally.counts),
    }
    run["profile_files"] = [str(path) for path in profiler.write()]  # after the figures: writing costs memory
    if spec.get("time_plan") and outcome.plan is not None:
        run["plan_cpu_s"] = plan_cpu_s(session, outcome)
    return run


def plan_cpu_s(session: Session, outcome: Any) -> float:
    """CPU seconds of ``plan()`` alone, on the lists the run read (no I/O in it: CPU is its whole cost)."""
    from reconciler.plan.users import plan

    gc.collect()
    cpu = time.process_time()
    plan(outcome.desired, outcome.actual, session.config.mapping, session.config.policy)
    return time.process_time() - cpu


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="reconciler: %(levelname)s %(message)s")
    reconcile_module, import_s = timed_import()
    imported = after_import(import_s)
    print(json.dumps(imported), flush=True)
    job_path = sys.stdin.readline().strip()
    if not job_path:
        return  # the bench gave up before sending a job
    import asyncio

    job = json.loads(Path(job_path).read_text())
    result = asyncio.run(run_job(job, reconcile_module, imported))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
