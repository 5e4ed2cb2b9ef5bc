"""The app-user listing answers like Okta: through the okta SDK's own models, and on the wire."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from okta.models.app_user_status import AppUserStatus

from reconciler.testing.okta import OktaEmulator
from tests.testing.okta.helpers import API_TOKEN, OKTA_ID, Org, page_links, sdk_client

# -- through the SDK's models -------------------------------------------------


async def test_listing_parses_through_the_sdk_models(org: Org) -> None:
    emulator = org.emulator
    ada = emulator.create_user(
        login="ada@example.com", first_name="Ada", last_name="Lovelace", displayName="Ada L", locale="en_GB"
    )
    emulator.assign_user(org.app_id, ada.id, profile={"displayName": "Countess"})
    emulator.mark_provisioned(org.app_id, ada.id, scim_id="scim-ada")
    emulator.set_user_status(ada.id, "SUSPENDED")
    group = emulator.create_group("Engineering")
    grace = emulator.create_user(login="grace@example.com", first_name="Grace", last_name="Hopper")
    emulator.add_group_member(group.id, grace.id)
    emulator.assign_group(org.app_id, group.id)

    async with sdk_client(org.url, token=API_TOKEN) as client:
        app_users, response, error = await client.list_application_users(org.app_id, limit=500, expand="user")

    assert error is None
    by_id = {app_user.id: app_user for app_user in app_users}
    assert set(by_id) == {ada.id, grace.id}
    provisioned = by_id[ada.id]
    assert provisioned.status is AppUserStatus.PROVISIONED
    assert provisioned.sync_state.value == "SYNCHRONIZED"
    assert provisioned.scope == "USER"
    assert provisioned.external_id == "scim-ada"
    assert provisioned.last_sync is not None
    assert provisioned.credentials.user_name == "ada@example.com"
    assert provisioned.profile == {
        "givenName": "Ada",
        "familyName": "Lovelace",
        "email": "ada@example.com",
        "displayName": "Countess",
        "locale": "en_GB",
    }
    assert provisioned.embedded["user"]["status"] == "SUSPENDED"
    assert provisioned.embedded["user"]["profile"]["login"] == "ada@example.com"
    from_group = by_id[grace.id]
    assert from_group.scope == "GROUP"
    assert from_group.external_id is None
    assert from_group.links.group.name == "Engineering"
    assert response.headers["X-Rate-Limit-Limit"] == "600"


async def test_single_resources_parse_through_the_sdk_models(org: Org) -> None:
    user = org.emulator.create_user(login="ken@example.com", first_name="Ken", last_name="Thompson", status="STAGED")
    org.emulator.assign_user(org.app_id, user.id, user_name="kthompson")

    async with sdk_client(org.url, token=API_TOKEN) as client:
        app, _, app_error = await client.get_application(org.app_id)
        okta_user, _, user_error = await client.get_user(user.id)
        by_login, _, _ = await client.get_user("ken@example.com")
        app_user, _, app_user_error = await client.get_application_user(org.app_id, user.id, expand="user")

    assert (app_error, user_error, app_user_error) == (None, None, None)
    assert app.id == org.app_id
    assert app.sign_on_mode.value == "SAML_2_0"
    assert okta_user.status.value == "STAGED"
    assert okta_user.activated is None
    assert okta_user.profile.login == "ken@example.com"
    assert by_login.id == user.id
    assert app_user.credentials.user_name == "kthompson"
    assert app_user.embedded["user"]["id"] == user.id


async def test_link_headers_survive_the_sdk_header_dict(org: Org) -> None:
    """The SDK keeps the last of repeated headers: Okta's order (self, then next) keeps the next link."""
    org.emulator.add_assigned_users(org.app_id, 3)

    async with sdk_client(org.url, token=API_TOKEN) as client:
        _, response, _ = await client.list_application_users(org.app_id, limit=2)

    assert 'rel="next"' in response.headers["Link"]


# -- on the wire --------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "501", "-3", "many"])
async def test_limit_out_of_bounds_is_an_okta_400(org: Org, http: aiohttp.ClientSession, limit: str) -> None:
    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}/users", params={"limit": limit}) as response:
        body = await response.json()

    assert response.status == 400
    assert body["errorCode"] == "E0000001"
    assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}


