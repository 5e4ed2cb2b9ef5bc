"""The groups Group Push follows, read from Okta: those assigned to the app and those ``groups.push`` names,
each with its members' Okta user ids.

The groups assigned to the app come from ``GET /api/v1/apps/{appId}/groups?expand=group``; a group
``groups.push`` names by id from ``GET /api/v1/groups/{groupId}``; members from
``GET /api/v1/groups/{groupId}/users``, a few groups at a time. Pages are decoded with msgspec into
structs of the few fields read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import msgspec

from reconciler.errors import SourceError
from reconciler.models.groups import OktaGroup, looks_like_okta_group_id
from reconciler.net.pacing import all_or_cancel
from reconciler.net.transport import NESTING_MESSAGE
from reconciler.okta.answers import GROUPS_FAMILY
from reconciler.okta.connection import Listing, NotFound, OktaConnection

GROUP_PAGE_SIZE = 200
"""Okta's ceiling for ``limit`` on ``/api/v1/apps/{appId}/groups`` (its floor is 20)."""
MEMBER_PAGE_SIZE = 1000
"""Okta's ceiling for ``limit`` on ``/api/v1/groups/{groupId}/users``."""
MAX_GROUPS = 1_000_000
"""More groups than any app is assigned: a group listing that pages past this many is refused as runaway."""
MAX_GROUP_MEMBERS = 10_000_000
"""More members than any group has: a member listing that pages past this many is refused as runaway."""
GROUP_READS_AT_ONCE = 4
"""Groups read at the same time: each member listing is a chain of pages, one in flight at a time,
so a few chains overlap their round trips while staying well inside the rate limit's share."""

Read = TypeVar("Read")


class PushedGroupsReader:
    """Reads one app's pushed groups through an :class:`OktaConnection`."""

    def __init__(self, connection: OktaConnection, app_id: str) -> None:
        self.connection = connection
        self.app_id = app_id
        self._app_url = f"{connection.org_url}/api/v1/apps/{quote(app_id, safe='')}"

    async def read(self, push: Sequence[str], push_assigned: bool) -> list[OktaGroup]:
        """The groups Group Push follows, each once, sorted by id, with their members' Okta user ids.

        ``push`` holds group ids (``00g…``: any group of the org, assigned to
        the app or not) and names (of groups assigned to the app: exactly, else
        the one matching without regard to case); ``push_assigned`` adds every
        group assigned to the app. Raises :class:`SourceError` if any read
        fails or an entry of ``push`` names no group: never a partial list.
        """
        ids = [entry for entry in push if looks_like_okta_group_id(entry)]
        names = [entry for entry in push if not looks_like_okta_group_id(entry)]
        assigned = await self.assigned_groups() if push_assigned or names else {}
        pushed = dict(assigned) if push_assigned else {}
        for name in names:
            group_id = group_named(name, assigned, self.app_id)
            pushed[group_id] = assigned[group_id]
        pushed.update({group_id: assigned[group_id] for group_id in ids if group_id in assigned})
        unread = sorted({group_id for group_id in ids if group_id not in pushed})
        pushed.update(zip(unread, await gather_bounded(self._group_name, unread, GROUP_READS_AT_ONCE), strict=True))
        group_ids = sorted(pushed)
        members = await gather_bounded(self.member_ids, group_ids, GROUP_READS_AT_ONCE)
        return [
            OktaGroup(group_id, pushed[group_id], member_ids)
            for group_id, member_ids in zip(group_ids, members, strict=True)
        ]

    async def assigned_groups(self) -> dict[str, str]:
        """The id and name of every group assigned to the app."""
        query = urlencode({"limit": GROUP_PAGE_SIZE, "expand": "group"})
        path = f"/api/v1/apps/{self.app_id}/groups"
        listing = Listing(f"{self._app_url}/groups?{query}", path, GROUP_PAGE_SIZE, MAX_GROUPS, "groups")
        return dict(await self.connection.read_listing(listing, self._decoder(listing, decode_app_groups)))

    async def _group_name(self, group_id: str) -> str:
        """The name of a group ``groups.push`` lists by id (``GET /api/v1/groups/{groupId}``)."""
        path = f"{GROUPS_FAMILY}/{group_id}"
        url = f"{self.connection.org_url}{GROUPS_FAMILY}/{quote(group_id, safe='')}"
        try:
            body, _ = await self.connection.fetch(url, path)
        except NotFound as missing:
            raise self.connection.error(
                f"groups.push lists Okta group {group_id}, which Okta does not have ({missing.detail}): "
                "check the id in groups.push"
            ) from None
        try:
            return decode_group_name(body, group_id)
        except SourceError as exc:
            raise self.connection.error(f"Okta listing failed on {path}: {exc}") from None

    async def member_ids(self, group_id: str) -> frozenset[str]:
        """The Okta user ids of a group's members (``GET /api/v1/groups/{groupId}/users``)."""
        query = urlencode({"limit": MEMBER_PAGE_SIZE})
        path = f"{GROUPS_FAMILY}/{group_id}/users"
        url = f"{self.connection.org_url}{GROUPS_FAMILY}/{quote(group_id, safe='')}/users?{query}"
        listing = Listing(url, path, MEMBER_PAGE_SIZE, MAX_GROUP_MEMBERS, "members")
        return frozenset(await self.connection.read_listing(listing, self._decoder(listing, decode_group_members)))

    def _decoder(
        self, listing: Listing, decode: Callable[[bytes | str], list[Read]]
    ) -> Callable[[int, bytes | str], list[Read]]:
        """``decode`` for a paged listing: a malformed page fails naming the page and the endpoint."""

        def decode_page(page: int, body: bytes | str) -> list[Read]:
            try:
                return decode(body)
            except SourceError as exc:
                raise self.connection.error(f"Okta listing failed on {listing.where(page)}: {exc}") from None

        return decode_page


