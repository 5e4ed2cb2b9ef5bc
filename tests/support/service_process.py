"""``reconcile serve`` as a child process, and waiting for a condition in a test's event loop.

Used by the service tests (tests/service/test_service.py and the ones that share its helpers), by the
fleet's replicas (tests/support/fleet_lab.py) and so by ``make bench``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path


async def eventually(predicate: Callable[[], object], timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


class ServiceProcess:
    """``python -m reconciler serve`` as a child process, its stderr in a file (``log_name`` beside the config)."""

    def __init__(
        self, config: Path, *args: str, env: dict[str, str] | None = None, log_name: str = "serve.log"
    ) -> None:
        self.log_path = config.parent / log_name
        environment = {k: v for k, v in os.environ.items() if k not in ("RECONCILER_CONFIG", "NOTIFY_SOCKET")}
        environment.update(env or {})
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "serve", "--config", str(config), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait_for_log(self, text: str, count: int = 1, timeout_s: float = 30.0) -> None:
        def seen() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited ({self.process.returncode}):\n{self.log}")
            return self.log.count(text) >= count

        try:
            await eventually(seen, timeout_s, repr(text))
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- service log ---\n{self.log}") from None

    async def wait_exit(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the service did not exit within {timeout_s} s:\n{self.log}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@contextlib.contextmanager
def service_process(config: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[ServiceProcess]:
    child = ServiceProcess(config, *args, env=env)
    try:
        yield child
    finally:
        child.close()