async def test_limit_defaults_to_50_and_accepts_the_bounds(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.add_assigned_users(org.app_id, 60)
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    async with http.get(users_url) as default:
        assert len(await default.json()) == 50
        assert page_links(default)[0] == f'<{users_url}?limit=50>; rel="self"'
    for limit, expected in (("1", 1), ("500", 60)):
        async with http.get(users_url, params={"limit": limit}) as response:
            assert response.status == 200
            assert len(await response.json()) == expected


async def test_cursor_paging_follows_link_headers_across_pages(org: Org, http: aiohttp.ClientSession) -> None:
    seeded = org.emulator.add_assigned_users(org.app_id, 1234)
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    url: str | None = f"{users_url}?expand=user&limit=500"
    pages: list[list[dict[str, Any]]] = []
    while url is not None:
        async with http.get(url) as response:
            page = await response.json()
            links = page_links(response)
        pages.append(page)
        assert links[0] == f'<{url}>; rel="self"'
        url = links[1].removeprefix("<").removesuffix('>; rel="next"') if len(links) > 1 else None
        if url is not None:
            assert url == f"{users_url}?after={page[-1]['id']}&expand=user&limit=500"

    assert [len(page) for page in pages] == [500, 500, 234]
    listed = [app_user["id"] for page in pages for app_user in page]
    assert listed == sorted({user.id for user in seeded})


async def test_expand_user_embeds_the_user_and_is_absent_otherwise(org: Org, http: aiohttp.ClientSession) -> None:
    user = org.emulator.add_assigned_users(org.app_id, 1)[0]
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    async with http.get(users_url) as plain, http.get(users_url, params={"expand": "user"}) as expanded:
        plain_body, expanded_body = await plain.json(), await expanded.json()
    async with http.get(f"{org.url}/api/v1/users/{user.id}") as single:
        user_body = await single.json()

    assert "_embedded" not in plain_body[0]
    assert expanded_body[0]["_embedded"] == {"user": user_body}
    assert {key: value for key, value in expanded_body[0].items() if key != "_embedded"} == plain_body[0]
    assert list(plain_body[0]) == [
        "id", "externalId", "created", "lastUpdated", "scope", "status", "statusChanged",
        "passwordChanged", "syncState", "credentials", "profile", "_links",
    ]  # fmt: skip


async def test_user_and_group_scopes(org: Org, http: aiohttp.ClientSession) -> None:
    emulator = org.emulator
    direct = emulator.create_user(login="direct@example.com", first_name="D", last_name="Irect")
    both = emulator.create_user(login="both@example.com", first_name="B", last_name="Oth")
    member = emulator.create_user(login="member@example.com", first_name="M", last_name="Ember")
    group = emulator.create_group("Everyone")
    for user in (both, member):
        emulator.add_group_member(group.id, user.id)
    emulator.assign_user(org.app_id, direct.id)
    emulator.assign_user(org.app_id, both.id)
    emulator.assign_group(org.app_id, group.id)
    emulator.mark_provisioned(org.app_id, member.id, scim_id="scim-member")

    async def scopes() -> dict[str, str]:
        async with http.get(f"{org.url}/api/v1/apps/{org.app_id}/users") as response:
            return {app_user["id"]: app_user["scope"] for app_user in await response.json()}

    assert await scopes() == {direct.id: "USER", both.id: "USER", member.id: "GROUP"}
    emulator.unassign_user(org.app_id, both.id)
    assert await scopes() == {direct.id: "USER", both.id: "GROUP", member.id: "GROUP"}
    emulator.unassign_group(org.app_id, group.id)
    assert await scopes() == {direct.id: "USER"}
    emulator.assign_group(org.app_id, group.id)
    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}/users/{member.id}") as response:
        assert (await response.json())["externalId"] is None  # unassigning forgot the SCIM id


async def test_profile_changes_flow_into_the_mapped_app_profile(org: Org, http: aiohttp.ClientSession) -> None:
    user = org.emulator.add_assigned_users(org.app_id, 1)[0]
    org.emulator.update_user_profile(user.id, lastName="Renamed", email="renamed@example.com")

    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}/users/{user.id}") as response:
        profile = (await response.json())["profile"]

    assert (profile["familyName"], profile["email"]) == ("Renamed", "renamed@example.com")


async def test_unknown_app_user_and_cursor(org: Org, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{org.url}/api/v1/apps/0oaNOPE0000000000000/users") as no_app:
        assert no_app.status == 404
        assert (await no_app.json())[
            "errorSummary"
        ] == "Not found: Resource not found: 0oaNOPE0000000000000 (AppInstance)"
    async with http.get(f"{org.url}/api/v1/users/00uNOPE0000000000000") as no_user:
        assert (no_user.status, (await no_user.json())["errorCode"]) == (404, "E0000007")
    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}/users", params={"after": "garbage"}) as bad_cursor:
        assert (bad_cursor.status, (await bad_cursor.json())["errorCode"]) == (400, "E0000029")


# -- ids ----------------------------------------------------------------------


def test_ids_look_like_okta_ids_and_follow_the_seed() -> None:
    def some_ids(seed: int) -> list[str]:
        emulator = OktaEmulator(seed=seed)
        app = emulator.create_app()
        users = emulator.add_assigned_users(app.id, 3)
        return [app.id, emulator.create_group("G").id, *(user.id for user in users)]

    ids = some_ids(seed=3)
    assert all(OKTA_ID.match(okta_id) for okta_id in ids)
    assert some_ids(seed=3) == ids
    assert some_ids(seed=4) != ids
