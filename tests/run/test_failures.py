"""Bad input on either side: a clear error, exit 1, the failed run recorded, zero writes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from reconciler.config import load_config
from reconciler.models.runs import RunStatus
from reconciler.run.reconcile import reconcile as reconcile_once
from reconciler.store import Store
from reconciler.testing.scenario import write_local_config
from reconciler.testing.scim_server import free_loopback_port
from tests.conftest import FAST_RETRIES, OKTA_RETRIES, OKTA_TOKEN, SCIM_TOKEN, Okta, all_users, provision
from tests.support.cli_runner import Result, reconcile
from tests.support.scim_fault_server import FaultServer, Reply


@pytest.fixture(autouse=True)
def fast_okta_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Okta pages are retried on 5xx as in production, without its half-second backoff."""
    monkeypatch.setattr(OKTA_RETRIES, FAST_RETRIES)


def _provision_some(okta: Okta, platform: httpx.Client, count: int, *, last: bool = False) -> list[str]:
    """Push ``count`` listed users to the platform as Okta would; returns their Okta ids."""
    listed = okta.emulator.listed_user_ids(okta.app_id)
    chosen = listed[-count:] if last else listed[:count]
    provision(okta, platform, chosen)
    return chosen


def _last_run(config_file: Path) -> dict:
    return reconcile("--config", config_file, "history", "--output", "json").json()[0]


def _assert_failed_without_writes(result: Result, config_file: Path, platform: httpx.Client, before: list) -> None:
    assert result.code == 1, (result.stdout, result.stderr)
    run = _last_run(config_file)
    assert run["status"] == "failed" and run["error"]
    assert run["summary"] is None, "a run that could not read both sides never plans"
    shown = reconcile("--config", config_file, "show", str(run["run_id"]), "--output", "json").json()
    assert shown["actions"] == []
    assert all_users(platform) == before


def test_unreachable_okta(okta: Okta, tmp_path: Path, scim_url: str, platform: httpx.Client) -> None:
    closed = f"http://127.0.0.1:{free_loopback_port()}"
    config_file = write_local_config(tmp_path, closed, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN)
    result = reconcile("--config", config_file, "--dry-run")
    _assert_failed_without_writes(result, config_file, platform, [])
    assert "cannot reach okta" in result.stderr.lower().replace("\n", " ")


def test_okta_refuses_the_token(okta: Okta, tmp_path: Path, scim_url: str, platform: httpx.Client) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 3)
    _provision_some(okta, platform, 3)
    before = all_users(platform)
    config_file = write_local_config(tmp_path, okta.org_url, okta.app_id, scim_url, "wrong-token-123", SCIM_TOKEN)
    result = reconcile("--config", config_file)
    _assert_failed_without_writes(result, config_file, platform, before)
    assert "401" in _last_run(config_file)["error"]


def test_scim_refuses_the_token(okta: Okta, tmp_path: Path, scim_url: str, platform: httpx.Client) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    config_file = write_local_config(tmp_path, okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, "wrong-scim-token")
    result = reconcile("--config", config_file)
    _assert_failed_without_writes(result, config_file, platform, [])
    error = _last_run(config_file)["error"]
    assert "401" in error and "scim.token" in error


def test_listing_that_fails_on_page_3_drives_no_deactivation(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 1001)  # 3 pages of at most 500
    on_page_3 = _provision_some(okta, platform, 1, last=True)
    before = all_users(platform)
    okta.emulator.inject_fault("/api/v1/apps/*/users", status=500, nth=3, times=None)  # retries fail too
    result = reconcile("--config", config_file)
    _assert_failed_without_writes(result, config_file, platform, before)
    assert all(u["active"] for u in all_users(platform)), f"{on_page_3} must stay active"
    assert "page 3" in _last_run(config_file)["error"]


async def test_malformed_scim_json(okta: Okta, tmp_path: Path) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    async with FaultServer() as server:
        server.script("GET", "/Users", Reply(200, '{"schemas": ["urn:ietf:params:scim:api:messages:2.0:List'))
        config = load_config(
            write_local_config(tmp_path, okta.org_url, okta.app_id, server.base_url, OKTA_TOKEN, SCIM_TOKEN)
        )
        with Store(config.store.url) as store:
            outcome = await reconcile_once(config, store, dry_run=False)
            assert outcome.status is RunStatus.FAILED
            assert outcome.error is not None and "JSON" in outcome.error
            assert store.actions_of(outcome.run_id) == []
        assert {r.method for r in server.requests} == {"GET"}


@pytest.mark.parametrize("status", [503])
def test_okta_answer_without_rate_limit_headers_is_a_clear_error(
    okta: Okta, config_file: Path, platform: httpx.Client, status: int
) -> None:
    """A 503 without Date/X-Rate-Limit headers (which the SDK's own retry tripped over) fails the run clearly."""
    okta.emulator.add_assigned_users(okta.app_id, 2)
    okta.emulator.inject_fault("/api/v1/apps/*/users", status=status, rate_limit_headers=False, times=None)
    result = reconcile("--config", config_file, "--dry-run")
    _assert_failed_without_writes(result, config_file, platform, [])
    assert str(status) in _last_run(config_file)["error"]


def test_a_failed_write_fails_the_run_but_not_the_other_actions(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    """One bad action (the platform refuses its locale) does not stop the rest; exit 1."""
    okta.emulator.add_assigned_users(okta.app_id, 3)
    bad = okta.emulator.add_assigned_users(okta.app_id, 1)[0]
    okta.emulator.set_app_user(okta.app_id, bad.id, profile={"locale": {"not": "a string"}})  # refused: 400
    result = reconcile("--config", config_file, "--output", "json")
    assert result.code == 1
    document = result.json()
    assert document["status"] == "partial" and document["applied"] == 3 and document["failed"] == 1
    assert len(all_users(platform)) == 3
    shown = reconcile("--config", config_file, "show", str(document["run_id"]), "--output", "json").json()
    assert sorted(a["status"] for a in shown["actions"]) == ["failed", "succeeded", "succeeded", "succeeded"]


def test_a_crash_inside_the_run_is_recorded_as_failed(
    okta: Okta, config_file: Path, platform: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (simulated: the planner raises) fails the run cleanly instead of leaving it 'running'."""

    def broken_plan(*args: object) -> None:
        raise ZeroDivisionError("simulated bug")

    okta.emulator.add_assigned_users(okta.app_id, 2)
    monkeypatch.setattr("reconciler.run.reconcile.plan", broken_plan)
    result = reconcile("--config", config_file)
    _assert_failed_without_writes(result, config_file, platform, [])
    assert "ZeroDivisionError: simulated bug" in _last_run(config_file)["error"]
