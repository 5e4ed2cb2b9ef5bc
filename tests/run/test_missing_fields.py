"""A field missing from Okta's answer is never read as a default, end to end.

The Okta emulator serves its listing reshaped as a proxy or gateway would pass it
on (``FaultKind.RESHAPE``): one field left out, for one user or for every user.
The ``reconcile`` command then runs against the real scim2-server behind the
fault proxy (which counts the writes that reach it), and the test checks what an
operator sees: the exit code, the run's error in ``history``, and the platform.

A field the run needs (docs/mapping.md, "When Okta's answer lacks a field")
stops it before any write, with an error naming the field, the user and the
likely cause. A field whose absence has a meaning (no ``externalId``: no SCIM
id stored; no ``scope``; one user's profile attribute: that user's unset value)
gives the run that meaning, and nothing null or empty is written for it.

The scenario writes on a clean run: a user edited by hand (update), one never
pushed (create), one Okta no longer assigns (deactivate), and a SUSPENDED
Okta user inactive on the platform that a status read as ACTIVE would reactivate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.testing.okta import FaultKind
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users, provision
from tests.support.cli_runner import Result, reconcile
from tests.support.fault_proxy import FaultProxy, run_fault_proxy

OKTA_LISTING = "/api/v1/apps/*/users"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAPPING = '[mapping]\ntitle = "user.profile.title"\n'
"""The default mapping (app profile) plus one attribute of the Okta user's own profile."""


@dataclass
class World:
    okta: Okta
    proxy: FaultProxy
    platform: httpx.Client
    config_file: Path
    listed: list[str]
    """The Okta user ids the listing shows, in its order."""
    scim_ids: dict[str, str]
    edited: str
    suspended: str

    def run(self, *args: str) -> Result:
        return reconcile("--config", self.config_file, "--output", "json", *args)

    def last_run(self) -> dict[str, Any]:
        runs: list[dict[str, Any]] = reconcile("--config", self.config_file, "history", "--output", "json").json()
        return runs[0]

    def serve_without(self, path: str, only: str | None = None) -> None:
        """Every listing page from now on lacks the field at the dotted ``path``, for user ``only`` or all."""
        self.okta.emulator.inject_fault(OKTA_LISTING, kind=FaultKind.RESHAPE, times=None, reshape=without(path, only))


def without(path: str, only: str | None) -> Callable[[list[dict[str, Any]]], None]:
    head, _, last = path.rpartition(".")

    def reshape(page: list[dict[str, Any]]) -> None:
        for app_user in page:
            if only is None or app_user["id"] == only:
                holder = app_user
                for key in head.split(".") if head else ():
                    holder = holder[key]
                del holder[last]

    return reshape


@pytest.fixture
def proxy(scim_url: str) -> Iterator[FaultProxy]:
    with run_fault_proxy(scim_url) as running:
        yield running


@pytest.fixture
def world(tmp_path: Path, okta: Okta, proxy: FaultProxy, platform: httpx.Client) -> World:
    emulator, app_id = okta.emulator, okta.app_id
    users = [user.id for user in emulator.add_assigned_users(app_id, 6)]
    in_sync, edited, never_pushed, leaver, suspended = users[:2], users[2], users[3], users[4], users[5]
    del never_pushed
    scim_ids = provision(okta, platform, [*in_sync, edited, leaver, suspended])
    for scim_id in scim_ids.values():
        _patch(platform, scim_id, title="Engineer")  # what the mapping's title gives every user
    _patch(platform, scim_ids[edited], displayName="Edited By Hand", title="Set By Hand")
    _patch(platform, scim_ids[suspended], active=False)
    emulator.set_user_status(suspended, "SUSPENDED")
    emulator.unassign_user(app_id, leaver)
    config_file = write_local_config(tmp_path / "state", okta.org_url, app_id, proxy.base_url, OKTA_TOKEN, SCIM_TOKEN)
    config_file.write_text(config_file.read_text() + MAPPING)
    listed = emulator.listed_user_ids(app_id)
    return World(okta, proxy, platform, config_file, listed, scim_ids, edited, suspended)


def _patch(platform: httpx.Client, scim_id: str, **values: Any) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": values}]}
    platform.patch(f"/Users/{scim_id}", json=body).raise_for_status()


def assert_stopped_before_any_write(world: World, result: Result, *says: str) -> str:
    """Exit 1, the run failed with an error saying each of ``says``, nothing planned, nothing written."""
    assert result.code == 1, (result.stdout, result.stderr)
    run = world.last_run()
    assert (run["status"], run["summary"]) == ("failed", None), run
    for text in says:
        assert text in run["error"], run["error"]
    assert result.json()["error"] == run["error"]
    assert world.proxy.writes_forwarded() == [], "a write reached the platform"
    return str(run["error"])


