"""The demo's scenario, shared by the tests: users seeded on both sides with every kind of drift Okta's push leaves."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reconciler.models.scim_path import CORE_USER_URN
from reconciler.scim.groups import GROUP_URN
from reconciler.testing.okta import EmulatedUser, OktaEmulator

GROUP_NAME = "Security Awareness Trainees"


NEVER_PUSHED_GROUP = "Phishing Drill Q4"


RENAMED_GROUP = ("Finance Team", "Finance")


HAND_MADE_GROUP = "Book club"


GROUPS_CONFIG = "[groups]\npush_assigned = true\n"
PATCH_OP_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass(frozen=True)
class DriftCounts:
    """How many users of each kind of drift the demo makes."""

    never_pushed: int = 12
    hand_edited: int = 6
    renamed_in_okta: int = 2
    unassigned_still_active: int = 6
    deprovisioned_in_okta: int = 4
    suspended_in_okta: int = 3
    disabled_on_platform: int = 4
    hand_made_account: int = 3


async def push_like_okta(client: httpx.AsyncClient, user: EmulatedUser, user_name: str | None = None) -> str:
    """POST the user as Okta's SCIM app does on a create; returns the SCIM id."""
    profile = user.profile
    body = {
        "schemas": [CORE_USER_URN],
        "userName": user_name or profile["login"],
        "name": {"givenName": profile["firstName"], "familyName": profile["lastName"]},
        "emails": [{"value": profile["email"], "primary": True, "type": "work"}],
        "displayName": profile.get("displayName") or f"{profile['firstName']} {profile['lastName']}",
        "locale": profile.get("locale", "en_US"),
        "externalId": user.id,
        "active": True,
    }
    response = await client.post("/Users", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


async def seed_scenario(
    emulator: OktaEmulator,
    client: httpx.AsyncClient,
    users: int,
    drift: DriftCounts = DriftCounts(),
    *,
    groups: bool = False,
) -> str:
    """Build the drifted org and platform, with drifted pushed groups if ``groups``; returns the app id."""
    app = emulator.create_app()
    people = emulator.add_assigned_users(app.id, users)
    group = emulator.create_group(GROUP_NAME)
    for person in people[-users // 4 :]:  # a quarter come through a group assignment
        emulator.unassign_user(app.id, person.id)
        emulator.add_group_member(group.id, person.id)
    emulator.assign_group(app.id, group.id)

    cursor = iter(people)
    never_pushed = [next(cursor) for _ in range(drift.never_pushed)]
    pushed = [p for p in people if p not in never_pushed]
    pushed_ids = await asyncio.gather(*(push_like_okta(client, p) for p in pushed))
    scim_ids = {person.id: scim_id for person, scim_id in zip(pushed, pushed_ids, strict=True)}
    for person in pushed:
        emulator.mark_provisioned(app.id, person.id, scim_ids[person.id])
    drifting = _Drift(emulator, client, app.id, scim_ids)
    await drifting.break_users(pushed, drift)
    if groups:
        await drifting.break_groups(group.id, people)
    return app.id


async def push_group_like_okta(client: httpx.AsyncClient, name: str, okta_group_id: str, members: list[str]) -> str:
    """POST a group as Okta's Group Push does: its name, its Okta id as externalId, its members' SCIM ids.

    A server that takes no members in a POST (django-scim2) gets them added by PATCH, as Okta's push does.
    """
    body = {
        "schemas": [GROUP_URN],
        "displayName": name,
        "externalId": okta_group_id,
        "members": [{"value": member} for member in members],
    }
    response = await client.post("/Groups", json=body)
    response.raise_for_status()
    created = response.json()
    kept = {str(member.get("value")) for member in created.get("members") or []}
    if dropped := [{"value": member} for member in members if member not in kept]:
        operation = {"op": "add", "path": "members", "value": dropped}
        patched = await client.patch(
            f"/Groups/{created['id']}", json={"schemas": [PATCH_OP_URN], "Operations": [operation]}
        )
        patched.raise_for_status()
    return str(created["id"])


@dataclass(frozen=True)
class _Drift:
    """Breaks the seeded org and platform the ways real life breaks what Okta's push keeps in line."""

    emulator: OktaEmulator
    client: httpx.AsyncClient
    app_id: str
    scim_ids: dict[str, str]
    """Okta user id -> SCIM id, for the users Okta pushed."""

    async def break_users(self, pushed: Sequence[EmulatedUser], drift: DriftCounts) -> None:
        """Hand edits, renames, missed deactivations, hand-made accounts, a duplicate, service accounts."""
        emulator, app_id, scim_ids = self.emulator, self.app_id, self.scim_ids
        cursor = iter(pushed[: len(pushed) * 3 // 4])  # directly assigned users only
        take = lambda n: [next(cursor) for _ in range(n)]  # noqa: E731

        for person in take(drift.hand_edited):
            await self._patch(
                f"/Users/{scim_ids[person.id]}", [{"op": "replace", "path": "displayName", "value": "EDITED BY HAND"}]
            )
        for person in take(drift.renamed_in_okta):
            self._rename_in_okta(person, "renamed.")
        for person in take(drift.unassigned_still_active):
            emulator.unassign_user(app_id, person.id)
        for person in take(drift.deprovisioned_in_okta):
            emulator.set_user_status(person.id, "DEPROVISIONED")
        for person in take(drift.suspended_in_okta):
            emulator.set_user_status(person.id, "SUSPENDED")
        for person in take(drift.disabled_on_platform):
            await self._patch(f"/Users/{scim_ids[person.id]}", [{"op": "replace", "value": {"active": False}}])
        await self._hand_made_accounts(take(drift.hand_made_account))
        await self._duplicate_and_service_accounts(take(1))

    async def break_groups(self, trainees_id: str, people: Sequence[EmulatedUser]) -> None:
        """Group Push drift: a group never pushed, a rename not pushed, hand edits of members, a hand-made group."""
        emulator, client, app_id, scim_ids = self.emulator, self.client, self.app_id, self.scim_ids
        trainees = [m for m in emulator.group(trainees_id).member_ids if m in scim_ids]
        trainees_scim = await push_group_like_okta(client, GROUP_NAME, trainees_id, [scim_ids[m] for m in trainees])
        await self._remove_members_by_hand(trainees_scim, [scim_ids[m] for m in trainees[:3]])
        stranger = next(p for p in people if p.id in scim_ids and p.id not in trainees)
        added_by_hand = {"op": "add", "path": "members", "value": [{"value": scim_ids[stranger.id]}]}
        await self._patch(f"/Groups/{trainees_scim}", [added_by_hand])

        drill = emulator.create_group(NEVER_PUSHED_GROUP)
        for person in people[:8]:  # some of them were never pushed either: created first, then added
            emulator.add_group_member(drill.id, person.id)
        emulator.assign_group(app_id, drill.id)

        finance = emulator.create_group(RENAMED_GROUP[0])
        members = [p.id for p in people[50:60] if p.id in scim_ids]  # users left in line with Okta
        for member in members:
            emulator.add_group_member(finance.id, member)
        emulator.assign_group(app_id, finance.id)
        await push_group_like_okta(client, RENAMED_GROUP[0], finance.id, [scim_ids[m] for m in members])
        emulator.rename_group(finance.id, RENAMED_GROUP[1])

        await push_group_like_okta(client, HAND_MADE_GROUP, "hand-made", [scim_ids[stranger.id]])

    async def _hand_made_accounts(self, people: Sequence[EmulatedUser]) -> None:
        """Accounts someone made by hand on the platform, before Okta could push: no externalId."""
        for person in people:
            (await self.client.delete(f"/Users/{self.scim_ids[person.id]}")).raise_for_status()
            self.emulator.clear_external_id(self.app_id, person.id)
            body = {
                "schemas": [CORE_USER_URN],
                "userName": person.profile["login"].upper(),
                "active": True,
                "name": {"givenName": person.profile["firstName"], "familyName": person.profile["lastName"]},
            }
            (await self.client.post("/Users", json=body)).raise_for_status()

    async def _duplicate_and_service_accounts(self, people: Sequence[EmulatedUser]) -> None:
        """A rename that Okta pushed as a create (a duplicate: a conflict) and two service accounts."""
        for person in people:
            new_login = self._rename_in_okta(person, "new.")
            renamed = self.emulator.user(person.id)
            scim_id = await push_like_okta(self.client, renamed, new_login)
            self.emulator.mark_provisioned(self.app_id, person.id, scim_id)
        for name in ("svc-backup@example.com", "svc-reporting@example.com"):
            body = {"schemas": [CORE_USER_URN], "userName": name, "active": True}
            (await self.client.post("/Users", json=body)).raise_for_status()

    def _rename_in_okta(self, person: EmulatedUser, prefix: str) -> str:
        """Change the user's login (and email) in Okta, and the app user's userName with it; returns the login."""
        new_login = prefix + person.profile["login"]
        self.emulator.update_user_profile(person.id, login=new_login, email=new_login)
        self.emulator.set_app_user(self.app_id, person.id, user_name=new_login)
        return new_login

    async def _remove_members_by_hand(self, group_scim_id: str, member_ids: list[str]) -> None:
        """Remove members as an admin's tool would: by ``members[value eq "…"]`` (RFC 7644), or by a value
        list where the server does not implement filtered paths (django-scim2 answers 501)."""
        operations = [{"op": "remove", "path": f'members[value eq "{member}"]'} for member in member_ids]
        body = {"schemas": [PATCH_OP_URN], "Operations": operations}
        response = await self.client.patch(f"/Groups/{group_scim_id}", json=body)
        if response.status_code == 501:
            value = [{"value": member} for member in member_ids]
            await self._patch(f"/Groups/{group_scim_id}", [{"op": "remove", "path": "members", "value": value}])
        else:
            response.raise_for_status()

    async def _patch(self, path: str, operations: list[dict[str, Any]]) -> None:
        """PATCH a SCIM resource (``/Users/{id}``, ``/Groups/{id}``) with these operations, by hand."""
        body = {"schemas": [PATCH_OP_URN], "Operations": operations}
        (await self.client.patch(path, json=body)).raise_for_status()


def write_local_config(
    state: Path, org_url: str, app_id: str, scim_url: str, okta_token: str, scim_token: str, extra: str = ""
) -> Path:
    """A real config file with token files (mode 0600), as a deployment would have.

    ``extra`` is appended as is: more TOML tables such as ``[policy]``.
    """
    state.mkdir(parents=True, exist_ok=True)
    for name, value in (("okta.token", okta_token), ("scim.token", scim_token)):
        write_secret_file(state / name, value + "\n")
    config = state / "config.toml"
    config.write_text(
        f'[okta]\norg_url = "{org_url}"\napp_id = "{app_id}"\nauth = "api_token"\ntoken_file = "okta.token"\n\n'
        f'[scim]\nbase_url = "{scim_url}"\ntoken_file = "scim.token"\n\n'
        f'[store]\nurl = "sqlite:///{(state / "reconciler.db").resolve()}"\n\n{extra}'
    )
    return config


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (the configuration refuses a looser one)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
