"""Runs the ``reconcile`` command as a user would.

``reconcile()`` calls the command's ``main`` in this process (the okta SDK
takes seconds to import, paid once per test session instead of per call);
``reconcile_process()`` runs ``python -m reconciler`` in a child process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.cli import main


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@contextlib.contextmanager
def _environment(env: dict[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.pop("RECONCILER_CONFIG", None)
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def reconcile(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    stdout, stderr = io.StringIO(), io.StringIO()
    with _environment(env), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Result(code, stdout.getvalue(), stderr.getvalue())


def reconcile_process(*args: str | Path, env: dict[str, str] | None = None, timeout_s: float = 120) -> Result:
    environment = {k: v for k, v in os.environ.items() if k != "RECONCILER_CONFIG"}
    environment.update(env or {})
    completed = subprocess.run(
        [sys.executable, "-m", "reconciler", *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)
