"""A rename onto a userName another platform user holds, on each real peer: a conflict, and nothing sent for it.

Some servers answer such a PATCH with a 409, others with a 500: either way the
plan must report it before any write. A recording proxy between the reconciler
and the server shows what was really sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.support.cli_runner import reconcile
from tests.support.wire_recorder import RecordingProxy, proxied

PEOPLE = ("ada", "grace", "alan")


class Platform:
    """The peer seen through a recording proxy, with a config file that goes through it."""

    def __init__(self, okta: Okta, peer_url: str, proxy: RecordingProxy, state: Path) -> None:
        self.okta, self.proxy = okta, proxy
        self.config = write_local_config(
            state, okta.org_url, okta.app_id, proxied(peer_url, proxy), OKTA_TOKEN, SCIM_TOKEN
        )
        self.client = httpx.Client(base_url=peer_url, headers={"Authorization": f"Bearer {SCIM_TOKEN}"})

    def users(self) -> dict[str, dict]:
        response = self.client.get("/Users", params={"startIndex": 1, "count": 1000})
        return {user["id"]: user for user in response.raise_for_status().json()["Resources"]}

    def writes_since(self, mark: int) -> list[tuple[str, str]]:
        self.proxy.wait_idle()
        return [(e.method, e.path) for e in self.proxy.exchanges(mark) if e.is_write]


@pytest.fixture
def platform(tmp_path: Path, okta: Okta, peer_url: str) -> Iterator[Platform]:
    upstream = "http://" + httpx.URL(peer_url).netloc.decode()
    with RecordingProxy(upstream) as proxy:
        world = Platform(okta, peer_url, proxy, tmp_path / "state")
        with world.client:
            yield world


def _provision(platform: Platform) -> dict[str, str]:
    """Ada, Grace and Alan assigned and pushed; returns their Okta ids by name."""
    ids = {}
    for key in PEOPLE:
        person = platform.okta.emulator.create_user(
            login=f"{key}@example.com", first_name=key.title(), last_name="X", displayName=key.title()
        )
        platform.okta.emulator.assign_user(platform.okta.app_id, person.id)
        ids[key] = person.id
    assert reconcile("--config", platform.config).code == 0
    for user in platform.users().values():
        platform.okta.emulator.mark_provisioned(platform.okta.app_id, user["externalId"], user["id"])
    return ids


def test_a_rename_onto_a_name_another_user_holds_is_reported_and_never_sent(platform: Platform) -> None:
    ids = _provision(platform)
    before = platform.users()
    scim_id = {user["externalId"]: user["id"] for user in before.values()}
    platform.okta.emulator.update_user_profile(ids["ada"], login="grace@example.com", email="grace@example.com")
    platform.okta.emulator.set_app_user(platform.okta.app_id, ids["ada"], user_name="GRACE@example.com")
    platform.okta.emulator.update_user_profile(ids["alan"], lastName="Turing")
    mark = len(platform.proxy.exchanges())

    result = reconcile("--config", platform.config, "--output", "json")

    assert result.code == 0, result.stderr
    plan = result.json()
    assert plan["status"] == "succeeded" and plan["failed"] == 0
    conflicts = [a for a in plan["actions"] if a["kind"] == "conflict"]
    assert len(conflicts) == 1 and conflicts[0]["okta_user_id"] == ids["ada"]
    assert scim_id[ids["ada"]] in conflicts[0]["reason"] and scim_id[ids["grace"]] in conflicts[0]["reason"]
    assert plan["summary"]["update"] == 1 and plan["summary"]["conflict"] == 1
    assert platform.writes_since(mark) == [("PATCH", f"{_path(platform)}/Users/{scim_id[ids['alan']]}")]
    after = platform.users()
    assert after[scim_id[ids["ada"]]]["userName"] == "ada@example.com"
    assert after[scim_id[ids["grace"]]] == before[scim_id[ids["grace"]]]
    assert after[scim_id[ids["alan"]]]["name"]["familyName"] == "Turing"

    text = reconcile("--config", platform.config, "--dry-run")
    assert "CONFLICT (1)" in text.stdout and "grace@example.com" in text.stdout


def _path(platform: Platform) -> str:
    return httpx.URL(str(platform.client.base_url)).path.rstrip("/")
