"""The listings keep what they serialised: a change to the org shows in the very next read all the same."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from reconciler.testing.okta import OktaEmulator, run_okta_emulator
from tests.testing.okta.helpers import API_TOKEN, page_links

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
