"""``reconcile serve``: the schedule, no overlap, quarantine, SIGTERM, SIGHUP and the log formats.

Runs go against the Okta emulator and the real scim2-server (or the scripted
SCIM server where a write must hang). Where signals matter the service is a
real ``python -m reconciler serve`` process; elsewhere a :class:`Service` runs
in the test's event loop (a child process pays seconds to import the okta SDK).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.config import ScheduleConfig, load_config
from reconciler.logs import JsonFormatter, RedactingFilter
from reconciler.models.records import ActionKind
from reconciler.models.runs import ActionStatus, RunStatus
from reconciler.secret import Secret
from reconciler.service.schedule import crontab_trigger, crontab_weekdays, schedule_period_s
from reconciler.service.single import JOB_ID, Service
from reconciler.store import Run, Store
from reconciler.testing.scenario import write_local_config
from tests.conftest import FAST_RETRIES, OKTA_RETRIES, OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.support.scim_fault_server import FaultServer, Reply
from tests.support.service_process import eventually, service_process

HANG_S = 40.0
"""The bound on waiting for a child process's event (a request sent, its exit): it only catches a hang."""

# --- helpers shared with test_notify and test_metrics -------------------------------------------


def service_config(
    state: Path,
    okta: Okta,
    scim_url: str,
    *,
    interval: str = "1s",
    stop_timeout: str = "5s",
    metrics_listen: str = "",
    extra: str = "",
) -> Path:
    """A real config file (token files, SQLite store in ``state``) with a fast schedule and no jitter."""
    schedule = f'[schedule]\ninterval = "{interval}"\njitter = 0\nstop_timeout = "{stop_timeout}"\n\n'
    metrics = f'[metrics]\nlisten = "{metrics_listen}"\n\n'
    return write_local_config(
        state, okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, schedule + metrics + extra
    )


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[asyncio.Task[int]]:
    """The service running in this event loop; stopped (exit 0) at the end of the block."""
    task = asyncio.create_task(service.run())
    try:
        yield task
    finally:
        service.request_stop("test over")
        assert await asyncio.wait_for(task, 15) == 0


def running_runs(store: Store) -> list[Run]:
    """Runs recorded running (a run is recorded as soon as it starts)."""
    return [run for run in store.recent_runs(10) if run.status is RunStatus.RUNNING]


def finished_runs(store: Store) -> list[Run]:
    """Finished runs, oldest first."""
    return [run for run in reversed(store.recent_runs(1000)) if run.status is not RunStatus.RUNNING]


# --- the schedule ------------------------------------------------------------------------------


async def test_runs_happen_on_schedule_and_never_overlap(tmp_path: Path, okta: Okta, scim_url: str) -> None:
    """Each run takes longer than the 1 s interval (slow Okta): runs must queue up, not overlap."""
    okta.emulator.add_assigned_users(okta.app_id, 2)
    okta.emulator.set_latency(1300)
    config = load_config(service_config(tmp_path, okta, scim_url, interval="1s"))
    with Store(config.store.url) as store:
        service = Service(config, store, environ={})
        started = time.monotonic()
        async with running(service):
            await eventually(lambda: len(finished_runs(store)) >= 3, 20, "three finished runs")
        runs = finished_runs(store)
    assert time.monotonic() - started < 20
    assert all(run.status is RunStatus.SUCCEEDED for run in runs), [(r.id, r.status, r.error) for r in runs]
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished_at is not None
        assert earlier.finished_at <= later.started_at, "two runs overlapped"
        assert (later.started_at - earlier.finished_at).total_seconds() < 2.5, "a run came late"
    assert runs[0].applied == 2 and all(run.applied == 0 for run in runs[1:])


