"""The Okta emulator answers like Okta: through the okta SDK's own models, and on the wire."""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from okta.client import Client
from okta.models.app_user_status import AppUserStatus
from okta.models.application_group_assignment import ApplicationGroupAssignment
from okta.models.group import Group

from reconciler.testing.okta import (
    TOKEN_PATH,
    FaultKind,
    OktaEmulator,
    okta_emulator_in_thread,
    run_okta_emulator,
)

API_TOKEN = "00emulator-test-token"
READ_SCOPES = ["okta.apps.read", "okta.users.read"]
OKTA_ID = re.compile(r"^(00u|00g|0oa)[A-Za-z0-9]{17}$")


@dataclass
class Org:
    emulator: OktaEmulator
    url: str
    app_id: str


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    emulator = OktaEmulator(seed=7, api_tokens=[API_TOKEN])
    app = emulator.create_app()
    async with run_okta_emulator(emulator) as url:
        yield Org(emulator, url, app.id)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"SSWS {API_TOKEN}"}) as session:
        yield session


@contextmanager
def http_check_disabled() -> Iterator[None]:
    """The SDK refuses an http:// org URL unless this variable is set while the client is built."""
    previous = os.environ.get("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK")
    os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = "true"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"]
        else:
            os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = previous


def sdk_client(org_url: str, **config: Any) -> Client:
    with http_check_disabled():
        return Client({"orgUrl": org_url, "requestTimeout": 10, "rateLimit": {"maxRetries": 0}, **config})


def pem(private_key: rsa.RSAPrivateKey) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def page_links(response: aiohttp.ClientResponse) -> list[str]:
    return response.headers.getall("Link", [])


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


async def test_bad_or_missing_token_is_401_e0000011(org: Org) -> None:
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "SSWS wrong"}, {"Authorization": "Bearer unknown"}):
            async with session.get(users_url, headers=headers) as response:
                body = await response.json()
                assert response.status == 401
                assert (body["errorCode"], body["errorSummary"]) == ("E0000011", "Invalid token provided")
                assert "X-Rate-Limit-Remaining" in response.headers

    async with sdk_client(org.url, token="wrong") as client:
        _, _, error = await client.list_application_users(org.app_id)
    assert (error.status, error.error_code) == (401, "E0000011")


async def test_rate_limit_headers_and_429(http: aiohttp.ClientSession) -> None:
    now = [1_700_000_000.0]
    emulator = OktaEmulator(api_tokens=[API_TOKEN], clock=lambda: now[0])
    app = emulator.create_app()
    user = emulator.create_user(login="a@example.com", first_name="A", last_name="B")
    emulator.set_rate_limit(2, bucket="/api/v1/apps")
    async with run_okta_emulator(emulator) as url:
        users_url = f"{url}/api/v1/apps/{app.id}/users"
        remaining = []
        for _ in range(2):
            async with http.get(users_url) as response:
                remaining.append(response.headers["X-Rate-Limit-Remaining"])
        async with http.get(users_url) as limited:
            body = await limited.json()
        async with http.get(f"{url}/api/v1/users/{user.id}") as other_bucket:
            assert other_bucket.status == 200
        now[0] += 61
        async with http.get(users_url) as after_window:
            assert after_window.status == 200

    assert remaining == ["1", "0"]
    assert limited.status == 429
    assert (body["errorCode"], body["errorSummary"]) == (
        "E0000047",
        "API call exceeded rate limit due to too many requests.",
    )
    assert limited.headers["X-Rate-Limit-Limit"] == "2"
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    assert limited.headers["X-Rate-Limit-Reset"] == str(1_700_000_000 + 60)
    assert limited.headers["Date"]


