"""The shipped systemd units: hardened (systemd-analyze security ≤ 1.5) and valid (verify clean).

systemd-analyze is on the CI machine: there these tests must run. Elsewhere
they skip when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SERVICES = ("okta-reconciler.service", "okta-reconciler-audit.service")
INSTALLED_COMMAND = "/opt/okta-reconciler/bin/reconcile"
MAX_EXPOSURE = 1.5


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing on the CI machine")
        pytest.skip("systemd-analyze is not installed")
    return found


def _unit(name: str) -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize("service", SERVICES)
def test_exposure_is_at_most_1_5(systemd_analyze: str, service: str) -> None:
    result = subprocess.run(
        [systemd_analyze, "security", "--offline=true", "--no-pager", str(UNITS / service)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match[1]) <= MAX_EXPOSURE


def test_units_verify_clean(systemd_analyze: str, tmp_path: Path) -> None:
    """verify checks that ExecStart exists: the install path is replaced by this checkout's command."""
    command = Path(sys.executable).with_name("reconcile")
    assert command.exists()
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED_COMMAND, str(command)))
    result = subprocess.run(
        [systemd_analyze, "verify", *(str(p) for p in sorted(tmp_path.iterdir()))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_service_is_a_notify_service_with_watchdog_state_and_credentials() -> None:
    service = _unit("okta-reconciler.service")["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].split()[1:3] == ["serve", "--config"]
    assert "WatchdogSec" in service and service["DynamicUser"] == "yes"
    assert service["StateDirectory"] == "okta-reconciler"
    config_example = (UNITS.parent / "config.example.toml").read_text()
    for line in (UNITS / "okta-reconciler.service").read_text().splitlines():
        if line.startswith("LoadCredential="):
            name = line.removeprefix("LoadCredential=").split(":")[0]
            assert f'token_credential = "{name}"' in config_example, f"document {name} in config.example.toml"


def test_audit_runs_a_dry_run_daily_and_treats_findings_as_success() -> None:
    audit = _unit("okta-reconciler-audit.service")["Service"]
    assert "--dry-run" in audit["ExecStart"].split()
    assert set(audit["SuccessExitStatus"].split()) == {"2", "3"}
    assert _unit("okta-reconciler-audit.timer")["Timer"]["OnCalendar"] == "daily"


def test_the_service_and_the_audit_share_one_dynamic_user_and_state_directory() -> None:
    """Each unit's DynamicUser= would otherwise be named after the unit: two users on one store, and the store's
    files (mode 0600, store.md) made by one would be closed to the other."""
    units = [_unit(name)["Service"] for name in SERVICES]
    assert all(unit["DynamicUser"] == "yes" for unit in units)
    assert {unit.get("User") for unit in units} == {"okta-reconciler"}
    assert {unit["StateDirectory"] for unit in units} == {"okta-reconciler"}
