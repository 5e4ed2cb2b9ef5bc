"""A pre-imported parent that forks one ``reconcile`` process per run, for the crash tests to SIGKILL.

Importing what a run needs takes 1.5-3 s; paid once here instead of once per
killed run, it makes hundreds of kill points affordable. The zygote
(``python -m tests.support.crash_zygote``) imports the reconciler, opens nothing
(no database connection, no event loop, no thread), and then, per request,
forks a child that runs the ``reconcile`` command's ``main`` exactly as
``python -m reconciler`` would, with its output in a log file.

The zygote alone signals and reaps its children, through a pidfd: a child is
never reaped before it is signalled, so a kill can never reach a recycled pid.
A child that outlives ``timeout_s`` is killed too, and reported as timed out.

Protocol: one JSON object per line. The test sends
``{"op": "run", "argv": [...], "log": PATH, "timeout_s": S}``, then perhaps
``{"op": "kill", "run": N}`` (ignored unless run N is alive), or
``{"op": "quit"}``. The zygote answers ``{"event": "ready"}`` once, then per
run ``{"event": "started", "run": N, "pid": P, "t": T}`` and
``{"event": "ended", "run": N, "exit_code": C, "signal": S, "killed_at": T|null,
"timed_out": B, "t": T}``; times are ``time.monotonic()``, which every process
on the machine shares.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
WARM_MODULES = (
    "alembic.command",
    "alembic.runtime.migration",
    "alembic.script",
    "anyio._backends._asyncio",
    "certifi",
    "h11",
    "httpcore",
    "mako.template",
    "psycopg",
    "pygments.formatters",
    "pygments.lexers",
    "pygments.styles",
    "sniffio",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite",
    "sqlite3",
)
"""What a run imports lazily (the store's schema check, the HTTP stack): imported once, as a service has them."""
EXIT_CHILD_CRASHED = 70
"""What a child exits with when ``main`` raised (its traceback is in its log)."""


# --- the test's side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildStarted:
    run: int
    pid: int
    t: float
    log: Path


@dataclass(frozen=True)
class ChildEnded:
    run: int
    exit_code: int | None
    """None when a signal ended it."""
    signal: int | None
    killed_at: float | None
    """When the zygote sent SIGKILL on request (monotonic); None if the child ended by itself."""
    timed_out: bool
    t: float

    @property
    def killed(self) -> bool:
        return self.signal == signal.SIGKILL and self.killed_at is not None


class Zygote:
    """The test's handle on a zygote process; use it as a context manager (the zygote always ends with it)."""

    def __init__(self, env: dict[str, str] | None = None, start_timeout_s: float = 60.0) -> None:
        environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        environment.pop("RECONCILER_CONFIG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.crash_zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            bufsize=1,
            cwd=REPO,
            env=environment,
        )
        self._runs = 0
        ready = self._receive(start_timeout_s)
        if ready.get("event") != "ready":
            raise RuntimeError(f"the zygote did not start: {ready}")

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, argv: Sequence[str], log: Path, timeout_s: float) -> ChildStarted:
        """Fork a child running ``reconcile *argv``; its stdout and stderr go to ``log``."""
        self._send({"op": "run", "argv": list(argv), "log": str(log), "timeout_s": timeout_s})
        answer = self._receive(30.0)
        while answer.get("event") == "ended":  # of a run whose end a failed test did not wait for
            answer = self._receive(30.0)
        if answer.get("event") != "started":
            raise RuntimeError(f"the zygote did not start a run: {answer}")
        self._runs += 1
        return ChildStarted(answer["run"], answer["pid"], answer["t"], log)

    def kill(self, child: ChildStarted) -> None:
        """Ask for SIGKILL; a child that already ended is left alone (the zygote ignores the request)."""
        self._send({"op": "kill", "run": child.run})

    def wait(self, child: ChildStarted, timeout_s: float) -> ChildEnded:
        """The child's end; the zygote kills a child past its own ``timeout_s``, so this returns in bounded time."""
        answer = self._receive(timeout_s)
        if answer.get("event") != "ended" or answer.get("run") != child.run:
            raise RuntimeError(f"unexpected answer from the zygote: {answer}")
        return ChildEnded(
            answer["run"], answer["exit_code"], answer["signal"], answer["killed_at"], answer["timed_out"], answer["t"]
        )

    def ended_within(self, timeout_s: float) -> bool:
        """True once the zygote has reported something to read (the running child's end)."""
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, timeout_s))
        return bool(ready)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self._send({"op": "quit"})
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()  # its children die with it: each one asked the kernel to (PR_SET_PDEATHSIG)
                self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        if not self.ended_within(timeout_s):
            raise TimeoutError(f"the zygote said nothing within {timeout_s:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote exited ({self.process.poll()})")
        return json.loads(line)


