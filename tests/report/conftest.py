"""A store filled by real runs against the Okta emulator and scim2-server, once per test process: every kind of run a
report shows (dry-runs, applies, a saved plan applied, a safety stop, a failure, a System Log repair)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.config import Config, load_config
from reconciler.testing.okta import OktaEmulator, okta_emulator_in_thread
from reconciler.testing.scenario import write_local_config, write_secret_file
from reconciler.testing.scim_server import RunningScimServer
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, fresh_tenant
from tests.support.cli_runner import reconcile

SETTINGS = '[incremental]\npoll = "1s"\nrecheck_after = 0\n\n[thresholds]\nmax_create_ratio = 1.0\nmax_deactivate = 3\n'
"""Fast polling for ``follow --once``; more than 3 deactivations at once trips the gate (a safety stop)."""


@dataclass(frozen=True)
class Evidence:
    config_file: Path
    config: Config
    runs: dict[str, int]
    """Which run did what: ``first_dry_run``, ``first_apply``, ``plan_made``, ``plan_applied``, ``stopped``,
    ``failed``, ``follow_audit``, ``incremental``, ``last_dry_run``."""
    revoked_by_plan: tuple[str, ...]
    revoked_by_log: str
    """The Okta user ids deactivated by the saved plan, and by the System Log follower."""


def _run(*args: str | Path, code: int) -> int:
    """Run ``reconcile`` in this process; its exit code must be ``code``. Returns the newest run's id."""
    result = reconcile(*args)
    assert result.code == code, (args, result.stdout, result.stderr)
    config_file = args[args.index("--config") + 1]
    listed = reconcile("--config", config_file, "history", "--limit", "1", "--output", "json").json()
    return int(listed[0]["run_id"])


@contextmanager
def build_evidence(state: Path, scim_server: RunningScimServer) -> Iterator[Evidence]:
    """Make the runs (the Okta emulator lives as long as the block; the store stays in ``state``)."""
    emulator = OktaEmulator(seed=23, api_tokens=[OKTA_TOKEN])
    app = emulator.create_app().id
    with okta_emulator_in_thread(emulator) as org_url:
        config_file = write_local_config(
            state, org_url, app, fresh_tenant(scim_server), OKTA_TOKEN, SCIM_TOKEN, SETTINGS
        )
        users = [user.id for user in emulator.add_assigned_users(app, 20)]
        cfg = ("--config", config_file)
        runs = {"first_dry_run": _run(*cfg, "--dry-run", code=2), "first_apply": _run(*cfg, code=0)}

        for user in users[:2]:
            emulator.unassign_user(app, user)
        runs["plan_made"] = _run(*cfg, "--dry-run", "--save-plan", state / "plan.json", code=2)
        runs["plan_applied"] = _run(*cfg, "apply", state / "plan.json", code=0)

        for user in users[2:7]:  # five at once: above max_deactivate
            emulator.unassign_user(app, user)
        runs["stopped"] = _run(*cfg, code=3)
        for user in users[2:7]:
            emulator.assign_user(app, user)

        write_secret_file(state / "scim.token", "not-the-scim-token\n")
        runs["failed"] = _run(*cfg, "--dry-run", code=1)
        write_secret_file(state / "scim.token", SCIM_TOKEN + "\n")

        runs["follow_audit"] = _run(*cfg, "follow", "--once", code=0)
        emulator.unassign_user(app, users[7])
        emulator.update_user_profile(users[8], firstName="Renamed")
        runs["incremental"] = _run(*cfg, "follow", "--once", code=0)
        runs["last_dry_run"] = _run(*cfg, "--dry-run", code=0)
        yield Evidence(config_file, load_config(config_file), runs, tuple(users[:2]), users[7])


@pytest.fixture(scope="session")
def evidence(tmp_path_factory: pytest.TempPathFactory, scim_server: RunningScimServer) -> Iterator[Evidence]:
    with build_evidence(tmp_path_factory.mktemp("evidence"), scim_server) as made:
        yield made
