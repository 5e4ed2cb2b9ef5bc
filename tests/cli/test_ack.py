"""``reconcile ack``: a reviewed finding, acknowledged as it is, no longer makes a dry-run exit 2; it is still
shown, marked, and counts again once it changes or is revoked. Against the Okta emulator and scim2-server."""

from __future__ import annotations

import getpass
from pathlib import Path

import httpx

from reconciler.cli.exits import EXIT_DRIFT, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from tests.conftest import Okta
from tests.support.cli_runner import Result, reconcile

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def _platform_user(platform: httpx.Client, user_name: str, external_id: str | None = None) -> str:
    body = {"schemas": [USER_SCHEMA], "userName": user_name, "active": True}
    if external_id is not None:
        body["externalId"] = external_id
    response = platform.post("/Users", json=body)
    response.raise_for_status()
    return response.json()["id"]


def _dry_run(config_file: Path, *args: str) -> Result:
    return reconcile("--config", config_file, "--dry-run", *args)


def _finding(result: Result, kind: str) -> dict:
    [finding] = [a for a in result.json()["actions"] if a["kind"] == kind]
    return finding


def _a_conflict(okta: Okta, platform: httpx.Client) -> str:
    """An Okta user two platform users claim (both carry its id as externalId): a conflict. Returns its id."""
    [person] = okta.emulator.add_assigned_users(okta.app_id, 1)
    _platform_user(platform, "copy-one@example.com", person.id)
    _platform_user(platform, "copy-two@example.com", person.id)
    return person.id


def test_an_acknowledged_conflict_no_longer_makes_a_dry_run_exit_2(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    okta_id = _a_conflict(okta, platform)
    before = _dry_run(config_file, "--output", "json")
    assert before.code == EXIT_DRIFT, before.stderr
    assert _finding(before, "conflict")["acknowledged"] is None

    acked = reconcile(
        "--config", config_file, "ack", "conflict", okta_id, "--reason", "HR merges the copies", "--by", "ann"
    )
    assert acked.code == EXIT_OK, acked.stderr
    assert "acknowledged #1" in acked.stdout

    after = _dry_run(config_file, "--output", "json")
    assert after.code == EXIT_OK, "an acknowledged conflict alone is no drift"
    assert after.json()["status"] == "succeeded"
    mark = _finding(after, "conflict")["acknowledged"]
    assert (mark["id"], mark["by"], mark["reason"]) == (1, "ann", "HR merges the copies")
    text = _dry_run(config_file)
    assert text.code == EXIT_OK
    assert "CONFLICT (1)" in text.stdout, "still shown"
    assert "acknowledged #1 by ann: HR merges the copies" in text.stdout

    listed = reconcile("--config", config_file, "ack", "list", "--output", "json").json()
    assert [(a["id"], a["kind"], a["okta_user_id"], a["by"]) for a in listed] == [(1, "conflict", okta_id, "ann")]


def test_a_conflict_that_changes_is_shown_again(okta: Okta, config_file: Path, platform: httpx.Client) -> None:
    okta_id = _a_conflict(okta, platform)
    assert _dry_run(config_file).code == EXIT_DRIFT
    assert reconcile("--config", config_file, "ack", "conflict", okta_id, "--reason", "known").code == EXIT_OK
    assert _dry_run(config_file).code == EXIT_OK

    _platform_user(platform, "copy-three@example.com", okta_id)  # a third user in the conflict

    changed = _dry_run(config_file, "--output", "json")
    assert changed.code == EXIT_DRIFT, "a changed finding is not the one acknowledged"
    assert _finding(changed, "conflict")["acknowledged"] is None


def test_a_revoked_acknowledgement_counts_again_and_stays_on_record(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    okta_id = _a_conflict(okta, platform)
    _dry_run(config_file)
    reconcile("--config", config_file, "ack", "conflict", okta_id, "--reason", "known")
    assert _dry_run(config_file).code == EXIT_OK

    revoked = reconcile("--config", config_file, "ack", "revoke", "1", "--by", "bob")
    assert revoked.code == EXIT_OK, revoked.stderr
    assert _dry_run(config_file).code == EXIT_DRIFT
    assert reconcile("--config", config_file, "ack", "list", "--output", "json").json() == []
    [kept] = reconcile("--config", config_file, "ack", "list", "--all", "--output", "json").json()
    assert kept["by"] == getpass.getuser() and kept["revoked_by"] == "bob" and kept["revoked_at"]
    again = reconcile("--config", config_file, "ack", "revoke", "1")
    assert again.code == EXIT_FAILURE and "no acknowledgement #1 in force" in again.stderr


def test_an_unmanaged_user_can_be_acknowledged_by_user_name(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    _platform_user(platform, "svc-backup@example.com")
    assert _finding(_dry_run(config_file, "--output", "json"), "unmanaged")["acknowledged"] is None
    acked = reconcile(
        "--config", config_file, "ack", "unmanaged", "SVC-BACKUP@example.com", "--reason", "backup service account"
    )
    assert acked.code == EXIT_OK, acked.stderr
    mark = _finding(_dry_run(config_file, "--output", "json"), "unmanaged")["acknowledged"]
    assert mark["reason"] == "backup service account" and mark["user_name"] == "svc-backup@example.com"


def test_ack_refuses_what_it_cannot_record(okta: Okta, config_file: Path, platform: httpx.Client) -> None:
    no_store = reconcile("--config", config_file, "ack", "unmanaged", "x", "--reason", "r")
    assert no_store.code == EXIT_FAILURE and "no run has happened" in no_store.stderr
    _platform_user(platform, "svc@example.com")
    _dry_run(config_file)
    no_reason = reconcile("--config", config_file, "ack", "unmanaged", "svc@example.com")
    assert no_reason.code == EXIT_USAGE and "--reason" in no_reason.stderr
    unknown = reconcile("--config", config_file, "ack", "conflict", "svc@example.com", "--reason", "r")
    assert unknown.code == EXIT_FAILURE and "no conflict for 'svc@example.com' in run 1" in unknown.stderr
    assert reconcile("--config", config_file, "ack", "list", "--output", "json").json() == []
