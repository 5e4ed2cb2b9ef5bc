"""``reconcile history``'s drift trend: one sparkline per tenant above the table, drawn from the store's runs."""

from __future__ import annotations

from pathlib import Path

from reconciler.testing.scenario import write_local_config, write_secret_file
from reconciler.testing.scim_server import RunningScimServer
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.support.cli_runner import reconcile
from tests.support.fleet_lab import fleet_lab


def trend_of(stdout: str) -> dict[str, str]:
    """The sparkline lines above the table: label → glyphs (the text before ``last``)."""
    lines = stdout.splitlines()
    start = lines.index("Drift per run, oldest left") + 1
    trend = {}
    for line in lines[start:]:
        if "  last " not in line:
            break
        label, glyphs = line.split("  last ")[0].split()
        trend[label] = glyphs
    return trend


def legend_of(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("▁ in sync"))


def test_the_sparkline_follows_the_drift_each_run_found(tmp_path: Path, okta: Okta, scim_url: str) -> None:
    endpoints = (okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN)
    config = write_local_config(tmp_path / "state", *endpoints, "[thresholds]\nmax_deactivate = 1\n")
    users = [user.id for user in okta.emulator.add_assigned_users(okta.app_id, 6)]
    assert reconcile("--config", config, "--dry-run").code == 2  # 6 to create
    assert reconcile("--config", config, "--yes").code == 0  # found and created 6
    assert reconcile("--config", config, "--dry-run").code == 0  # in sync
    for user_id in users[:2]:
        okta.emulator.set_app_user(okta.app_id, user_id, profile={"displayName": "Renamed"})
    assert reconcile("--config", config, "--dry-run").code == 2  # 2 to update
    for user_id in users[3:]:
        okta.emulator.unassign_user(okta.app_id, user_id)
    assert reconcile("--config", config, "--yes").code == 3  # 3 deactivations: blocked by max_deactivate
    write_secret_file(tmp_path / "state" / "scim.token", "a-wrong-token\n")
    assert reconcile("--config", config, "--dry-run").code == 1  # refused by the platform before any plan

    runs = reconcile("--config", config, "history", "--output", "json").json()
    assert [run["status"] for run in reversed(runs)] == [
        "drift",
        "succeeded",
        "succeeded",
        "drift",
        "blocked",
        "failed",
    ]
    shown = reconcile("--config", config, "history")
    assert shown.code == 0, shown.stderr
    assert "\x1b[" not in shown.stdout, "no escape codes when stdout is not a terminal"
    assert trend_of(shown.stdout) == {"drift": "██▁▄!·"}
    assert "min 0, max 6" in legend_of(shown.stdout)
    assert shown.stdout.index("Drift per run") < shown.stdout.index("Recent runs"), "the trend sits above the table"


def test_a_fleet_history_draws_one_line_per_tenant(tmp_path: Path, scim_server: RunningScimServer) -> None:
    with fleet_lab(tmp_path, scim_server, f"sqlite:///{tmp_path / 'fleet.db'}", tenants=2, users=4) as lab:

        def run(*args: str) -> int:
            return reconcile("--config", lab.config_path, *args, env=lab.environment).code

        assert run("--tenant", "tenant-02", "--dry-run") == 2
        assert run("--tenant", "tenant-02", "--yes") == 0
        assert run("--tenant", "tenant-02", "--dry-run") == 0
        assert run("--tenant", "tenant-01", "--dry-run") == 2
        shown = reconcile("--config", lab.config_path, "history", env=lab.environment)
        assert shown.code == 0, shown.stderr
        assert trend_of(shown.stdout) == {"tenant-01": "█", "tenant-02": "██▁"}
        assert "min 0, max 4" in legend_of(shown.stdout)
