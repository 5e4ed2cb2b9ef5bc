"""The same scenarios against independently written SCIM servers (``peer_url``: scim2-server, django-scim2).

Each test sets up Okta (the emulator) and the platform, runs the reconciler
as a deployment would (config file, store), and then looks at the platform's
users over plain HTTP. Every scenario ends with a second dry-run that must
find nothing to do: a server that drops or reshapes what it is sent (an
email ``type``, an attribute it does not store) would otherwise show the
same update on every run.

The mapping feeds the enterprise extension and core attributes beyond the
defaults, as a security-awareness platform needs them to target campaigns.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scim2_server.utils import load_default_resource_types, load_default_schemas

from reconciler.config import load_config
from reconciler.models.records import ActionKind
from reconciler.models.runs import RunStatus
from reconciler.models.scim_path import CORE_USER_URN, ENTERPRISE_URN
from reconciler.run.outcome import RunOutcome
from reconciler.run.reconcile import reconcile
from reconciler.store import Store
from reconciler.testing.okta import EmulatedUser
from reconciler.testing.scenario import write_local_config
from reconciler.testing.scim_server import RunningScimServer, run_scim2_server
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta

MAPPING = f"""
[mapping]
title = "user.profile.title"
"{ENTERPRISE_URN}:department" = "user.profile.department"
"{ENTERPRISE_URN}:employeeNumber" = "user.profile.employeeNumber"
"{ENTERPRISE_URN}:costCenter" = "user.profile.costCenter"
"{ENTERPRISE_URN}:organization" = "user.profile.organization"
"{ENTERPRISE_URN}:division" = "user.profile.division"
"{ENTERPRISE_URN}:manager.value" = "user.profile.managerId"

[thresholds]
max_deactivate_ratio = 1.0
max_reactivate_ratio = 1.0
max_update_ratio = 1.0
max_create_ratio = 1.0
max_source_drop_ratio = 0.5  # one leaver of three users
"""

PEOPLE = [
    ("ada", "Ada", "Lovelace", "Research", "E-100", "CC-1", "Analytical Engines", "R&D", "00u-manager-1"),
    ("grace", "Grace", "Hopper", "Engineering", "E-101", "CC-2", "Navy", "Compilers", "00u-manager-2"),
    ("alan", "Alan", "Turing", "Cryptanalysis", "E-102", "CC-3", "Bletchley", "Hut 8", "00u-manager-1"),
]


class World:
    """Okta, the platform and a deployed config, with the moves a scenario makes."""

    def __init__(self, okta: Okta, platform: httpx.Client, config: Path) -> None:
        self.okta = okta
        self.platform = platform
        self.config = load_config(config)
        self.people: dict[str, EmulatedUser] = {}

    def assign(self, key: str, first: str, last: str, department: str, number: str, *rest: str) -> EmulatedUser:
        cost_center, organization, division, manager = rest
        person = self.okta.emulator.create_user(
            login=f"{key}@example.com",
            first_name=first,
            last_name=last,
            displayName=f"{first} {last}",
            locale="en_GB",
            title="Engineer",
            department=department,
            employeeNumber=number,
            costCenter=cost_center,
            organization=organization,
            division=division,
            managerId=manager,
        )
        self.okta.emulator.assign_user(self.okta.app_id, person.id)
        self.people[key] = person
        return person

    def run(self, *, dry_run: bool = False) -> RunOutcome:
        with Store(self.config.store.url) as store:
            return asyncio.run(reconcile(self.config, store, dry_run=dry_run))

    def users(self) -> dict[str, dict[str, Any]]:
        """The platform's users by userName (lower case), read in one big page."""
        response = self.platform.get("/Users", params={"startIndex": 1, "count": 1000})
        response.raise_for_status()
        return {user["userName"].lower(): user for user in response.json()["Resources"]}

    def user(self, key: str) -> dict[str, Any]:
        return self.users()[f"{key}@example.com"]

    def assert_in_sync(self) -> None:
        second = self.run(dry_run=True)
        assert second.status is RunStatus.SUCCEEDED, second.plan.actions if second.plan else second.error