async def test_quarantine_slows_the_schedule_until_a_run_succeeds(
    tmp_path: Path, okta: Okta, scim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OKTA_RETRIES, FAST_RETRIES)  # each failed run gives up after Okta's retries: quick ones
    okta.emulator.add_assigned_users(okta.app_id, 1)
    okta.emulator.inject_fault("/api/v1/apps/*/users", status=500, times=None)
    extra = '[thresholds]\nquarantine_after = 2\nquarantine_interval = "2h"\n'
    config = load_config(service_config(tmp_path, okta, scim_url, interval="1s", extra=extra))
    with Store(config.store.url) as store:
        service = Service(config, store, environ={})
        async with running(service):
            await eventually(lambda: service.quarantined, 15, "quarantine")
            job = service.scheduler.get_job(JOB_ID) if service.scheduler else None
            assert job is not None and isinstance(job.trigger, IntervalTrigger)
            assert job.trigger.interval.total_seconds() == 7200
            assert service.status_line.startswith("QUARANTINED after 2 failed runs, every 2 h")
            failed = len(finished_runs(store))
            await asyncio.sleep(1.5)
            assert len(finished_runs(store)) == failed, "a quarantined service kept the fast schedule"

            okta.emulator.clear_faults()
            outcome = await service.run_once()
            assert outcome is not None and outcome.status is RunStatus.SUCCEEDED
            assert not service.quarantined
            trigger = service.scheduler.get_job(JOB_ID).trigger  # type: ignore[union-attr]
            assert isinstance(trigger, IntervalTrigger) and trigger.interval.total_seconds() == 1
            assert "QUARANTINED" not in service.status_line


def test_cron_weekdays_are_read_as_cron_reads_them() -> None:
    """APScheduler 3 takes weekday 0 as Monday; cron takes it as Sunday (and 7 too)."""
    assert crontab_weekdays("1") == "mon"
    assert crontab_weekdays("0") == crontab_weekdays("7") == "sun"
    assert crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_weekdays("5-7") == "sun,fri,sat"
    assert crontab_weekdays("*/2") == "sun,tue,thu,sat"
    assert crontab_weekdays("mon-wed,6") == "mon,tue,wed,sat"
    assert crontab_weekdays("*") == "*"
    assert crontab_weekdays("last fri") == "last fri"  # APScheduler's own syntax passes through
    monday_9 = crontab_trigger("0 9 * * 1")
    after = datetime(2026, 5, 1, tzinfo=UTC)  # a Friday
    fire = monday_9.get_next_fire_time(None, after)
    assert fire is not None and fire.weekday() == 0 and fire.hour == 9


def test_schedule_period_is_the_longest_gap_of_a_cron_schedule() -> None:
    assert schedule_period_s(ScheduleConfig(interval_s=90)) == 90
    assert schedule_period_s(ScheduleConfig(cron="*/30 * * * *")) == 1800
    weekdays = schedule_period_s(ScheduleConfig(cron="0 9 * * 1-5"), datetime(2026, 5, 4, tzinfo=UTC))
    assert weekdays == 3 * 86400
    assert isinstance(crontab_trigger("*/30 * * * *", 60), CronTrigger)


# --- signals: a real process -------------------------------------------------------------------


async def test_sigterm_mid_write_records_interrupted_and_exits_0(tmp_path: Path, okta: Okta) -> None:
    """A create hangs on the platform; SIGTERM gives it stop_timeout (1 s), then the run is cancelled.

    Nothing here is timed: the platform holds the create until the test lets it go, after the
    service has exited. That the service exits at all while the create is unanswered shows the
    stop did not wait for it; the bounds only catch a hang, never a slow machine.
    """
    (person,) = okta.emulator.add_assigned_users(okta.app_id, 1)
    notify_socket = short_socket_path()
    platform_answers = asyncio.Event()
    async with FaultServer() as scim:
        scim.script("POST", "/Users", Reply(201, {"id": "never-seen"}, hold=platform_answers))
        config = service_config(tmp_path / "state", okta, scim.base_url, interval="1h", stop_timeout="1s")
        try:
            with (
                notify_listener(notify_socket) as messages,
                service_process(config, env={"NOTIFY_SOCKET": notify_socket}) as child,
            ):
                await eventually(lambda: scim.seen("POST", "/Users"), HANG_S, "the create to be sent")
                child.signal(signal.SIGTERM)
                code = await child.wait_exit(timeout_s=HANG_S)
                unanswered = scim.in_flight
                received = messages()
        finally:
            platform_answers.set()
    assert code == 0, child.log
    assert unanswered == 1, "the service waited for the platform's answer, not for stop_timeout"
    assert "the run did not finish within 1 s: cancelling it" in child.log
    assert "READY=1" in received and any(m.startswith("STOPPING=1\n") for m in received), received
    with Store(load_config(config).store.url) as store:
        (run,) = store.recent_runs()
        assert run.status is RunStatus.INTERRUPTED
        (action,) = store.actions_of(run.id)  # type: ignore[arg-type]
    assert (action.kind, action.status, action.okta_user_id) == (ActionKind.CREATE, ActionStatus.INTERRUPTED, person.id)


