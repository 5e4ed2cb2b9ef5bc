"""Okta users: creating and changing them, and ``GET /api/v1/users/{idOrLogin}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from reconciler.testing.okta.errors import not_found
from reconciler.testing.okta.log_events import (
    USER_CREATE,
    USER_DELETE_COMPLETED,
    USER_DELETE_INITIATED,
    USER_LIFECYCLE,
    USER_PROFILE_UPDATE,
    Transaction,
    status_change_kind,
    user_target,
)
from reconciler.testing.okta.org import OktaOrg
from reconciler.testing.okta.paging import base_url
from reconciler.testing.okta.records import USER_STATUSES, EmulatedUser, check_choice
from reconciler.testing.okta.shapes import user_json


class UserAdmin(OktaOrg):
    """What a test does to the org's users."""

    def create_user(
        self,
        *,
        login: str,
        first_name: str,
        last_name: str,
        email: str | None = None,
        status: str = "ACTIVE",
        **extra_profile: Any,
    ) -> EmulatedUser:
        """Create an Okta user. ``extra_profile`` takes Okta's camelCase keys (displayName, locale, title, ...).

        Logs ``user.lifecycle.create``, then ``user.lifecycle.activate`` when created ACTIVE (as Okta does
        for a user created with ``activate=true``)."""
        check_choice("user status", status, USER_STATUSES)
        now = self._clock()
        profile = {
            "firstName": first_name,
            "lastName": last_name,
            "mobilePhone": None,
            "secondEmail": None,
            "login": login,
            "email": email if email is not None else login,
            **extra_profile,
        }
        with self._lock:
            user = EmulatedUser(self.new_id("00u"), status, profile, now, now, now)
            self._users[user.id] = user
            transaction = Transaction.web("/api/v1/users?activate=" + str(status == "ACTIVE").lower())
            self._write_event(USER_CREATE, [user_target(user)], transaction)
            if status == "ACTIVE":
                self._write_event(USER_LIFECYCLE["activate"], [user_target(user)], transaction)
            return user

    def user(self, user_id: str) -> EmulatedUser:
        with self._lock:
            return self._users[user_id]

    def set_user_status(self, user_id: str, status: str) -> None:
        """Change an Okta user's status (ACTIVE, SUSPENDED, DEPROVISIONED, ...); logs the lifecycle event the
        transition is (``user.lifecycle.deactivate``, ``.suspend``, ``.unsuspend``, ``.activate``...)."""
        check_choice("user status", status, USER_STATUSES)
        with self._lock:
            user = self._users[user_id]
            kind = status_change_kind(user.status, status)
            if kind is not None:
                self._write_event(kind, [user_target(user)], Transaction.web(f"/api/v1/users/{user_id}/lifecycle"))
            user.status = status
            user.status_changed = user.last_updated = self._clock()
            self._cache.drop_user(user_id)

    def update_user_profile(self, user_id: str, **changes: Any) -> None:
        """Change an Okta user's profile (camelCase keys); mapped app profiles follow."""
        with self._lock:
            user = self._users[user_id]
            user.profile.update(changes)
            user.last_updated = self._clock()
            self._cache.drop_user(user_id)
            self._write_event(USER_PROFILE_UPDATE, [user_target(user)], Transaction.web(f"/api/v1/users/{user_id}"))

    def delete_user(self, user_id: str) -> None:
        """Delete an Okta user, as ``DELETE /api/v1/users/{id}`` does (twice for an active one: it is deactivated
        first). The user leaves its groups and every app; logs ``user.lifecycle.delete.initiated`` and
        ``.delete.completed``."""
        with self._lock:
            user = self._users[user_id]
            if user.status != "DEPROVISIONED":
                self.set_user_status(user_id, "DEPROVISIONED")
            transaction = Transaction.web(f"/api/v1/users/{user_id}")
            self._write_event(USER_DELETE_INITIATED, [user_target(user)], transaction)
            for group_id, members in self._member_sets.items():
                if user_id in members:
                    members.discard(user_id)
                    self._groups[group_id].member_ids.remove(user_id)
                    self._cache.drop_membership(group_id, user_id, self._apps_assigning(group_id))
            for app in self._apps.values():
                app.app_users.pop(user_id, None)
                self._app_user_ids.pop((app.id, user_id), None)
                self._cache.drop_listing(app.id)
            del self._users[user_id]
            self._cache.drop_user(user_id)
            self._write_event(USER_DELETE_COMPLETED, [user_target(user)], transaction)

    # -- serving -----------------------------------------------------------

    def _add_user_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v1/users/{id_or_login}", self._get_user)

    async def _get_user(self, request: web.Request) -> web.Response:
        wanted = request.match_info["id_or_login"]
        with self._lock:
            user = self._users.get(wanted) or next(
                (user for user in self._users.values() if user.profile.get("login") == wanted), None
            )
            if user is None:
                raise not_found(wanted, "User")
            return web.json_response(user_json(user, base_url(request), self.user_type_id))
