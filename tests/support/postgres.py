"""A throwaway PostgreSQL server for the tests: initdb + postgres in a temporary directory.

It listens on 127.0.0.1 only, on a free port, with trust authentication (nothing
else can reach it) and no durability (fsync off): it lives for one test session.
Each test gets a database of its own (:meth:`PostgresServer.create_database`).

Run as root, as CI does, the server runs as the ``postgres`` system user that
Debian's ``postgresql`` package creates (initdb refuses root). The binaries are
found under ``/usr/lib/postgresql/<version>/bin`` (Debian) or on PATH, or in
``$RECONCILER_TEST_PG_BIN``. ``make test`` installs the package when they are
missing; see the ``postgres-binaries`` target of the Makefile.

With ``RECONCILER_TEST_POSTGRES_URL`` set (a role that may CREATE DATABASE),
the tests use that server instead of starting one.

Without the binaries the PostgreSQL tests are skipped, with the reason, unless
``CI`` is set: there they fail, so that a CI run cannot pass without them.

Outside the tests: ``python -m tests.support.postgres`` starts one and prints a
database URL until Ctrl-C, handy to try ``[store] url`` by hand.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

INSTALL_HINT = "install them with apt-get install postgresql (Debian/Ubuntu)"
START_TIMEOUT_S = 30.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (or no user to run them as)."""


def find_bin_dir() -> Path | None:
    """Where initdb and postgres are: $RECONCILER_TEST_PG_BIN, Debian's newest version, else PATH."""
    override = os.environ.get("RECONCILER_TEST_PG_BIN")
    candidates = [Path(override)] if override else []
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    candidates += debian
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


@dataclass
class PostgresServer:
    """A running server: one this module started (``process``), or one given by URL."""

    port: int
    superuser: str
    process: subprocess.Popen[bytes] | None = None
    base_dir: Path | None = None
    host: str = "127.0.0.1"
    password: str | None = None
    admin_database: str = "postgres"
    databases: list[str] = field(default_factory=list)
    scratch: str | None = None
    """The database :meth:`empty_database` hands out again and again, emptied each time."""

    @property
    def owned(self) -> bool:
        """Started here, and thrown away whole at the end: its databases need no dropping."""
        return self.process is not None

    def url(self, database: str) -> str:
        password = f":{self.password}" if self.password else ""
        return f"postgresql+psycopg://{self.superuser}{password}@{self.host}:{self.port}/{database}"

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self._admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def empty_database(self) -> str:
        """An empty database: the scratch one with its schema dropped and made anew (much faster than CREATE DATABASE).

        Whatever a previous test left connected to it must not hold a table lock; if one does,
        a new scratch database replaces it.
        """
        if self.scratch is not None:
            try:
                with self._admin(self.scratch) as connection:
                    connection.execute("SET lock_timeout = '2s'")
                    connection.execute("DROP SCHEMA public CASCADE")
                    connection.execute("CREATE SCHEMA public")
                return self.url(self.scratch)
            except psycopg.Error:
                self.scratch = None
        url = self.create_database("scratch")
        self.scratch = url.rsplit("/", 1)[1]
        return url

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database`, closing whatever is still connected to it."""
        name = url.rsplit("/", 1)[1]
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with contextlib.suppress(ValueError):
            self.databases.remove(name)

    def _admin(self, database: str | None = None) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.superuser,
            password=self.password,
            dbname=database or self.admin_database,
            autocommit=True,
        )

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then remove every file; a given server stays."""
        if self.process is None:
            for name in list(self.databases):
                self.drop_database(self.url(name))
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _run_as() -> str | None:
    """The system user to run the server as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise PostgresUnavailable(
            "running as root, but there is no 'postgres' system user to run the server as "
            "(initdb refuses root); the Debian package 'postgresql' creates it"
        ) from error
    return "postgres"


def start_postgres(bin_dir: Path | None = None) -> PostgresServer:
    """initdb in a new temporary directory and start a server on 127.0.0.1; raises PostgresUnavailable."""
    bin_dir = bin_dir or find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(f"no PostgreSQL server binaries (initdb, postgres) found: {INSTALL_HINT}")
    user = _run_as()
    base_dir = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(base_dir, entry.pw_uid, entry.pw_gid)
        data = base_dir / "data"
        env = _server_env(user)
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "--username=postgres"]
        initdb += ["--encoding=UTF8", "--locale=C", "--no-sync"]
        result = subprocess.run(initdb, user=user, env=env, cwd=base_dir, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        for _attempt in range(3):
            server = _start_server(bin_dir, base_dir, data, user, env)
            if server is not None:
                return server
        raise RuntimeError(f"postgres did not start; see {base_dir / 'postgres.log'}")
    except BaseException:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise


def _server_env(user: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    if user is not None:
        entry = pwd.getpwnam(user)
        env.update(HOME=entry.pw_dir, USER=user, LOGNAME=user)
    return env


def _start_server(
    bin_dir: Path, base_dir: Path, data: Path, user: str | None, env: dict[str, str]
) -> PostgresServer | None:
    """One attempt on a free port; None if the port was taken in between (the caller tries another)."""
    port = _free_port()
    log = base_dir / "postgres.log"
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(base_dir),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "50",
        "shared_buffers": "32MB",
        "logging_collector": "off",
    }
    command = [str(bin_dir / "postgres"), "-D", str(data)]
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command, user=user, env=env, cwd=base_dir, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file
        )
    server = PostgresServer(port, "postgres", process, base_dir)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if "could not bind" in log.read_text(errors="replace"):
                return None
            raise RuntimeError(f"postgres exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            server._admin().close()
            return server
        except psycopg.OperationalError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"postgres did not answer within {START_TIMEOUT_S:.0f} s:\n{log.read_text(errors='replace')}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def given_postgres(url: str) -> PostgresServer:
    """The server of ``url`` (RECONCILER_TEST_POSTGRES_URL), used through its database to create others."""
    parsed = make_url(url)
    return PostgresServer(
        parsed.port or 5432,
        parsed.username or "postgres",
        host=parsed.host or "127.0.0.1",
        password=parsed.password if isinstance(parsed.password, str) else None,
        admin_database=parsed.database or "postgres",
    )


def postgres_for_session() -> Iterator[PostgresServer]:
    """The body of the session fixture: a server for the whole run, skipped (failed in CI) without one."""
    given = os.environ.get("RECONCILER_TEST_POSTGRES_URL")
    if given:
        server = given_postgres(given)
    else:
        try:
            server = start_postgres()
        except PostgresUnavailable as error:
            if os.environ.get("CI", "").lower() not in ("", "0", "false"):
                pytest.fail(f"CI must run the PostgreSQL tests: {error}", pytrace=False)
            pytest.skip(f"PostgreSQL tests need a server: {error}")
    try:
        yield server
    finally:
        server.stop()


BACKENDS = ("sqlite", "postgresql")


def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The body of a ``params=BACKENDS`` fixture: an empty database of the backend ``request.param``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'reconciler.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    yield server.empty_database()


if __name__ == "__main__":
    with running_postgres() as running:
        print(running.create_database("try"), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            running.process.wait()