async def test_sighup_rejects_a_bad_config_and_picks_up_a_good_one(tmp_path: Path, okta: Okta, scim_url: str) -> None:
    """With --log-format json: every line is one JSON object, and no token shows in any of them."""
    okta.emulator.add_assigned_users(okta.app_id, 1)
    state = tmp_path / "state"
    config = service_config(state, okta, scim_url, interval="1s")
    with Store(load_config(config).store.url) as store, service_process(config, "--log-format", "json") as child:
        await child.wait_for_log("run 1 succeeded", timeout_s=40)
        good_text = config.read_text()
        config.write_text(good_text.replace('interval = "1s"', 'interval = "soon"') + "\n[schedul]\nx = 1\n")
        child.signal(signal.SIGHUP)
        await child.wait_for_log("config reload rejected", count=2)
        runs_then = len(finished_runs(store))
        await eventually(lambda: len(finished_runs(store)) >= runs_then + 2, 10, "runs on the old schedule")

        config.write_text(good_text.replace('interval = "1s"', 'interval = "1h"'))
        child.signal(signal.SIGHUP)
        await child.wait_for_log("config reloaded from")
        # A run started before the reload may still finish: wait for that, not for some fixed time.
        await eventually(lambda: not running_runs(store), HANG_S, "the run started before the reload to end")
        runs_then = len(finished_runs(store))
        await asyncio.sleep(2.5)
        assert len(finished_runs(store)) == runs_then, "the new 1 h interval was not picked up"
        assert child.process.poll() is None
        child.signal(signal.SIGTERM)
        assert await child.wait_exit(timeout_s=10) == 0
    lines = [json.loads(line) for line in child.log.splitlines()]
    messages = [line["message"] for line in lines]
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in lines)
    rejected = [m for m in messages if m.startswith("config reload rejected")]
    assert any("schedule.interval: expected a duration" in m or "schedule.interval" in m for m in rejected), rejected
    assert any("schedul: unknown section" in m for m in rejected), rejected
    assert any(m.startswith("config reloaded from") and "runs every 1 h" in m for m in messages), messages
    assert OKTA_TOKEN not in child.log and SCIM_TOKEN not in child.log


# --- logs --------------------------------------------------------------------------------------


def test_json_log_lines_are_redacted_and_carry_the_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter([Secret("s3cr3t-value-123")]))
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("token %s in a\nmessage", "s3cr3t-value-123")
        try:
            raise ValueError("Authorization: Bearer abcdefghijkl0123")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "token ******** in a\nmessage" and first["level"] == "WARNING"
    assert first["logger"] == "test.json" and first["time"].endswith("+00:00")
    assert "exc" not in first
    assert "ValueError" in second["exc"] and "abcdefghijkl0123" not in second["exc"]


# --- a notify socket, for the signal test here and for test_notify -----------------------------


def short_socket_path() -> str:
    """A fresh socket path short enough for AF_UNIX (108 bytes), which pytest's tmp_path may not be."""
    return os.path.join(tempfile.mkdtemp(prefix="notify-"), "n.sock")


@contextlib.contextmanager
def notify_listener(path: str) -> Iterator[Callable[[], list[str]]]:
    """A unix datagram socket at ``path``; yields a function returning the datagrams received so far."""
    import socket

    received: list[str] = []
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)

    def drain() -> list[str]:
        while True:
            try:
                received.append(sock.recv(4096).decode())
            except BlockingIOError:
                return list(received)

    try:
        yield drain
    finally:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@pytest.fixture(autouse=True)
def _no_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell under systemd may have NOTIFY_SOCKET set: tests set their own."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
