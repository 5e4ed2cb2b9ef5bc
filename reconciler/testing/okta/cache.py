"""What the listings show, kept until a change to the org makes it stale.

A 500-user page costs a few milliseconds of CPU only because nothing is sorted or serialised twice: each
app's listing (its sorted ids), each group's member listing, and each app user's and group member's JSON
are kept here. What an app user's JSON shows: the user (status, profile, times), its app user state and,
for a GROUP-scoped one, the first assigned group it is a member of. What a listing shows: direct
assignments and the members of the assigned groups. Each change to the org drops exactly what it may
have made stale, through the methods below. Guarded by the org's lock, like the records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

AppUserVariant = tuple[bool, str, str]
"""What else an app user's JSON depends on: ``expand=user``, the base URL and the user type id."""
MemberVariant = tuple[str, str]
"""What else a group member's JSON depends on: the base URL and the user type id."""


class ListingCache:
    """Sorted listings and serialised JSON, by app, group and user."""

    def __init__(self) -> None:
        self.app_listings: dict[str, list[str]] = {}
        """App id -> the sorted ids its listing shows."""
        self.app_users: dict[str, dict[AppUserVariant, dict[str, bytes]]] = {}
        """App id -> variant -> user id -> the app user's JSON."""
        self.member_listings: dict[str, list[str]] = {}
        """Group id -> its member ids, sorted (what its member listing pages over)."""
        self.members: dict[MemberVariant, dict[str, bytes]] = {}
        """Variant -> user id -> the user's JSON as a group member."""

    def app_user_bodies(self, app_id: str, variant: AppUserVariant) -> dict[str, bytes]:
        """The app users' JSON kept for this app and variant (fill it with :func:`serialised`)."""
        return self.app_users.setdefault(app_id, {}).setdefault(variant, {})

    def member_bodies(self, variant: MemberVariant) -> dict[str, bytes]:
        """The group members' JSON kept for this variant (fill it with :func:`serialised`)."""
        return self.members.setdefault(variant, {})

    def drop_listing(self, app_id: str) -> None:
        """Who the app lists changed."""
        self.app_listings.pop(app_id, None)

    def drop_app_user(self, app_id: str, user_id: str) -> None:
        """What the app shows of this user changed."""
        for bodies in self.app_users.get(app_id, {}).values():
            bodies.pop(user_id, None)

    def drop_user(self, user_id: str) -> None:
        """The user changed: its JSON is stale in every app and in every group member listing."""
        for app_id in self.app_users:
            self.drop_app_user(app_id, user_id)
        for bodies in self.members.values():
            bodies.pop(user_id, None)

    def drop_membership(self, group_id: str, user_id: str, assigned_to: Iterable[str]) -> None:
        """The user joined or left the group: stale in its member listing and in the apps it is assigned to."""
        self.member_listings.pop(group_id, None)
        for app_id in assigned_to:
            self.drop_listing(app_id)
            self.drop_app_user(app_id, user_id)

    def drop_group_assignment(self, app_id: str, member_ids: Iterable[str]) -> None:
        """The group was assigned to or unassigned from the app (or renamed): its members' scope or group
        may change."""
        self.drop_listing(app_id)
        for member_id in member_ids:
            self.drop_app_user(app_id, member_id)


def serialised(bodies: dict[str, bytes], ids: Iterable[str], render: Callable[[str], Any]) -> list[bytes]:
    """Each id's JSON as ``json.dumps`` writes it, from ``bodies`` or rendered (and kept there) when missing."""
    return [bodies.get(item_id) or _keep(bodies, item_id, render) for item_id in ids]


def _keep(bodies: dict[str, bytes], item_id: str, render: Callable[[str], Any]) -> bytes:
    body = bodies[item_id] = json.dumps(render(item_id)).encode()
    return body
