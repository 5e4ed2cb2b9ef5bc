"""The control endpoint: each change an admin makes by hand shows in what the Management API then answers."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.testing.okta.helpers import API_TOKEN, Org


async def _control(http: aiohttp.ClientSession, org: Org, path: str = "", body: Any = None) -> tuple[int, Any]:
    url = f"{org.url}/demo/v1/apps/{org.app_id}/users{path}"
    method = http.get if body is None and not path else http.post
    async with method(url, json=body) as response:
        return response.status, await response.json()


async def _app_user(http: aiohttp.ClientSession, org: Org, user_id: str) -> tuple[int, Any]:
    async with http.get(f"{org.url}/api/v1/apps/{org.app_id}/users/{user_id}?expand=user") as response:
        return response.status, await response.json()


async def test_each_action_changes_what_the_management_api_answers(org: Org, http: aiohttp.ClientSession) -> None:
    status, hired = await _control(http, org, body={"login": "Ann@Example.com", "firstName": "Ann"})
    assert status == 201 and hired["assigned"] == "direct" and hired["status"] == "ACTIVE"
    user_id = hired["id"]
    assert (await _app_user(http, org, user_id))[0] == 200

    for action, okta_status in (("suspend", "SUSPENDED"), ("unsuspend", "ACTIVE"), ("deactivate", "DEPROVISIONED")):
        status, view = await _control(http, org, f"/ann@example.com/{action}", {})  # a login, in any case
        assert status == 200 and view["status"] == okta_status
        assert (await _app_user(http, org, user_id))[1]["_embedded"]["user"]["status"] == okta_status

    status, view = await _control(http, org, f"/{user_id}/rename", {"login": "ann.smith@example.com"})
    assert status == 200 and view["login"] == "ann.smith@example.com"
    assert (await _app_user(http, org, user_id))[1]["credentials"]["userName"] == "ann.smith@example.com"

    assert (await _control(http, org, f"/{user_id}/unassign", {}))[0] == 200
    assert (await _app_user(http, org, user_id))[0] == 404
    assert (await _control(http, org, f"/{user_id}/assign", {}))[0] == 200
    assert (await _app_user(http, org, user_id))[0] == 200
    listed = {user["id"]: user for user in (await _control(http, org))[1]}
    assert listed[user_id]["assigned"] == "direct"


async def test_refusals_say_why(org: Org, http: aiohttp.ClientSession) -> None:
    emulator = org.emulator
    member = emulator.create_user(login="grace@example.com", first_name="Grace", last_name="Hopper")
    group = emulator.create_group("Engineers")
    emulator.add_group_member(group.id, member.id)
    emulator.assign_group(org.app_id, group.id)

    status, body = await _control(http, org, "/grace@example.com/unassign", {})
    assert status == 409 and "through the group 'Engineers'" in body["errorSummary"]
    status, body = await _control(http, org, "/nobody@example.com/suspend", {})
    assert status == 404 and "nobody@example.com" in body["errorSummary"]
    status, body = await _control(http, org, "/grace@example.com/rename", {})
    assert status == 400 and "login" in body["errorSummary"]
    status, body = await _control(http, org, body={"login": "grace@example.com"})
    assert status == 400 and "already exists" in body["errorSummary"]
    async with aiohttp.ClientSession(headers={"Authorization": f"SSWS not-{API_TOKEN}"}) as stranger:
        assert (await _control(stranger, org))[0] == 401