async def test_private_key_jwt_token_flow_through_the_sdk(org: Org, private_key: rsa.RSAPrivateKey) -> None:
    client_id = org.emulator.register_client(private_key.public_key(), READ_SCOPES)
    org.emulator.add_assigned_users(org.app_id, 3)
    config = {
        "authorizationMode": "PrivateKey",
        "clientId": client_id,
        "scopes": READ_SCOPES,
        "privateKey": pem(private_key),
    }

    async with sdk_client(org.url, **config) as client:
        first, _, first_error = await client.list_application_users(org.app_id, expand="user")
        second, _, _ = await client.list_application_users(org.app_id)

    assert first_error is None
    assert len(first) == len(second) == 3
    assert [(r.method, r.path, r.auth_scheme) for r in org.emulator.requests] == [
        ("POST", TOKEN_PATH, None),
        ("GET", f"/api/v1/apps/{org.app_id}/users", "Bearer"),
        ("GET", f"/api/v1/apps/{org.app_id}/users", "Bearer"),
    ]


async def test_assertion_signed_by_another_key_is_refused(org: Org, private_key: rsa.RSAPrivateKey) -> None:
    client_id = org.emulator.register_client(private_key.public_key(), READ_SCOPES)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    config = {
        "authorizationMode": "PrivateKey",
        "clientId": client_id,
        "scopes": READ_SCOPES,
        "privateKey": pem(forger),
    }

    async with sdk_client(org.url, **config) as client:
        app_users, _, error = await client.list_application_users(org.app_id)

    assert app_users is None
    assert (error.status, error.error_code) == (401, "invalid_client")
    assert "signature is invalid" in error.error_summary
    assert org.emulator.request_count("/api/v1/*") == 0


def assertion(private_key: rsa.RSAPrivateKey, client_id: str, audience: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 300}
    claims["jti"] = str(uuid.uuid4())
    return jwt.encode({**claims, **overrides}, private_key, algorithm="RS256")


async def post_token(url: str, client_assertion: str, scope: str = "okta.apps.read") -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion,
    }
    async with aiohttp.ClientSession() as session, session.post(url + TOKEN_PATH, data=form) as response:
        return response.status, await response.json()


async def test_token_endpoint_checks_the_assertion_and_scopes(org: Org, private_key: rsa.RSAPrivateKey) -> None:
    client_id = org.emulator.register_client(pem_public(private_key), ["okta.apps.read"])
    audience = org.url + TOKEN_PATH
    replayed = assertion(private_key, client_id, audience)

    status, granted = await post_token(org.url, replayed)
    assert (status, granted["token_type"], granted["expires_in"], granted["scope"]) == (
        200,
        "Bearer",
        3600,
        "okta.apps.read",
    )
    assert granted["access_token"]
    cases = {
        "replayed": replayed,
        "wrong audience": assertion(private_key, client_id, "https://elsewhere.example.com/oauth2/v1/token"),
        "expired": assertion(private_key, client_id, audience, exp=int(time.time()) - 10),
        "unknown client": assertion(private_key, "0oaUNKNOWN00000000000", audience),
        "sub differs": assertion(private_key, client_id, audience, sub="someone-else"),
        "not a JWT": "not-a-jwt",
    }
    for case, client_assertion in cases.items():
        status, body = await post_token(org.url, client_assertion)
        assert (status, body["error"]) == (401, "invalid_client"), case
    status, body = await post_token(org.url, assertion(private_key, client_id, audience), scope="okta.users.manage")
    assert (status, body["error"]) == (400, "invalid_scope")
    assert "okta.users.manage" in body["error_description"]


