"""Saved plans end to end: ``--dry-run --save-plan``, then ``apply``, against the emulator and scim2-server."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import httpx
import pytest

from reconciler.cli.apply import terminal_confirmation
from reconciler.config import fingerprint, load_config
from reconciler.models.records import Action, ActionKind, PlatformUser
from reconciler.run.saved.document import LiveState
from reconciler.scim.groups import GROUP_URN
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users, provision
from tests.support.cli_runner import Result, reconcile


def _drifted_org(okta: Okta, platform: httpx.Client) -> dict[str, str]:
    """Six provisioned users, then drift: two never pushed, one edited by hand, one unassigned.

    Returns the planned write per role: okta id or SCIM id by ``create``, ``create2``, ``update``, ``deactivate``.
    """
    user_ids = [u.id for u in okta.emulator.add_assigned_users(okta.app_id, 6)]
    scim_ids = provision(okta, platform, user_ids)
    new = okta.emulator.add_assigned_users(okta.app_id, 2, domain="new.example.com")
    edited, leaver = scim_ids[user_ids[0]], user_ids[1]
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
    operations = [{"op": "replace", "path": "displayName", "value": "EDITED BY HAND"}]
    platform.patch(f"/Users/{edited}", json=patch | {"Operations": operations}).raise_for_status()
    okta.emulator.unassign_user(okta.app_id, leaver)
    return {"create": new[0].id, "create2": new[1].id, "update": edited, "deactivate": scim_ids[leaver]}


def _save(config_file: Path, plan_file: Path) -> Result:
    return reconcile("--config", config_file, "--dry-run", "--save-plan", plan_file)


def _apply(config_file: Path, plan_file: Path, *args: str) -> Result:
    return reconcile("--config", config_file, "apply", plan_file, *args)


def _latest_run(config_file: Path) -> dict:
    run_id = reconcile("--config", config_file, "history", "--output", "json").json()[0]["run_id"]
    return reconcile("--config", config_file, "show", str(run_id), "--output", "json").json()


def _by_user_name(platform: httpx.Client) -> dict[str, dict]:
    return {u["userName"].casefold(): u for u in all_users(platform)}


def test_save_then_apply_brings_the_platform_in_line(okta: Okta, config_file: Path, platform: httpx.Client) -> None:
    planned = _drifted_org(okta, platform)
    plan_file = config_file.parent / "plan.json"
    saved = _save(config_file, plan_file)
    assert saved.code == 2, saved.stderr
    assert "Plan saved to" in saved.stdout and "apply" in saved.stdout
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    text = plan_file.read_text()
    assert OKTA_TOKEN not in text and SCIM_TOKEN not in text
    document = json.loads(text)
    assert document["fingerprint"] == fingerprint(load_config(config_file))
    assert document["target"]["okta_app_id"] == okta.app_id
    assert [a["kind"] for a in document["actions"] if a["kind"] != "unmanaged"] == [
        "create",
        "create",
        "update",
        "deactivate",
    ]
    assert all(len(a["subject_digest"]) == 64 for a in document["actions"])
    assert len(all_users(platform)) == 6, "a dry-run writes nothing"

    applied = _apply(config_file, plan_file)
    assert applied.code == 0, applied.stdout + applied.stderr
    assert "Applied 4, failed 0, stale 0" in applied.stdout
    users = {u["id"]: u for u in all_users(platform)}
    assert users[planned["update"]]["displayName"] != "EDITED BY HAND"
    assert users[planned["deactivate"]]["active"] is False
    linked = {u.get("externalId") for u in users.values()}
    assert {planned["create"], planned["create2"]} <= linked
    assert reconcile("--config", config_file, "--dry-run").code == 0, "nothing left to do"

    history = reconcile("--config", config_file, "history", "--output", "json").json()
    (run_id,) = [r["run_id"] for r in history if r["mode"] == "apply-plan"]
    run = reconcile("--config", config_file, "show", str(run_id), "--output", "json").json()
    assert run["mode"] == "apply-plan" and run["status"] == "succeeded" and run["applied"] == 4
    assert sorted(a["status"] for a in run["actions"]) == ["succeeded"] * 4


def test_apply_skips_exactly_the_actions_whose_subject_changed(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    planned = _drifted_org(okta, platform)
    plan_file = config_file.parent / "plan.json"
    assert _save(config_file, plan_file).code == 2
    # meanwhile: someone edits the same user on the platform again, and Okta changes a new user's profile
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
    operations = [{"op": "replace", "path": "displayName", "value": "EDITED AGAIN"}]
    platform.patch(f"/Users/{planned['update']}", json=patch | {"Operations": operations}).raise_for_status()
    okta.emulator.set_app_user(okta.app_id, planned["create"], profile={"displayName": "Changed In Okta"})

    applied = _apply(config_file, plan_file, "--output", "json")
    assert applied.code == 1
    document = applied.json()
    assert document["status"] == "partial" and document["applied"] == 2 and document["failed"] == 0
    stale = {(a["kind"], a["scim_id"] or a["okta_user_id"]) for a in document["stale"]}
    assert stale == {("create", planned["create"]), ("update", planned["update"])}
    assert all("changed since the plan was made" in a["why"] for a in document["stale"])

    users = {u["id"]: u for u in all_users(platform)}
    assert users[planned["update"]]["displayName"] == "EDITED AGAIN", "a stale action is never applied"
    assert users[planned["deactivate"]]["active"] is False
    linked = {u.get("externalId") for u in users.values()}
    assert planned["create2"] in linked and planned["create"] not in linked

    run = _latest_run(config_file)
    skipped = {r["user_name"]: r["error"] for r in run["actions"] if r["status"] == "skipped"}
    assert len(skipped) == 2 and all(why.startswith("stale: ") for why in skipped.values())
    assert run["mode"] == "apply-plan" and run["status"] == "partial" and "make a new plan" in run["error"]

    text = _apply(config_file, plan_file)
    assert "make a new plan" in text.stdout


@pytest.mark.parametrize("other", ["app", "endpoint"])
def test_a_plan_for_another_app_or_endpoint_is_refused(
    other: str, okta: Okta, config_file: Path, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    plan_file = tmp_path / "plan.json"
    assert _save(config_file, plan_file).code == 2
    app_id = okta.emulator.create_app(label="Other SCIM app", name="other").id if other == "app" else okta.app_id
    other_scim = scim_url.replace("/v2", "-other/v2") if other == "endpoint" else scim_url
    other_config = write_local_config(tmp_path / "other", okta.org_url, app_id, other_scim, OKTA_TOKEN, SCIM_TOKEN)

    refused = _apply(other_config, plan_file, "--yes")
    assert refused.code == 1
    assert f"made for Okta app {okta.app_id}" in refused.stderr
    assert f"this config is Okta app {app_id}" in refused.stderr and other_scim in refused.stderr
    assert all_users(platform) == []
    assert reconcile("--config", other_config, "history", "--output", "json").json() == []


def test_a_tampered_plan_is_refused_and_nothing_is_written(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    plan_file = config_file.parent / "plan.json"
    assert _save(config_file, plan_file).code == 2
    document = json.loads(plan_file.read_text())
    document["actions"][0]["changes"]["displayName"]["after"] = "Mallory"
    plan_file.write_text(json.dumps(document))

    refused = _apply(config_file, plan_file, "--yes")
    assert refused.code == 1
    assert "signature does not match" in refused.stderr and "make a new plan" in refused.stderr
    assert all_users(platform) == []
    assert reconcile("--config", config_file, "history", "--output", "json").json()[0]["mode"] == "dry-run"


def test_a_plan_signed_with_other_credentials_is_refused(okta: Okta, config_file: Path, tmp_path: Path) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 1)
    plan_file = tmp_path / "plan.json"
    assert _save(config_file, plan_file).code == 2
    config = load_config(config_file)
    rotated = write_local_config(
        tmp_path / "rotated", okta.org_url, okta.app_id, config.scim.base_url, OKTA_TOKEN, "a-rotated-scim-token"
    )
    refused = _apply(rotated, plan_file)
    assert refused.code == 1 and "signed with other credentials" in refused.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "okta-reconciler saved plan", "version": 1, "actions": [', "invalid JSON"),
        ("[]", "expected a JSON object"),
        ('{"hello": "world"}', "not a saved plan of okta-reconciler"),
        ('{"format": "okta-reconciler saved plan", "version": 99}', "version 99"),
    ],
)
def test_an_invalid_plan_file_gives_a_clear_error(
    content: str, message: str, okta: Okta, config_file: Path, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(content)
    refused = _apply(config_file, plan_file, "--yes")
    assert refused.code == 1 and message in refused.stderr
    assert str(plan_file) in refused.stderr


def test_a_truncated_saved_plan_is_refused(okta: Okta, config_file: Path, tmp_path: Path) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 1)
    plan_file = tmp_path / "plan.json"
    assert _save(config_file, plan_file).code == 2
    plan_file.write_text(plan_file.read_text()[:200])
    refused = _apply(config_file, plan_file)
    assert refused.code == 1 and "invalid JSON" in refused.stderr and "cut short" in refused.stderr
    assert _apply(config_file, tmp_path / "missing.json").code == 1


def _config_with_max_create_1(okta: Okta, scim_url: str, tmp_path: Path) -> Path:
    """A config whose gate blocks a plan of more than one create."""
    return write_local_config(
        tmp_path / "state",
        okta.org_url,
        okta.app_id,
        scim_url,
        OKTA_TOKEN,
        SCIM_TOKEN,
        "[thresholds]\nmax_create = 1\n",
    )


def test_a_plan_above_the_thresholds_needs_yes_off_a_terminal(
    okta: Okta, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    config_file = _config_with_max_create_1(okta, scim_url, tmp_path)
    okta.emulator.add_assigned_users(okta.app_id, 3)
    plan_file = tmp_path / "plan.json"
    saved = _save(config_file, plan_file)
    assert saved.code == 3, "the dry-run's exit code is kept"
    assert json.loads(plan_file.read_text())["gate"]["blocked"] is True

    refused = _apply(config_file, plan_file)
    assert refused.code == 3, "blocked by the safety gate: exit 3, as the exit-code table says"
    assert "this plan exceeds thresholds: 3 create planned, above max_create = 1" in refused.stderr
    assert "it was reviewed" in refused.stderr and "pass --yes" in refused.stderr
    assert all_users(platform) == []
    run = _latest_run(config_file)
    assert run["mode"] == "apply-plan" and run["status"] == "blocked"
    assert {a["status"] for a in run["actions"]} == {"skipped"}

    confirmed = _apply(config_file, plan_file, "--yes")
    assert confirmed.code == 0, confirmed.stdout + confirmed.stderr
    assert "--yes given" in confirmed.stderr
    assert len(all_users(platform)) == 3


def test_a_plan_above_the_thresholds_with_no_write_still_current_asks_nothing(
    okta: Okta, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    config_file = _config_with_max_create_1(okta, scim_url, tmp_path)
    users = okta.emulator.add_assigned_users(okta.app_id, 3)
    plan_file = tmp_path / "plan.json"
    assert _save(config_file, plan_file).code == 3
    for user in users:
        okta.emulator.unassign_user(okta.app_id, user.id)

    applied = _apply(config_file, plan_file)
    assert "exceeds thresholds" not in applied.stderr and "pass --yes" not in applied.stderr, applied.stderr
    assert "stale 3 (of 3 write(s))" in applied.stdout
    assert applied.code == 1, "stale writes: not wholly applied"
    assert _latest_run(config_file)["status"] == "partial"
    assert all_users(platform) == []


def test_applying_the_same_plan_twice_makes_no_duplicates(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    _drifted_org(okta, platform)
    plan_file = config_file.parent / "plan.json"
    assert _save(config_file, plan_file).code == 2
    assert _apply(config_file, plan_file).code == 0
    after_first = all_users(platform)

    again = _apply(config_file, plan_file, "--output", "json")
    assert again.code == 1
    document = again.json()
    assert document["applied"] == 0 and document["failed"] == 0 and len(document["stale"]) == 4
    after_second = all_users(platform)
    assert len(after_second) == len(after_first) == 8
    names = [u["userName"].casefold() for u in after_second]
    assert len(names) == len(set(names))


def test_save_plan_is_only_valid_with_dry_run(config_file: Path, tmp_path: Path) -> None:
    assert reconcile("--config", config_file, "--save-plan", tmp_path / "plan.json").code == 64
    assert reconcile("--config", config_file, "--dry-run", "apply", tmp_path / "plan.json").code == 64
    assert not (tmp_path / "plan.json").exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "expected"), [("y\n", True), ("yes\n", True), ("\n", False), ("n\n", False)])
def test_on_a_terminal_the_question_is_asked(answer: str, expected: bool) -> None:
    shown = io.StringIO()
    confirm = terminal_confirmation(yes=False, stdin=_Terminal(answer), stderr=shown)
    assert confirm("this plan exceeds thresholds: 3 create planned") is expected
    assert "Apply it? [y/N]" in shown.getvalue()


def test_off_a_terminal_only_yes_confirms() -> None:
    shown = io.StringIO()
    assert terminal_confirmation(yes=False, stdin=io.StringIO("y\n"), stderr=shown)("too many") is False
    assert "pass --yes" in shown.getvalue()
    assert terminal_confirmation(yes=True, stdin=io.StringIO(""), stderr=io.StringIO())("too many") is True


def test_the_subject_digest_ignores_meta_and_sees_attribute_changes() -> None:
    def user(display_name: str, last_modified: str) -> PlatformUser:
        resource = {
            "id": "u1",
            "userName": "a@example.com",
            "displayName": display_name,
            "meta": {"lastModified": last_modified},
        }
        return PlatformUser("u1", "a@example.com", None, True, resource)

    action = Action(ActionKind.UPDATE, "a@example.com", None, "u1", "edited")
    base = LiveState([], [user("A", "2025-01-01")]).subject_digest(action)
    assert LiveState([], [user("A", "2025-02-02")]).subject_digest(action) == base
    assert LiveState([], [user("B", "2025-01-01")]).subject_digest(action) != base
    assert LiveState([], []).subject_digest(action) != base


def test_a_saved_plan_applies_its_group_actions_after_its_users_and_skips_a_group_changed_since(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    user_ids = [u.id for u in okta.emulator.add_assigned_users(okta.app_id, 4)]
    scim_ids = provision(okta, platform, user_ids)
    newcomer = okta.emulator.add_assigned_users(okta.app_id, 1, domain="new.example.com")[0].id
    engineering, ops = okta.emulator.create_group("Engineering"), okta.emulator.create_group("Ops")
    for group, members in ((engineering, [*user_ids[:2], newcomer]), (ops, user_ids[2:])):
        for member in members:
            okta.emulator.add_group_member(group.id, member)
        okta.emulator.assign_group(okta.app_id, group.id)
    ops_body = {"schemas": [GROUP_URN], "displayName": "Ops", "externalId": ops.id}
    ops_scim = platform.post("/Groups", json=ops_body | {"members": [{"value": scim_ids[user_ids[2]]}]}).json()["id"]
    with config_file.open("a") as file:
        file.write("[groups]\npush_assigned = true\n")
    plan_file = config_file.parent / "plan.json"

    assert _save(config_file, plan_file).code == 2
    document = json.loads(plan_file.read_text())
    assert [(a["kind"], a["name"]) for a in document["groups"]["actions"]] == [
        ("create_group", "Engineering"),
        ("add_members", "Ops"),
    ]
    assert all(len(a["subject_digest"]) == 64 for a in document["groups"]["actions"])
    # meanwhile someone changes Ops by hand: its planned addition is stale
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
    operation = {"op": "add", "path": "members", "value": [{"value": scim_ids[user_ids[0]]}]}
    platform.patch(f"/Groups/{ops_scim}", json=patch | {"Operations": [operation]}).raise_for_status()

    applied = _apply(config_file, plan_file, "--output", "json").json()
    assert applied["status"] == "partial" and applied["failed"] == 0
    assert [(a["kind"], a["name"]) for a in applied["stale_groups"]] == [("add_members", "Ops")]
    groups = {g["displayName"]: g for g in platform.get("/Groups").json()["Resources"]}
    links = {u["externalId"]: u["id"] for u in all_users(platform) if u.get("externalId")}
    assert {m["value"] for m in groups["Engineering"]["members"]} == {links[m] for m in (*user_ids[:2], newcomer)}
    assert {m["value"] for m in groups["Ops"]["members"]} == {scim_ids[user_ids[2]], scim_ids[user_ids[0]]}


def _one_pushed_group(okta: Okta, platform: httpx.Client) -> None:
    """Two users on the platform, and an Okta group of one of them, assigned to the app and not yet pushed."""
    user_ids = [u.id for u in okta.emulator.add_assigned_users(okta.app_id, 2)]
    provision(okta, platform, user_ids)
    group = okta.emulator.create_group("Engineering")
    okta.emulator.add_group_member(group.id, user_ids[0])
    okta.emulator.assign_group(okta.app_id, group.id)


def test_a_plan_with_group_actions_is_refused_by_a_config_that_pushes_no_group(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    _one_pushed_group(okta, platform)
    plain = config_file.read_text()
    config_file.write_text(plain + "[groups]\npush_assigned = true\n")
    plan_file = config_file.parent / "plan.json"
    assert _save(config_file, plan_file).code == 2
    config_file.write_text(plain)
    applied = _apply(config_file, plan_file)
    assert applied.code == 1
    assert "the saved plan is stale" in applied.stderr
    assert "groups.push_assigned: true in the plan, false now" in applied.stderr
    assert platform.get("/Groups").json().get("Resources", []) == []


def test_a_confirmed_plan_above_a_group_limit_sends_its_group_writes_once(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    _one_pushed_group(okta, platform)
    with config_file.open("a") as file:
        file.write("[groups]\npush_assigned = true\n[thresholds]\nmax_create_group = 0\n")
    plan_file = config_file.parent / "plan.json"
    assert _save(config_file, plan_file).code == 3, "blocked: above max_create_group"

    applied = _apply(config_file, plan_file, "--yes", "--output", "json").json()
    assert applied["status"] == "succeeded" and applied["applied"] == 1
    assert [g["displayName"] for g in platform.get("/Groups").json()["Resources"]] == ["Engineering"]
    run = _latest_run(config_file)
    assert [(a["kind"], a["status"]) for a in run["group_actions"]] == [("create_group", "succeeded")]
