"""Process start → first request: how long a fresh ``reconcile --dry-run`` takes to send its first request.

The figure an operator feels on every run of the command (and the issue's target: ≤ 1 s). Measured on
the real command, not on an import: the ``reconcile`` console script installed beside this Python
(``[project.scripts]``), or ``python -m reconciler.cli.main`` where there is none, started fresh with
``--config CONFIG --dry-run --quiet`` against the bench's servers. The clock runs from just before
the spawn (``time.time()``) to the moment the first request reaches either server (each server stamps
it with ``time.time()`` on arrival, before its injected latency: see :mod:`benchmarks.serving`); all
run on one machine, so the clocks are one. Once a request has arrived the process is killed: the
rest of its run is measured elsewhere. Each attempt gets a copy of a store that has already recorded
runs (as a scheduled run's store has), and the servers' stamps are reset before it. The best of
``attempts`` is the figure (the machine's other work only ever adds to it); all are kept.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.serving import ServerProcess, control

POLL_S = 0.05
"""How often the bench asks the servers whether a request came: it decides only when to stop the process,
not the figure (each server stamps the arrival itself), so it can be gentle on the machine."""
TIMEOUT_S = 120.0


class FirstRequestFailed(Exception):
    """The command exited, or sent nothing in time: no figure."""


@dataclass(frozen=True)
class FirstRequest:
    attempts_s: tuple[float, ...]
    command: str

    @property
    def best_s(self) -> float:
        return min(self.attempts_s)


def reconcile_command() -> list[str]:
    """The ``reconcile`` console script next to this interpreter, as an operator runs it."""
    script = Path(sys.executable).with_name("reconcile")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler.cli.main"]


def measure(
    write_config: Callable[[str], Path],
    store: Path,
    servers: Sequence[ServerProcess],
    env: Mapping[str, str],
    attempts: int,
) -> FirstRequest:
    """``attempts`` fresh processes, one at a time; ``write_config(name)`` writes a config whose store is
    ``WORKDIR/name.db``, which each attempt gets as a copy of ``store``."""
    command = reconcile_command()
    times = []
    for attempt in range(1, attempts + 1):
        config = write_config(f"first-request-{attempt}")
        copy_store(store, config.with_suffix(".db"))
        times.append(time_one(command + ["--config", str(config), "--dry-run", "--quiet"], servers, env))
    return FirstRequest(tuple(times), " ".join([Path(command[0]).name, *command[1:]]))


def copy_store(store: Path, copy: Path) -> None:
    """A copy of a closed SQLite store, without the journal a killed attempt may have left beside an older copy."""
    for leftover in (copy.with_name(copy.name + suffix) for suffix in ("-wal", "-shm", "-journal")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(store, copy)


def time_one(argv: Sequence[str], servers: Sequence[ServerProcess], env: Mapping[str, str]) -> float:
    """Seconds from just before the spawn to the first request's arrival at any of ``servers``."""
    for server in servers:
        control(server, "/reset", {})
    with tempfile.TemporaryFile() as stderr:
        started = time.time()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        try:
            arrived = wait_for_first_request(servers, process, started + TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        if arrived is None:
            stderr.seek(0)
            said = stderr.read().decode(errors="replace")[-2000:]
            raise FirstRequestFailed(f"`{' '.join(argv)}` sent no request (exit code {process.returncode}): {said}")
    return arrived - started


def wait_for_first_request(
    servers: Sequence[ServerProcess], process: subprocess.Popen[bytes], deadline: float
) -> float | None:
    """The earliest first-request stamp of ``servers``, once one has one; None if the process exits or the
    deadline passes first (a last look after the exit: a request may have come just before)."""
    while True:
        exited = process.poll() is not None
        if stamps(servers):
            return min(stamps(servers))  # again: another server may have stamped while the first was asked
        if exited or time.time() > deadline:
            return None
        time.sleep(POLL_S)


def stamps(servers: Sequence[ServerProcess]) -> list[float]:
    return [at for server in servers if (at := control(server, "/stats").get("first_request_at")) is not None]