def test_the_scenario_writes_on_a_clean_run(world: World) -> None:
    """So that "nothing was written" below means the run stopped, not that there was nothing to do."""
    planned = world.run("--dry-run").json()
    assert sorted(action["kind"] for action in planned["actions"]) == ["create", "deactivate", "update"]


# --- fields the run needs: it stops before any write -------------------------------------------


NEEDED = [
    ("status", "has no status; Okta always sends it: the answer is not the shape Okta lists"),
    ("_embedded", "has no _embedded.user: the answer ignored expand=user (a proxy or gateway that drops query"),
    ("_embedded.user.status", "has no _embedded.user.status; Okta always sends it"),
    ("_embedded.user.profile", "has no _embedded.user.profile; Okta always sends it"),
    ("profile", "has no profile; Okta always sends it"),
]


@pytest.mark.parametrize("whom", ["one user", "every user"])
@pytest.mark.parametrize(("field", "says"), NEEDED, ids=[field for field, _ in NEEDED])
def test_a_missing_field_the_run_needs_stops_it_before_any_write(
    world: World, field: str, says: str, whom: str
) -> None:
    user = world.suspended if whom == "one user" else world.listed[0]
    world.serve_without(field, only=user if whom == "one user" else None)

    result = world.run()

    login = world.okta.emulator.user(user).profile["login"]
    assert_stopped_before_any_write(world, result, f"Okta app user {user} ({login}) {says}")
    suspended = next(u for u in all_users(world.platform) if u["id"] == world.scim_ids[world.suspended])
    assert suspended["active"] is False, "a SUSPENDED user whose status was missing was made active"


@pytest.mark.parametrize("whom", ["one user", "every user"])
def test_a_missing_user_name_stops_the_run_before_any_write(world: World, whom: str) -> None:
    user = world.edited if whom == "one user" else world.listed[0]
    world.serve_without("credentials.userName", only=user if whom == "one user" else None)

    result = world.run()

    assert_stopped_before_any_write(world, result, f"Okta app user {user} has no credentials.userName")


@pytest.mark.parametrize(
    ("field", "key"),
    [("profile.displayName", 'mapping."displayName"'), ("_embedded.user.profile.title", 'mapping."title"')],
    ids=["app-profile", "user-profile"],
)
def test_a_mapped_attribute_no_user_has_stops_the_run_before_any_write(world: World, field: str, key: str) -> None:
    world.serve_without(field)

    result = world.run()

    error = assert_stopped_before_any_write(
        world, result, f"{key}: no user's Okta profile has a value for it", "does not exist in this org"
    )
    assert "Profile Editor" in error


def test_a_user_name_mapped_from_an_attribute_one_user_lacks_stops_the_run(world: World) -> None:
    world.config_file.write_text(world.config_file.read_text() + 'userName = "profile.email"\n')
    world.serve_without("profile.email", only=world.edited)

    result = world.run()

    assert_stopped_before_any_write(
        world, result, f"mapping.userName: Okta's answer has no value for 1 user(s): {world.edited}"
    )


# --- fields whose absence has a meaning --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "attribute"), [("profile.displayName", "displayName"), ("_embedded.user.profile.title", "title")]
)
def test_one_users_missing_attribute_is_neither_compared_nor_written(world: World, field: str, attribute: str) -> None:
    world.serve_without(field, only=world.edited)

    result = world.run()

    assert result.code == 0 and result.json()["status"] == "succeeded", (result.stdout, result.stderr)
    assert sorted(action["kind"] for action in result.json()["actions"]) == ["create", "deactivate", "update"]
    edited = next(u for u in all_users(world.platform) if u["id"] == world.scim_ids[world.edited])
    by_hand = {"displayName": "Edited By Hand", "title": "Set By Hand"}
    assert edited.get(attribute) == by_hand[attribute], "the unknown value was written over the platform's"
    other = "title" if attribute == "displayName" else "displayName"
    assert edited.get(other) not in (by_hand[other], None, ""), "the attribute Okta did send was repaired"


@pytest.mark.parametrize("whom", ["one user", "every user"])
@pytest.mark.parametrize("field", ["externalId", "scope", "syncState"])
def test_a_missing_field_with_a_meaning_runs_as_that_meaning(world: World, field: str, whom: str) -> None:
    """No ``externalId``: no SCIM id stored (matched by the platform's externalId, then userName);
    no ``scope`` or ``syncState``: nothing is decided on them. The run is the clean run, no duplicate."""
    world.serve_without(field, only=world.edited if whom == "one user" else None)

    result = world.run()

    assert result.code == 0 and result.json()["status"] == "succeeded", (result.stdout, result.stderr)
    assert sorted(action["kind"] for action in result.json()["actions"]) == ["create", "deactivate", "update"]
    users = all_users(world.platform)
    assert len(users) == len(world.scim_ids) + 1, "one create, no duplicate"
    assert world.run("--dry-run").json()["actions"] == []