# --- the zygote's side ----------------------------------------------------------------------------


class _Lines:
    """Lines from a file descriptor, read without Python's buffering so that select() tells the truth."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False
        self.quit = False

    def pop(self) -> dict[str, Any] | None:
        if b"\n" not in self.buffer:
            return None
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def fill(self) -> None:
        chunk = os.read(self.fd, 65536)
        self.closed = not chunk
        self.buffer += chunk


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child(argv: list[str], log: str) -> None:
    """In the forked child: become ``reconcile *argv`` and exit with its code, never returning."""
    code = EXIT_CHILD_CRASHED
    try:
        _die_with_parent()
        null = os.open(os.devnull, os.O_RDONLY)
        output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        from reconciler.cli import main

        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else EXIT_CHILD_CRASHED
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the zygote dies, so that no child outlives a crashed test."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _supervise(run: int, pid: int, commands: _Lines, timeout_s: float) -> None:
    """Wait for the child's end, killing it when asked to or when it outlives ``timeout_s``; then reap it."""
    pidfd = os.pidfd_open(pid)
    killed_at: float | None = None
    timed_out = False
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                break
            readable, _, _ = select.select([pidfd] + ([] if commands.closed else [commands.fd]), [], [], remaining)
            if pidfd in readable:
                break
            if commands.fd in readable:
                commands.fill()
            killed_at = _kill_if_asked(run, pidfd, commands) or killed_at
            if killed_at is not None:
                break
            if commands.closed or commands.quit:  # the test went away or is closing: so does the child
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                break
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    _say(
        {
            "event": "ended",
            "run": run,
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "killed_at": killed_at,
            "timed_out": timed_out,
            "t": time.monotonic(),
        }
    )


def _kill_if_asked(run: int, pidfd: int, commands: _Lines) -> float | None:
    """Act on the commands read so far; the moment SIGKILL was sent if one was for this run."""
    killed_at = None
    while (command := commands.pop()) is not None:
        if command["op"] == "kill" and command["run"] == run and killed_at is None:
            killed_at = time.monotonic()
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        elif command["op"] == "quit":
            commands.quit = True
    return killed_at


def main() -> None:
    # Everything a run imports, imported once here; the children share it copy-on-write.
    import reconciler.cli  # noqa: F401
    import reconciler.cli.apply  # noqa: F401
    import reconciler.cli.follow  # noqa: F401
    from reconciler.run.reconcile import freeze_startup_objects
    from reconciler.store.schema import head_revision

    for name in WARM_MODULES:
        importlib.import_module(name)
    head_revision()  # reads the migration scripts once

    # What a long-lived process does once before its first run, done before forking: the collector then
    # leaves the imported objects alone, so a child does not copy every page by walking them.
    freeze_startup_objects()

    commands = _Lines(sys.stdin.fileno())
    _say({"event": "ready"})
    run = 0
    while not commands.quit:
        command = commands.pop()
        if command is None:
            if commands.closed:
                return
            commands.fill()
            continue
        if command["op"] == "quit":
            return
        if command["op"] != "run":
            continue  # a kill for a run that has ended already
        run += 1
        pid = os.fork()
        if pid == 0:
            _child(command["argv"], command["log"])
        _say({"event": "started", "run": run, "pid": pid, "t": time.monotonic()})
        _supervise(run, pid, commands, float(command["timeout_s"]))


if __name__ == "__main__":
    main()
