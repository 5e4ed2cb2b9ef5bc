"""The safety gate and the error-rate breaker end to end: emulator, scim2-server, store, CLI."""

from __future__ import annotations

from pathlib import Path

import httpx

from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users, provision
from tests.support.cli_runner import Result, reconcile


def _config(tmp_path: Path, okta: Okta, scim_url: str, thresholds: str) -> Path:
    return write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, f"[thresholds]\n{thresholds}"
    )


def _provisioned_org(okta: Okta, platform: httpx.Client, count: int) -> list[str]:
    user_ids = [u.id for u in okta.emulator.add_assigned_users(okta.app_id, count)]
    provision(okta, platform, user_ids)
    return user_ids


def _run_json(config_file: Path, *args: str) -> tuple[Result, dict]:
    result = reconcile("--config", config_file, "--output", "json", *args)
    return result, result.json()


def _skipped(config_file: Path, run_id: int) -> list[dict]:
    shown = reconcile("--config", config_file, "show", str(run_id), "--output", "json").json()
    return [a for a in shown["actions"] if a["status"] == "skipped"]


def test_an_empty_okta_listing_writes_nothing_and_exits_3(
    okta: Okta, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    config_file = _config(tmp_path, okta, scim_url, 'on_threshold = "skip_gated"\n')
    for user_id in _provisioned_org(okta, platform, 5):
        okta.emulator.unassign_user(okta.app_id, user_id)
    before = all_users(platform)
    result, document = _run_json(config_file)
    assert result.code == 3
    assert document["status"] == "blocked" and "no assignment" in document["error"]
    assert all_users(platform) == before
    assert len(_skipped(config_file, document["run_id"])) == 5


def test_absolute_limit_blocks_every_write_with_on_threshold_stop(
    okta: Okta, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    config_file = _config(tmp_path, okta, scim_url, "max_deactivate = 2\n")
    user_ids = _provisioned_org(okta, platform, 20)
    for user_id in user_ids[:3]:
        okta.emulator.unassign_user(okta.app_id, user_id)
    okta.emulator.add_assigned_users(okta.app_id, 1)  # a create, held too
    before = all_users(platform)
    result, document = _run_json(config_file)
    assert result.code == 3
    assert "3 deactivate planned, above max_deactivate = 2" in document["error"]
    assert all_users(platform) == before
    held = _skipped(config_file, document["run_id"])
    assert sorted(a["kind"] for a in held) == ["create", "deactivate", "deactivate", "deactivate"]
    assert all("safety gate" in a["error"] for a in held)
    history = reconcile("--config", config_file, "history", "--output", "json").json()
    assert history[0]["status"] == "blocked"


def test_ratio_limit_with_skip_gated_applies_the_other_kinds(
    okta: Okta, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    config_file = _config(
        tmp_path, okta, scim_url, 'max_deactivate_ratio = 0.1\nmin_count_for_ratio = 1\non_threshold = "skip_gated"\n'
    )
    user_ids = _provisioned_org(okta, platform, 10)
    for user_id in user_ids[:2]:  # 2 of 10 = 20 %
        okta.emulator.unassign_user(okta.app_id, user_id)
    okta.emulator.add_assigned_users(okta.app_id, 2)
    result, document = _run_json(config_file)
    assert result.code == 3
    assert "above max_deactivate_ratio = 0.1" in document["error"]
    users = all_users(platform)
    assert len(users) == 12, "the two creates were applied"
    assert all(u["active"] for u in users), "the deactivations were held"


def test_a_sudden_drop_in_okta_assignments_stops_the_run(
    okta: Okta, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    config_file = _config(tmp_path, okta, scim_url, "max_source_drop_ratio = 0.2\nmax_deactivate_ratio = 1.0\n")
    user_ids = _provisioned_org(okta, platform, 10)
    assert reconcile("--config", config_file).code == 0  # the baseline: 10 assignments
    for user_id in user_ids[:3]:
        okta.emulator.unassign_user(okta.app_id, user_id)
    result, document = _run_json(config_file)
    assert result.code == 3
    assert "fell from 10 to 7" in document["error"]
    assert all(u["active"] for u in all_users(platform))
    # The blocked run is not a baseline: the drop is still judged against 10.
    assert reconcile("--config", config_file, "--dry-run").code == 3


def test_error_rate_breaker_stops_sending(okta: Okta, scim_url: str, platform: httpx.Client, tmp_path: Path) -> None:
    config_file = _config(tmp_path, okta, scim_url, "max_error_ratio = 0.5\nmax_create = 100\nmax_create_ratio = 1.0\n")
    for user in okta.emulator.add_assigned_users(okta.app_id, 40):
        okta.emulator.set_app_user(okta.app_id, user.id, profile={"locale": {"not": "a string"}})  # refused: 400
    result, document = _run_json(config_file)
    assert result.code == 1
    assert document["status"] == "failed" and "error-rate breaker" in document["error"]
    assert document["failed"] >= 10 and document["failed"] < 40
    skipped = _skipped(config_file, document["run_id"])
    assert len(skipped) == 40 - document["failed"]
    assert all("error-rate breaker" in a["error"] for a in skipped)
    assert all_users(platform) == []


def test_quarantine_after_consecutive_failures_is_visible(okta: Okta, tmp_path: Path, scim_url: str) -> None:
    config_file = write_local_config(
        tmp_path,
        okta.org_url,
        okta.app_id,
        scim_url,
        "revoked-token",
        SCIM_TOKEN,
        "[thresholds]\nquarantine_after = 2\n",
    )
    reconcile("--config", config_file, "--dry-run")
    assert "quarantined" not in reconcile("--config", config_file, "history").stdout
    reconcile("--config", config_file, "--dry-run")
    shown = reconcile("--config", config_file, "history").stdout
    assert "quarantined" in shown and "2 consecutive failed runs" in shown
