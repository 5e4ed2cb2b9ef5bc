"""Apps and their users: direct assignments and what Okta records of each app user, and
``GET /api/v1/apps/{appId}``, ``GET /api/v1/apps/{appId}/users`` (``limit`` 1..500, default 50, the ``after``
cursor, ``expand=user``, ``Link`` headers) and ``GET /api/v1/apps/{appId}/users/{userId}``.

The listing serves 100,000 users at a few milliseconds of CPU per 500-user page: it pages over the app's
sorted ids and each app user's JSON is kept (see :mod:`reconciler.testing.okta.cache`);
:meth:`AppUserAdmin.warm_listing` serialises them all ahead of a benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from reconciler.testing.okta.cache import serialised
from reconciler.testing.okta.errors import not_found
from reconciler.testing.okta.log_events import (
    APP_CREATE,
    SYSTEM_ACTOR,
    USER_MEMBERSHIP_ADD,
    USER_MEMBERSHIP_CHANGE_USERNAME,
    USER_MEMBERSHIP_REMOVE,
    USER_MEMBERSHIP_UPDATE,
    Transaction,
    app_target,
    push_kind,
)
from reconciler.testing.okta.paging import USER_ID, Paging, base_url, page_after, page_response
from reconciler.testing.okta.records import (
    APP_USER_STATUSES,
    SYNC_STATES,
    AppUserState,
    EmulatedApp,
    EmulatedUser,
    check_choice,
)
from reconciler.testing.okta.shapes import app_json, app_user_json
from reconciler.testing.okta.users import UserAdmin

SCIM_TEST_APP_LABEL = "SCIM 2.0 Test App (OAuth Bearer Token)"
APP_USERS_PAGING = Paging(default_limit=50, max_limit=500, cursor=USER_ID)
WARM_CHUNK = 1000
"""App users :meth:`AppUserAdmin.warm_listing` serialises per turn of the lock."""
SAMPLE_FIRST_NAMES = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger")
SAMPLE_LAST_NAMES = ("Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen")
SAMPLE_DEPARTMENTS = ("Engineering", "Finance", "Sales", "Support", "Legal")


class AppUserAdmin(UserAdmin):
    """What a test does to the org's apps and their direct assignments."""

    def create_app(self, label: str = SCIM_TEST_APP_LABEL, name: str = "scim2testapp") -> EmulatedApp:
        with self._lock:
            app = EmulatedApp(self.new_id("0oa"), name, label, self._clock())
            self._apps[app.id] = app
            self._write_event(APP_CREATE, [app_target(app)], Transaction.web("/api/v1/apps"))
            return app

    def assign_user(
        self,
        app_id: str,
        user_id: str,
        *,
        profile: Mapping[str, Any] | None = None,
        user_name: str | None = None,
        status: str = "ACTIVE",
        sync_state: str = "DISABLED",
        external_id: str | None = None,
    ) -> AppUserState:
        """Assign a user directly (scope USER).

        ``profile`` overrides keys of the mapped app profile (givenName,
        familyName, email, displayName, locale); ``user_name`` overrides
        ``credentials.userName`` (the user's login by default). The defaults
        for ``status`` and ``sync_state`` are what Okta shows right after an
        assignment; see :meth:`mark_provisioned` for after a SCIM push.

        Logs ``application.user_membership.add`` (``.update`` when the app already listed the user).
        """
        with self._lock:
            app = self._apps[app_id]
            was_listed = self._is_listed(app, user_id)
            state = self._app_user_state(app, user_id)
            state.direct = True
            state.profile_overrides.update(profile or {})
            state.user_name = user_name if user_name is not None else state.user_name
            self._set_app_user_fields(state, status=status, sync_state=sync_state, external_id=external_id)
            self._cache.drop_listing(app_id)
            self._cache.drop_app_user(app_id, user_id)
            kind = USER_MEMBERSHIP_UPDATE if was_listed else USER_MEMBERSHIP_ADD
            self._write_event(kind, self._app_user_targets(app, user_id), _app_user_request(app_id, user_id))
            return state

    def unassign_user(self, app_id: str, user_id: str) -> None:
        """Remove a direct assignment; a user still in an assigned group stays listed with scope GROUP.

        Logs ``application.user_membership.remove`` (``.update`` when a group still lists the user)."""
        with self._lock:
            app = self._apps[app_id]
            app.app_users[user_id].direct = False
            self._cache.drop_listing(app_id)
            self._cache.drop_app_user(app_id, user_id)
            targets = self._app_user_targets(app, user_id)
            self._forget_unlisted(app, user_id)
            listed = self._is_listed(app, user_id)
            kind = USER_MEMBERSHIP_UPDATE if listed else USER_MEMBERSHIP_REMOVE
            self._write_event(kind, targets, _app_user_request(app_id, user_id))
            if not listed:
                self._app_user_ids.pop((app_id, user_id), None)

    def set_app_user(
        self,
        app_id: str,
        user_id: str,
        *,
        status: str | None = None,
        sync_state: str | None = None,
        external_id: str | None = None,
        user_name: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> AppUserState:
        """Change a listed app user's status, syncState, externalId, userName or profile keys.

        Logs ``application.user_membership.update`` for a change of status, syncState, externalId or profile,
        and ``application.user_membership.change_username`` for a new userName."""
        with self._lock:
            app = self._apps[app_id]
            old_user_name = self._app_user_state(app, user_id).user_name if self._is_listed(app, user_id) else None
            state = self._change_app_user(
                app, user_id, status=status, sync_state=sync_state, external_id=external_id, user_name=user_name,
                profile=profile,
            )  # fmt: skip
            request = _app_user_request(app_id, user_id)
            if (status, sync_state, external_id, profile) != (None, None, None, None):
                self._write_event(USER_MEMBERSHIP_UPDATE, self._app_user_targets(app, user_id), request)
            if user_name is not None and user_name != old_user_name:
                self._write_event(USER_MEMBERSHIP_CHANGE_USERNAME, self._app_user_targets(app, user_id), request)
            return state

    def clear_external_id(self, app_id: str, user_id: str) -> None:
        """Forget the SCIM id Okta stored for an app user (``externalId`` becomes null)."""
        with self._lock:
            state = self._apps[app_id].app_users[user_id]
            state.external_id = None
            state.last_updated = self._clock()
            self._cache.drop_app_user(app_id, user_id)

    def mark_provisioned(self, app_id: str, user_id: str, scim_id: str) -> AppUserState:
        """What Okta records after a successful SCIM create: externalId, PROVISIONED, SYNCHRONIZED; logs Okta's
        ``application.provision.user.push`` with outcome SUCCESS (a JOB)."""
        with self._lock:
            app = self._apps[app_id]
            state = self._change_app_user(
                app, user_id, status="PROVISIONED", sync_state="SYNCHRONIZED", external_id=scim_id
            )
            state.last_sync = self._clock()
            self._cache.drop_app_user(app_id, user_id)
            targets = self._app_user_targets(app, user_id)
            self._write_event(push_kind("push"), targets, Transaction.job(), actor=SYSTEM_ACTOR)
            return state

    def add_assigned_users(self, app_id: str, count: int, *, domain: str = "example.com") -> list[EmulatedUser]:
        """Create ``count`` plausible ACTIVE users and assign each directly to the app: the org's state at rest,
        so no System Log events (see :meth:`log_paused`)."""
        with self._lock, self.log_paused():
            return [self._add_assigned_user(app_id, number, domain) for number in range(1, count + 1)]

    def kept_app_user_bodies(self, app_id: str) -> int:
        """How many app users' JSON the listing keeps for this app, over every variant (for tests)."""
        with self._lock:
            return sum(len(bodies) for bodies in self._cache.app_users.get(app_id, {}).values())

    def listed_user_ids(self, app_id: str) -> list[str]:
        """The ids ``GET /api/v1/apps/{appId}/users`` lists, in its order."""
        with self._lock:
            return list(self._app_listing(self._apps[app_id]))

    def warm_listing(self, app_id: str, org_url: str, *, expand: bool = True) -> None:
        """Serialise every app user the listing shows now, so even its first read is cheap.

        The listing keeps each app user's JSON until something it shows changes,
        but making it costs about 0.1 ms a user (10 s for 100,000): a benchmark
        pays it here, after setting up the state, rather than in its first timed
        run. ``org_url`` is the URL clients use (:func:`run_okta_emulator` yields
        it): the JSON's links are built on the request's host. It does what
        reading every page would do, without the answers; the lock is released
        between chunks, so a running server keeps answering.
        """
        scheme, netloc, *_ = urlsplit(org_url)
        after: str | None = None
        while True:
            with self._lock:
                app = self._apps[app_id]
                chunk, _ = page_after(self._app_listing(app), after, WARM_CHUNK)
                self._app_user_bodies(app, chunk, f"{scheme}://{netloc}", expand)
            if not chunk:
                return
            after = chunk[-1]

    def _add_assigned_user(self, app_id: str, number: int, domain: str) -> EmulatedUser:
        first = self._random.choice(SAMPLE_FIRST_NAMES)
        last = self._random.choice(SAMPLE_LAST_NAMES)
        user = self.create_user(
            login=f"{first}.{last}.{number}@{domain}".lower(),
            first_name=first,
            last_name=last,
            displayName=f"{first} {last}",
            locale="en_US",
            title="Engineer",
            department=self._random.choice(SAMPLE_DEPARTMENTS),
        )
        self.assign_user(app_id, user.id)
        return user

    def _change_app_user(
        self,
        app: EmulatedApp,
        user_id: str,
        *,
        status: str | None = None,
        sync_state: str | None = None,
        external_id: str | None = None,
        user_name: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> AppUserState:
        if not self._is_listed(app, user_id):
            raise KeyError(f"user {user_id} is not assigned to app {app.id}")
        state = self._app_user_state(app, user_id)
        state.profile_overrides.update(profile or {})
        state.user_name = user_name if user_name is not None else state.user_name
        self._set_app_user_fields(state, status=status, sync_state=sync_state, external_id=external_id)
        self._cache.drop_app_user(app.id, user_id)
        return state

    def _set_app_user_fields(
        self, state: AppUserState, *, status: str | None, sync_state: str | None, external_id: str | None
    ) -> None:
        now = self._clock()
        if status is not None:
            check_choice("app user status", status, APP_USER_STATUSES)
            if status != state.status:
                state.status_changed = now
            state.status = status
        if sync_state is not None:
            check_choice("syncState", sync_state, SYNC_STATES)
            state.sync_state = sync_state
        if external_id is not None:
            state.external_id = external_id
        state.last_updated = now

    # -- serving (call the helpers with the lock held) ---------------------

    def _add_app_user_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v1/apps/{app_id}", self._get_app)
        router.add_get("/api/v1/apps/{app_id}/users", self._list_app_users)
        router.add_get("/api/v1/apps/{app_id}/users/{user_id}", self._get_app_user)

    async def _get_app(self, request: web.Request) -> web.Response:
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            return web.json_response(app_json(app, base_url(request)))

    async def _list_app_users(self, request: web.Request) -> web.Response:
        limit, after = APP_USERS_PAGING.read(request.query)
        expand = request.query.get("expand") == "user"
        url = base_url(request)
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            page, next_cursor = page_after(self._app_listing(app), after, limit)
            parts = self._app_user_bodies(app, page, url, expand)
        return page_response(request, url, limit, next_cursor, parts)

    async def _get_app_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            if not self._is_listed(app, user_id):
                raise not_found(user_id, "AppUser")
            expand = request.query.get("expand") == "user"
            return web.json_response(self._app_user_json(app, user_id, base_url(request), expand))

    def _app_listing(self, app: EmulatedApp) -> list[str]:
        """The sorted ids the app's listing shows (the cached list itself: do not change it)."""
        listed = self._cache.app_listings.get(app.id)
        if listed is None:
            ids = {user_id for user_id, state in app.app_users.items() if state.direct}
            for group_id in app.group_ids:
                ids.update(self._member_sets[group_id])
            listed = self._cache.app_listings[app.id] = sorted(ids)
        return listed

    def _app_user_bodies(self, app: EmulatedApp, user_ids: list[str], url: str, expand: bool) -> list[bytes]:
        """The app users' JSON as ``web.json_response`` writes it, kept until what it shows changes."""
        bodies = self._cache.app_user_bodies(app.id, (expand, url, self.user_type_id))
        return serialised(bodies, user_ids, lambda user_id: self._app_user_json(app, user_id, url, expand))

    def _app_user_json(self, app: EmulatedApp, user_id: str, url: str, expand: bool) -> dict[str, Any]:
        user = self._users[user_id]
        state = self._app_user_state(app, user_id)
        group = None if state.direct else self._assigning_group(app, user_id)
        return app_user_json(app.id, user, state, group, url, self.user_type_id, expand=expand)


def _app_user_request(app_id: str, user_id: str) -> Transaction:
    return Transaction.web(f"/api/v1/apps/{app_id}/users/{user_id}")
