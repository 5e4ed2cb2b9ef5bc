"""Runs the django-scim2 test peer (tests/support/django_peer) under waitress on a free 127.0.0.1 port."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from reconciler.testing.scim_server import free_loopback_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "tests.support.django_peer.settings"
WAITRESS_THREADS = 8
"""The reconciler sends up to 4 reads and 4 writes at once."""

RESET_TABLES = ("accounts_user_scim_groups", "accounts_user", "accounts_group")
"""Children first. The ids keep counting (AUTOINCREMENT), so a stale SCIM id never names a new user."""


@dataclass(frozen=True)
class DjangoScimServer:
    base_url: str
    """The SCIM base URL, ending in ``/scim/v2``."""
    token: str
    process: subprocess.Popen[bytes]
    db_path: Path

    def reset(self) -> None:
        """Delete every user and group, straight in the server's SQLite file (WAL: the server reads on)."""
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=20)) as connection, connection:
            for table in RESET_TABLES:
                connection.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names


def _environment(token: str, database: Path, port: int) -> dict[str, str]:
    environment = dict(os.environ)
    python_path = [str(REPO_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    environment.update(
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        PYTHONPATH=os.pathsep.join(python_path),
        DJANGO_PEER_DB=str(database),
        DJANGO_PEER_TOKEN=token,
        DJANGO_PEER_NETLOC=f"127.0.0.1:{port}",
    )
    return environment


def _migrate(environment: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--no-input", "-v", "0"],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"django-scim2 peer: migrate failed:\n{done.stderr.decode(errors='replace')[-2000:]}")


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _wait_until_serving(server: DjangoScimServer, log: Path, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    headers = {"Authorization": f"Bearer {server.token}"}
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"django-scim2 peer exited with code {server.process.returncode}:\n{_log_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{server.base_url}/ServiceProviderConfig", headers=headers, timeout=1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"django-scim2 peer did not answer on {server.base_url} within {deadline_s:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextlib.contextmanager
def run_django_scim_server(token: str, start_timeout_s: float = 20.0) -> Iterator[DjangoScimServer]:
    """Migrate a fresh SQLite file, serve the peer on 127.0.0.1 with waitress, and remove it all on exit."""
    state = Path(tempfile.mkdtemp(prefix="django-scim-peer-"))
    try:
        port = free_loopback_port()
        database = state / "peer.sqlite3"
        environment = _environment(token, database, port)
        _migrate(environment)
        log = state / "server.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "waitress",
                    "--host=127.0.0.1",
                    f"--port={port}",
                    f"--threads={WAITRESS_THREADS}",
                    "tests.support.django_peer.wsgi:application",
                ],
                env=environment,
                cwd=REPO_ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server = DjangoScimServer(f"http://127.0.0.1:{port}/scim/v2", token, process, database)
        try:
            _wait_until_serving(server, log, start_timeout_s)
            yield server
        finally:
            _stop(process)
    finally:
        shutil.rmtree(state, ignore_errors=True)
