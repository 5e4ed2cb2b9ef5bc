"""OktaSource reads the groups Group Push follows, with their members, from the Okta emulator over HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler.errors import SourceError
from reconciler.models.groups import OktaGroup
from reconciler.okta.groups import decode_app_groups, decode_group_members, decode_group_name, group_named
from reconciler.okta.source import OktaSource
from reconciler.secret import Secret
from reconciler.testing.okta import EmulatedGroup, FaultKind, OktaEmulator, run_okta_emulator
from tests.conftest import FAST_RETRIES, OKTA_RETRIES, OKTA_TOKEN

APP_GROUPS = "/api/v1/apps/*/groups"
GROUP = "/api/v1/groups/*"
MEMBERS = "/api/v1/groups/*/users"


@dataclass
class Org:
    emulator: OktaEmulator
    url: str
    app_id: str

    def source(self, **overrides: Any) -> OktaSource:
        settings: dict[str, Any] = {
            "org_url": self.url,
            "app_id": self.app_id,
            "auth": "api_token",
            "token": Secret(OKTA_TOKEN),
            "timeout_s": 5.0,
            **overrides,
        }
        return OktaSource(**settings)

    def group(self, name: str, *, members: int = 0, assigned: bool = True) -> EmulatedGroup:
        group = self.emulator.create_group(name)
        for n in range(members):
            user = self.emulator.create_user(login=f"{group.id}.{n}@example.com", first_name="M", last_name=str(n))
            self.emulator.add_group_member(group.id, user.id)
        if assigned:
            self.emulator.assign_group(self.app_id, group.id)
        return group


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OKTA_RETRIES, FAST_RETRIES)


async def serve(emulator: OktaEmulator) -> AsyncIterator[Org]:
    app = emulator.create_app()
    async with run_okta_emulator(emulator) as url:
        yield Org(emulator, url, app.id)


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    async for served in serve(OktaEmulator(seed=21, api_tokens=[OKTA_TOKEN])):
        yield served


def as_read(*groups: EmulatedGroup) -> list[OktaGroup]:
    """What the emulator holds for these groups, read through its Python API, sorted by id."""
    return [OktaGroup(g.id, g.name, frozenset(g.member_ids)) for g in sorted(groups, key=lambda g: g.id)]


async def pushed(org: Org, push: list[str], push_assigned: bool = False, **settings: Any) -> list[OktaGroup]:
    async with org.source(**settings) as source:
        return await source.list_pushed_groups(push, push_assigned)


async def refused(org: Org, push: list[str], push_assigned: bool = False) -> str:
    with pytest.raises(SourceError) as raised:
        await pushed(org, push, push_assigned)
    message = str(raised.value)
    assert OKTA_TOKEN not in message and OKTA_TOKEN not in repr(raised.value)
    return message


# -- push_assigned ------------------------------------------------------------------------------


async def test_push_assigned_reads_every_assigned_group_and_every_member_across_pages(org: Org) -> None:
    big = org.group("Everyone", members=1001)
    small = [org.group(f"Team {n:03}", members=n % 3) for n in range(204)]
    org.group("Not assigned", members=2, assigned=False)

    groups = await pushed(org, [], push_assigned=True)

    assert groups == as_read(big, *small)
    assert len(groups) == 205 and len(groups[[g.okta_group_id for g in groups].index(big.id)].member_ids) == 1001
    listing = [r for r in org.emulator.requests if r.path == f"/api/v1/apps/{org.app_id}/groups"]
    assert [(r.query["limit"], r.query["expand"], "after" in r.query) for r in listing] == [
        ("200", "group", False),
        ("200", "group", True),
    ]
    big_pages = [r for r in org.emulator.requests if r.path == f"/api/v1/groups/{big.id}/users"]
    assert [(r.query["limit"], "after" in r.query) for r in big_pages] == [("1000", False), ("1000", True)]
    assert org.emulator.request_count(MEMBERS) == 206  # one page each, two for the big group
    assert {r.status for r in org.emulator.requests} == {200}


async def test_an_app_without_groups_pushes_none(org: Org) -> None:
    org.group("Not assigned", members=1, assigned=False)

    assert await pushed(org, [], push_assigned=True) == []
    assert [r.path for r in org.emulator.requests] == [f"/api/v1/apps/{org.app_id}/groups"]


async def test_nothing_to_push_reads_nothing(org: Org) -> None:
    assert await pushed(org, [], push_assigned=False) == []
    assert org.emulator.requests == []


async def test_outside_a_context_manager_a_session_of_its_own_is_used(org: Org) -> None:
    group = org.group("Everyone", members=2)
    source = org.source()

    assert await source.list_pushed_groups([], True) == as_read(group)
    assert not source.connection.is_open


# -- push: names and ids ------------------------------------------------------------------------


async def test_push_by_name_and_by_id(org: Org) -> None:
    engineering = org.group("Engineering", members=3)
    sales = org.group("Sales", members=2)
    org.group("Support", members=1)
    contractors = org.group("Contractors", members=2, assigned=False)

    groups = await pushed(org, ["engineering", contractors.id, sales.id, "Sales", sales.id])

    assert groups == as_read(engineering, sales, contractors)
    assert org.emulator.request_count(APP_GROUPS) == 1  # the names' listing, read once
    assert org.emulator.request_count(f"/api/v1/groups/{contractors.id}") == 1  # unassigned: read by its id
    assert org.emulator.request_count(f"/api/v1/groups/{sales.id}") == 0  # assigned: its name is known


async def test_push_by_id_alone_does_not_read_the_app_s_groups(org: Org) -> None:
    assigned = org.group("Engineering", members=1)
    unassigned = org.group("Contractors", members=1, assigned=False)

    assert await pushed(org, [unassigned.id, assigned.id]) == as_read(assigned, unassigned)
    assert org.emulator.request_count(APP_GROUPS) == 0
    assert org.emulator.request_count(GROUP) == 4  # each group by id, then its members


async def test_push_and_push_assigned_are_united_each_group_once(org: Org) -> None:
    engineering = org.group("Engineering", members=2)
    sales = org.group("Sales", members=1)
    contractors = org.group("Contractors", members=1, assigned=False)

    groups = await pushed(org, ["Engineering", sales.id, contractors.id], push_assigned=True)

    assert groups == as_read(engineering, sales, contractors)
    assert [g.okta_group_id for g in groups] == sorted(g.okta_group_id for g in groups)
    assert org.emulator.request_count(APP_GROUPS) == 1
    assert org.emulator.request_count(MEMBERS) == 3


async def test_an_exact_name_wins_over_one_equal_without_regard_to_case(org: Org) -> None:
    ops = org.group("Ops", members=1)
    org.group("OPS", members=1)

    assert await pushed(org, ["Ops"]) == as_read(ops)


# -- refusals -----------------------------------------------------------------------------------


async def test_a_name_no_assigned_group_has_is_refused(org: Org) -> None:
    org.group("Engineering")
    org.group("Contractors", assigned=False)

    message = await refused(org, ["Contractors"], push_assigned=True)

    assert "groups.push names Okta group 'Contractors'" in message
    assert f"no group assigned to app {org.app_id} has that name" in message
    assert message.endswith("assign the group to the app, or list it by its id (00g…)")
    assert org.emulator.request_count(MEMBERS) == 0  # refused before any member is read


async def test_an_id_okta_does_not_have_is_refused(org: Org) -> None:
    org.group("Engineering")
    missing = "00gMISSING0000000000"

    message = await refused(org, [missing, "Engineering"])

    assert f"groups.push lists Okta group {missing}, which Okta does not have" in message
    assert "HTTP 404 E0000007" in message
    assert message.endswith("check the id in groups.push")


async def test_a_name_two_groups_have_without_regard_to_case_is_refused(org: Org) -> None:
    first, second = org.group("Ops"), org.group("OPS")

    message = await refused(org, ["ops"])

    assert "groups.push names Okta group 'ops'" in message
    assert "have that name without regard to case" in message
    assert first.id in message and second.id in message
    assert message.endswith("list the one meant by its id (00g…)")


async def test_a_group_deleted_between_listing_and_members_fails_the_whole_read(org: Org) -> None:
    org.group("Engineering", members=1)
    org.emulator.inject_fault(MEMBERS, status=404)

    with pytest.raises(SourceError, match=r"HTTP 404 E0000007.* on page 1 of /api/v1/groups/00g\w{17}/users: was"):
        await pushed(org, [], push_assigned=True)


@pytest.mark.parametrize(
    ("path", "fault", "expected"),
    [
        (APP_GROUPS, {"kind": FaultKind.NON_JSON, "status": 200}, r"not an Okta org: .*/api/v1/apps/\w+/groups"),
        (MEMBERS, {"kind": FaultKind.TRUNCATED}, r"page 1 of /api/v1/groups/00g\w{17}/users: the answer is not JSON"),
        (MEMBERS, {"status": 502, "times": None}, r"/api/v1/groups/00g\w{17}/users: HTTP 502 .*gave up after 3"),
        (APP_GROUPS, {"status": 401}, r"Okta rejected the API token \(HTTP 401 E0000011"),
    ],
    ids=["non-json", "truncated", "502", "401"],
)
async def test_a_broken_answer_fails_naming_the_endpoint(
    org: Org, path: str, fault: dict[str, Any], expected: str
) -> None:
    org.group("Engineering", members=1)
    org.emulator.inject_fault(path, **fault)

    with pytest.raises(SourceError, match=expected) as raised:
        await pushed(org, [], push_assigned=True)
    assert OKTA_TOKEN not in str(raised.value)


async def test_a_transient_failure_on_a_member_page_is_retried(org: Org) -> None:
    group = org.group("Everyone", members=1001)
    org.emulator.inject_fault(MEMBERS, status=503, nth=2)

    assert await pushed(org, [], push_assigned=True) == as_read(group)
    assert [r.status for r in org.emulator.requests if r.path.endswith("/users")] == [200, 503, 200]


# -- rate limits --------------------------------------------------------------------------------


async def test_a_429_on_a_member_page_is_waited_out_and_the_read_completes() -> None:
    async for org in serve(OktaEmulator(seed=22, api_tokens=[OKTA_TOKEN], rate_limit_window_s=1.0)):
        groups = [org.group(f"Team {n}", members=3) for n in range(3)]
        org.emulator.inject_fault(MEMBERS, status=429, nth=2)
        source = org.source()
        async with source:
            read = await source.list_pushed_groups([], True)

    assert read == as_read(*groups)
    assert source.rate_limited == 1
    # until the window's reset (its headers have a one-second resolution), plus the margin
    assert 0 < source.rate_limit_waited_s <= 1.0 + 1.0 + 1.0
    assert sorted(r.status for r in org.emulator.requests) == [200] * 4 + [429]  # listing, 3 members, 1 again


async def test_a_small_group_bucket_is_paced_and_its_429s_waited_out() -> None:
    """3 requests a 1 s window on /api/v1/groups, 4 member listings in flight at once: the read still completes."""
    emulator = OktaEmulator(seed=23, api_tokens=[OKTA_TOKEN], rate_limit_window_s=1.0)
    emulator.set_rate_limit(3, bucket="/api/v1/groups")
    async for org in serve(emulator):
        groups = [org.group(f"Team {n}", members=2) for n in range(5)]
        source = org.source()
        started = time.monotonic()
        async with source:
            read = await source.list_pushed_groups([], True)
        took = time.monotonic() - started

    assert read == as_read(*groups)
    assert source.rate_limited >= 1  # the 4th request of the first burst, at least
    assert source.rate_limit_waited_s > 0
    assert emulator.request_count(MEMBERS, "GET") - source.rate_limited == 5
    assert took < 12


# -- decoding, pure -----------------------------------------------------------------------------


def test_app_groups_decode_to_ids_and_names() -> None:
    page = b'[{"id": "00g1", "_embedded": {"group": {"id": "00g1", "profile": {"name": "Eng", "x": [1]}}}}]'
    assert decode_app_groups(page) == [("00g1", "Eng")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": "00g1"}', r"does not parse as application group assignments \(Expected `array`, got `object`"),
        (b'[{"id": 7}]', r"Expected `str \| null`, got `int` - at `\$\[0\].id`"),
        (b"[{}]", "an application group assignment has no id"),
        (b'[{"id": "00g1"}]', r"Okta group 00g1 has no _embedded.group.profile.name"),
        (b'[{"id": "00g1", "_embedded": {"group": {"profile": {"name": ""}}}}]', "has no _embedded.group.profile"),
        (b"<html>", "the answer is not JSON"),
        (b'[{"id": "00g1", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}]", "nested too deeply"),
    ],
)
def test_malformed_app_groups_are_refused(body: bytes, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        decode_app_groups(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": "00u1"}', "does not parse as group members"),
        (b'[{"id": "00u1"}, {"status": "ACTIVE"}]', "a group member has no id"),
        (b'[{"id": ["00u1"]}]', r"Expected `str \| null`, got `array`"),
    ],
)
def test_malformed_member_pages_are_refused(body: bytes, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        decode_group_members(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[]", r"does not parse as a group \(Expected `object`, got `array`"),
        (b'{"id": "00g2", "profile": {"name": "Eng"}}', "the answer is group '00g2', not 00g1"),
        (b'{"id": "00g1", "profile": {}}', "Okta group 00g1 has no profile.name"),
    ],
)
def test_malformed_groups_are_refused(body: bytes, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        decode_group_name(body, "00g1")


def test_names_resolve_exactly_then_without_regard_to_case() -> None:
    assigned = {"00gA": "Eng", "00gB": "ENG", "00gC": "Sales", "00gD": "Sales"}
    assert group_named("Eng", assigned, "0oaAPP") == "00gA"
    assert group_named("eng", {"00gA": "Eng"}, "0oaAPP") == "00gA"
    with pytest.raises(SourceError, match=r"2 groups assigned to app 0oaAPP have that name: 00gC \('Sales'\), 00gD"):
        group_named("Sales", assigned, "0oaAPP")
