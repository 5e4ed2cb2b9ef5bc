"""The django-scim2 peer's /Groups over real HTTP: its quirks, pinned as they are (see tests/scim/test_django_peer.py).

The reconciler adapts to each (reconciler/scim/groups.py); docs/compatibility.md lists them.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _user(peer: httpx.Client, name: str) -> str:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"{name}@example.com"}
    return str(peer.post("/Users", json=body).raise_for_status().json()["id"])


def _patch(peer: httpx.Client, group_id: str, *operations: dict[str, Any]) -> httpx.Response:
    return peer.patch(f"/Groups/{group_id}", json={"schemas": [PATCH_OP], "Operations": list(operations)})


def _members(peer: httpx.Client, group_id: str) -> set[str]:
    return {m["value"] for m in peer.get(f"/Groups/{group_id}").raise_for_status().json().get("members") or []}


@pytest.fixture
def group(peer: httpx.Client) -> tuple[str, list[str]]:
    """A group "Ops" with externalId okta-1, and two users, ada a member; its id and the users' ids."""
    ada, bob = _user(peer, "ada"), _user(peer, "bob")
    body = {"schemas": [GROUP], "displayName": "Ops", "externalId": "okta-1", "members": [{"value": ada}]}
    created = peer.post("/Groups", json=body)
    assert created.status_code == 201, created.text
    group_id = str(created.json()["id"])
    assert _patch(peer, group_id, {"op": "add", "path": "members", "value": [{"value": ada}]}).status_code == 200
    return group_id, [ada, bob]


def test_quirk_a_post_keeps_the_external_id_but_drops_the_members(peer: httpx.Client) -> None:
    ada = _user(peer, "ada")
    body = {"schemas": [GROUP], "displayName": "Ops", "externalId": "okta-1", "members": [{"value": ada}]}
    created = peer.post("/Groups", json=body).raise_for_status().json()
    assert created["externalId"] == "okta-1" and created["members"] == []


def test_quirk_members_are_removed_by_a_value_list_and_a_filtered_path_is_501(
    peer: httpx.Client, group: tuple[str, list[str]]
) -> None:
    group_id, (ada, _bob) = group
    filtered = _patch(peer, group_id, {"op": "remove", "path": f'members[value eq "{ada}"]'})
    assert filtered.status_code == 501 and _members(peer, group_id) == {ada}
    listed = _patch(peer, group_id, {"op": "remove", "path": "members", "value": [{"value": ada}]})
    assert listed.status_code == 200 and _members(peer, group_id) == set()


@pytest.mark.parametrize("attribute", ["displayName", "externalId"])
def test_quirk_a_patch_replace_of_a_group_attribute_is_501(
    peer: httpx.Client, group: tuple[str, list[str]], attribute: str
) -> None:
    group_id, _ = group
    assert _patch(peer, group_id, {"op": "replace", "path": attribute, "value": "x"}).status_code == 501


def test_quirk_a_put_renames_and_relinks_but_leaves_the_members_as_they_were(
    peer: httpx.Client, group: tuple[str, list[str]]
) -> None:
    group_id, (ada, _bob) = group
    body = {"schemas": [GROUP], "displayName": "Platform", "externalId": "okta-2", "members": []}
    answer = peer.put(f"/Groups/{group_id}", json=body).raise_for_status().json()
    assert (answer["displayName"], answer["externalId"]) == ("Platform", "okta-2")
    assert _members(peer, group_id) == {ada}


def test_quirk_display_names_are_unique_only_in_exact_case(peer: httpx.Client) -> None:
    first = peer.post("/Groups", json={"schemas": [GROUP], "displayName": "Ops"})
    same = peer.post("/Groups", json={"schemas": [GROUP], "displayName": "Ops"})
    other_case = peer.post("/Groups", json={"schemas": [GROUP], "displayName": "OPS"})
    assert (first.status_code, same.status_code, other_case.status_code) == (201, 409, 201)
