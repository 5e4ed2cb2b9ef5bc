"""Okta users: creating and changing them, and ``GET /api/v1/users/{idOrLogin}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from reconciler.testing.okta.errors import not_found
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
        """Create an Okta user. ``extra_profile`` takes Okta's camelCase keys (displayName, locale, title, ...)."""
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
            return user

    def user(self, user_id: str) -> EmulatedUser:
        with self._lock:
            return self._users[user_id]

    def set_user_status(self, user_id: str, status: str) -> None:
        """Change an Okta user's status (ACTIVE, SUSPENDED, DEPROVISIONED, ...)."""
        check_choice("user status", status, USER_STATUSES)
        with self._lock:
            user = self._users[user_id]
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
