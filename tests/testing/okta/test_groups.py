"""Groups, their members and their app assignments answer like Okta: recorded shapes, SDK models, the wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from okta.models.application_group_assignment import ApplicationGroupAssignment
from okta.models.group import Group

from reconciler.testing.okta import TOKEN_PATH, OktaEmulator, run_okta_emulator
from tests.testing.okta.helpers import API_TOKEN, assertion, page_links, post_token, sdk_client

# -- group endpoints ----------------------------------------------------------

RECORDED = Path(__file__).resolve().parents[4] / "shared" / "okta-recorded"


def recorded_body(cassette: str, method: str, uri_suffix: str) -> Any:
    """The JSON body real Okta answered to the first ``method`` request whose URI ends with ``uri_suffix``."""
    path = RECORDED / cassette
    if not path.exists():
        pytest.skip(f"no recorded Okta answers at {path}")
    for interaction in yaml.safe_load(path.read_text())["interactions"]:
        request = interaction["request"]
        if request["method"] == method and request["uri"].split("?")[0].endswith(uri_suffix):
            return json.loads(interaction["response"]["body"]["string"])
    raise AssertionError(f"no {method} *{uri_suffix} in {cassette}")


def key_shape(value: Any) -> Any:
    """The nested keys of a JSON value (lists by their first item), to compare shapes not values."""
    if isinstance(value, dict):
        return {key: key_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [key_shape(value[0])] if value else []
    return None


@dataclass
class GroupOrg:
    emulator: OktaEmulator
    url: str
    app_id: str
    engineering: str
    ops: str
    member: str


@pytest.fixture
async def group_org() -> AsyncIterator[GroupOrg]:
    emulator = OktaEmulator(seed=11, api_tokens=[API_TOKEN])
    app_id = emulator.create_app().id
    member = emulator.create_user(login="grace@example.com", first_name="Grace", last_name="Hopper").id
    engineering = emulator.create_group("Engineering", "Builds things").id
    ops = emulator.create_group("Ops").id
    emulator.add_group_member(engineering, member)
    emulator.assign_group(app_id, engineering)
    emulator.assign_group(app_id, ops)
    async with run_okta_emulator(emulator) as url:
        yield GroupOrg(emulator, url, app_id, engineering, ops, member)


async def test_app_groups_match_the_recorded_okta_shape(group_org: GroupOrg, http: aiohttp.ClientSession) -> None:
    recorded = recorded_body("TestApplicationsResource.test_list_assign_group_app.yaml", "GET", "/groups")
    groups_url = f"{group_org.url}/api/v1/apps/{group_org.app_id}/groups"

    async with http.get(groups_url) as response:
        body = await response.json()
        links = page_links(response)

    assert response.status == 200
    assert [key_shape(item) for item in body] == [key_shape(item) for item in recorded]
    assert [list(item) for item in body] == [list(item) for item in recorded]
    assert [item["id"] for item in body] == sorted([group_org.engineering, group_org.ops])
    assert {item["id"]: item["priority"] for item in body} == {group_org.ops: 0, group_org.engineering: 1}
    first = next(item for item in body if item["id"] == group_org.engineering)
    assert first["_links"] == {
        "app": {"href": f"{group_org.url}/api/v1/apps/{group_org.app_id}"},
        "self": {"href": f"{groups_url}/{group_org.engineering}"},
        "group": {"href": f"{group_org.url}/api/v1/groups/{group_org.engineering}"},
    }
    assert links == [f'<{groups_url}?limit=20>; rel="self"']
    assert "X-Rate-Limit-Remaining" in response.headers


async def test_group_and_members_match_the_recorded_okta_shape(
    group_org: GroupOrg, http: aiohttp.ClientSession
) -> None:
    cassette = "TestGroupsResource.test_group_users_operations.yaml"
    recorded_group = recorded_body(cassette, "POST", "/api/v1/groups")
    recorded_members = recorded_body(cassette, "GET", "/users")
    group_url = f"{group_org.url}/api/v1/groups/{group_org.engineering}"

    async with http.get(group_url) as group_response, http.get(f"{group_url}/users") as members_response:
        group, members = await group_response.json(), await members_response.json()
        member_links = page_links(members_response)
    async with http.get(f"{group_org.url}/api/v1/users/{group_org.member}") as user_response:
        user = await user_response.json()

    assert key_shape(group) == key_shape(recorded_group)
    assert list(group) == list(recorded_group)
    assert (group["id"], group["type"], group["objectClass"]) == (
        group_org.engineering,
        "OKTA_GROUP",
        ["okta:user_group"],
    )
    assert group["profile"] == {"name": "Engineering", "description": "Builds things"}
    assert group["_links"]["users"] == {"href": f"{group_url}/users"}
    assert [list(member) for member in members] == [list(recorded_members[0])]
    assert members[0]["_links"] == {"self": {"href": f"{group_org.url}/api/v1/users/{group_org.member}"}}
    assert {key: value for key, value in members[0].items() if key != "_links"} == {
        key: value for key, value in user.items() if key != "_links"
    }
    assert member_links == [f'<{group_url}/users?limit=1000>; rel="self"']


async def test_expand_group_embeds_the_group(group_org: GroupOrg, http: aiohttp.ClientSession) -> None:
    groups_url = f"{group_org.url}/api/v1/apps/{group_org.app_id}/groups"

    async with http.get(groups_url, params={"expand": "group"}) as expanded, http.get(groups_url) as plain:
        expanded_body, plain_body = await expanded.json(), await plain.json()
    async with http.get(f"{group_org.url}/api/v1/groups/{group_org.ops}") as single:
        ops = await single.json()

    assert all("_embedded" not in item for item in plain_body)
    by_id = {item["id"]: item for item in expanded_body}
    assert by_id[group_org.ops]["_embedded"] == {"group": ops}
    assert [{k: v for k, v in item.items() if k != "_embedded"} for item in expanded_body] == plain_body


async def test_group_endpoints_parse_through_the_sdk_models(group_org: GroupOrg) -> None:
    async with sdk_client(group_org.url, token=API_TOKEN) as client:
        assignments, _, assignments_error = await client.list_application_group_assignments(
            group_org.app_id, expand="group"
        )
        group, _, group_error = await client.get_group(group_org.engineering)
        members, members_response, members_error = await client.list_group_users(group_org.engineering, limit=200)

    assert (assignments_error, group_error, members_error) == (None, None, None)
    assert isinstance(assignments[0], ApplicationGroupAssignment)
    assert {assignment.id: assignment.priority for assignment in assignments} == {
        group_org.ops: 0,
        group_org.engineering: 1,
    }
    assert all(assignment.profile == {} for assignment in assignments)
    assert all(assignment.embedded["group"]["type"] == "OKTA_GROUP" for assignment in assignments)
    assert isinstance(group, Group)
    assert group.type.value == "OKTA_GROUP"
    assert group.profile.actual_instance.name == "Engineering"
    assert group.last_membership_updated is not None
    assert [member.id for member in members] == [group_org.member]
    assert members[0].profile.login == "grace@example.com"
    assert members_response.headers["X-Rate-Limit-Limit"] == "600"


async def test_group_members_page_with_link_headers(http: aiohttp.ClientSession) -> None:
    emulator = OktaEmulator(seed=3, api_tokens=[API_TOKEN])
    group = emulator.create_group("Everyone")
    outsider = emulator.create_user(login="outsider@example.com", first_name="O", last_name="Utsider")
    members = [
        emulator.create_user(login=f"member{number}@example.com", first_name="M", last_name=str(number))
        for number in range(450)
    ]
    for member in members:
        emulator.add_group_member(group.id, member.id)
    async with run_okta_emulator(emulator) as url:
        users_url = f"{url}/api/v1/groups/{group.id}/users"
        next_url: str | None = f"{users_url}?limit=200"
        pages: list[list[dict[str, Any]]] = []
        while next_url is not None:
            async with http.get(next_url) as response:
                assert response.status == 200
                page = await response.json()
                links = page_links(response)
            pages.append(page)
            assert links[0] == f'<{next_url}>; rel="self"'
            next_url = links[1].removeprefix("<").removesuffix('>; rel="next"') if len(links) > 1 else None
            if next_url is not None:
                assert next_url == f"{users_url}?after={page[-1]['id']}&limit=200"

    assert [len(page) for page in pages] == [200, 200, 50]
    listed = [user["id"] for page in pages for user in page]
    assert listed == sorted(member.id for member in members)
    assert outsider.id not in listed


async def test_app_groups_page_with_link_headers(http: aiohttp.ClientSession) -> None:
    emulator = OktaEmulator(seed=4, api_tokens=[API_TOKEN])
    app_id = emulator.create_app().id
    group_ids = [emulator.create_group(f"Group {number}").id for number in range(45)]
    for group_id in group_ids:
        emulator.assign_group(app_id, group_id)
    async with run_okta_emulator(emulator) as url:
        groups_url = f"{url}/api/v1/apps/{app_id}/groups"
        next_url: str | None = groups_url
        pages: list[list[dict[str, Any]]] = []
        while next_url is not None:
            async with http.get(next_url) as response:
                pages.append(await response.json())
                links = page_links(response)
            next_url = links[1].removeprefix("<").removesuffix('>; rel="next"') if len(links) > 1 else None

    assert [len(page) for page in pages] == [20, 20, 5]
    assert [item["id"] for page in pages for item in page] == sorted(group_ids)
    priorities = {item["id"]: item["priority"] for page in pages for item in page}
    assert [priorities[group_id] for group_id in group_ids] == list(range(44, -1, -1))


@pytest.mark.parametrize(
    ("path", "limit"),
    [("apps/{app}/groups", "19"), ("apps/{app}/groups", "201"), ("groups/{group}/users", "0")]
    + [("groups/{group}/users", "1001"), ("groups/{group}/users", "many")],
)
async def test_group_listing_limits_out_of_bounds_are_okta_400s(
    group_org: GroupOrg, http: aiohttp.ClientSession, path: str, limit: str
) -> None:
    url = f"{group_org.url}/api/v1/" + path.format(app=group_org.app_id, group=group_org.engineering)
    async with http.get(url, params={"limit": limit}) as response:
        body = await response.json()

    assert (response.status, body["errorCode"]) == (400, "E0000001")


async def test_unknown_groups_apps_and_cursors(group_org: GroupOrg, http: aiohttp.ClientSession) -> None:
    base = f"{group_org.url}/api/v1"
    for url, resource, kind in (
        (f"{base}/apps/0oaNOPE0000000000000/groups", "0oaNOPE0000000000000", "AppInstance"),
        (f"{base}/groups/00gNOPE0000000000000", "00gNOPE0000000000000", "UserGroup"),
        (f"{base}/groups/00gNOPE0000000000000/users", "00gNOPE0000000000000", "UserGroup"),
    ):
        async with http.get(url) as response:
            body = await response.json()
            assert response.status == 404
            assert body["errorCode"] == "E0000007"
            assert body["errorSummary"] == f"Not found: Resource not found: {resource} ({kind})"
            assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
            assert "X-Rate-Limit-Remaining" in response.headers
    for url in (f"{base}/apps/{group_org.app_id}/groups", f"{base}/groups/{group_org.engineering}/users"):
        async with http.get(url, params={"after": "garbage"}) as bad_cursor:
            assert (bad_cursor.status, (await bad_cursor.json())["errorCode"]) == (400, "E0000029")


async def test_group_endpoints_refuse_missing_tokens_and_check_scopes(
    group_org: GroupOrg, private_key: rsa.RSAPrivateKey
) -> None:
    base = f"{group_org.url}/api/v1"
    urls = [f"{base}/apps/{group_org.app_id}/groups", f"{base}/groups/{group_org.engineering}"]
    urls.append(f"{base}/groups/{group_org.engineering}/users")
    async with aiohttp.ClientSession() as session:
        for url in urls:
            for headers in ({}, {"Authorization": "SSWS wrong"}):
                async with session.get(url, headers=headers) as response:
                    assert response.status == 401
                    assert (await response.json())["errorCode"] == "E0000011"

    client_id = group_org.emulator.register_client(private_key.public_key(), ["okta.apps.read"])
    status, token = await post_token(group_org.url, assertion(private_key, client_id, f"{group_org.url}{TOKEN_PATH}"))
    assert status == 200
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    async with aiohttp.ClientSession(headers=bearer) as session:
        async with session.get(urls[0]) as app_groups:
            assert app_groups.status == 200
        async with session.get(urls[1]) as group:
            assert group.status == 403
            assert 'scope="okta.groups.read"' in group.headers["WWW-Authenticate"]


async def test_group_endpoints_count_in_their_rate_limit_buckets(http: aiohttp.ClientSession) -> None:
    emulator = OktaEmulator(api_tokens=[API_TOKEN])
    app_id = emulator.create_app().id
    group_id = emulator.create_group("Everyone").id
    emulator.set_rate_limit(2, bucket="/api/v1/groups")
    async with run_okta_emulator(emulator) as url:
        remaining = []
        for path in (f"/api/v1/groups/{group_id}", f"/api/v1/groups/{group_id}/users"):
            async with http.get(url + path) as response:
                remaining.append(response.headers["X-Rate-Limit-Remaining"])
        async with http.get(f"{url}/api/v1/groups/{group_id}") as limited:
            assert (limited.status, (await limited.json())["errorCode"]) == (429, "E0000047")
        async with http.get(f"{url}/api/v1/apps/{app_id}/groups") as apps_bucket:
            assert apps_bucket.status == 200
            assert apps_bucket.headers["X-Rate-Limit-Limit"] == "600"

    assert remaining == ["1", "0"]
    assert limited.headers["X-Rate-Limit-Limit"] == "2"


async def test_group_changes_show_in_the_next_read(group_org: GroupOrg, http: aiohttp.ClientSession) -> None:
    emulator = group_org.emulator
    base = f"{group_org.url}/api/v1"
    members_url = f"{base}/groups/{group_org.engineering}/users"

    async def member_ids() -> list[str]:
        async with http.get(members_url) as response:
            return [user["id"] for user in await response.json()]

    async def app_user_group_name() -> str:
        async with http.get(f"{base}/apps/{group_org.app_id}/users/{group_org.member}") as response:
            return (await response.json())["_links"]["group"]["name"]

    assert await member_ids() == [group_org.member]
    assert await app_user_group_name() == "Engineering"
    newcomer = emulator.create_user(login="new@example.com", first_name="New", last_name="Comer").id
    emulator.add_group_member(group_org.engineering, newcomer)
    assert await member_ids() == sorted([group_org.member, newcomer])
    emulator.update_user_profile(newcomer, lastName="Renamed")
    async with http.get(members_url) as response:
        by_id = {user["id"]: user for user in await response.json()}
    assert by_id[newcomer]["profile"]["lastName"] == "Renamed"
    emulator.remove_group_member(group_org.engineering, group_org.member)
    assert await member_ids() == [newcomer]
    emulator.add_group_member(group_org.engineering, group_org.member)

    emulator.rename_group(group_org.engineering, "Platform")
    async with http.get(f"{base}/groups/{group_org.engineering}") as response:
        assert (await response.json())["profile"]["name"] == "Platform"
    async with http.get(f"{base}/apps/{group_org.app_id}/groups", params={"expand": "group"}) as response:
        embedded = {item["id"]: item["_embedded"]["group"] for item in await response.json()}
    assert embedded[group_org.engineering]["profile"]["name"] == "Platform"
    assert await app_user_group_name() == "Platform"

    emulator.unassign_group(group_org.app_id, group_org.ops)
    async with http.get(f"{base}/apps/{group_org.app_id}/groups") as response:
        assert [(item["id"], item["priority"]) for item in await response.json()] == [(group_org.engineering, 0)]
