"""The ``reconcile`` command: output, exit codes, history and show, bad configuration."""

from __future__ import annotations

from pathlib import Path

import httpx

from reconciler.models.records import SUMMARY_KEYS
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users
from tests.support.cli_runner import reconcile, reconcile_process


def _assign(okta: Okta, count: int) -> list[str]:
    return [user.id for user in okta.emulator.add_assigned_users(okta.app_id, count)]


def test_dry_run_json_reports_drift_with_exit_2_and_writes_nothing(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    okta_ids = _assign(okta, 3)
    result = reconcile("--config", config_file, "--dry-run", "--output", "json")
    assert result.code == 2, result.stderr
    document = result.json()
    assert set(document["summary"]) == set(SUMMARY_KEYS)
    assert document["summary"]["create"] == 3
    assert isinstance(document["run_id"], int)
    action = document["actions"][0]
    assert set(action) == {"kind", "user_name", "okta_user_id", "scim_id", "reason", "changes"}
    assert action["kind"] == "create" and action["okta_user_id"] in okta_ids
    assert action["changes"]["active"] == {"before": None, "after": True}
    assert all_users(platform) == []


def test_apply_then_dry_run_is_in_sync_with_exit_0(okta: Okta, config_file: Path, platform: httpx.Client) -> None:
    _assign(okta, 4)
    applied = reconcile_process("--config", config_file)  # python -m reconciler, as a user runs it
    assert applied.code == 0, applied.stderr
    assert "Applied 4 action(s), 0 failed" in applied.stdout
    assert len(all_users(platform)) == 4
    again = reconcile("--config", config_file, "--dry-run", "--output", "json")
    assert again.code == 0, again.stderr
    assert again.json()["summary"]["in_sync"] == 4 and again.json()["actions"] == []


def test_text_plan_shows_attribute_before_and_after(okta: Okta, config_file: Path) -> None:
    (user_id,) = _assign(okta, 1)
    assert reconcile("--config", config_file).code == 0
    okta.emulator.set_app_user(okta.app_id, user_id, profile={"displayName": "Renamed Person"})
    result = reconcile("--config", config_file, "--dry-run")
    assert result.code == 2
    assert "UPDATE (1)" in result.stdout
    assert "displayName:" in result.stdout and '→ "Renamed Person"' in result.stdout


def test_history_and_show(okta: Okta, config_file: Path) -> None:
    _assign(okta, 2)
    reconcile("--config", config_file, "--dry-run")
    run_id = reconcile("--config", config_file, "--output", "json").json()["run_id"]
    history = reconcile("--config", config_file, "history", "--output", "json")
    assert history.code == 0
    runs = history.json()
    assert [r["mode"] for r in runs[:2]] == ["apply", "dry-run"]
    assert runs[0]["status"] == "succeeded" and runs[1]["status"] == "drift"
    assert "Recent runs" in reconcile("history", "--config", config_file).stdout
    shown = reconcile("--config", config_file, "show", str(run_id), "--output", "json").json()
    assert [a["status"] for a in shown["actions"]] == ["succeeded", "succeeded"]
    assert reconcile("--config", config_file, "show", "999").code == 1


def test_config_from_environment_variable(okta: Okta, config_file: Path) -> None:
    result = reconcile("--dry-run", env={"RECONCILER_CONFIG": str(config_file)})
    assert result.code == 0, result.stderr


def test_bad_config_exits_78_with_one_line_per_problem_and_no_network(okta: Okta, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'[okta]\norg_url = "{okta.org_url}"\nauth = "api_token"\ntoken_env = "NOT_SET_ANYWHERE"\n'
        '[scim]\nbase_url = "http://127.0.0.1:9/v2"\ntoken_env = "NOT_SET_EITHER"\npagesize = 10\n'
    )
    result = reconcile("--config", bad, "--dry-run")
    assert result.code == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 4
    joined = "\n".join(lines)
    for key in ("okta.app_id", "okta.token_env", "scim.token_env", "scim.pagesize"):
        assert key in joined
    assert "page_size" in joined, "an unknown key suggests the right one"
    assert okta.emulator.request_count() == 0


def test_no_config_at_all_says_how_to_give_one() -> None:
    result = reconcile("--dry-run")
    assert result.code == 78
    assert "--config" in result.stderr and "RECONCILER_CONFIG" in result.stderr


def test_usage_error_exits_64() -> None:
    assert reconcile_process("--no-such-option").code == 64


def test_tokens_do_not_appear_in_any_output(okta: Okta, config_file: Path) -> None:
    _assign(okta, 2)
    outputs = [
        reconcile("--config", config_file, "--dry-run", "--log-level", "DEBUG"),
        reconcile("--config", config_file, "--output", "json", "--log-level", "DEBUG"),
        reconcile("--config", config_file, "history", "--log-level", "DEBUG"),
    ]
    for result in outputs:
        for token in (OKTA_TOKEN, SCIM_TOKEN):
            assert token not in result.stdout and token not in result.stderr
    store_bytes = (config_file.parent / "reconciler.db").read_bytes()
    assert OKTA_TOKEN.encode() not in store_bytes and SCIM_TOKEN.encode() not in store_bytes


def test_private_key_jwt_auth_from_a_config_file(okta: Okta, scim_url: str, tmp_path: Path) -> None:
    """OAuth 2.0 service app: the emulator verifies the signed client assertion."""
    _assign(okta, 2)
    service_app = okta.emulator.new_service_app(["okta.apps.read", "okta.users.read", "okta.groups.read"])
    key_file = tmp_path / "okta-private-key.pem"
    key_file.write_text(service_app.private_key_pem)
    key_file.chmod(0o600)
    (tmp_path / "scim.token").write_text(SCIM_TOKEN)
    (tmp_path / "scim.token").chmod(0o600)
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[okta]\norg_url = "{okta.org_url}"\napp_id = "{okta.app_id}"\nauth = "private_key"\n'
        f'client_id = "{service_app.client_id}"\nprivate_key_file = "okta-private-key.pem"\n'
        f'[scim]\nbase_url = "{scim_url}"\ntoken_file = "scim.token"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "reconciler.db"}"\n'
    )
    result = reconcile("--config", config_file, "--dry-run", "--output", "json", "--log-level", "DEBUG")
    assert result.code == 2, result.stderr
    assert result.json()["summary"]["create"] == 2
    assert okta.emulator.request_count("/oauth2/v1/token", "POST") == 1
    assert "PRIVATE KEY" not in result.stderr