def pem_public(private_key: rsa.RSAPrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


async def test_access_token_scopes_are_enforced(org: Org, private_key: rsa.RSAPrivateKey) -> None:
    client_id = org.emulator.register_client(private_key.public_key(), ["okta.apps.read"])
    user = org.emulator.add_assigned_users(org.app_id, 1)[0]
    _, token = await post_token(org.url, assertion(private_key, client_id, org.url + TOKEN_PATH))
    headers = {"Authorization": f"Bearer {token['access_token']}"}

    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{org.url}/api/v1/apps/{org.app_id}/users") as allowed:
            assert allowed.status == 200
        async with session.get(f"{org.url}/api/v1/users/{user.id}") as denied:
            assert (denied.status, (await denied.json())["errorCode"]) == (403, "E0000006")
        org.emulator.revoke_access_tokens()
        async with session.get(f"{org.url}/api/v1/apps/{org.app_id}/users") as revoked:
            assert revoked.status == 401


# -- faults, latency, request log ---------------------------------------------


async def test_nth_request_fault_and_request_log(org: Org, http: aiohttp.ClientSession) -> None:
    rule = org.emulator.inject_fault("/api/v1/apps/*/users", status=500, nth=2)
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    statuses = []
    for _ in range(3):
        async with http.get(users_url, params={"limit": "5"}) as response:
            statuses.append(response.status)
            if response.status == 500:
                assert (await response.json())["errorCode"] == "E0000009"
                assert "X-Rate-Limit-Reset" in response.headers

    assert statuses == [200, 500, 200]
    assert (rule.seen, rule.fired) == (3, 1)
    assert [(r.status, r.query, r.auth_scheme) for r in org.emulator.requests] == [
        (200, {"limit": "5"}, "SSWS"),
        (500, {"limit": "5"}, "SSWS"),
        (200, {"limit": "5"}, "SSWS"),
    ]
    assert org.emulator.request_count("/api/v1/apps/*/users", method="GET") == 3


async def test_fault_without_date_and_rate_limit_headers(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.inject_fault("/api/v1/apps/*", status=503, rate_limit_headers=False)

    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}/users") as response:
        body = await response.json()

    assert response.status == 503
    assert body["errorSummary"] == "Service Unavailable"
    assert "Date" not in response.headers
    assert not [name for name in response.headers if name.lower().startswith("x-rate-limit")]


async def test_dropped_connection_and_non_json_answers(org: Org, http: aiohttp.ClientSession) -> None:
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"
    org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.DROP, times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(users_url):
            pass
    org.emulator.clear_faults()
    org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.NON_JSON, status=200)

    async with http.get(users_url) as response:
        assert (response.status, response.content_type) == (200, "text/html")
        assert (await response.text()).startswith("<html>")
    assert [r.status for r in org.emulator.requests] == [None, None, 200]


async def test_truncated_and_reset_answers(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.add_assigned_users(org.app_id, 3)
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"
    async with http.get(users_url) as response:
        whole = await response.read()
    org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.TRUNCATED)

    async with http.get(users_url) as response:
        assert (response.status, response.content_type) == (200, "application/json")
        cut = await response.read()
    assert cut == whole[: len(whole) // 2] and int(response.headers["Content-Length"]) == len(cut)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)

    org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.RESET, keep_bytes=10)
    async with http.get(users_url) as response:
        assert response.status == 200 and int(response.headers["Content-Length"]) == len(whole)
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert [r.status for r in org.emulator.requests] == [200, 200, None]


async def test_a_delay_beyond_the_client_timeout_is_a_read_timeout(org: Org, http: aiohttp.ClientSession) -> None:
    rule = org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.DELAY, delay_s=0.5)
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    with pytest.raises(TimeoutError):
        async with http.get(users_url, timeout=aiohttp.ClientTimeout(total=0.1)):
            pass
    async with http.get(users_url, timeout=aiohttp.ClientTimeout(total=5)) as response:
        assert response.status == 200  # the rule fired once
    assert (rule.seen, rule.fired) == (2, 1)


async def test_a_token_revoked_between_pages(org: Org, http: aiohttp.ClientSession) -> None:
    """A CALL fault runs its action after answering: here the first page is served, the second refused."""
    org.emulator.add_assigned_users(org.app_id, 3)
    org.emulator.inject_fault(
        "/api/v1/apps/*/users", kind=FaultKind.CALL, action=lambda: org.emulator.revoke_api_token(API_TOKEN)
    )
    users_url = f"{org.url}/api/v1/apps/{org.app_id}/users"

    async with http.get(users_url, params={"limit": "2"}) as first:
        assert first.status == 200 and len(await first.json()) == 2
        next_url = next(link for link in page_links(first) if 'rel="next"' in link)[1:].partition(">")[0]
    async with http.get(next_url) as second:
        assert second.status == 401
        assert (await second.json())["errorCode"] == "E0000011"
    with pytest.raises(ValueError, match="needs an action"):
        org.emulator.inject_fault("/api/v1/apps/*/users", kind=FaultKind.CALL)


async def test_latency_delays_answers(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.set_latency(150)
    started = time.perf_counter()
    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}") as response:
        assert response.status == 200
    assert time.perf_counter() - started >= 0.15


