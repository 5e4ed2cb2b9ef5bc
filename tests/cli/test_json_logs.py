"""``--log-format json``: every line on stderr parses as JSON, and the records carry fields, not only a message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.testing.scenario import write_local_config
from reconciler.testing.scim_server import RunningScimServer
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.service.test_service import service_config
from tests.support.cli_runner import reconcile_process
from tests.support.fleet_lab import fleet_lab
from tests.support.service_process import service_process


def _records(stderr: str) -> list[dict[str, Any]]:
    """Each line of ``stderr`` as the JSON object it must be (a line that is not JSON fails here)."""
    lines = stderr.splitlines()
    assert lines, "something was logged"
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"a stderr line is not JSON: {line!r}\n--- stderr ---\n{stderr}") from None
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
    return records


def test_a_failing_run_logs_only_json_and_its_failure_carries_the_run(
    okta: Okta, scim_url: str, tmp_path: Path
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    refused = "not-the-token-" + SCIM_TOKEN  # the platform answers 401: the run fails at once
    config = write_local_config(tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, refused)
    result = reconcile_process("--config", config, "--log-format", "json", "--log-level", "INFO")
    assert result.code == 1
    records = _records(result.stderr)
    (failure,) = [r for r in records if r["message"].startswith("Run ")]
    assert failure["level"] == "ERROR" and failure["status"] == "failed"
    assert isinstance(failure["run_id"], int) and "401" in failure["error"]
    assert refused not in result.stderr


def test_a_bad_config_with_json_logs_is_json_too(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[okta]\norg_url = "https://x.okta.com"\n')
    result = reconcile_process("--config", bad, "--dry-run", "--log-format", "json")
    assert result.code == 78
    problems = [record["problem"] for record in _records(result.stderr)]
    assert any("okta.app_id" in problem for problem in problems)


def test_a_tenant_run_logs_its_run_id_tenant_and_counts(tmp_path: Path, scim_server: RunningScimServer) -> None:
    with fleet_lab(tmp_path, scim_server, f"sqlite:///{tmp_path / 'fleet.db'}", tenants=2, users=3) as lab:
        args = ("--config", lab.config_path, "--tenant", "tenant-02", "--log-format", "json", "--log-level", "INFO")
        result = reconcile_process(*args, env=lab.environment)
    assert result.code == 0, result.stderr
    records = _records(result.stderr)
    (read,) = [r for r in records if r["message"].startswith("read ")]
    assert read["tenant"] == "tenant-02" and isinstance(read["run_id"], int)
    assert read["assignments"] == 3 and read["platform_users"] == 0 and read["plan"]["create"] == 3


async def test_serve_start_and_its_runs_log_json_with_fields_and_no_library_chatter(
    tmp_path: Path, okta: Okta, scim_url: str
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    config = service_config(tmp_path / "state", okta, scim_url, interval="1h")
    with service_process(config, "--log-format", "json") as child:
        await child.wait_for_log("run 1 succeeded", timeout_s=40)
        log = child.log
    records = _records(log)
    assert not [r for r in records if r["logger"].startswith("alembic")], "alembic's INFO lines stay below INFO"
    (finished,) = [r for r in records if r["message"].startswith("run 1 succeeded")]
    assert finished["run_id"] == 1 and finished["status"] == "succeeded"
    assert finished["applied"] == 2 and finished["failed"] == 0 and finished["plan"]["create"] == 2
    assert "tenant" in finished
