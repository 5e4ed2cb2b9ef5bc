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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from reconciler.testing.okta.cache import ListingCache
from reconciler.testing.okta.errors import not_found
from reconciler.testing.okta.log_events import (
    USER_MEMBERSHIP_ADD,
    USER_MEMBERSHIP_REMOVE,
    EventKind,
    Transaction,
    app_target,
    app_user_target,
    log_event,
    new_app_user_id,
    user_target,
)
from reconciler.testing.okta.log_store import EventStore
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
        self._log_store = EventStore()
        """The System Log (see :mod:`reconciler.testing.okta.system_log`)."""
        self._app_user_ids: dict[tuple[str, str], str] = {}
        """(app id, user id) -> the AppUser id (``0ua…``) the log names while the user is listed."""
        self._log_paused = 0
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

    # -- the System Log (call with the lock held) ------------------------------

    @contextmanager
    def log_paused(self) -> Iterator[None]:
        """Changes made inside write no System Log events: a test or benchmark building the org's state at
        rest (100,000 users would be 300,000 events nobody reads). Changes from other threads meanwhile too."""
        with self._lock:
            self._log_paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._log_paused -= 1

    def _write_event(
        self, kind: EventKind, targets: Sequence[dict[str, Any]], transaction: Transaction, **fields: Any
    ) -> None:
        """Write one event for a change made now (see :func:`~reconciler.testing.okta.log_events.log_event`)."""
        if not self._log_paused:
            now = self._clock()
            self._log_store.add(log_event(kind, now, transaction, targets, **fields), now)

    def _app_user_targets(self, app: EmulatedApp, user_id: str) -> list[dict[str, Any]]:
        """``[AppUser, AppInstance, User]``, as Okta's ``application.user_membership.*`` events name them."""
        user = self._users[user_id]
        key = (app.id, user_id)
        app_user_id = self._app_user_ids.get(key) or self._app_user_ids.setdefault(key, new_app_user_id())
        state = app.app_users.get(user_id)
        return [app_user_target(app_user_id, user, state and state.user_name), app_target(app), user_target(user)]

    def _listings(self, app_ids: Iterable[str], user_ids: Iterable[str]) -> dict[tuple[str, str], bool]:
        """Whether each user is listed by each app now (to compare with after a change)."""
        users = list(user_ids)
        return {
            (app_id, user_id): self._is_listed(self._apps[app_id], user_id) for app_id in app_ids for user_id in users
        }

    def _log_listing_changes(self, before: Mapping[tuple[str, str], bool], transaction: Transaction) -> None:
        """One ``application.user_membership.add`` or ``.remove`` per app user whose listing changed since
        ``before``: Okta's fan-out of a group assignment or membership change (a JOB)."""
        for (app_id, user_id), was_listed in before.items():
            app = self._apps[app_id]
            listed = self._is_listed(app, user_id)
            if listed != was_listed:
                kind = USER_MEMBERSHIP_ADD if listed else USER_MEMBERSHIP_REMOVE
                self._write_event(kind, self._app_user_targets(app, user_id), transaction)
            if not listed:
                self._app_user_ids.pop((app_id, user_id), None)
