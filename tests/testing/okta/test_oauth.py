"""Credentials: API tokens, private_key_jwt client assertions, access tokens and their scopes."""

from __future__ import annotations

import time

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.testing.okta import TOKEN_PATH
from tests.testing.okta.helpers import READ_SCOPES, Org, assertion, pem, pem_public, post_token, sdk_client


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
