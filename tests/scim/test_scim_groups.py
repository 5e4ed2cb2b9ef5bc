"""/Groups on a real scim2-server: listing, create with batched members, rename, add and remove in batches."""

from __future__ import annotations

import httpx

from reconciler.scim.groups import ScimGroups
from reconciler.secret import Secret
from tests.conftest import SCIM_TOKEN
from tests.support.scim_clients import reader_on

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _users(platform: httpx.Client, count: int) -> list[str]:
    return [
        platform.post("/Users", json={"schemas": [CORE_USER], "userName": f"member{n}@example.com"})
        .raise_for_status()
        .json()["id"]
        for n in range(count)
    ]


def _members(platform: httpx.Client, scim_id: str) -> set[str]:
    group = platform.get(f"/Groups/{scim_id}").raise_for_status().json()
    return {member["value"] for member in group.get("members", [])}


async def test_a_group_is_created_with_members_in_batches_renamed_and_its_members_changed(
    scim_url: str, platform: httpx.Client
) -> None:
    members = _users(platform, 25)
    async with reader_on(scim_url, Secret(SCIM_TOKEN), page_size=2) as reader:
        groups = ScimGroups(reader.connection, reader, member_batch=10)
        created = await groups.create_group("Engineering", "00gENGINEERING", members[:23])
        assert reader.request_counts["PATCH"] == 2, "10 in the POST, then 10 and 3"
        await groups.rename_group(created.scim_id, "Engineering & Security")
        assert await groups.add_members(created.scim_id, members[23:]) == 1
        assert await groups.remove_members(created.scim_id, members[:12]) == 2
        await groups.create_group("Sales", "00gSALES", [])
        await groups.create_group("Ops", "00gOPS", members[:1])
        listed = {group.display_name: group for group in await groups.list_groups()}  # 2 per page

    assert set(listed) == {"Engineering & Security", "Sales", "Ops"}
    engineering = listed["Engineering & Security"]
    assert engineering.external_id == "00gENGINEERING"
    assert engineering.member_ids == set(members[12:]) == _members(platform, created.scim_id)
    assert listed["Sales"].member_ids == frozenset()
