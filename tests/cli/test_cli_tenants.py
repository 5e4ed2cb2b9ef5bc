"""The command with a file of ``[[tenants]]``: one-off commands take --tenant, the store's views show them all."""

from __future__ import annotations

from pathlib import Path

from reconciler.testing.scim_server import RunningScimServer
from tests.conftest import Okta
from tests.support.cli_runner import reconcile
from tests.support.fleet_lab import FleetLab, fleet_lab


def lab_of(tmp_path: Path, scim_server: RunningScimServer) -> object:
    return fleet_lab(tmp_path, scim_server, f"sqlite:///{tmp_path / 'fleet.db'}", tenants=3, users=4)


def run(lab: FleetLab, *args: str) -> object:
    return reconcile("--config", lab.config_path, *args, env=lab.environment)


def test_a_one_off_command_needs_a_tenant_and_runs_that_one_alone(
    tmp_path: Path, scim_server: RunningScimServer
) -> None:
    with lab_of(tmp_path, scim_server) as lab:
        missing = run(lab, "--dry-run")
        assert missing.code == 78
        assert "3 tenants" in missing.stderr and "tenant-01, tenant-02, tenant-03" in missing.stderr
        assert "--tenant NAME" in missing.stderr

        unknown = run(lab, "--tenant", "tenant-09", "--dry-run")
        assert unknown.code == 78 and 'no tenant "tenant-09"' in unknown.stderr

        audit = run(lab, "--tenant", "tenant-02", "--dry-run", "--output", "json")
        assert audit.code == 2, audit.stderr  # drift: nothing was ever pushed
        assert audit.json()["summary"]["create"] == 4
        applied = run(lab, "--tenant", "tenant-02")
        assert applied.code == 0, applied.stderr

        history = run(lab, "history", "--output", "json").json()
        assert [(r["tenant"], r["mode"], r["status"]) for r in history] == [
            ("tenant-02", "apply", "succeeded"),
            ("tenant-02", "dry-run", "drift"),
        ]
        assert run(lab, "--tenant", "tenant-01", "history", "--output", "json").json() == []
        table = run(lab, "history")
        assert table.code == 0 and "tenant-02" in table.stdout

        status = run(lab, "status", "--output", "json").json()
        rows = {row["tenant"]: row for row in status["tenants"]}
        assert list(rows) == ["tenant-01", "tenant-02", "tenant-03"]
        assert rows["tenant-01"]["last_run"] is None and rows["tenant-01"]["held_by"] is None
        assert rows["tenant-02"]["last_run"]["status"] == "succeeded"
        assert rows["tenant-02"]["drift"] == {"create": 4}, "the drift the last run found and repaired"
        text = run(lab, "status")
        assert text.code == 0
        assert "tenant-03" in text.stdout and "never" in text.stdout and "succeeded" in text.stdout

        # The store-only commands read no secret: the tenants' tokens need not be there.
        bare = reconcile("--config", lab.config_path, "status", "--output", "json")
        assert bare.code == 0, bare.stderr

        serve = run(lab, "serve", "--tenant", "tenant-01")
        assert serve.code == 64 and "every tenant" in serve.stderr
        unnamed = run(lab, "serve", "--replica", "two\nlines")
        assert unnamed.code == 64 and "--replica" in unnamed.stderr

        for secret in [t.okta_token for t in lab.tenants] + [scim_server.token]:
            for answer in (audit, applied, table, text):
                assert secret not in answer.stdout + answer.stderr


def test_status_of_a_single_tenant_file_shows_its_one_target(config_file: Path, okta: Okta) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    assert reconcile("--config", config_file, "--dry-run").code == 2
    status = reconcile("--config", config_file, "status", "--output", "json").json()
    assert [(row["tenant"], row["last_run"]["status"]) for row in status["tenants"]] == [(okta.app_id, "drift")]
    assert reconcile("--config", config_file, "--tenant", "x", "--dry-run").code == 78
