"""What every reconcile serve shares: signals, secrets to mask, the run summary line."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

from reconciler.config.model import Config
from reconciler.models.runs import RunStatus
from reconciler.run.outcome import RunOutcome
from reconciler.secret import Secret

CANCEL_GRACE_S: Final = 5.0
"""After cancelling a run at the stop deadline, how long its recording (run and actions interrupted) may take."""


def run_summary(
    status: RunStatus,
    duration_s: float,
    outcome: RunOutcome | None,
    *,
    run_id: int | None = None,
    error: str | None = None,
    ended_at: float | None = None,
) -> str:
    """One line about a finished run, for the log and systemd's STATUS."""
    run_id = outcome.run_id if outcome is not None else run_id
    run = f"run {run_id}" if run_id is not None else "run"
    text = f"{run} {status.value} at {_utc(time.time() if ended_at is None else ended_at)} in {duration_s:.1f} s"
    if outcome is not None and outcome.plan is not None:
        summary = outcome.plan.summary()
        drift = ", ".join(f"{kind} {n}" for kind, n in summary.items() if n and kind != "in_sync") or "none"
        text += f": drift {drift}; applied {outcome.applied.succeeded}, failed {outcome.applied.failed}"
    reason = error or (outcome.error if outcome is not None else None)
    if reason:
        reason = " ".join(reason.split())
        text += f"; {reason[:200]}{'…' if len(reason) > 200 else ''}"
    return text


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def config_secrets(config: Config) -> list[Secret]:
    tokens = (config.okta.token, config.okta.private_key, config.scim.token)
    return [s for s in tokens if s is not None] + list(config.alerts.urls)


@contextmanager
def signals_wired(stop: Callable[[str], None], reload: Callable[[], object]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop(name)``, SIGHUP ``reload()``, in the running loop, for the block."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum.name)
    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
