"""The in-memory Okta org: its records, the ids it hands out, and who an app lists.

:class:`OktaOrg` is the base the resource modules build on (``users``, ``groups``, ``app_users``,
``app_groups``, ``oauth``): each adds what a test does to its resource and the handlers that serve it. State is
thread-safe, so a test can change it while the thread-backed runner serves: every method takes the lock
(re-entrant, as one change may make another); the helpers here expect it held.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable

from reconciler.testing.okta.cache import ListingCache
from reconciler.testing.okta.errors import not_found
from reconciler.testing.okta.records import (
    ID_ALPHABET,
    AccessToken,
    AppUserState,
    EmulatedApp,
    EmulatedGroup,
    EmulatedUser,
    ServiceClient,
)


class OktaOrg:
    """Users, groups, apps and their assignments, service clients and tokens, in memory.

    Ids look like Okta's (``00u`` + 17 alphanumerics) and come from a seeded :class:`random.Random`, so a
    seed gives the same ids.
    """

    def __init__(self, *, seed: int, api_tokens: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self._random = random.Random(seed)
        self._clock = clock
        self._lock = threading.RLock()
        self._issued_ids: set[str] = set()
        self._api_tokens = set(api_tokens)
        self._clients: dict[str, ServiceClient] = {}
        self._access_tokens: dict[str, AccessToken] = {}
        self._used_assertion_ids: set[str] = set()
        self._users: dict[str, EmulatedUser] = {}
        self._groups: dict[str, EmulatedGroup] = {}
        self._apps: dict[str, EmulatedApp] = {}
        self._member_sets: dict[str, set[str]] = {}
        """Group id -> its member ids, so that membership tests are O(1)."""
        self._cache = ListingCache()
        self.user_type_id = self.new_id("oty")

    def new_id(self, prefix: str) -> str:
        """A fresh Okta-looking id: ``prefix`` + alphanumerics, 20 characters in all."""
        with self._lock:
            while True:
                candidate = prefix + "".join(self._random.choice(ID_ALPHABET) for _ in range(20 - len(prefix)))
                if candidate not in self._issued_ids:
                    self._issued_ids.add(candidate)
                    return candidate

    # -- assignments (call with the lock held) --------------------------------

    def _app_or_404(self, app_id: str) -> EmulatedApp:
        app = self._apps.get(app_id)
        if app is None:
            raise not_found(app_id, "AppInstance")
        return app

    def _assigning_group(self, app: EmulatedApp, user_id: str) -> EmulatedGroup | None:
        """The first of the app's assigned groups the user is a member of (the one its JSON names)."""
        return next((self._groups[gid] for gid in app.group_ids if user_id in self._member_sets[gid]), None)

    def _is_listed(self, app: EmulatedApp, user_id: str) -> bool:
        """Assigned directly or through any assigned group."""
        state = app.app_users.get(user_id)
        return (state is not None and state.direct) or self._assigning_group(app, user_id) is not None

    def _app_user_state(self, app: EmulatedApp, user_id: str) -> AppUserState:
        """The app user's state, created with Okta's defaults the first time it is needed."""
        if user_id not in self._users:
            raise KeyError(f"no Okta user {user_id}")
        state = app.app_users.get(user_id)
        if state is None:
            now = self._clock()
            state = AppUserState(user_id, False, "ACTIVE", "DISABLED", now, now, now)
            app.app_users[user_id] = state
        return state

    def _forget_unlisted(self, app: EmulatedApp, user_id: str) -> None:
        """Okta drops an app user (its externalId included) once nothing assigns it any more."""
        if user_id in app.app_users and not self._is_listed(app, user_id):
            del app.app_users[user_id]

    def _apps_assigning(self, group_id: str) -> list[str]:
        """The ids of the apps the group is assigned to."""
        return [app.id for app in self._apps.values() if group_id in app.group_ids]
