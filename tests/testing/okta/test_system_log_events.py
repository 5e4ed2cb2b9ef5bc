"""The System Log's events: each change writes what Okta writes, in Okta's LogEvent shape."""

from __future__ import annotations

import re

import aiohttp
from okta.models.log_event import LogEvent

from tests.testing.okta.helpers import API_TOKEN, Org
from tests.testing.okta.log_helpers import an_hour_ago, follow, logs_url, spec_log_event_example, summary

PUBLISHED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MEMBERSHIP_TARGETS = ["AppUser", "AppInstance", "User"]


async def read_all(org: Org, http: aiohttp.ClientSession) -> list[dict]:
    events, _ = await follow(http, logs_url(org.url, since=an_hour_ago(), limit=1000))
    return events


async def test_user_and_assignment_changes_write_oktas_events_in_order(org: Org, http: aiohttp.ClientSession) -> None:
    emulator = org.emulator
    ada = emulator.create_user(login="ada@example.com", first_name="Ada", last_name="Lovelace")
    emulator.assign_user(org.app_id, ada.id)
    emulator.set_app_user(org.app_id, ada.id, profile={"title": "Countess"})
    emulator.set_app_user(org.app_id, ada.id, user_name="ada.l@example.com")
    emulator.update_user_profile(ada.id, department="Maths")
    emulator.set_user_status(ada.id, "SUSPENDED")
    emulator.set_user_status(ada.id, "ACTIVE")
    emulator.set_user_status(ada.id, "DEPROVISIONED")
    emulator.set_user_status(ada.id, "ACTIVE")
    emulator.record_push(org.app_id, ada.id, reason="The app answered 500")
    emulator.unassign_user(org.app_id, ada.id)
    emulator.delete_user(ada.id)

    events = await read_all(org, http)

    assert summary(events) == [
        ("application.lifecycle.create", ["AppInstance"], "WEB"),
        ("user.lifecycle.create", ["User"], "WEB"),
        ("user.lifecycle.activate", ["User"], "WEB"),
        ("application.user_membership.add", MEMBERSHIP_TARGETS, "WEB"),
        ("application.user_membership.update", MEMBERSHIP_TARGETS, "WEB"),
        ("application.user_membership.change_username", MEMBERSHIP_TARGETS, "WEB"),
        ("user.account.update_profile", ["User"], "WEB"),
        ("user.lifecycle.suspend", ["User"], "WEB"),
        ("user.lifecycle.unsuspend", ["User"], "WEB"),
        ("user.lifecycle.deactivate", ["User"], "WEB"),
        ("user.lifecycle.activate", ["User"], "WEB"),
        ("application.provision.user.push_profile", MEMBERSHIP_TARGETS, "JOB"),
        ("application.user_membership.remove", MEMBERSHIP_TARGETS, "WEB"),
        ("user.lifecycle.deactivate", ["User"], "WEB"),
        ("user.lifecycle.delete.initiated", ["User"], "WEB"),
        ("user.lifecycle.delete.completed", ["User"], "WEB"),
    ]
    add, renamed, push = events[3], events[5], events[11]
    app_user, app, user = add["target"]
    assert (user["id"], user["alternateId"], app["id"]) == (ada.id, "ada@example.com", org.app_id)
    assert re.fullmatch(r"0ua[A-Za-z0-9]{17}", app_user["id"])
    assert renamed["target"][0] == {**app_user, "alternateId": "ada.l@example.com"}
    assert add["legacyEventType"] == "app.generic.provision.assign_user_to_app"
    assert push["outcome"] == {"result": "FAILURE", "reason": "The app answered 500"}
    assert push["legacyEventType"] == "app.user_management.push_profile_failure"
    assert (await http.get(f"{org.url}/api/v1/users/{ada.id}")).status == 404


