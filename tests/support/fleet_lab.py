"""A fleet on loopback: one Okta emulator with an app per tenant, a scim2-server tenant per tenant,
a shared store, a ``[[tenants]]`` config file, and ``reconcile serve`` replicas as child processes.

Each tenant has its own Okta API token (from an environment variable) and its SCIM token in a
file of its own, as a platform operator's deployment would. Used by tests/service/test_fleet.py and by
``make bench`` (benchmarks/fleet.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.models.runs import RunStatus
from reconciler.store import Run, Store
from reconciler.testing.okta import OktaEmulator, okta_emulator_in_thread
from reconciler.testing.scenario import write_secret_file
from reconciler.testing.scim_server import RunningScimServer
from tests.support.service_process import ServiceProcess


@dataclass(frozen=True)
class LabTenant:
    name: str
    app_id: str
    scim_url: str
    okta_token_env: str
    okta_token: str


@dataclass
class FleetLab:
    emulator: OktaEmulator
    org_url: str
    tenants: list[LabTenant]
    config_path: Path
    store_url: str
    replicas: list[ReplicaProcess] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        """What a replica needs in its environment: each tenant's Okta token."""
        return {t.okta_token_env: t.okta_token for t in self.tenants}

    def start_replica(self, name: str) -> ReplicaProcess:
        replica = ReplicaProcess(self.config_path, name, self.environment)
        self.replicas.append(replica)
        return replica

    _store: Store | None = None

    def runs(self) -> list[Run]:
        """Every run in the store, oldest first."""
        if self._store is None:
            self._store = Store(self.store_url)
        return list(reversed(self._store.recent_runs(100_000)))

    def close(self) -> None:
        for replica in self.replicas:
            replica.close()
        if self._store is not None:
            self._store.close()


class ReplicaProcess(ServiceProcess):
    """``python -m reconciler serve --replica NAME`` as a child process, its output in ``NAME.log``."""

    def __init__(self, config: Path, name: str, env: dict[str, str]) -> None:
        super().__init__(config, "--replica", name, env=env, log_name=f"{name}.log")
        self.name = name

    def kill(self) -> None:
        """SIGKILL: no chance to record anything or release anything itself."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"replica {self.name} did not stop within {timeout_s} s:\n{self.log}") from None


SCIM_TOKEN_FILE = "scim.token"


def write_fleet_config(
    directory: Path,
    org_url: str,
    tenants: list[LabTenant],
    store_url: str,
    scim_token: str,
    *,
    interval_s: float,
    tick_s: float,
    concurrency: int,
    extra: str = "",
    incremental: str | None = None,
) -> Path:
    """A ``[[tenants]]`` file: shared defaults at the top, each tenant's own app, endpoint and secrets.

    ``incremental``: the body of its ``[incremental]`` table; None: the replicas do not follow the System Log
    (the tests of runs and schedules count runs, and a follower's batches are runs too)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_secret_file(directory / SCIM_TOKEN_FILE, scim_token + "\n")
    lines = [
        f'[store]\nurl = "{store_url}"\n',
        '[metrics]\nlisten = ""\n',
        f'[service]\nconcurrency = {concurrency}\ntick = "{tick_s}s"\n',
        f'[schedule]\ninterval = "{interval_s}s"\njitter = 0\nstop_timeout = "10s"\n',
        "[thresholds]\nmax_create_ratio = 1.0  # every tenant starts with an empty platform\n",
        f'[okta]\norg_url = "{org_url}"\nauth = "api_token"\n',
        f'[scim]\ntoken_file = "{SCIM_TOKEN_FILE}"\n',
        f"[incremental]\n{incremental if incremental is not None else 'enabled = false'}\n",
        extra,
    ]
    for tenant in tenants:
        lines.append(
            f'[[tenants]]\nname = "{tenant.name}"\n'
            f'[tenants.okta]\napp_id = "{tenant.app_id}"\ntoken_env = "{tenant.okta_token_env}"\n'
            f'[tenants.scim]\nbase_url = "{tenant.scim_url}"\n'
        )
    path = directory / "fleet.toml"
    path.write_text("\n".join(lines))
    return path


@contextlib.contextmanager
def fleet_lab(
    directory: Path,
    scim_server: RunningScimServer,
    store_url: str,
    *,
    tenants: int = 10,
    users: int = 20,
    interval_s: float = 4.0,
    tick_s: float = 0.5,
    concurrency: int = 2,
    okta_latency_ms: float = 0.0,
    scim_url_of: Callable[[int, str], str] | None = None,
    extra: str = "",
    rate_limit: int = 1_000_000,
    rate_limit_window_s: float = 60.0,
    incremental: str | None = None,
) -> Iterator[FleetLab]:
    """The emulator serving, a SCIM tenant per tenant, the file written; replicas stopped on exit.

    ``extra``: more top-level tables for the file (``[alerts]`` ...); ``incremental``: see
    :func:`write_fleet_config`. The emulator's rate limit is out of the way unless ``rate_limit`` (per
    ``rate_limit_window_s``) says otherwise.
    """
    emulator = OktaEmulator(seed=9, rate_limit=rate_limit, rate_limit_window_s=rate_limit_window_s)
    emulator.set_latency(okta_latency_ms)
    lab_tenants = []
    for number in range(1, tenants + 1):
        app = emulator.create_app(label=f"Tenant {number} SCIM")
        emulator.add_assigned_users(app.id, users, domain=f"tenant{number}.example.com")
        token = f"okta-token-tenant-{number}-{os.urandom(6).hex()}"
        emulator.add_api_token(token)
        scim_url = scim_server.base_url.removesuffix("/v2") + f"/fleet{number}x{os.urandom(4).hex()}/v2"
        if scim_url_of is not None:  # e.g. through a proxy that slows one tenant down
            scim_url = scim_url_of(number, scim_url)
        lab_tenants.append(LabTenant(f"tenant-{number:02d}", app.id, scim_url, f"TENANT_{number}_OKTA_TOKEN", token))
    with okta_emulator_in_thread(emulator) as org_url:
        config = write_fleet_config(
            directory,
            org_url,
            lab_tenants,
            store_url,
            scim_server.token,
            interval_s=interval_s,
            tick_s=tick_s,
            concurrency=concurrency,
            extra=extra,
            incremental=incremental,
        )
        lab = FleetLab(emulator, org_url, lab_tenants, config, store_url)
        try:
            yield lab
        finally:
            lab.close()


def wait_for(predicate: object, timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    """Poll ``predicate()`` until it is true; AssertionError naming ``what`` after ``timeout_s``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


def running_runs(runs: list[Run], replica: str) -> list[Run]:
    return [run for run in runs if run.replica == replica and run.status is RunStatus.RUNNING]