@pytest.fixture
def world(tmp_path: Path, okta: Okta, peer_url: str) -> Iterator[World]:
    config = write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, peer_url, OKTA_TOKEN, SCIM_TOKEN, MAPPING
    )
    with httpx.Client(base_url=peer_url, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as platform:
        yield World(okta, platform, config)


def _provisioned(world: World) -> None:
    for person in PEOPLE:
        world.assign(*person)
    outcome = world.run()
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    for key, person in world.people.items():
        world.okta.emulator.mark_provisioned(world.okta.app_id, person.id, world.user(key)["id"])


def test_assigned_users_are_created_with_core_and_enterprise_attributes(world: World) -> None:
    for person in PEOPLE:
        world.assign(*person)

    outcome = world.run()

    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.plan is not None and outcome.plan.summary()["create"] == 3
    ada = world.user("ada")
    assert ada["externalId"] == world.people["ada"].id and ada["active"] is True
    assert ada["name"]["givenName"] == "Ada" and ada["name"]["familyName"] == "Lovelace"
    assert ada["displayName"] == "Ada Lovelace" and ada["title"] == "Engineer"
    assert [email["value"] for email in ada["emails"]] == ["ada@example.com"]
    enterprise = ada[ENTERPRISE_URN]
    assert (enterprise["department"], enterprise["employeeNumber"], enterprise["costCenter"]) == (
        "Research",
        "E-100",
        "CC-1",
    )
    assert (enterprise["organization"], enterprise["division"]) == ("Analytical Engines", "R&D")
    assert enterprise["manager"]["value"] == "00u-manager-1"
    assert ENTERPRISE_URN in ada["schemas"] and CORE_USER_URN in ada["schemas"]
    world.assert_in_sync()


def test_an_enterprise_change_in_okta_updates_only_that_attribute(world: World) -> None:
    _provisioned(world)
    grace = world.user("grace")
    world.platform.patch(
        f"/Users/{grace['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "nickName", "value": "Amazing Grace"}],
        },
    ).raise_for_status()  # the platform's own attribute: not mapped, so never touched
    world.okta.emulator.update_user_profile(world.people["grace"].id, department="Security", managerId="00u-m-9")

    outcome = world.run()

    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.plan is not None
    (update,) = [a for a in outcome.plan.actions if a.kind is ActionKind.UPDATE]
    assert set(update.changes) == {f"{ENTERPRISE_URN}:department", f"{ENTERPRISE_URN}:manager.value"}
    after = world.user("grace")
    assert after["id"] == grace["id"]
    assert after[ENTERPRISE_URN]["department"] == "Security"
    assert after[ENTERPRISE_URN]["manager"]["value"] == "00u-m-9"
    assert after[ENTERPRISE_URN]["employeeNumber"] == "E-101"
    assert after["nickName"] == "Amazing Grace"
    world.assert_in_sync()


def test_a_renamed_login_and_email_update_the_same_user(world: World) -> None:
    _provisioned(world)
    alan = world.user("alan")
    person = world.people["alan"]
    world.okta.emulator.update_user_profile(person.id, login="a.turing@example.com", email="a.turing@example.com")
    world.okta.emulator.set_app_user(world.okta.app_id, person.id, user_name="a.turing@example.com")

    outcome = world.run()

    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.plan is not None and outcome.plan.summary()["update"] == 1
    assert outcome.plan.summary()["create"] == 0
    users = world.users()
    assert "alan@example.com" not in users and len(users) == 3
    renamed = users["a.turing@example.com"]
    assert renamed["id"] == alan["id"] and renamed["externalId"] == person.id
    assert [email["value"] for email in renamed["emails"]] == ["a.turing@example.com"]
    world.assert_in_sync()


def test_unassigned_users_are_deactivated_and_reassigned_ones_reactivated_never_deleted(world: World) -> None:
    _provisioned(world)
    ada = world.people["ada"]
    world.okta.emulator.unassign_user(world.okta.app_id, ada.id)

    deactivated = world.run()

    assert deactivated.status is RunStatus.SUCCEEDED, deactivated.error
    assert deactivated.plan is not None and deactivated.plan.summary()["deactivate"] == 1
    assert world.user("ada")["active"] is False and len(world.users()) == 3
    world.okta.emulator.assign_user(world.okta.app_id, ada.id)  # a new app user: Okta forgot the SCIM id

    reactivated = world.run()

    assert reactivated.plan is not None and reactivated.plan.summary()["reactivate"] == 1
    assert world.user("ada")["active"] is True and len(world.users()) == 3
    assert world.user("ada")[ENTERPRISE_URN]["department"] == "Research"
    world.assert_in_sync()


def test_a_hand_made_account_is_linked_and_an_unmanaged_one_left_alone(world: World) -> None:
    world.platform.post(
        "/Users", json={"schemas": [CORE_USER_URN], "userName": "ADA@example.com", "active": True}
    ).raise_for_status()
    world.platform.post(
        "/Users", json={"schemas": [CORE_USER_URN], "userName": "svc-backup@example.com", "active": True}
    ).raise_for_status()
    world.assign(*PEOPLE[0])

    outcome = world.run()

    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.plan is not None
    summary = outcome.plan.summary()
    assert (summary["link"], summary["create"], summary["unmanaged"]) == (1, 0, 1)
    users = world.users()
    assert len(users) == 2
    assert users["ada@example.com"]["externalId"] == world.people["ada"].id
    assert users["ada@example.com"][ENTERPRISE_URN]["department"] == "Research"
    assert users["svc-backup@example.com"]["active"] is True
    assert "externalId" not in users["svc-backup@example.com"] or not users["svc-backup@example.com"]["externalId"]


# --- a custom extension schema ------------------------------------------------------------------

