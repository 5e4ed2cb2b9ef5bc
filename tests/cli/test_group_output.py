"""Group membership in the command's output: members by userName, adds and removes alike; the true reason a
member is left out, with the member named; ``show`` lists the members."""

from __future__ import annotations

from pathlib import Path

import httpx

from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users
from tests.support.cli_runner import reconcile


def _platform_group(platform: httpx.Client, name: str) -> dict:
    groups = platform.get("/Groups", params={"startIndex": 1, "count": 100}).raise_for_status().json()["Resources"]
    return next(group for group in groups if group["displayName"] == name)


def test_members_are_named_by_user_name_with_both_ids_and_the_left_out_say_why(
    okta: Okta, scim_url: str, platform: httpx.Client, tmp_path: Path
) -> None:
    emulator = okta.emulator
    people = {
        name: emulator.create_user(login=f"{name}@example.com", first_name=name.title(), last_name="Person")
        for name in ("alice", "bob", "carol", "dave")
    }
    for name in ("alice", "bob", "dave"):
        emulator.assign_user(okta.app_id, people[name].id)
    group = emulator.create_group("Engineering")
    for name in ("alice", "bob", "carol"):  # carol is in the group, not assigned to the app
        emulator.add_group_member(group.id, people[name].id)
    extra = f'[thresholds]\nmax_deactivate_ratio = 1.0\n\n[groups]\npush = ["{group.id}"]\n'
    config = write_local_config(tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, extra)
    assert reconcile("--config", config).code == 0
    scim_of = {user["userName"]: user["id"] for user in all_users(platform)}

    pushed = _platform_group(platform, "Engineering")
    dave, alice = scim_of["dave@example.com"], scim_of["alice@example.com"]
    operations = [
        {"op": "add", "path": "members", "value": [{"value": dave}]},  # by hand: dave is no Okta member
        {"op": "remove", "path": f'members[value eq "{alice}"]'},  # by hand: alice is
    ]
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}
    platform.patch(f"/Groups/{pushed['id']}", json=body).raise_for_status()
    emulator.set_user_status(people["bob"].id, "DEPROVISIONED")  # deactivated in Okta

    text = reconcile("--config", config, "--dry-run")
    assert text.code == 2, text.stderr
    lines = text.stdout.splitlines()
    add_line = lines[lines.index(next(li for li in lines if li.startswith("ADD_MEMBERS"))) + 2]
    remove_at = lines.index(next(li for li in lines if li.startswith("REMOVE_MEMBERS")))
    remove_why, remove_line = lines[remove_at + 1], lines[remove_at + 2]
    assert "bob@example.com: Okta user is DEPROVISIONED" in remove_why, "bob is in the Okta group: the true reason"
    assert "alice@example.com" in add_line and people["alice"].id not in add_line
    assert "dave@example.com" in remove_line and "bob@example.com" in remove_line and dave not in remove_line
    bob_line = next(li for li in lines if li.strip().startswith("· bob@example.com"))
    assert "DEPROVISIONED" in bob_line and "not assigned" not in bob_line, "the true reason"
    carol_line = next(li for li in lines if people["carol"].id in li)
    assert "not assigned to the app" in carol_line

    document = reconcile("--config", config, "--dry-run", "--output", "json").json()["groups"]
    by_kind = {action["kind"]: action for action in document["actions"]}
    assert by_kind["add_members"]["members"] == [
        {"user_name": "alice@example.com", "okta_user_id": people["alice"].id, "scim_id": alice}
    ]
    removed = {member["user_name"]: member for member in by_kind["remove_members"]["members"]}
    assert removed["dave@example.com"] == {
        "user_name": "dave@example.com",
        "okta_user_id": people["dave"].id,
        "scim_id": dave,
    }
    assert {(e["okta_user_id"], e["why"]) for e in document["left_out"]} >= {
        (people["carol"].id, "not assigned to the app")
    }

    applied = reconcile("--config", config, "--output", "json")
    assert applied.code == 0, applied.stderr
    shown = reconcile("--config", config, "show", str(applied.json()["run_id"]))
    assert "alice@example.com" in shown.stdout and "dave@example.com" in shown.stdout, "show lists the members"