# -- ids and runners ----------------------------------------------------------


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


def test_thread_runner_serves_sync_callers() -> None:
    emulator = OktaEmulator(api_tokens=[API_TOKEN])
    app = emulator.create_app()

    with okta_emulator_in_thread(emulator) as url:
        assert url.startswith("http://127.0.0.1:")
        emulator.add_assigned_users(app.id, 2)  # changed while the server thread runs
        request = urllib.request.Request(
            f"{url}/api/v1/apps/{app.id}/users", headers={"Authorization": f"SSWS {API_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            listed = json.load(response)

    assert [app_user["id"] for app_user in listed] == emulator.listed_user_ids(app.id)
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(f"{url}/api/v1/apps/{app.id}", timeout=2)


# -- caches: a change shows in the very next read -----------------------------


@dataclass
class Cast:
    """A small org: Ada and Ken assigned directly, Grace through Engineering then Ops."""

    emulator: OktaEmulator
    url: str
    app_id: str
    ada: str
    ken: str
    grace: str
    engineering: str
    ops: str


@pytest.fixture
async def cast() -> AsyncIterator[Cast]:
    emulator = OktaEmulator(seed=5, api_tokens=[API_TOKEN], rate_limit=100_000)
    app_id = emulator.create_app().id
    ada = emulator.create_user(login="ada@example.com", first_name="Ada", last_name="Lovelace").id
    ken = emulator.create_user(login="ken@example.com", first_name="Ken", last_name="Thompson").id
    grace = emulator.create_user(login="grace@example.com", first_name="Grace", last_name="Hopper").id
    emulator.assign_user(app_id, ada)
    emulator.assign_user(app_id, ken, external_id="scim-ken")
    engineering, ops = emulator.create_group("Engineering").id, emulator.create_group("Ops").id
    for group_id in (engineering, ops):
        emulator.add_group_member(group_id, grace)
        emulator.assign_group(app_id, group_id)
    async with run_okta_emulator(emulator) as url:
        yield Cast(emulator, url, app_id, ada, ken, grace, engineering, ops)


async def read_listing(
    http: aiohttp.ClientSession, url: str, app_id: str, *, expand: bool = True, limit: int = 1
) -> dict[str, Any]:
    """Every listed app user by id, read page by page through the Link headers."""
    query = f"?limit={limit}" + ("&expand=user" if expand else "")
    next_url: str | None = f"{url}/api/v1/apps/{app_id}/users{query}"
    listed: dict[str, Any] = {}
    while next_url is not None:
        async with http.get(next_url) as response:
            assert response.status == 200
            listed.update((app_user["id"], app_user) for app_user in await response.json())
            links = page_links(response)
        next_url = links[1].removeprefix("<").removesuffix('>; rel="next"') if len(links) > 1 else None
    return listed


async def read_app_user(http: aiohttp.ClientSession, url: str, app_id: str, user_id: str) -> Any:
    async with http.get(f"{url}/api/v1/apps/{app_id}/users/{user_id}", params={"expand": "user"}) as response:
        assert response.status == 200
        return await response.json()


def by_login(listed: dict[str, Any], login: str) -> Any:
    return next(app_user for app_user in listed.values() if app_user["credentials"]["userName"] == login)


def add_member_to_ops(cast: Cast) -> None:
    newcomer = cast.emulator.create_user(login="new@example.com", first_name="New", last_name="Comer")
    cast.emulator.add_group_member(cast.ops, newcomer.id)


def assign_newcomer(cast: Cast) -> None:
    newcomer = cast.emulator.create_user(login="new@example.com", first_name="New", last_name="Comer")
    cast.emulator.assign_user(cast.app_id, newcomer.id, user_name="newcomer")


def unassign_group_member(cast: Cast) -> None:
    cast.emulator.add_group_member(cast.engineering, cast.ada)
    cast.emulator.unassign_user(cast.app_id, cast.ada)


def remove_from_both_groups(cast: Cast) -> None:
    cast.emulator.remove_group_member(cast.engineering, cast.grace)
    cast.emulator.remove_group_member(cast.ops, cast.grace)


def group_link(app_user: Any) -> str | None:
    return app_user["_links"].get("group", {}).get("name")


CHANGES: dict[str, tuple[Callable[[Cast], Any], Callable[[Cast, dict[str, Any]], bool]]] = {
    "profile": (
        lambda c: c.emulator.update_user_profile(c.ada, firstName="Augusta", displayName="A. King"),
        lambda c, listed: (
            listed[c.ada]["profile"]["givenName"] == "Augusta"
            and listed[c.ada]["_embedded"]["user"]["profile"]["displayName"] == "A. King"
        ),
    ),
    "user status": (
        lambda c: c.emulator.set_user_status(c.ada, "SUSPENDED"),
        lambda c, listed: (
            listed[c.ada]["_embedded"]["user"]["status"] == "SUSPENDED"
            and "unsuspend" in listed[c.ada]["_embedded"]["user"]["_links"]
        ),
    ),
    "set_app_user": (
        lambda c: c.emulator.set_app_user(
            c.app_id, c.ada, status="INACTIVE", sync_state="ERROR", user_name="alovelace", profile={"locale": "en_GB"}
        ),
        lambda c, listed: (
            (listed[c.ada]["status"], listed[c.ada]["syncState"]) == ("INACTIVE", "ERROR")
            and listed[c.ada]["credentials"]["userName"] == "alovelace"
            and listed[c.ada]["profile"]["locale"] == "en_GB"
        ),
    ),
    "mark_provisioned": (
        lambda c: c.emulator.mark_provisioned(c.app_id, c.grace, "scim-grace"),
        lambda c, listed: (
            (listed[c.grace]["status"], listed[c.grace]["externalId"]) == ("PROVISIONED", "scim-grace")
            and "lastSync" in listed[c.grace]
        ),
    ),
    "clear_external_id": (
        lambda c: c.emulator.clear_external_id(c.app_id, c.ken),
        lambda c, listed: listed[c.ken]["externalId"] is None,
    ),
    "unassign_user": (
        lambda c: c.emulator.unassign_user(c.app_id, c.ada),
        lambda c, listed: c.ada not in listed and c.ken in listed,
    ),
    "unassign_user, still in a group": (
        unassign_group_member,
        lambda c, listed: listed[c.ada]["scope"] == "GROUP" and group_link(listed[c.ada]) == "Engineering",
    ),
    "assign_user": (assign_newcomer, lambda c, listed: by_login(listed, "newcomer")["scope"] == "USER"),
    "assign_user, a group member": (
        lambda c: c.emulator.assign_user(c.app_id, c.grace),
        lambda c, listed: listed[c.grace]["scope"] == "USER" and group_link(listed[c.grace]) is None,
    ),
    "add_group_member": (add_member_to_ops, lambda c, listed: by_login(listed, "new@example.com")["scope"] == "GROUP"),
    "remove_group_member, another group still assigns": (
        lambda c: c.emulator.remove_group_member(c.engineering, c.grace),
        lambda c, listed: group_link(listed[c.grace]) == "Ops",
    ),
    "remove_group_member, no group left": (remove_from_both_groups, lambda c, listed: c.grace not in listed),
    "unassign_group": (
        lambda c: c.emulator.unassign_group(c.app_id, c.engineering),
        lambda c, listed: group_link(listed[c.grace]) == "Ops",
    ),
    "assign_group": (
        lambda c: c.emulator.assign_group(c.app_id, c.emulator.create_group("Empty").id) or add_member_to_ops(c),
        lambda c, listed: len(listed) == 4,
    ),
    "add_assigned_users": (
        lambda c: c.emulator.add_assigned_users(c.app_id, 3),
        lambda c, listed: len(listed) == 6,
    ),
    "user_type_id": (
        lambda c: setattr(c.emulator, "user_type_id", "otyReplacedType00000"),
        lambda c, listed: listed[c.ada]["_embedded"]["user"]["type"]["id"] == "otyReplacedType00000",
    ),
}


@pytest.mark.parametrize(("change", "check"), CHANGES.values(), ids=CHANGES.keys())
async def test_a_change_shows_in_the_next_listing(
    cast: Cast,
    http: aiohttp.ClientSession,
    change: Callable[[Cast], Any],
    check: Callable[[Cast, dict[str, Any]], bool],
) -> None:
    """Fill the caches (every page, with and without expand=user), change the state, read again: nothing stale."""
    cast.emulator.warm_listing(cast.app_id, cast.url)
    for expand in (True, False):
        await read_listing(http, cast.url, cast.app_id, expand=expand)

    change(cast)
    expanded = await read_listing(http, cast.url, cast.app_id)
    plain = await read_listing(http, cast.url, cast.app_id, expand=False, limit=500)

    assert check(cast, expanded)
    assert list(expanded) == cast.emulator.listed_user_ids(cast.app_id)
    assert plain == {user_id: without_embedded(app_user) for user_id, app_user in expanded.items()}
    for user_id, app_user in expanded.items():
        assert app_user == await read_app_user(http, cast.url, cast.app_id, user_id)


def without_embedded(app_user: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in app_user.items() if key != "_embedded"}


class RandomChanges:
    """Random changes through the Python API, with a model of who the listing should show."""

    def __init__(self, emulator: OktaEmulator, app_id: str, users: list[str], seed: int) -> None:
        self.emulator, self.app_id, self.users = emulator, app_id, users
        self.rng = random.Random(seed)
        self.groups = [emulator.create_group(f"G{number}").id for number in range(3)]
        self.direct = set(users)
        self.members: dict[str, set[str]] = {group_id: set() for group_id in self.groups}
        self.assigned: list[str] = []

    def expected(self) -> list[str]:
        return sorted(self.direct.union(*(self.members[group_id] for group_id in self.assigned)))

    def change(self) -> None:
        rng, emulator, app_id = self.rng, self.emulator, self.app_id
        user_id, group_id = rng.choice(self.users), rng.choice(self.groups)
        listed = user_id in self.expected()
        match rng.randrange(10):
            case 0:
                emulator.update_user_profile(user_id, displayName=f"Name {rng.random()}")
            case 1:
                emulator.set_user_status(user_id, rng.choice(["ACTIVE", "SUSPENDED", "DEPROVISIONED"]))
            case 2 if listed:
                emulator.mark_provisioned(app_id, user_id, f"scim-{rng.random()}")
            case 3 if listed:
                emulator.set_app_user(app_id, user_id, status="INACTIVE", external_id=f"x-{rng.random()}")
            case 4 if listed:
                emulator.clear_external_id(app_id, user_id)
            case 5:
                emulator.assign_user(app_id, user_id)
                self.direct.add(user_id)
            case 6 if user_id in self.direct:
                emulator.unassign_user(app_id, user_id)
                self.direct.discard(user_id)
            case 7:
                emulator.add_group_member(group_id, user_id)
                self.members[group_id].add(user_id)
            case 8 if user_id in self.members[group_id]:
                emulator.remove_group_member(group_id, user_id)
                self.members[group_id].discard(user_id)
            case 9 if group_id in self.assigned:
                emulator.unassign_group(app_id, group_id)
                self.assigned.remove(group_id)
            case 9:
                emulator.assign_group(app_id, group_id)
                self.assigned.append(group_id)


async def test_random_changes_between_page_reads_never_show_stale_app_users(http: aiohttp.ClientSession) -> None:
    """After each random change, a page from a random cursor matches the model and the single reads."""
    emulator = OktaEmulator(seed=20, api_tokens=[API_TOKEN], rate_limit=100_000)
    app_id = emulator.create_app().id
    changes = RandomChanges(emulator, app_id, [user.id for user in emulator.add_assigned_users(app_id, 12)], seed=20)

    async with run_okta_emulator(emulator) as url:
        for step in range(150):
            changes.change()
            expected = changes.expected()
            start = changes.rng.randrange(len(expected) + 1)
            params = {"limit": "3", "expand": "user", **({"after": expected[start - 1]} if start else {})}
            async with http.get(f"{url}/api/v1/apps/{app_id}/users", params=params) as response:
                page = await response.json()
            assert [app_user["id"] for app_user in page] == expected[start : start + 3], step
            for app_user in page:
                assert app_user == await read_app_user(http, url, app_id, app_user["id"]), step


# -- group endpoints ----------------------------------------------------------

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "okta-recorded"


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
