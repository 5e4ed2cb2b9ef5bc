"""Okta groups and their members: creating, renaming, joining and leaving them, and
``GET /api/v1/groups/{groupId}`` and ``GET /api/v1/groups/{groupId}/users`` (``limit`` 1..1000, ``after``)."""

from __future__ import annotations

from aiohttp import web

from reconciler.testing.okta.cache import serialised
from reconciler.testing.okta.errors import not_found
from reconciler.testing.okta.log_events import (
    GROUP_CREATE,
    GROUP_MEMBERSHIP_ADD,
    GROUP_MEMBERSHIP_REMOVE,
    GROUP_PROFILE_UPDATE,
    EventKind,
    Transaction,
    group_target,
    user_target,
)
from reconciler.testing.okta.org import OktaOrg
from reconciler.testing.okta.paging import USER_ID, Paging, base_url, page_after, page_response
from reconciler.testing.okta.records import EmulatedGroup
from reconciler.testing.okta.shapes import group_json, group_member_json

GROUP_USERS_PAGING = Paging(default_limit=1000, max_limit=1000, cursor=USER_ID)
"""The spec's default (and what Okta's recorded Link shows) is 1000; it recommends 200."""


class GroupAdmin(OktaOrg):
    """What a test does to the org's groups."""

    def create_group(self, name: str, description: str = "") -> EmulatedGroup:
        now = self._clock()
        with self._lock:
            group = EmulatedGroup(self.new_id("00g"), name, description, created=now, last_updated=now)
            group.last_membership_updated = now
            self._groups[group.id] = group
            self._member_sets[group.id] = set()
            self._write_event(GROUP_CREATE, [group_target(group)], Transaction.web("/api/v1/groups"))
            return group

    def group(self, group_id: str) -> EmulatedGroup:
        with self._lock:
            return self._groups[group_id]

    def rename_group(self, group_id: str, name: str) -> None:
        """Change a group's ``profile.name``; the ``_links.group.name`` of the app users it assigns follows."""
        with self._lock:
            group = self._groups[group_id]
            group.name = name
            group.last_updated = self._clock()
            for app_id in self._apps_assigning(group_id):
                self._cache.drop_group_assignment(app_id, self._member_sets[group_id])
            self._write_event(
                GROUP_PROFILE_UPDATE, [group_target(group)], Transaction.web(f"/api/v1/groups/{group_id}")
            )

    def add_group_member(self, group_id: str, user_id: str) -> None:
        """Logs ``group.user_membership.add``, and an ``application.user_membership.add`` (a JOB) for each app
        the group newly lists the user in."""
        with self._lock:
            group = self._groups[group_id]
            if user_id not in self._users:
                raise KeyError(f"no Okta user {user_id}")
            if user_id not in self._member_sets[group_id]:
                listed_before = self._listings(self._apps_assigning(group_id), [user_id])
                group.member_ids.append(user_id)
                self._member_sets[group_id].add(user_id)
                group.last_membership_updated = self._clock()
                self._cache.drop_membership(group_id, user_id, self._apps_assigning(group_id))
                self._log_membership(GROUP_MEMBERSHIP_ADD, group, user_id, listed_before)

    def remove_group_member(self, group_id: str, user_id: str) -> None:
        """Logs ``group.user_membership.remove``, and an ``application.user_membership.remove`` (a JOB) for each
        app that no longer lists the user."""
        with self._lock:
            group = self._groups[group_id]
            listed_before = self._listings(self._apps_assigning(group_id), [user_id])
            group.member_ids.remove(user_id)
            self._member_sets[group_id].discard(user_id)
            group.last_membership_updated = self._clock()
            self._cache.drop_membership(group_id, user_id, self._apps_assigning(group_id))
            for app in self._apps.values():
                self._forget_unlisted(app, user_id)
            self._log_membership(GROUP_MEMBERSHIP_REMOVE, group, user_id, listed_before)

    def _log_membership(
        self, kind: EventKind, group: EmulatedGroup, user_id: str, listed_before: dict[tuple[str, str], bool]
    ) -> None:
        targets = [user_target(self._users[user_id]), group_target(group)]
        self._write_event(kind, targets, Transaction.web(f"/api/v1/groups/{group.id}/users/{user_id}"))
        self._log_listing_changes(listed_before, Transaction.job())

    # -- serving (call the helpers with the lock held) ---------------------

    def _add_group_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v1/groups/{group_id}", self._get_group)
        router.add_get("/api/v1/groups/{group_id}/users", self._list_group_users)

    async def _get_group(self, request: web.Request) -> web.Response:
        with self._lock:
            group = self._group_or_404(request.match_info["group_id"])
            return web.json_response(group_json(group, base_url(request)))

    async def _list_group_users(self, request: web.Request) -> web.Response:
        limit, after = GROUP_USERS_PAGING.read(request.query)
        url = base_url(request)
        with self._lock:
            group = self._group_or_404(request.match_info["group_id"])
            page, next_cursor = page_after(self._member_listing(group), after, limit)
            parts = self._member_bodies(page, url)
        return page_response(request, url, limit, next_cursor, parts)

    def _group_or_404(self, group_id: str) -> EmulatedGroup:
        group = self._groups.get(group_id)
        if group is None:
            raise not_found(group_id, "UserGroup")
        return group

    def _member_listing(self, group: EmulatedGroup) -> list[str]:
        """The group's member ids, sorted (the cached list itself: do not change it)."""
        listed = self._cache.member_listings.get(group.id)
        if listed is None:
            listed = self._cache.member_listings[group.id] = sorted(self._member_sets[group.id])
        return listed

    def _member_bodies(self, user_ids: list[str], url: str) -> list[bytes]:
        """The members' JSON as ``web.json_response`` writes it, kept until the user changes."""
        bodies = self._cache.member_bodies((url, self.user_type_id))
        return serialised(
            bodies, user_ids, lambda user_id: group_member_json(self._users[user_id], url, self.user_type_id)
        )