def test_history_needs_no_secret(okta: Okta, config_file: Path) -> None:
    """Under systemd the tokens exist only for the service; history and show still work."""
    _assign(okta, 1)
    assert reconcile("--config", config_file, "--dry-run").code == 2
    for secret_file in ("okta.token", "scim.token"):
        (config_file.parent / secret_file).unlink()
    assert reconcile("--config", config_file, "--dry-run").code == 78
    history = reconcile("--config", config_file, "history", "--output", "json")
    assert history.code == 0 and history.json()[0]["status"] == "drift"
    assert reconcile("--config", config_file, "show", str(history.json()[0]["run_id"])).code == 0


def test_a_second_run_of_the_same_target_exits_75_with_a_clear_message(okta: Okta, config_file: Path) -> None:
    from reconciler.config import fingerprint, load_config
    from reconciler.store import Store

    _assign(okta, 1)
    config = load_config(config_file)
    with Store(config.store.url) as store, store.run_lock(fingerprint(config)):
        busy = reconcile("--config", config_file, "--dry-run")
    assert busy.code == 75
    assert "another reconcile run of this target is in progress" in busy.stderr
    assert okta.emulator.request_count("/api/v1/apps/*") == 0, "nothing was done"
    assert reconcile("--config", config_file, "--dry-run").code == 2, "the lock is free again"


def test_db_status_and_upgrade(config_file: Path) -> None:
    status = reconcile("--config", config_file, "db", "status")
    assert status.code == 0 and status.stdout.strip()
    upgraded = reconcile("--config", config_file, "db", "upgrade")
    assert upgraded.code == 0 and "schema revision" in upgraded.stdout
    assert reconcile("--config", config_file, "db", "status").code == 0