ACME_URN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
ACME_SCHEMA = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": ACME_URN,
    "name": "AcmeUser",
    "description": "What the awareness platform targets campaigns by",
    "attributes": [
        {
            "name": name,
            "type": "string",
            "multiValued": False,
            "required": False,
            "caseExact": False,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none",
        }
        for name in ("trainingTrack", "site")
    ],
}


@pytest.fixture(scope="module")
def acme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningScimServer]:
    """scim2-server whose User resource type carries a custom extension besides the enterprise one."""
    directory = tmp_path_factory.mktemp("acme")
    schemas = [schema.model_dump(mode="json") for schema in load_default_schemas().values()] + [ACME_SCHEMA]
    resource_types = [rt.model_dump(mode="json") for rt in load_default_resource_types().values()]
    for resource_type in resource_types:
        if resource_type["id"] == "User":
            resource_type["schemaExtensions"].append({"schema": ACME_URN, "required": False})
    (directory / "schemas.json").write_text(json.dumps(schemas))
    (directory / "resource-types.json").write_text(json.dumps(resource_types))
    options = ["--schema", str(directory / "schemas.json"), "--resource-type", str(directory / "resource-types.json")]
    with run_scim2_server(SCIM_TOKEN, options) as server:
        yield server


def test_a_custom_extension_is_created_updated_and_kept_in_sync(
    tmp_path: Path, okta: Okta, acme_server: RunningScimServer
) -> None:
    mapping = (
        f'[mapping]\n"{ACME_URN}:trainingTrack" = "user.profile.trainingTrack"\n"{ACME_URN}:site" = "profile.site"\n'
    )
    config = write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, acme_server.base_url, OKTA_TOKEN, SCIM_TOKEN, mapping
    )
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    with httpx.Client(base_url=acme_server.base_url, headers=headers) as platform:
        world = World(okta, platform, config)
        person = okta.emulator.create_user(
            login="custom@example.com", first_name="Cus", last_name="Tom", trainingTrack="Phishing 101"
        )
        okta.emulator.assign_user(okta.app_id, person.id, profile={"site": "Lyon"})

        created = world.run()
        assert created.status is RunStatus.SUCCEEDED, created.error
        user = world.user("custom")
        assert user[ACME_URN] == {"trainingTrack": "Phishing 101", "site": "Lyon"}
        assert ACME_URN in user["schemas"]

        okta.emulator.update_user_profile(person.id, trainingTrack="Phishing 201")
        updated = world.run()
        assert updated.plan is not None and updated.plan.summary()["update"] == 1, updated.error
        assert world.user("custom")[ACME_URN] == {"trainingTrack": "Phishing 201", "site": "Lyon"}
        world.assert_in_sync()


# --- mapping tables: constant, transform, join, default -------------------------------------------

TABLE_MAPPING = """
[mapping]
nickName = { constant = "Staffer" }
'emails[type eq "work"].value' = { source = "profile.email", transform = ["trim", "lower"] }
displayName = { join = ["user.profile.firstName", "user.profile.lastName"] }
title = { source = "user.profile.title", default = "Staff" }
"""


def test_mapping_tables_reach_the_platform_and_stay_in_sync(tmp_path: Path, okta: Okta, peer_url: str) -> None:
    config = write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, peer_url, OKTA_TOKEN, SCIM_TOKEN, TABLE_MAPPING
    )
    with httpx.Client(base_url=peer_url, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as platform:
        world = World(okta, platform, config)
        ada = okta.emulator.create_user(login="ada@example.com", first_name="Ada", last_name="Lovelace")
        okta.emulator.assign_user(okta.app_id, ada.id, profile={"email": " Ada@Example.COM "})
        grace = okta.emulator.create_user(
            login="grace@example.com", first_name="Grace", last_name="Hopper", title="Rear Admiral"
        )
        okta.emulator.assign_user(okta.app_id, grace.id)

        created = world.run()

        assert created.status is RunStatus.SUCCEEDED, created.error
        assert created.plan is not None and created.plan.summary()["create"] == 2
        user = world.user("ada")
        assert user["nickName"] == "Staffer" and user["displayName"] == "Ada Lovelace"
        assert [email["value"] for email in user["emails"]] == ["ada@example.com"]
        assert user["title"] == "Staff", "the default stands for a title Okta does not have"
        assert world.user("grace")["title"] == "Rear Admiral"
        world.assert_in_sync()

        okta.emulator.update_user_profile(ada.id, lastName="King", title="Countess")
        updated = world.run()

        assert updated.plan is not None and updated.plan.summary()["update"] == 1, updated.error
        (update,) = updated.plan.actions
        assert set(update.changes) == {"displayName", "title", "name.familyName"}, "the default mapping too"
        user = world.user("ada")
        assert (user["displayName"], user["title"], user["nickName"]) == ("Ada King", "Countess", "Staffer")
        world.assert_in_sync()