async def gather_bounded(read: Callable[[str], Awaitable[Read]], keys: Sequence[str], at_once: int) -> list[Read]:
    """``read`` of each key, at most ``at_once`` at a time, in the keys' order; the first failure cancels the rest."""
    gate = asyncio.Semaphore(at_once)

    async def gated(key: str) -> Read:
        async with gate:
            return await read(key)

    return await all_or_cancel(*(asyncio.ensure_future(gated(key)) for key in keys))


def group_named(name: str, assigned: Mapping[str, str], app_id: str) -> str:
    """The id of the assigned group ``groups.push`` names: its exact name, else the one equal without regard to case.

    ``assigned`` maps each group assigned to the app to its name. Okta keeps
    its own groups' names unique, but not those of imported (AD, LDAP)
    groups, and ``Engineering`` and ``engineering`` may both exist: a name
    that does not pick one group is refused rather than guessed.
    """
    for how, matches in (
        ("", sorted(group_id for group_id, group_name in assigned.items() if group_name == name)),
        (
            " without regard to case",
            sorted(group_id for group_id, group_name in assigned.items() if group_name.casefold() == name.casefold()),
        ),
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            listed = ", ".join(f"{group_id} ({assigned[group_id]!r})" for group_id in matches)
            raise SourceError(
                f"groups.push names Okta group {name!r}, but {len(matches)} groups assigned to app {app_id} "
                f"have that name{how}: {listed}; list the one meant by its id (00g…)"
            )
    raise SourceError(
        f"groups.push names Okta group {name!r}, but no group assigned to app {app_id} has that name: "
        "assign the group to the app, or list it by its id (00g…)"
    )


class _GroupProfile(msgspec.Struct):
    name: str | None = None


class _Group(msgspec.Struct):
    """A Group as ``GET /api/v1/groups/{groupId}`` and ``_embedded.group`` hold it: only what is read."""

    id: str | None = None
    profile: _GroupProfile | None = None


class _AppGroupEmbedded(msgspec.Struct):
    group: _Group | None = None


class _AppGroup(msgspec.Struct):
    """An ApplicationGroupAssignment with ``expand=group``: its id is the group's."""

    id: str | None = None
    embedded: _AppGroupEmbedded | None = msgspec.field(default=None, name="_embedded")


class _GroupMember(msgspec.Struct):
    id: str | None = None


_APP_GROUPS_DECODER = msgspec.json.Decoder(list[_AppGroup])
_GROUP_DECODER = msgspec.json.Decoder(_Group)
_GROUP_MEMBERS_DECODER = msgspec.json.Decoder(list[_GroupMember])


def decode_app_groups(body: bytes | str) -> list[tuple[str, str]]:
    """The group id and name of each assignment on a page of ``GET /api/v1/apps/{appId}/groups?expand=group``."""
    groups: list[_AppGroup] = _decoded(_APP_GROUPS_DECODER, body, "application group assignments")
    return [_id_and_name(group) for group in groups]


def _id_and_name(group: _AppGroup) -> tuple[str, str]:
    if not group.id:
        raise SourceError("an application group assignment has no id")
    embedded = group.embedded.group if group.embedded else None
    name = embedded.profile.name if embedded and embedded.profile else None
    if not name:
        raise SourceError(f"Okta group {group.id} has no _embedded.group.profile.name")
    return group.id, name


def decode_group_name(body: bytes | str, group_id: str) -> str:
    """The ``profile.name`` of ``GET /api/v1/groups/{groupId}``."""
    group: _Group = _decoded(_GROUP_DECODER, body, "a group")
    if group.id != group_id:
        raise SourceError(f"the answer is group {group.id!r}, not {group_id}")
    if not group.profile or not group.profile.name:
        raise SourceError(f"Okta group {group_id} has no profile.name")
    return group.profile.name


def decode_group_members(body: bytes | str) -> list[str]:
    """The Okta user ids on a page of ``GET /api/v1/groups/{groupId}/users``."""
    members: list[_GroupMember] = _decoded(_GROUP_MEMBERS_DECODER, body, "group members")
    ids: list[str] = []
    for member in members:
        if not member.id:
            raise SourceError("a group member has no id")
        ids.append(member.id)
    return ids


def _decoded(decoder: msgspec.json.Decoder[Any], body: bytes | str, what: str) -> Any:
    """``decoder.decode(body)``; SourceError says what does not parse, as :func:`decode_app_users` does."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as error:
        raise SourceError(f"the answer does not parse as {what} ({error})") from None
    except msgspec.DecodeError as error:
        raise SourceError(f"the answer is not JSON ({error})") from None
    except RecursionError:
        raise SourceError(f"the answer is {NESTING_MESSAGE}") from None
