"""`reconcile check`: both connections tested, the platform's capabilities shown, nothing written.

Against the Okta emulator and real SCIM servers on loopback (scim2-server,
and scim2-server configured as a platform without PATCH or filtering).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.models.scim_path import ENTERPRISE_URN
from reconciler.testing.scenario import write_local_config
from reconciler.testing.scim_server import RunningScimServer, run_scim2_server
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users
from tests.scim.test_scim_target import PUT_ONLY_CONFIG
from tests.support.cli_runner import reconcile
from tests.support.django_peer_server import DjangoScimServer

ACME_URN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
MAPPING = f'''
[mapping]
"{ENTERPRISE_URN}:department" = "user.profile.department"
"{ACME_URN}:trainingTrack" = "user.profile.costCenter"
nickName = "profile.nickName"
'''


@pytest.fixture(scope="module")
def put_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningScimServer]:
    config = tmp_path_factory.mktemp("scim") / "service-provider-config.json"
    config.write_text(json.dumps(PUT_ONLY_CONFIG))
    with run_scim2_server(SCIM_TOKEN, ["--service-provider-config", str(config)]) as server:
        yield server


def _config(tmp_path: Path, okta: Okta, scim_url: str, extra: str = MAPPING, app_id: str | None = None) -> Path:
    return write_local_config(
        tmp_path / "state", okta.org_url, app_id or okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, extra
    )


def _assign_one(okta: Okta) -> None:
    user = okta.emulator.create_user(login="ada@example.com", first_name="Ada", last_name="Lovelace")
    okta.emulator.assign_user(okta.app_id, user.id)


def test_check_shows_both_sides_and_what_the_platform_supports(
    tmp_path: Path, okta: Okta, scim_url: str, platform: httpx.Client
) -> None:
    _assign_one(okta)
    platform.post("/Users", json={"userName": "someone@example.com"}).raise_for_status()
    config = _config(tmp_path, okta, scim_url)

    result = reconcile("check", "--config", config)

    assert result.code == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())  # rich wraps long lines
    assert "app 'SCIM 2.0 Test App (OAuth Bearer Token)'" in out and "ACTIVE" in out
    assert "provisioning: PUSH_NEW_USERS, PUSH_PROFILE_UPDATES, PUSH_USER_DEACTIVATION" in out
    assert "assignments: readable" in out and "(none yet)" not in out
    assert "✓ 1 users" in out
    assert "PATCH: supported" in out
    assert "filter: supported" in out
    assert "page size: 100 (scim.page_size 100; the server returns at most 1000)" in out
    assert "ETag: supported (writes carry If-Match" in out
    assert f"{ENTERPRISE_URN} (6 attributes)" in out
    assert f"mapping: {ACME_URN}:trainingTrack: the User resource type has no extension {ACME_URN}" in out
    assert "department" not in out.partition("mapping:")[2], "the enterprise department is announced"
    assert "Both connections work." in out
    assert not (tmp_path / "state" / "reconciler.db").exists(), "check keeps no store: there is no run"
    assert [u["userName"] for u in all_users(platform)] == ["someone@example.com"]


def test_check_as_json(tmp_path: Path, okta: Okta, scim_url: str) -> None:
    result = reconcile("check", "--config", _config(tmp_path, okta, scim_url), "--output", "json")

    assert result.code == 0, result.stderr
    document = result.json()
    assert document["ok"] is True
    assert document["okta"]["app"]["status"] == "ACTIVE" and document["okta"]["app"]["has_assignments"] is False
    assert document["scim"]["capabilities"] == {
        "patch_supported": True,
        "filter_supported": True,
        "max_results": 1000,
        "etag_supported": True,
    }
    assert document["scim"]["filter_works"] is True and document["scim"]["users"] == 0
    assert document["scim"]["user_extensions"] == [ENTERPRISE_URN]
    assert "department" in document["scim"]["user_attributes"][ENTERPRISE_URN.lower()]
    assert document["mapping_warnings"] == [
        f"{ACME_URN}:trainingTrack: the User resource type has no extension {ACME_URN} (it has: {ENTERPRISE_URN})"
    ]


def test_check_on_a_platform_without_patch_or_filter_says_how_runs_adapt(
    tmp_path: Path, okta: Okta, put_only_server: RunningScimServer
) -> None:
    result = reconcile("check", "--config", _config(tmp_path, okta, put_only_server.base_url, extra=""))

    assert result.code == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert "PATCH: not supported (updates PUT the whole user; attributes not mapped are sent back unchanged)" in out
    assert "filter: not supported (a lookup by userName scans the listing)" in out


def test_a_refused_scim_token_fails_the_check_and_the_okta_side_still_shows(
    tmp_path: Path, okta: Okta, scim_url: str
) -> None:
    config = _config(tmp_path, okta, scim_url)
    (tmp_path / "state" / "scim.token").write_text("not-the-token\n")

    result = reconcile("check", "--config", config)

    assert result.code == 1
    out = " ".join(result.stdout.split())
    assert "✗" in out and "401" in out and "scim.token" in out
    assert "app 'SCIM 2.0 Test App (OAuth Bearer Token)'" in out
    assert "A connection failed" in out
    assert "not-the-token" not in result.stdout + result.stderr


def test_a_wrong_app_id_fails_the_check_naming_the_setting(tmp_path: Path, okta: Okta, scim_url: str) -> None:
    result = reconcile("check", "--config", _config(tmp_path, okta, scim_url, app_id="0oanosuchapp00000000"))

    assert result.code == 1
    out = " ".join(result.stdout.split())
    assert "check okta.app_id" in out
    assert "PATCH: supported" in out, "the SCIM side is still checked"
    assert OKTA_TOKEN not in result.stdout + result.stderr


def test_check_on_django_scim2_shows_its_quirks(
    tmp_path: Path, okta: Okta, django_scim_server: DjangoScimServer
) -> None:
    django_scim_server.reset()
    extra = f'[mapping]\n"{ENTERPRISE_URN}:department" = "user.profile.department"\n'
    result = reconcile("check", "--config", _config(tmp_path, okta, django_scim_server.base_url, extra=extra))

    assert result.code == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert "PATCH: supported" in out
    assert "filter: not supported (a lookup by userName scans the listing)" in out
    assert "page size: 50 (scim.page_size 100; the server returns at most 50)" in out
    assert "ETag: not supported" in out
    assert f"mapping: {ENTERPRISE_URN}:department: the User resource type has no extension {ENTERPRISE_URN}" in out


def test_check_with_groups_reads_the_pushed_groups_and_names_a_wrong_one(
    tmp_path: Path, okta: Okta, scim_url: str
) -> None:
    user = okta.emulator.create_user(login="grace@example.com", first_name="Grace", last_name="Hopper")
    group = okta.emulator.create_group("Engineering")
    okta.emulator.add_group_member(group.id, user.id)
    okta.emulator.assign_group(okta.app_id, group.id)
    good = reconcile("check", "--config", _config(tmp_path, okta, scim_url, '[groups]\npush = ["engineering"]\n'))
    assert good.code == 0, good.stdout + good.stderr
    assert "1 pushed (Engineering), 1 memberships in Okta; 0 groups on the platform" in good.stdout

    wrong = _config(tmp_path, okta, scim_url, '[groups]\npush = ["Marketing"]\n')
    result = reconcile("check", "--config", wrong, "--output", "json")
    assert result.code == 1
    error = result.json()["groups"]["error"]
    assert "groups.push" in error and "Marketing" in error
    assert result.json()["okta"]["error"] is None, "the rest of the check still shows"


def test_a_refused_okta_token_is_printed_once_not_again_for_the_groups(
    tmp_path: Path, okta: Okta, scim_url: str
) -> None:
    config = _config(tmp_path, okta, scim_url, "[groups]\npush_assigned = true\n")
    (tmp_path / "state" / "okta.token").write_text("not-the-okta-token\n")

    result = reconcile("check", "--config", config)

    assert result.code == 1
    refusals = [line for line in result.stdout.splitlines() if "HTTP 401" in line or "okta.token" in line]
    assert len(refusals) == 1, result.stdout
    groups_line = result.stdout.splitlines()[result.stdout.splitlines().index("Groups") + 1]
    assert "Okta connection failed" in groups_line
    document = reconcile("check", "--config", config, "--output", "json").json()
    assert document["groups"]["error"] is None and "Okta" in document["groups"]["not_read"]
    assert document["ok"] is False