async def test_group_changes_fan_out_as_jobs_for_the_members_whose_listing_changes(
    org: Org, http: aiohttp.ClientSession
) -> None:
    emulator = org.emulator
    direct, member, joiner = (
        emulator.create_user(login=f"{name}@example.com", first_name=name, last_name="X")
        for name in ("direct", "member", "joiner")
    )
    group = emulator.create_group("Engineering")
    emulator.assign_user(org.app_id, direct.id)
    emulator.add_group_member(group.id, direct.id)
    emulator.add_group_member(group.id, member.id)
    before = len(emulator.logged_events())

    emulator.assign_group(org.app_id, group.id)
    emulator.add_group_member(group.id, joiner.id)
    emulator.rename_group(group.id, "Platform")
    emulator.remove_group_member(group.id, member.id)
    emulator.unassign_group(org.app_id, group.id)

    events = (await read_all(org, http))[before:]
    assert summary(events) == [
        ("group.application_assignment.add", ["AppInstance", "UserGroup"], "WEB"),
        ("application.user_membership.add", MEMBERSHIP_TARGETS, "JOB"),
        ("group.user_membership.add", ["User", "UserGroup"], "WEB"),
        ("application.user_membership.add", MEMBERSHIP_TARGETS, "JOB"),
        ("group.profile.update", ["UserGroup"], "WEB"),
        ("group.user_membership.remove", ["User", "UserGroup"], "WEB"),
        ("application.user_membership.remove", MEMBERSHIP_TARGETS, "JOB"),
        ("group.application_assignment.remove", ["AppInstance", "UserGroup"], "WEB"),
        ("application.user_membership.remove", MEMBERSHIP_TARGETS, "JOB"),
    ]
    fanned_out_users = [event["target"][2]["id"] for event in events if event["transaction"]["type"] == "JOB"]
    assert fanned_out_users == [member.id, joiner.id, member.id, joiner.id]
    assert events[0]["target"][1] == {
        "id": group.id, "type": "UserGroup", "alternateId": "unknown", "displayName": "Engineering", "detailEntry": None
    }  # fmt: skip
    assert events[2]["legacyEventType"] == "core.user_group_member.user_add"


async def test_served_events_are_sdk_log_events_with_the_specs_keys(org: Org, http: aiohttp.ClientSession) -> None:
    emulator = org.emulator
    user = emulator.create_user(login="grace@example.com", first_name="Grace", last_name="Hopper")
    group = emulator.create_group("Navy")
    emulator.add_group_member(group.id, user.id)
    emulator.assign_group(org.app_id, group.id)
    emulator.record_push(org.app_id, user.id, operation="deactivate")
    example = spec_log_event_example()

    events = await read_all(org, http)

    assert len(events) == 8
    for event in events:
        model = LogEvent.from_dict(event)
        assert (model.event_type, model.uuid, model.version) == (event["eventType"], event["uuid"], "0")
        assert model.target and model.target[0].id == event["target"][0]["id"]
        assert set(event) == set(example) - {"device"}, event["eventType"]
        assert all(set(target) == set(example["target"][0]) for target in event["target"])
        assert set(event["actor"]) == set(example["actor"])
        assert set(event["outcome"]) == set(example["outcome"])
        assert set(event["transaction"]) == set(example["transaction"])
        assert set(event["authenticationContext"]) <= set(example["authenticationContext"])
        assert PUBLISHED.match(event["published"]) and UUID.match(event["uuid"])
    assert len({event["uuid"] for event in events}) == len(events)


async def test_malformed_events_are_served_as_published(org: Org, http: aiohttp.ClientSession) -> None:
    org.emulator.add_log_event(b'{"uuid": 7, "eventType": ["not", "a", "string"]}')
    org.emulator.add_log_event({"eventType": "user.lifecycle.deactivate", "target": "nobody"})

    events = await read_all(org, http)

    assert events[-2:] == [
        {"uuid": 7, "eventType": ["not", "a", "string"]},
        {"eventType": "user.lifecycle.deactivate", "target": "nobody"},
    ]


async def test_control_endpoint_records_a_failed_push(org: Org, http: aiohttp.ClientSession) -> None:
    user = org.emulator.create_user(login="linus@example.com", first_name="Linus", last_name="T")
    org.emulator.assign_user(org.app_id, user.id)
    url = f"{org.url}/demo/v1/apps/{org.app_id}/users/linus@example.com/push-failure"

    async with http.post(url, json={"operation": "deactivate", "reason": "SCIM server down"}) as response:
        assert response.status == 200
    async with http.post(url, json={"operation": "teleport"}) as refused:
        assert refused.status == 400
        assert "teleport" in (await refused.json())["errorSummary"]

    async with aiohttp.ClientSession(headers={"Authorization": f"SSWS {API_TOKEN}"}) as session:
        events, _ = await follow(
            session, logs_url(org.url, since=an_hour_ago(), filter='eventType sw "application.provision."')
        )
    assert [(e["eventType"], e["outcome"]["result"], e["outcome"]["reason"]) for e in events] == [
        ("application.provision.user.deactivate", "FAILURE", "SCIM server down")
    ]
