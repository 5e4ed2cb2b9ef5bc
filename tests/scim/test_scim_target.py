"""The SCIM target against real servers on loopback: scim2-server, and a scripted fault server."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from reconciler.errors import TargetConflict, TargetError, TargetNotFound
from reconciler.models.records import PlatformUser
from reconciler.models.scim_path import ENTERPRISE_URN
from reconciler.net.pacing import parse_retry_after
from reconciler.net.retries import RetryPolicy
from reconciler.scim.discovery import DEFAULT_CAPABILITIES, ScimCapabilities
from reconciler.scim.page import to_platform_user
from reconciler.scim.patch import PATCH_OP_URN, apply_operations
from reconciler.scim.reader import ScimReader, filter_string
from reconciler.secret import Secret
from reconciler.testing.scim_server import RunningScimServer, free_loopback_port, run_scim2_server
from tests.support.scim_clients import reader_on, writer_of
from tests.support.scim_fault_server import FaultServer, Reply, scim_error, scim_user

TOKEN = "scim-test-token-0123456789"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
FAST_RETRY = RetryPolicy(attempts=4, backoff_multiplier_s=0.01, max_backoff_s=0.05, jitter_s=0.01, retry_after_cap_s=5)
DEACTIVATE = [{"op": "replace", "value": {"active": False}}]

PUT_ONLY_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": False},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": False, "maxResults": 1000},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": True},
    "authenticationSchemes": [],
}
"""A platform without PATCH or filtering, as some in-house SCIM endpoints are."""


@pytest.fixture(scope="module")
def scim_server() -> Iterator[RunningScimServer]:
    with run_scim2_server(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def put_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningScimServer]:
    """scim2-server announcing (and enforcing, with 501) no PATCH and no filter."""
    config = tmp_path_factory.mktemp("scim") / "service-provider-config.json"
    config.write_text(json.dumps(PUT_ONLY_CONFIG))
    with run_scim2_server(TOKEN, ["--service-provider-config", str(config)]) as server:
        yield server


def reader_for(base_url: str, token: str = TOKEN, **options: Any) -> ScimReader:
    return reader_on(base_url, Secret(token), retry=FAST_RETRY, **options)


def new_user(user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [CORE_USER], "userName": user_name, "active": True, **attributes}


async def create(base_url: str, resource: dict[str, Any]) -> PlatformUser:
    async with reader_for(base_url) as reader:
        return await writer_of(reader).create_user(resource)


async def read_back(base_url: str, user_name: str) -> PlatformUser:
    async with reader_for(base_url) as reader:
        (user,) = await reader.find_by_user_name(user_name)
        return user


# --- discovery ---------------------------------------------------------------------------------


async def test_discover_reads_scim2_server_configuration(scim_server: RunningScimServer) -> None:
    async with reader_for(scim_server.base_url) as reader:
        capabilities = await reader.discover()
    assert capabilities == ScimCapabilities(
        patch_supported=True, filter_supported=True, max_results=1000, etag_supported=True
    )


@pytest.mark.parametrize(
    "reply",
    [
        scim_error(404, "no such endpoint"),
        Reply(200, "<html>Sign in</html>", content_type="text/html"),
        Reply(200, '{"patch": {"supported": tru'),
        Reply(200, {"patch": {"supported": "perhaps"}}),
    ],
    ids=["404", "html", "malformed-json", "invalid"],
)
async def test_discover_assumes_safe_defaults_without_a_usable_configuration(reply: Reply) -> None:
    async with FaultServer() as server:
        server.script("GET", "/ServiceProviderConfig", reply)
        async with reader_for(server.base_url) as reader:
            assert await reader.discover() == DEFAULT_CAPABILITIES
    assert DEFAULT_CAPABILITIES == ScimCapabilities(
        patch_supported=True, filter_supported=False, max_results=None, etag_supported=False
    )


async def test_discover_ignores_vendor_additions() -> None:
    config = {"patch": {"supported": False, "vendorFlag": 1}, "filter": {"supported": True, "maxResults": 50}}
    async with FaultServer(service_provider_config={**config, "urn:vendor:extra": {"x": 1}}) as server:
        async with reader_for(server.base_url) as reader:
            assert await reader.discover() == ScimCapabilities(False, True, 50, False)


async def test_refused_token_names_the_setting_and_never_the_token(scim_server: RunningScimServer) -> None:
    wrong = "wrong-token-abcdef"
    async with reader_for(scim_server.base_url, token=wrong) as reader:
        with pytest.raises(TargetError) as raised:
            await reader.list_users()
    assert raised.value.status == 401
    assert "scim.token_env" in str(raised.value) and "scim.token_file" in str(raised.value)
    assert wrong not in str(raised.value) and TOKEN not in str(raised.value)


# --- listing -----------------------------------------------------------------------------------


async def test_list_users_reads_every_page(scim_server: RunningScimServer) -> None:
    async with reader_for(scim_server.base_url, page_size=100) as reader:
        writer = writer_of(reader)
        for index in range(250):
            await writer.create_user(new_user(f"paged{index:03}@example.com", externalId=f"00u{index}"))

    async with reader_for(scim_server.base_url, page_size=100) as reader:
        users = await reader.list_users()
        counts = reader.request_counts

    paged = {u.user_name: u for u in users if u.user_name.startswith("paged")}
    assert len(paged) == 250
    assert len({u.scim_id for u in users}) == len(users)
    assert paged["paged042@example.com"].external_id == "00u42"
    assert paged["paged042@example.com"].active is True
    assert paged["paged042@example.com"].version is not None
    assert counts == {"GET": 1 + math.ceil(len(users) / 100)}


async def test_a_server_returning_short_pages_without_items_per_page_is_read_whole() -> None:
    users = [scim_user(i) for i in range(1, 26)]
    async with FaultServer(users=users, page_cap=7, items_per_page=False) as server:
        async with reader_for(server.base_url, page_size=10) as reader:
            listed = await reader.list_users()
        asked = [(r.query["startIndex"], r.query["count"]) for r in server.seen("GET", "/Users")]
    assert [u.scim_id for u in listed] == [f"id-{i}" for i in range(1, 26)]
    assert asked == [("1", "10"), ("8", "7"), ("15", "7"), ("22", "7")]  # then asks for what the server gives


async def test_pages_after_the_first_are_read_in_parallel() -> None:
    users = [scim_user(i) for i in range(1, 101)]
    async with FaultServer(users=users, listing_delay_s=0.05) as server:
        async with reader_for(server.base_url, page_size=10, read_concurrency=4) as reader:
            listed = await reader.list_users()
            counts = reader.request_counts
        peak = server.peak_in_flight
    assert [u.scim_id for u in listed] == [f"id-{i}" for i in range(1, 101)]
    assert counts == {"GET": 1 + 10}  # discovery, then exactly one request per page
    assert peak == 4


async def test_a_short_page_in_the_middle_leaves_no_hole() -> None:
    users = [scim_user(i) for i in range(1, 41)]
    async with FaultServer(users=users, short_pages={11: 4}) as server:
        async with reader_for(server.base_url, page_size=10) as reader:
            listed = await reader.list_users()
        start_indexes = sorted(int(r.query["startIndex"]) for r in server.seen("GET", "/Users"))
    assert [u.scim_id for u in listed] == [f"id-{i}" for i in range(1, 41)]
    assert start_indexes == [1, 11, 15, 21, 31]  # the hole 15..20 is read once, then nothing more


async def test_page_size_is_capped_by_max_results() -> None:
    config = {"filter": {"supported": True, "maxResults": 3}}
    async with FaultServer(users=[scim_user(i) for i in range(1, 8)], service_provider_config=config) as server:
        async with reader_for(server.base_url, page_size=100) as reader:
            assert len(await reader.list_users()) == 7
        assert {r.query["count"] for r in server.seen("GET", "/Users")} == {"3"}


def _page(total: int, *users: dict[str, Any]) -> Reply:
    return Reply(200, {"schemas": [], "totalResults": total, "Resources": list(users)})


@pytest.mark.parametrize(
    ("replies", "says"),
    [
        ([_page(5, scim_user(1), scim_user(2)), _page(5)], "partial"),
        ([_page(4, scim_user(1), scim_user(2)), _page(4, scim_user(1), scim_user(2))], "ignore startIndex"),
        ([Reply(200, '{"totalResults": 1, "Resources": [')], "malformed JSON"),
        ([Reply(200, "<html>maintenance</html>", content_type="text/html")], "an HTML page"),
        ([Reply(200, {"Resources": [scim_user(1)]})], "without totalResults"),
        ([_page(1, {"id": "x"})], "userName"),
    ],
    ids=["empty-page-early", "repeated-page", "malformed-json", "html", "no-total", "user-without-userName"],
)
async def test_a_listing_that_cannot_be_read_whole_is_an_error(replies: list[Reply], says: str) -> None:
    async with FaultServer() as server:
        server.script("GET", "/Users", *replies)
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError, match=says):
                await reader.list_users()


async def test_a_listing_whose_total_changes_between_pages_is_read_again() -> None:
    """User 3 removed between pages 1 and 2 would carry user 4 out of sight: the listing is read again."""
    async with FaultServer(users=[scim_user(i) for i in range(1, 5)]) as server:
        server.script("GET", "/Users", _page(4, scim_user(1), scim_user(2)), _page(3, scim_user(4)))
        async with reader_for(server.base_url, page_size=2) as reader:
            listed = await reader.list_users()
        start_indexes = [int(r.query["startIndex"]) for r in server.seen("GET", "/Users")]
    assert [u.scim_id for u in listed] == ["id-1", "id-2", "id-3", "id-4"]
    assert start_indexes == [1, 3, 1, 3]


async def test_a_total_that_keeps_changing_is_an_error() -> None:
    async with FaultServer(users=[scim_user(i) for i in range(1, 5)]) as server:
        server.script("GET", "/Users", *[_page(4, scim_user(1), scim_user(2)), _page(5, scim_user(3))] * 3)
        async with reader_for(server.base_url, page_size=2) as reader:
            with pytest.raises(TargetError, match=r"totalResults changed between pages \(4 on the first page, 5 at"):
                await reader.list_users()
        assert len(server.seen("GET", "/Users")) == 6  # three listings, each given up at its second page


async def test_a_reader_issues_only_gets(scim_server: RunningScimServer) -> None:
    async with reader_for(scim_server.base_url) as reader:
        await reader.discover()
        await reader.list_users()
        await reader.find_by_user_name("nobody@example.com")
        assert set(reader.request_counts) == {"GET"}
    assert not any(hasattr(ScimReader, name) for name in ("create_user", "patch_user", "send", "request"))


async def test_a_handed_in_client_is_used_and_left_open() -> None:
    async with FaultServer(users=[scim_user(1)]) as server, httpx.AsyncClient() as client:
        async with reader_for(server.base_url, client=client) as reader:
            assert len(await reader.list_users()) == 1
        assert not client.is_closed
        assert len(server.seen("GET", "/Users")) == 1


def test_platform_user_reads_absent_active_as_true() -> None:
    user = to_platform_user({"id": "1", "userName": "a@example.com", "urn:vendor:x": {"keep": True}})
    assert user.active is True and user.external_id is None and user.version is None
    assert user.resource["urn:vendor:x"] == {"keep": True}


# --- create, conflict, lookup ------------------------------------------------------------------


async def test_a_duplicate_user_name_in_another_case_conflicts_and_is_found(scim_server: RunningScimServer) -> None:
    created = await create(scim_server.base_url, new_user("Alice.Conflict@Example.com", externalId="00uA"))
    assert created.user_name == "Alice.Conflict@Example.com" and created.scim_id

    async with reader_for(scim_server.base_url) as reader:
        writer = writer_of(reader)
        with pytest.raises(TargetConflict) as raised:
            await writer.create_user(new_user("alice.conflict@example.com"))
        found = await writer.find_by_user_name("ALICE.CONFLICT@example.com")
        assert reader.request_counts["POST"] == 1  # a 409 is not retried
    assert raised.value.status == 409 and raised.value.scim_type == "uniqueness"
    assert "POST /Users" in str(raised.value)
    assert [u.scim_id for u in found] == [created.scim_id]
    assert found[0].external_id == "00uA"


async def test_find_by_user_name_escapes_quotes_and_backslashes(scim_server: RunningScimServer) -> None:
    odd = 'o"brien\\x@example.com'
    created = await create(scim_server.base_url, new_user(odd))
    async with reader_for(scim_server.base_url) as reader:
        assert [u.scim_id for u in await reader.find_by_user_name(odd)] == [created.scim_id]
    assert filter_string(odd) == '"o\\"brien\\\\x@example.com"'


async def test_find_by_user_name_scans_the_listing_without_filter_support(
    put_only_server: RunningScimServer,
) -> None:
    created = await create(put_only_server.base_url, new_user("Scan.Me@example.com"))
    async with reader_for(put_only_server.base_url) as reader:
        assert [u.scim_id for u in await reader.find_by_user_name("scan.me@EXAMPLE.com")] == [created.scim_id]


@pytest.mark.parametrize(
    "filter_reply",
    [scim_error(400, "filter not understood", "invalidFilter"), _page(0)],
    ids=["refused", "case-sensitive-eq-finds-nobody"],
)
async def test_find_by_user_name_scans_when_the_filter_fails_it(filter_reply: Reply) -> None:
    config = {"filter": {"supported": True, "maxResults": 100}}
    users = [scim_user(1), scim_user(2, userName="Bob@Example.com")]
    async with FaultServer(users=users, service_provider_config=config) as server:
        server.script("GET", "/Users", filter_reply)
        async with reader_for(server.base_url) as reader:
            found = await reader.find_by_user_name("bob@example.com")
        queries = [r.query for r in server.seen("GET", "/Users")]
    assert [u.scim_id for u in found] == ["id-2"]
    assert queries[0]["filter"] == 'userName eq "bob@example.com"' and "filter" not in queries[1]


# --- patch and put -----------------------------------------------------------------------------


async def test_patch_deactivates_and_a_204_gives_none(scim_server: RunningScimServer) -> None:
    user = await create(scim_server.base_url, new_user("deactivate.me@example.com"))
    async with reader_for(scim_server.base_url) as reader:
        assert await writer_of(reader).patch_user(user, DEACTIVATE) is None
        assert reader.request_counts["PATCH"] == 1 and reader.request_counts["PUT"] == 0
    assert (await read_back(scim_server.base_url, "deactivate.me@example.com")).active is False


async def test_a_patch_answered_with_the_user_gives_the_updated_user() -> None:
    updated = scim_user(1, active=False, meta={"version": 'W/"2"'})
    async with FaultServer(service_provider_config={"patch": {"supported": True}}) as server:
        server.script("PATCH", "/Users/id-1", Reply(200, updated))
        async with reader_for(server.base_url) as reader:
            result = await writer_of(reader).patch_user(_platform(scim_user(1)), DEACTIVATE)
        (sent,) = server.seen("PATCH", "/Users/id-1")
    assert result is not None and result.active is False and result.version == 'W/"2"'
    assert sent.body == {"schemas": [PATCH_OP_URN], "Operations": DEACTIVATE}
    assert sent.headers["Content-Type"] == "application/scim+json"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "application/scim+json" in sent.headers["Accept"]


async def test_without_patch_support_a_put_keeps_what_is_not_managed(put_only_server: RunningScimServer) -> None:
    resource = new_user(
        "put.me@example.com",
        name={"givenName": "Old", "familyName": "Keep"},
        displayName="Put Me",
        title="Platform-owned title",
        emails=[{"value": "put.me@example.com", "type": "work", "primary": True}],
        schemas=[CORE_USER, ENTERPRISE_URN],
        **{ENTERPRISE_URN: {"department": "Platform-owned"}},
    )
    user = await create(put_only_server.base_url, resource)
    operations = [*DEACTIVATE, {"op": "replace", "path": "name.givenName", "value": "New"}]
    async with reader_for(put_only_server.base_url) as reader:
        result = await writer_of(reader).patch_user(user, operations)
        assert reader.request_counts["PUT"] == 1 and reader.request_counts["PATCH"] == 0

    stored = (await read_back(put_only_server.base_url, "put.me@example.com")).resource
    assert result is not None and result.active is False
    assert stored["active"] is False
    assert stored["name"] == {"givenName": "New", "familyName": "Keep"}
    assert stored["title"] == "Platform-owned title" and stored["displayName"] == "Put Me"
    assert stored["emails"] == resource["emails"]
    assert stored[ENTERPRISE_URN] == {"department": "Platform-owned"}


async def test_a_listing_keeps_only_what_is_compared_and_a_put_reads_the_user_whole_first(
    put_only_server: RunningScimServer,
) -> None:
    resource = new_user(
        "listed.partly@example.com",
        name={"givenName": "Old", "familyName": "Keep"},
        title="Platform-owned title",
        schemas=[CORE_USER, ENTERPRISE_URN],
        **{ENTERPRISE_URN: {"department": "Platform-owned"}},
    )
    await create(put_only_server.base_url, resource)
    async with reader_for(put_only_server.base_url, keep_attributes=frozenset({"name"})) as reader:
        (user,) = [u for u in await reader.list_users() if u.user_name == "listed.partly@example.com"]
        assert user.partial and set(user.resource) <= {"id", "userName", "externalId", "active", "schemas", "name"}
        await writer_of(reader).patch_user(user, [{"op": "replace", "path": "name.givenName", "value": "New"}])
        assert reader.request_counts["PUT"] == 1

    stored = (await read_back(put_only_server.base_url, "listed.partly@example.com")).resource
    assert stored["name"] == {"givenName": "New", "familyName": "Keep"}
    assert stored["title"] == "Platform-owned title"
    assert stored[ENTERPRISE_URN] == {"department": "Platform-owned"}


async def test_a_put_over_a_stale_version_reads_the_user_again_and_keeps_the_other_change(
    put_only_server: RunningScimServer,
) -> None:
    stale = await create(put_only_server.base_url, new_user("stale@example.com", title="first"))
    async with reader_for(put_only_server.base_url) as reader:
        writer = writer_of(reader)
        await writer.patch_user(stale, [{"op": "replace", "path": "title", "value": "second"}])
        await writer.patch_user(stale, DEACTIVATE)  # 412 over the stale version, then again over the new one
        assert reader.request_counts["PUT"] == 3 and reader.request_counts["GET"] == 2  # discovery, the re-read
    stored = (await read_back(put_only_server.base_url, "stale@example.com")).resource
    assert stored["title"] == "second" and stored["active"] is False


async def test_a_put_refused_412_twice_fails_clearly() -> None:
    config = {"patch": {"supported": False}, "etag": {"supported": True}}
    user = scim_user(1, meta={"version": 'W/"1"'})
    async with FaultServer(service_provider_config=config) as server:
        stale = scim_error(412, "Resource has changed on the server")
        server.script("PUT", "/Users/id-1", stale, stale)
        server.script("GET", "/Users/id-1", Reply(200, scim_user(1, meta={"version": 'W/"2"'})))
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError, match="changed on the platform again") as raised:
                await writer_of(reader).patch_user(_platform(user), DEACTIVATE)
        if_match = [r.headers.get("If-Match") for r in server.seen("PUT", "/Users/id-1")]
    assert raised.value.status == 412
    assert if_match == [None, 'W/"2"']  # the listed user carried no version; the re-read one does


async def test_patching_a_missing_user_is_not_found(scim_server: RunningScimServer) -> None:
    missing = _platform(scim_user(1, id="no-such-id"))
    async with reader_for(scim_server.base_url) as reader:
        with pytest.raises(TargetNotFound) as raised:
            await writer_of(reader).patch_user(missing, DEACTIVATE)
    assert raised.value.status == 404 and "PATCH /Users/no-such-id" in str(raised.value)


def _platform(resource: dict[str, Any]) -> PlatformUser:
    return PlatformUser(resource["id"], resource["userName"], None, True, resource)


def test_apply_operations_merges_and_keeps_what_it_is_not_told_about() -> None:
    resource = {
        "schemas": [CORE_USER],
        "id": "1",
        "userName": "a@example.com",
        "name": {"givenName": "A", "familyName": "B"},
        "emails": [{"value": "a@old.example.com", "type": "work", "primary": True}, {"value": "h@x.y", "type": "home"}],
        "groups": [{"value": "g1"}],
        "meta": {"version": 'W/"1"'},
        "nickName": "drop me",
    }
    operations = [
        {"op": "replace", "value": {"name": {"givenName": "Z"}, "active": False}},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "a@new.example.com"},
        {"op": "add", "path": f"{ENTERPRISE_URN}:department", "value": "Sales"},
        {"op": "remove", "path": "nickName"},
        {"op": "replace", "path": "externalId", "value": "00u1"},
    ]
    result = apply_operations(resource, operations)
    assert result == {
        "schemas": [CORE_USER, ENTERPRISE_URN],
        "id": "1",
        "userName": "a@example.com",
        "name": {"givenName": "Z", "familyName": "B"},
        "emails": [{"value": "a@new.example.com", "type": "work", "primary": True}, {"value": "h@x.y", "type": "home"}],
        "active": False,
        "externalId": "00u1",
        ENTERPRISE_URN: {"department": "Sales"},
    }
    assert resource["name"] == {"givenName": "A", "familyName": "B"}  # the input is left alone


def test_apply_operations_refuses_what_it_cannot_replay() -> None:
    with pytest.raises(ValueError, match="cannot replay"):
        apply_operations({"id": "1"}, [{"op": "replace", "path": 'emails[value sw "a"].type', "value": "x"}])
    with pytest.raises(ValueError, match="needs a path"):
        apply_operations({"id": "1"}, [{"op": "remove"}])


# --- retries -----------------------------------------------------------------------------------


async def test_a_429_is_retried_after_the_retry_after_delay() -> None:
    async with FaultServer(users=[scim_user(1)]) as server:
        server.script("GET", "/Users", replace(scim_error(429, "slow down"), headers={"Retry-After": "1"}))
        async with reader_for(server.base_url) as reader:
            assert len(await reader.list_users()) == 1
        first, second = server.seen("GET", "/Users")
    assert 0.9 <= second.at - first.at < 2.0


async def test_5xx_twice_then_success_is_retried() -> None:
    async with FaultServer(users=[scim_user(1), scim_user(2)]) as server:
        bad_gateway = Reply(502, "<html>bad gateway</html>", content_type="text/html")
        server.script("GET", "/Users", scim_error(503, "busy"), bad_gateway)
        async with reader_for(server.base_url) as reader:
            assert len(await reader.list_users()) == 2
        assert len(server.seen("GET", "/Users")) == 3


async def test_a_read_timeout_is_retried() -> None:
    async with FaultServer(users=[scim_user(1)]) as server:
        server.script("GET", "/Users", Reply(200, {}, delay_s=0.5))
        async with reader_for(server.base_url, timeout_s=0.1) as reader:
            assert len(await reader.list_users()) == 1
        assert len(server.seen("GET", "/Users")) == 2


async def test_a_400_is_not_retried() -> None:
    async with FaultServer() as server:
        server.script("GET", "/Users", scim_error(400, "count is invalid", "invalidValue"))
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError) as raised:
                await reader.list_users()
        assert len(server.seen("GET", "/Users")) == 1
    assert raised.value.status == 400 and raised.value.scim_type == "invalidValue"
    assert str(raised.value) == "SCIM GET /Users answered 400 Bad Request (invalidValue): count is invalid"


async def test_a_token_echoed_by_the_server_is_masked() -> None:
    async with FaultServer() as server:
        server.script("GET", "/Users", Reply(403, f"Authorization: Bearer {TOKEN}", content_type="text/plain"))
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError, match="403 Forbidden") as raised:
                await reader.list_users()
    assert TOKEN not in str(raised.value) and "********" in str(raised.value)


async def test_retries_are_bounded() -> None:
    async with FaultServer() as server:
        server.script("GET", "/Users", *[scim_error(503, "down")] * FAST_RETRY.attempts)
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError, match="gave up after 4 attempts") as raised:
                await reader.list_users()
        assert len(server.seen("GET", "/Users")) == FAST_RETRY.attempts
    assert raised.value.status == 503 and TOKEN not in str(raised.value)


async def test_a_refused_connection_fails_after_bounded_attempts() -> None:
    async with reader_for(f"http://127.0.0.1:{free_loopback_port()}/v2") as reader:
        with pytest.raises(TargetError, match="ConnectError") as raised:
            await reader.list_users()
        assert reader.request_counts["GET"] == FAST_RETRY.attempts
    assert raised.value.status is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = time.time()
    in_ten_seconds = format_datetime(datetime.fromtimestamp(int(now) + 10, UTC), usegmt=True)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(in_ten_seconds, now=int(now)) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


async def test_a_long_retry_after_is_capped() -> None:
    policy = RetryPolicy(attempts=2, retry_after_cap_s=0.2)
    async with FaultServer(users=[scim_user(1)]) as server:
        server.script("GET", "/Users", Reply(429, None, {"Retry-After": "3600"}))
        async with reader_on(server.base_url, Secret(TOKEN), retry=policy) as reader:
            started = time.monotonic()
            assert len(await reader.list_users()) == 1
    assert time.monotonic() - started < 1.5


# --- ETags on PATCH ------------------------------------------------------------------------------


async def test_a_patch_carries_if_match_and_a_stale_one_is_read_again_and_sent_once_more(
    scim_server: RunningScimServer,
) -> None:
    stale = await create(scim_server.base_url, new_user("stale.patch@example.com", title="first"))
    assert stale.version, "scim2-server versions its users"
    async with reader_for(scim_server.base_url) as reader:
        writer = writer_of(reader)
        await writer.patch_user(stale, [{"op": "replace", "path": "title", "value": "second"}])
        await writer.patch_user(stale, DEACTIVATE)  # 412 over the stale version, then again over the new one
        assert reader.request_counts["PATCH"] == 3 and reader.request_counts["GET"] == 2  # discovery, the re-read
    stored = (await read_back(scim_server.base_url, "stale.patch@example.com")).resource
    assert stored["title"] == "second" and stored["active"] is False


async def test_a_patch_refused_412_twice_fails_clearly_with_each_version_sent() -> None:
    config = {"patch": {"supported": True}, "etag": {"supported": True}}
    user = scim_user(1, meta={"version": 'W/"1"'})
    async with FaultServer(service_provider_config=config) as server:
        stale = scim_error(412, "Resource has changed on the server")
        server.script("PATCH", "/Users/id-1", stale, stale)
        server.script("GET", "/Users/id-1", Reply(200, scim_user(1, meta={"version": 'W/"2"'})))
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError, match="changed on the platform again") as raised:
                await writer_of(reader).patch_user(to_platform_user(user), DEACTIVATE)
        if_match = [r.headers.get("If-Match") for r in server.seen("PATCH", "/Users/id-1")]
    assert raised.value.status == 412
    assert if_match == ['W/"1"', 'W/"2"']


async def test_no_if_match_is_sent_where_the_server_has_no_etags() -> None:
    config = {"patch": {"supported": True}, "etag": {"supported": False}}
    user = scim_user(1, meta={"version": 'W/"1"'})
    async with FaultServer(service_provider_config=config) as server:
        server.script("PATCH", "/Users/id-1", Reply(204))
        async with reader_for(server.base_url) as reader:
            assert await writer_of(reader).patch_user(to_platform_user(user), DEACTIVATE) is None
        (patch,) = server.seen("PATCH", "/Users/id-1")
    assert "If-Match" not in patch.headers


# --- /ResourceTypes, /Schemas and the filter probe ----------------------------------------------


async def test_the_user_schema_of_scim2_server_lists_core_and_enterprise_attributes(
    scim_server: RunningScimServer,
) -> None:
    async with reader_for(scim_server.base_url) as reader:
        schema = await reader.discover_user_schema()
    assert schema.extensions == (ENTERPRISE_URN,)
    assert schema.attributes is not None
    assert {"username", "name.givenname", "emails.value", "title"} <= schema.attributes[CORE_USER.lower()]
    assert {"department", "manager.value"} <= schema.attributes[ENTERPRISE_URN.lower()]


async def test_a_server_without_discovery_documents_leaves_the_user_schema_unknown() -> None:
    async with FaultServer() as server:  # 404 on both
        server.script("GET", "/Schemas", Reply(200, "<html>nope</html>", content_type="text/html"))
        async with reader_for(server.base_url) as reader:
            schema = await reader.discover_user_schema()
    assert (schema.extensions, schema.attributes) == (None, None)
    assert "not announced" in schema.describe()


async def test_discovery_documents_as_bare_arrays_with_vendor_fields_are_read() -> None:
    resource_types = [
        {"id": "User", "endpoint": "/Users", "x-vendor": 1, "schemaExtensions": [{"schema": "urn:acme:User"}]}
    ]
    schemas = [{"id": CORE_USER, "attributes": [{"name": "userName", "x-vendor": True}, {"name": "title"}]}]
    async with FaultServer() as server:
        server.script("GET", "/ResourceTypes", Reply(200, resource_types))
        server.script("GET", "/Schemas", Reply(200, schemas))
        async with reader_for(server.base_url) as reader:
            schema = await reader.discover_user_schema()
    assert schema.extensions == ("urn:acme:User",)
    assert schema.attributes == {CORE_USER.lower(): frozenset({"username", "title"})}


async def test_the_filter_probe_tells_a_refused_filter_from_a_working_one(scim_server: RunningScimServer) -> None:
    async with reader_for(scim_server.base_url) as reader:
        assert await reader.filter_works() is True
    async with FaultServer() as server:
        server.script("GET", "/Users", scim_error(400, "filter not supported", "invalidFilter"))
        async with reader_for(server.base_url) as reader:
            assert await reader.filter_works() is False
