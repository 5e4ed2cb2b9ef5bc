"""An Okta Management API emulator on aiohttp.web, for the tests and ``reconcile demo``.

No public Okta emulator is faithful enough for the parts the reconciler relies
on, so this one implements exactly those, shaped like real Okta answers (see
``../shared/okta-recorded`` and Okta's OpenAPI spec):

- ``GET /api/v1/apps/{appId}/users`` with ``limit`` (1..500, default 50),
  the ``after`` cursor, ``expand=user`` and ``Link`` headers
  (``rel="self"`` then ``rel="next"``, two separate headers, as Okta sends them);
- ``GET /api/v1/apps/{appId}/users/{userId}``, ``GET /api/v1/apps/{appId}``,
  ``GET /api/v1/users/{idOrLogin}``;
- ``GET /api/v1/apps/{appId}/groups`` (``limit`` 20..200, default 20, ``after``,
  ``expand=group``), ``GET /api/v1/groups/{groupId}`` and
  ``GET /api/v1/groups/{groupId}/users`` (``limit`` 1..1000, default 1000, ``after``);
- ``Authorization: SSWS <api token>``, and OAuth 2.0 for service apps:
  ``POST /oauth2/v1/token`` (client_credentials + private_key_jwt, verified
  with PyJWT) issuing opaque ``Bearer`` access tokens. DPoP is not emulated:
  a DPoP proof header is ignored and a Bearer token is issued;
- ``X-Rate-Limit-Limit/-Remaining/-Reset`` on every answer, per-bucket
  counters over 60-second windows, 429 ``E0000047`` when exhausted;
- latency, fault injection and a request log, driven from Python.

The state lives in memory and is changed through the Python API of
:class:`OktaEmulator` (thread-safe, so a test can change it while the
thread-backed runner serves). Ids look like Okta's (``00u`` + 17 alphanumerics)
and come from a seeded :class:`random.Random`, so a seed gives the same ids.

The app-user listing serves 100,000 users at a few milliseconds of CPU per
500-user page: each app's sorted listing and each app user's JSON are cached
(:meth:`OktaEmulator.warm_listing` fills the cache ahead of a benchmark), and
every method that changes state drops what it makes stale. So change the state
through those methods, not by assigning to the records they return.
"""

from __future__ import annotations

import asyncio
import bisect
import fnmatch
import json
import math
import random
import re
import secrets
import socket
import string
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

USER_STATUSES = frozenset(
    {"STAGED", "PROVISIONED", "ACTIVE", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT", "SUSPENDED", "DEPROVISIONED"}
)
APP_USER_STATUSES = frozenset(
    {
        "ACTIVE", "APPROVED", "DEPROVISIONED", "IMPLICIT", "IMPORTED", "INACTIVE", "MATCHED",
        "PENDING", "PROVISIONED", "REVOKED", "STAGED", "SUSPENDED", "UNASSIGNED",
    }
)  # fmt: skip
SYNC_STATES = frozenset({"DISABLED", "ERROR", "OUT_OF_SYNC", "SYNCHRONIZED", "SYNCING"})

APP_USERS_DEFAULT_LIMIT = 50
APP_USERS_MAX_LIMIT = 500
APP_GROUPS_DEFAULT_LIMIT = 20
APP_GROUPS_MIN_LIMIT = 20  # the spec's queryGroupAssignmentLimit: minimum 20, maximum 200, default 20
APP_GROUPS_MAX_LIMIT = 200
GROUP_USERS_DEFAULT_LIMIT = 1000  # the spec's default (and what Okta's recorded Link shows); it recommends 200
GROUP_USERS_MAX_LIMIT = 1000
RATE_LIMIT_WINDOW_S = 60
DEFAULT_RATE_LIMIT = 600
ACCESS_TOKEN_LIFETIME_S = 3600
MAX_ASSERTION_LIFETIME_S = 3600
TOKEN_PATH = "/oauth2/v1/token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCIM_TEST_APP_LABEL = "SCIM 2.0 Test App (OAuth Bearer Token)"

_ID_ALPHABET = string.ascii_letters + string.digits
_USER_ID = re.compile(r"00u[A-Za-z0-9]{17}")
_GROUP_ID = re.compile(r"00g[A-Za-z0-9]{17}")
_JSON = "application/json"
_WARM_CHUNK = 1000
_OKTA_ERROR_CODES = {400: "E0000001", 401: "E0000011", 403: "E0000006", 404: "E0000007", 429: "E0000047"}
_RATE_LIMIT_SUMMARY = "API call exceeded rate limit due to too many requests."
_USER_LIFECYCLE_LINKS = {
    "ACTIVE": ("suspend", "resetPassword", "expirePassword", "deactivate"),
    "SUSPENDED": ("unsuspend", "deactivate"),
    "STAGED": ("activate", "deactivate"),
    "PROVISIONED": ("activate", "deactivate"),
    "DEPROVISIONED": ("activate",),
}
_GROUP_LOGOS = (
    (
        "medium",
        "https://ok11static.oktacdn.com/assets/img/logos/groups/okta-medium.d7fb831bc4e7e1a5d8bd35dfaf405d9e.png",
    ),
    ("large", "https://ok11static.oktacdn.com/assets/img/logos/groups/okta-large.511fcb0de9da185b52589cb14d581c2c.png"),
)
_SAMPLE_FIRST_NAMES = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger")
_SAMPLE_LAST_NAMES = ("Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen")
_SAMPLE_DEPARTMENTS = ("Engineering", "Finance", "Sales", "Support", "Legal")


# ---------------------------------------------------------------------------
# State records
# ---------------------------------------------------------------------------


@dataclass
class EmulatedUser:
    """An Okta user (``/api/v1/users/{id}``)."""

    id: str
    status: str
    profile: dict[str, Any]
    created: float
    status_changed: float
    last_updated: float


@dataclass
class EmulatedGroup:
    """An Okta group (``00g…``) and its members, in the order they were added."""

    id: str
    name: str
    description: str
    member_ids: list[str] = field(default_factory=list)
    created: float = 0.0
    last_updated: float = 0.0
    last_membership_updated: float = 0.0


@dataclass
class AppUserState:
    """What Okta keeps about one user's assignment to one app.

    ``profile_overrides`` and ``user_name`` override what the app's profile
    mapping derives from the Okta user, so a change to the user's profile shows
    in the app profile the way Okta's mappings make it show.
    """

    user_id: str
    direct: bool
    status: str
    sync_state: str
    created: float
    status_changed: float
    last_updated: float
    external_id: str | None = None
    user_name: str | None = None
    profile_overrides: dict[str, Any] = field(default_factory=dict)
    last_sync: float | None = None


@dataclass
class EmulatedApp:
    """An app instance (``0oa…``) with its direct assignments and assigned groups."""

    id: str
    name: str
    label: str
    created: float
    app_users: dict[str, AppUserState] = field(default_factory=dict)
    group_ids: list[str] = field(default_factory=list)
    group_assigned_at: dict[str, float] = field(default_factory=dict)
    """When each assigned group was assigned (its ApplicationGroupAssignment's ``lastUpdated``)."""


@dataclass(frozen=True)
class ServiceClient:
    """A registered OAuth 2.0 service app: its client id, public key and granted scopes."""

    client_id: str
    public_key: Any
    scopes: frozenset[str]


@dataclass(frozen=True)
class ServiceAppCredentials:
    """What a service app's administrator hands to the reconciler."""

    client_id: str
    private_key_pem: str


@dataclass(frozen=True)
class _AccessToken:
    client_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator received, for tests to inspect.

    ``status`` is None when the connection was dropped by a fault.
    ``auth_scheme`` is ``SSWS``, ``Bearer``, ... (see :func:`authorization_scheme`), never the credential.
    """

    method: str
    path: str
    query: Mapping[str, str]
    auth_scheme: str | None
    status: int | None


class FaultKind(StrEnum):
    STATUS = "status"
    """Answer ``status`` with an Okta error body."""
    DROP = "drop"
    """Close the connection without answering."""
    NON_JSON = "non_json"
    """Answer ``status`` with an HTML page instead of JSON."""
    TRUNCATED = "truncated"
    """Answer as usual, but with the body cut to ``keep_bytes`` (half by default) and a Content-Length
    that matches the cut: well-formed HTTP carrying broken JSON."""
    RESET = "reset"
    """Send the usual answer's headers (with the whole body's Content-Length) and ``keep_bytes`` of its
    body (half by default), then reset the connection."""
    DELAY = "delay"
    """Wait ``delay_s`` before answering as usual; longer than the client's timeout, it is a read timeout."""
    CALL = "call"
    """Run ``action`` once the request is authorized and answered, before the answer is sent: a change
    made between two pages (revoke the token, unassign a user) shows from the next request on."""


@dataclass
class FaultRule:
    """Replaces some answers to requests whose path matches ``path``.

    ``path`` is an :func:`fnmatch.fnmatchcase` pattern over the request path,
    without the query (``*`` also matches ``/``). The rule counts the requests
    it matches (``seen``) and fires on the ``nth`` one and the ``times - 1``
    after it; ``times=None`` fires on every match from the ``nth`` on.
    With ``rate_limit_headers=False`` the answer carries no ``Date`` and no
    ``X-Rate-Limit-*`` headers, which the okta SDK's retry code cannot handle.

    aiohttp clients resend an idempotent request once when the connection
    drops, so a DROP meant to reach the caller must fire twice (``times=2``).
    ``keep_bytes`` (TRUNCATED, RESET), ``delay_s`` (DELAY) and ``action``
    (CALL) go with their kinds.
    """

    path: str
    kind: FaultKind = FaultKind.STATUS
    status: int = 500
    nth: int = 1
    times: int | None = 1
    method: str | None = None
    rate_limit_headers: bool = True
    keep_bytes: int | None = None
    delay_s: float = 0.0
    action: Callable[[], object] | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        method_matches = self.method is None or self.method.upper() == method.upper()
        return method_matches and fnmatch.fnmatchcase(path, self.path)

    def fires_on(self, match_number: int) -> bool:
        if match_number < self.nth:
            return False
        return self.times is None or match_number < self.nth + self.times


@dataclass
class _RateLimitBucket:
    limit: int
    window_start: float
    window_s: float = RATE_LIMIT_WINDOW_S
    used: int = 0

    def reset_at(self) -> int:
        """Epoch seconds, as Okta sends them: rounded up, so the window has surely ended by then."""
        return math.ceil(self.window_start + self.window_s)

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(max(self.limit - self.used, 0)),
            "X-Rate-Limit-Reset": str(self.reset_at()),
        }


class _OktaHTTPError(Exception):
    """Raised inside handlers; the middleware turns it into an Okta error answer."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


# ---------------------------------------------------------------------------
# JSON shapes (as Okta sends them)
# ---------------------------------------------------------------------------


def okta_timestamp(epoch: float) -> str:
    """Okta's timestamp format: ``2020-08-27T18:14:07.000Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_timestamp = lru_cache(maxsize=4096)(okta_timestamp)
""":func:`okta_timestamp`, memoised: a user's JSON shows the same few instants several times over."""


def okta_error(code: str, summary: str, causes: Iterable[str] = ()) -> dict[str, Any]:
    """An Okta error body (``errorCode``, ``errorSummary``, ``errorLink``, ``errorId``, ``errorCauses``)."""
    return {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22)),
        "errorCauses": [{"errorSummary": cause} for cause in causes],
    }


def _href(base_url: str, path: str) -> dict[str, str]:
    return {"href": base_url + path}


def user_json(user: EmulatedUser, base_url: str, user_type_id: str) -> dict[str, Any]:
    """A user as ``GET /api/v1/users/{id}`` and ``_embedded.user`` show it."""
    user_path = f"/api/v1/users/{user.id}"
    links: dict[str, Any] = {
        action: {"href": f"{base_url}{user_path}/lifecycle/{action}", "method": "POST"}
        for action in _USER_LIFECYCLE_LINKS.get(user.status, ("deactivate",))
    }
    links["schema"] = _href(base_url, f"/api/v1/meta/schemas/user/osc{user_type_id[3:]}")
    links["self"] = _href(base_url, user_path)
    links["type"] = _href(base_url, f"/api/v1/meta/types/user/{user_type_id}")
    email = user.profile.get("email")
    return {
        "id": user.id,
        "status": user.status,
        "created": _timestamp(user.created),
        "activated": None if user.status == "STAGED" else _timestamp(user.created),
        "statusChanged": _timestamp(user.status_changed),
        "lastLogin": None,
        "lastUpdated": _timestamp(user.last_updated),
        "passwordChanged": _timestamp(user.created),
        "type": {"id": user_type_id},
        "profile": dict(user.profile),
        "credentials": {
            "password": {},
            "emails": [{"value": email, "status": "VERIFIED", "type": "PRIMARY"}] if email else [],
            "provider": {"type": "OKTA", "name": "OKTA"},
        },
        "_links": links,
    }


def group_json(group: EmulatedGroup, base_url: str) -> dict[str, Any]:
    """A group as ``GET /api/v1/groups/{id}`` and ``_embedded.group`` show it (an ``OKTA_GROUP``)."""
    group_path = f"/api/v1/groups/{group.id}"
    return {
        "id": group.id,
        "created": _timestamp(group.created),
        "lastUpdated": _timestamp(group.last_updated),
        "lastMembershipUpdated": _timestamp(group.last_membership_updated),
        "objectClass": ["okta:user_group"],
        "type": "OKTA_GROUP",
        "profile": {"name": group.name, "description": group.description or None},
        "_links": {
            "logo": [{"name": name, "href": href, "type": "image/png"} for name, href in _GROUP_LOGOS],
            "users": _href(base_url, f"{group_path}/users"),
            "apps": _href(base_url, f"{group_path}/apps"),
        },
    }


def group_member_json(user: EmulatedUser, base_url: str, user_type_id: str) -> dict[str, Any]:
    """A user as ``GET /api/v1/groups/{id}/users`` lists it: :func:`user_json` with only the ``self`` link."""
    body = user_json(user, base_url, user_type_id)
    body["_links"] = {"self": body["_links"]["self"]}
    return body


def mapped_app_profile(user_profile: Mapping[str, Any]) -> dict[str, Any]:
    """The app profile the SCIM 2.0 app's default mappings derive from an Okta user profile."""
    return {
        "givenName": user_profile.get("firstName"),
        "familyName": user_profile.get("lastName"),
        "email": user_profile.get("email"),
        "displayName": user_profile.get("displayName"),
        "locale": user_profile.get("locale"),
    }


def app_json(app: EmulatedApp, base_url: str) -> dict[str, Any]:
    """An app instance as ``GET /api/v1/apps/{id}`` shows it (a SAML 2.0 app with SCIM provisioning)."""
    app_path = f"/api/v1/apps/{app.id}"
    return {
        "id": app.id,
        "name": app.name,
        "label": app.label,
        "status": "ACTIVE",
        "lastUpdated": okta_timestamp(app.created),
        "created": okta_timestamp(app.created),
        "accessibility": {"selfService": False, "errorRedirectUrl": None, "loginRedirectUrl": None},
        "visibility": {"autoSubmitToolbar": False, "hide": {"iOS": False, "web": False}, "appLinks": {}},
        "features": ["PUSH_NEW_USERS", "PUSH_PROFILE_UPDATES", "PUSH_USER_DEACTIVATION"],
        "signOnMode": "SAML_2_0",
        "credentials": {"userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"}, "signing": {}},
        "settings": {"app": {}, "notifications": {"vpn": {"network": {"connection": "DISABLED"}}}},
        "_links": {
            "groups": _href(base_url, f"{app_path}/groups"),
            "users": _href(base_url, f"{app_path}/users"),
            "deactivate": _href(base_url, f"{app_path}/lifecycle/deactivate"),
        },
    }


# ---------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------


class OktaEmulator:
    """In-memory Okta org state plus the aiohttp app that serves it.

    Serve it with :func:`run_okta_emulator` (async) or
    :func:`okta_emulator_in_thread` (sync code, subprocess tests).
    """

    # Caches, guarded by the lock like the state they are derived from (see
    # "caches" below for who drops what):
    # - ``_member_sets``: group id -> its member ids, so membership tests are O(1);
    # - ``_listings``: app id -> the sorted ids its listing shows;
    # - ``_rendered``: app id -> (expand, base URL, user type id) -> user id -> the app user's JSON;
    # - ``_member_listings``: group id -> its member ids, sorted (what its member listing pages over);
    # - ``_rendered_members``: (base URL, user type id) -> user id -> the user's JSON as a group member.

    def __init__(
        self,
        *,
        seed: int = 0,
        api_tokens: Iterable[str] = (),
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_limits: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.time,
        rate_limit_window_s: float = RATE_LIMIT_WINDOW_S,
    ) -> None:
        """``rate_limit_window_s``: Okta's windows last a minute; tests of pacing shorten them."""
        self._random = random.Random(seed)
        self._rate_limit_window_s = rate_limit_window_s
        self._clock = clock
        self._lock = threading.RLock()
        self._issued_ids: set[str] = set()
        self._api_tokens = set(api_tokens)
        self._clients: dict[str, ServiceClient] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._used_assertion_ids: set[str] = set()
        self._users: dict[str, EmulatedUser] = {}
        self._groups: dict[str, EmulatedGroup] = {}
        self._apps: dict[str, EmulatedApp] = {}
        self._member_sets: dict[str, set[str]] = {}
        self._listings: dict[str, list[str]] = {}
        self._rendered: dict[str, dict[tuple[bool, str, str], dict[str, bytes]]] = {}
        self._member_listings: dict[str, list[str]] = {}
        self._rendered_members: dict[tuple[str, str], dict[str, bytes]] = {}
        self._default_rate_limit = rate_limit
        self._rate_limits = dict(rate_limits or {})
        self._buckets: dict[str, _RateLimitBucket] = {}
        self._faults: list[FaultRule] = []
        self._latency_s = 0.0
        self._requests: list[RequestRecord] = []
        self.user_type_id = self.new_id("oty")

    # -- ids -----------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """A fresh Okta-looking id: ``prefix`` + alphanumerics, 20 characters in all."""
        with self._lock:
            while True:
                candidate = prefix + "".join(self._random.choice(_ID_ALPHABET) for _ in range(20 - len(prefix)))
                if candidate not in self._issued_ids:
                    self._issued_ids.add(candidate)
                    return candidate

    # -- credentials ---------------------------------------------------------

    def add_api_token(self, token: str) -> None:
        """Accept ``Authorization: SSWS <token>`` (an API token: all read scopes)."""
        with self._lock:
            self._api_tokens.add(token)

    def register_client(self, public_key: Any, scopes: Iterable[str], client_id: str | None = None) -> str:
        """Register a service app that signs its client assertions with the matching private key.

        ``public_key`` is a PEM string/bytes, a ``cryptography`` public key, or a
        JWK dict. Returns the client id (``0oa…`` unless given).
        """
        key = jwt.PyJWK(public_key).key if isinstance(public_key, Mapping) else public_key
        with self._lock:
            client_id = client_id or self.new_id("0oa")
            self._clients[client_id] = ServiceClient(client_id, key, frozenset(scopes))
            return client_id

    def new_service_app(self, scopes: Iterable[str]) -> ServiceAppCredentials:
        """Generate an RSA key pair, register its public half and hand back the client id and private PEM."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        client_id = self.register_client(private_key.public_key(), scopes)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return ServiceAppCredentials(client_id, pem.decode())

    def revoke_api_token(self, token: str) -> None:
        """Stop accepting an API token, as when an admin revokes it: its next use answers 401 E0000011."""
        with self._lock:
            self._api_tokens.discard(token)

    def revoke_access_tokens(self) -> None:
        """Forget every issued access token (their next use answers 401)."""
        with self._lock:
            self._access_tokens.clear()

    # -- users and groups ----------------------------------------------------

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
        _check_choice("user status", status, USER_STATUSES)
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
        _check_choice("user status", status, USER_STATUSES)
        with self._lock:
            user = self._users[user_id]
            user.status = status
            user.status_changed = user.last_updated = self._clock()
            self._drop_rendered_user(user_id)

    def update_user_profile(self, user_id: str, **changes: Any) -> None:
        """Change an Okta user's profile (camelCase keys); mapped app profiles follow."""
        with self._lock:
            user = self._users[user_id]
            user.profile.update(changes)
            user.last_updated = self._clock()
            self._drop_rendered_user(user_id)

    def create_group(self, name: str, description: str = "") -> EmulatedGroup:
        now = self._clock()
        with self._lock:
            group = EmulatedGroup(self.new_id("00g"), name, description, created=now, last_updated=now)
            group.last_membership_updated = now
            self._groups[group.id] = group
            self._member_sets[group.id] = set()
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
            for app in self._apps.values():
                if group_id in app.group_ids:
                    self._drop_group_assignment(app.id, group_id)

    def add_group_member(self, group_id: str, user_id: str) -> None:
        with self._lock:
            group = self._groups[group_id]
            if user_id not in self._users:
                raise KeyError(f"no Okta user {user_id}")
            if user_id not in self._member_sets[group_id]:
                group.member_ids.append(user_id)
                self._member_sets[group_id].add(user_id)
                group.last_membership_updated = self._clock()
                self._drop_membership_change(group_id, user_id)

    def remove_group_member(self, group_id: str, user_id: str) -> None:
        with self._lock:
            group = self._groups[group_id]
            group.member_ids.remove(user_id)
            self._member_sets[group_id].discard(user_id)
            group.last_membership_updated = self._clock()
            self._drop_membership_change(group_id, user_id)
            for app in self._apps.values():
                self._forget_unlisted(app, user_id)

    # -- apps and assignments ------------------------------------------------

    def create_app(self, label: str = SCIM_TEST_APP_LABEL, name: str = "scim2testapp") -> EmulatedApp:
        with self._lock:
            app = EmulatedApp(self.new_id("0oa"), name, label, self._clock())
            self._apps[app.id] = app
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
        """
        with self._lock:
            state = self._app_user_state(self._apps[app_id], user_id)
            state.direct = True
            state.profile_overrides.update(profile or {})
            state.user_name = user_name if user_name is not None else state.user_name
            self._set_app_user_fields(state, status=status, sync_state=sync_state, external_id=external_id)
            self._drop_listing(app_id)
            self._drop_rendered(app_id, user_id)
            return state

    def unassign_user(self, app_id: str, user_id: str) -> None:
        """Remove a direct assignment; a user still in an assigned group stays listed with scope GROUP."""
        with self._lock:
            app = self._apps[app_id]
            app.app_users[user_id].direct = False
            self._drop_listing(app_id)
            self._drop_rendered(app_id, user_id)
            self._forget_unlisted(app, user_id)

    def assign_group(self, app_id: str, group_id: str) -> None:
        """Assign a group: its members are listed as app users with scope GROUP."""
        with self._lock:
            app = self._apps[app_id]
            if group_id not in self._groups:
                raise KeyError(f"no Okta group {group_id}")
            if group_id not in app.group_ids:
                app.group_ids.append(group_id)
                app.group_assigned_at[group_id] = self._clock()
                self._drop_group_assignment(app_id, group_id)

    def unassign_group(self, app_id: str, group_id: str) -> None:
        with self._lock:
            app = self._apps[app_id]
            app.group_ids.remove(group_id)
            app.group_assigned_at.pop(group_id, None)
            self._drop_group_assignment(app_id, group_id)
            for member_id in self._groups[group_id].member_ids:
                self._forget_unlisted(app, member_id)

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
        """Change a listed app user's status, syncState, externalId, userName or profile keys."""
        with self._lock:
            app = self._apps[app_id]
            if not self._is_listed(app, user_id):
                raise KeyError(f"user {user_id} is not assigned to app {app_id}")
            state = self._app_user_state(app, user_id)
            state.profile_overrides.update(profile or {})
            state.user_name = user_name if user_name is not None else state.user_name
            self._set_app_user_fields(state, status=status, sync_state=sync_state, external_id=external_id)
            self._drop_rendered(app_id, user_id)
            return state

    def clear_external_id(self, app_id: str, user_id: str) -> None:
        """Forget the SCIM id Okta stored for an app user (``externalId`` becomes null)."""
        with self._lock:
            state = self._apps[app_id].app_users[user_id]
            state.external_id = None
            state.last_updated = self._clock()
            self._drop_rendered(app_id, user_id)

    def mark_provisioned(self, app_id: str, user_id: str, scim_id: str) -> AppUserState:
        """What Okta records after a successful SCIM create: externalId, PROVISIONED, SYNCHRONIZED."""
        with self._lock:
            state = self.set_app_user(
                app_id, user_id, status="PROVISIONED", sync_state="SYNCHRONIZED", external_id=scim_id
            )
            state.last_sync = self._clock()
            self._drop_rendered(app_id, user_id)
            return state

    def add_assigned_users(self, app_id: str, count: int, *, domain: str = "example.com") -> list[EmulatedUser]:
        """Create ``count`` plausible ACTIVE users and assign each directly to the app."""
        with self._lock:
            return [self._add_assigned_user(app_id, number, domain) for number in range(1, count + 1)]

    def _add_assigned_user(self, app_id: str, number: int, domain: str) -> EmulatedUser:
        first = self._random.choice(_SAMPLE_FIRST_NAMES)
        last = self._random.choice(_SAMPLE_LAST_NAMES)
        user = self.create_user(
            login=f"{first}.{last}.{number}@{domain}".lower(),
            first_name=first,
            last_name=last,
            displayName=f"{first} {last}",
            locale="en_US",
            title="Engineer",
            department=self._random.choice(_SAMPLE_DEPARTMENTS),
        )
        self.assign_user(app_id, user.id)
        return user

    def listed_user_ids(self, app_id: str) -> list[str]:
        """The ids ``GET /api/v1/apps/{appId}/users`` lists, in its order."""
        with self._lock:
            return list(self._listed_user_ids(self._apps[app_id]))

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
                listed = self._listed_user_ids(app)
                start = 0 if after is None else bisect.bisect_right(listed, after)
                chunk = listed[start : start + _WARM_CHUNK]
                self._rendered_app_users(app, chunk, f"{scheme}://{netloc}", expand)
            if not chunk:
                return
            after = chunk[-1]

    # -- latency, faults, rate limits, request log ---------------------------

    def set_latency(self, milliseconds: float) -> None:
        """Delay every answer by this much (0 turns it off)."""
        self._latency_s = milliseconds / 1000

    def inject_fault(
        self,
        path: str,
        *,
        status: int = 500,
        kind: FaultKind = FaultKind.STATUS,
        nth: int = 1,
        times: int | None = 1,
        method: str | None = None,
        rate_limit_headers: bool = True,
        keep_bytes: int | None = None,
        delay_s: float = 0.0,
        action: Callable[[], object] | None = None,
    ) -> FaultRule:
        """Add a :class:`FaultRule`; rules are checked in the order they were added.

        Example: ``inject_fault("/api/v1/apps/*/users", status=500, nth=3)``
        makes the third listing request answer 500 and later ones succeed;
        ``inject_fault(path, kind=FaultKind.CALL, action=lambda: emulator.revoke_api_token(token))``
        revokes the token once the first page is answered.
        """
        if kind is FaultKind.CALL and action is None:
            raise ValueError("a CALL fault needs an action")
        rule = FaultRule(
            path,
            kind=kind,
            status=status,
            nth=nth,
            times=times,
            method=method,
            rate_limit_headers=rate_limit_headers,
            keep_bytes=keep_bytes,
            delay_s=delay_s,
            action=action,
        )
        with self._lock:
            self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_rate_limit(self, limit: int, bucket: str | None = None) -> None:
        """Requests allowed per 60-second window, for one bucket or (``bucket=None``) the default.

        Buckets: ``/api/v1/apps``, ``/api/v1/users``, ``/api/v1/groups``,
        ``/api/v1`` (anything else) and ``/oauth2/v1/token``.
        """
        with self._lock:
            if bucket is None:
                self._default_rate_limit = limit
            else:
                self._rate_limits[bucket] = limit
            self._buckets.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def request_count(self, path: str = "*", method: str | None = None) -> int:
        """How many logged requests match an fnmatch ``path`` pattern (and ``method``)."""
        return sum(
            1
            for record in self.requests
            if fnmatch.fnmatchcase(record.path, path) and (method is None or record.method == method.upper())
        )

    def clear_request_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- the aiohttp application ---------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_get("/api/v1/apps/{app_id}", self._get_app)
        app.router.add_get("/api/v1/apps/{app_id}/users", self._list_app_users)
        app.router.add_get("/api/v1/apps/{app_id}/users/{user_id}", self._get_app_user)
        app.router.add_get("/api/v1/apps/{app_id}/groups", self._list_app_groups)
        app.router.add_get("/api/v1/users/{id_or_login}", self._get_user)
        app.router.add_get("/api/v1/groups/{group_id}", self._get_group)
        app.router.add_get("/api/v1/groups/{group_id}/users", self._list_group_users)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        status: int | None
        try:
            response, status = await self._answer(request, handler)
        except _OktaHTTPError as error:
            response = web.json_response(error.body, status=error.status, headers=error.headers)
            status = error.status
        self._log(request, status)
        return response

    async def _answer(self, request: web.Request, handler: Callable[..., Any]) -> tuple[web.StreamResponse, int | None]:
        rate_headers = self._count_request(request)
        fault = self._fault_for(request)
        if fault is not None and fault.kind in _REPLACING_FAULTS:
            return _fault_response(request, fault, rate_headers)
        if fault is not None and fault.kind is FaultKind.DELAY:
            await asyncio.sleep(fault.delay_s)
        try:
            if request.path.startswith("/api/v1/"):
                self._authorize(request)
            response: web.StreamResponse = await handler(request)
        except _OktaHTTPError as error:
            error.headers.update(rate_headers)
            raise
        except web.HTTPException as http_error:
            raise _OktaHTTPError(
                http_error.status,
                okta_error(_OKTA_ERROR_CODES.get(http_error.status, "E0000009"), http_error.reason),
                rate_headers,
            ) from None
        response.headers.update(rate_headers)
        response.headers["X-Okta-Request-Id"] = secrets.token_urlsafe(18)
        if fault is not None and fault.action is not None:
            fault.action()
        if fault is not None and fault.kind in (FaultKind.TRUNCATED, FaultKind.RESET):
            return _cut_response(request, fault, response)
        return response, response.status

    def _log(self, request: web.Request, status: int | None) -> None:
        scheme = authorization_scheme(request.headers.get("Authorization", ""))
        record = RequestRecord(request.method, request.path, dict(request.query), scheme, status)
        with self._lock:
            self._requests.append(record)

    def _count_request(self, request: web.Request) -> dict[str, str]:
        """Count the request in its bucket; raise the 429 when the bucket is exhausted."""
        name = rate_limit_bucket(request.path)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None or now >= bucket.window_start + bucket.window_s:
                limit = self._rate_limits.get(name, self._default_rate_limit)
                bucket = _RateLimitBucket(limit, now, self._rate_limit_window_s)
                self._buckets[name] = bucket
            if bucket.used >= bucket.limit:
                raise _OktaHTTPError(429, okta_error("E0000047", _RATE_LIMIT_SUMMARY), bucket.headers())
            bucket.used += 1
            return bucket.headers()

    def _fault_for(self, request: web.Request) -> FaultRule | None:
        with self._lock:
            for rule in self._faults:
                if not rule.matches(request.method, request.path):
                    continue
                rule.seen += 1
                if rule.fires_on(rule.seen):
                    rule.fired += 1
                    return rule
        return None

    def _authorize(self, request: web.Request) -> None:
        scheme, credential = split_authorization(request.headers.get("Authorization", ""))
        with self._lock:
            if scheme == "SSWS" and credential in self._api_tokens:
                return
            token = self._access_tokens.get(credential) if scheme == "Bearer" else None
            if token is None or token.expires_at <= self._clock():
                raise _OktaHTTPError(401, okta_error("E0000011", "Invalid token provided"), _www_authenticate(scheme))
        needed = required_scope(request.path)
        if needed not in token.scopes:
            raise _OktaHTTPError(
                403,
                okta_error("E0000006", "You do not have permission to perform the requested action"),
                {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
            )

    # -- handlers ------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        with self._lock:
            body = self._issue_token({key: str(value) for key, value in form.items()}, _base_url(request) + TOKEN_PATH)
        return web.json_response(body, headers={"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"})

    def _issue_token(self, form: Mapping[str, str], token_url: str) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise _oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            )
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or not form.get("client_assertion"):
            raise _oauth_error(401, "invalid_client", "Client authentication failed. A client_assertion is required.")
        client, claims = self._verified_assertion(form["client_assertion"], token_url)
        requested = frozenset(form.get("scope", "").split())
        if not requested:
            raise _oauth_error(
                400,
                "invalid_scope",
                "The authorization server resource does not have any configured default scopes, "
                "'scope' must be provided.",
            )
        if not requested <= client.scopes:
            refused = " ".join(sorted(requested - client.scopes))
            raise _oauth_error(400, "invalid_scope", f"The following scopes are not allowed: {refused}")
        self._used_assertion_ids.add(claims["jti"])
        access_token = secrets.token_urlsafe(32)
        self._access_tokens[access_token] = _AccessToken(
            client.client_id, requested, self._clock() + ACCESS_TOKEN_LIFETIME_S
        )
        return {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": access_token,
            "scope": " ".join(sorted(requested)),
        }

    def _verified_assertion(self, assertion: str, token_url: str) -> tuple[ServiceClient, dict[str, Any]]:
        """Check the client assertion the way Okta's org authorization server does."""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise _oauth_error(401, "invalid_client", "The client_assertion is not a valid JWT.") from None
        client = self._clients.get(str(unverified.get("iss")))
        if client is None or unverified.get("sub") != client.client_id:
            raise _oauth_error(401, "invalid_client", "Invalid value for 'client_id' parameter.")
        try:
            claims = jwt.decode(
                assertion,
                client.public_key,
                algorithms=["RS256"],
                audience=token_url,
                issuer=client.client_id,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except jwt.InvalidSignatureError:
            raise _oauth_error(401, "invalid_client", "The client_assertion signature is invalid.") from None
        except jwt.InvalidAudienceError:
            raise _oauth_error(
                401,
                "invalid_client",
                "The audience claim for client_assertion must be the endpoint invoking the client_assertion.",
            ) from None
        except jwt.ExpiredSignatureError:
            raise _oauth_error(401, "invalid_client", "The client_assertion token is expired.") from None
        except jwt.InvalidTokenError as error:
            raise _oauth_error(401, "invalid_client", f"The client_assertion is invalid: {error}") from None
        if claims["exp"] > self._clock() + MAX_ASSERTION_LIFETIME_S + 60:
            raise _oauth_error(
                401, "invalid_client", "The client_assertion token has an expiration too far into the future."
            )
        if claims["jti"] in self._used_assertion_ids:
            raise _oauth_error(401, "invalid_client", "The client_assertion token has already been used.")
        return client, claims

    async def _get_app(self, request: web.Request) -> web.Response:
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            return web.json_response(app_json(app, _base_url(request)))

    async def _list_app_users(self, request: web.Request) -> web.Response:
        limit = _parse_limit(request.query.get("limit"))
        after = _parse_cursor(request.query.get("after"), _USER_ID)
        expand = request.query.get("expand") == "user"
        base_url = _base_url(request)
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            listed = self._listed_user_ids(app)
            start = 0 if after is None else bisect.bisect_right(listed, after)
            page = listed[start : start + limit]
            parts = self._rendered_app_users(app, page, base_url, expand)
        # What web.json_response(list of the app users' dicts) answers, byte for byte.
        response = web.Response(body=_json_array(parts), content_type=_JSON, charset="utf-8")
        for link in _page_links(request, base_url, limit, page[-1] if start + limit < len(listed) else None):
            response.headers.add("Link", link)
        return response

    async def _get_app_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            if not self._is_listed(app, user_id):
                raise _not_found(user_id, "AppUser")
            expand = request.query.get("expand") == "user"
            return web.json_response(self._app_user_json(app, user_id, _base_url(request), expand))

    async def _get_user(self, request: web.Request) -> web.Response:
        wanted = request.match_info["id_or_login"]
        with self._lock:
            user = self._users.get(wanted) or next(
                (user for user in self._users.values() if user.profile.get("login") == wanted), None
            )
            if user is None:
                raise _not_found(wanted, "User")
            return web.json_response(user_json(user, _base_url(request), self.user_type_id))

    async def _list_app_groups(self, request: web.Request) -> web.Response:
        limit = _parse_limit(
            request.query.get("limit"), APP_GROUPS_DEFAULT_LIMIT, APP_GROUPS_MAX_LIMIT, APP_GROUPS_MIN_LIMIT
        )
        after = _parse_cursor(request.query.get("after"), _GROUP_ID)
        expand = request.query.get("expand") == "group"
        base_url = _base_url(request)
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            listed = sorted(app.group_ids)
            start = 0 if after is None else bisect.bisect_right(listed, after)
            page = listed[start : start + limit]
            body = [self._app_group_json(app, group_id, base_url, expand) for group_id in page]
        response = web.json_response(body)
        for link in _page_links(request, base_url, limit, page[-1] if start + limit < len(listed) else None):
            response.headers.add("Link", link)
        return response

    async def _get_group(self, request: web.Request) -> web.Response:
        with self._lock:
            group = self._group_or_404(request.match_info["group_id"])
            return web.json_response(group_json(group, _base_url(request)))

    async def _list_group_users(self, request: web.Request) -> web.Response:
        limit = _parse_limit(request.query.get("limit"), GROUP_USERS_DEFAULT_LIMIT, GROUP_USERS_MAX_LIMIT)
        after = _parse_cursor(request.query.get("after"), _USER_ID)
        base_url = _base_url(request)
        with self._lock:
            group = self._group_or_404(request.match_info["group_id"])
            listed = self._member_listing(group)
            start = 0 if after is None else bisect.bisect_right(listed, after)
            page = listed[start : start + limit]
            parts = self._rendered_group_members(page, base_url)
        response = web.Response(body=_json_array(parts), content_type=_JSON, charset="utf-8")
        for link in _page_links(request, base_url, limit, page[-1] if start + limit < len(listed) else None):
            response.headers.add("Link", link)
        return response

    # -- state helpers (call with the lock held) -----------------------------

    def _group_or_404(self, group_id: str) -> EmulatedGroup:
        group = self._groups.get(group_id)
        if group is None:
            raise _not_found(group_id, "UserGroup")
        return group

    def _app_group_json(self, app: EmulatedApp, group_id: str, base_url: str, expand: bool) -> dict[str, Any]:
        """An ApplicationGroupAssignment; the newest assignment has priority 0, as Okta numbers them."""
        app_path = f"/api/v1/apps/{app.id}"
        body: dict[str, Any] = {
            "id": group_id,
            "lastUpdated": _timestamp(app.group_assigned_at.get(group_id, app.created)),
            "priority": len(app.group_ids) - 1 - app.group_ids.index(group_id),
            "profile": {},
            "_links": {
                "app": _href(base_url, app_path),
                "self": _href(base_url, f"{app_path}/groups/{group_id}"),
                "group": _href(base_url, f"/api/v1/groups/{group_id}"),
            },
        }
        if expand:
            body["_embedded"] = {"group": group_json(self._groups[group_id], base_url)}
        return body

    def _member_listing(self, group: EmulatedGroup) -> list[str]:
        """The group's member ids, sorted (the cached list itself: do not change it)."""
        listed = self._member_listings.get(group.id)
        if listed is None:
            listed = self._member_listings[group.id] = sorted(self._member_sets[group.id])
        return listed

    def _rendered_group_members(self, user_ids: list[str], base_url: str) -> list[bytes]:
        """:func:`group_member_json` serialised, cached until the user changes."""
        rendered = self._rendered_members.setdefault((base_url, self.user_type_id), {})
        parts = []
        for user_id in user_ids:
            body = rendered.get(user_id)
            if body is None:
                user_body = group_member_json(self._users[user_id], base_url, self.user_type_id)
                body = rendered[user_id] = json.dumps(user_body).encode()
            parts.append(body)
        return parts

    def _app_or_404(self, app_id: str) -> EmulatedApp:
        app = self._apps.get(app_id)
        if app is None:
            raise _not_found(app_id, "AppInstance")
        return app

    def _assigning_group(self, app: EmulatedApp, user_id: str) -> EmulatedGroup | None:
        return next((self._groups[gid] for gid in app.group_ids if user_id in self._member_sets[gid]), None)

    def _is_listed(self, app: EmulatedApp, user_id: str) -> bool:
        state = app.app_users.get(user_id)
        return (state is not None and state.direct) or self._assigning_group(app, user_id) is not None

    def _listed_user_ids(self, app: EmulatedApp) -> list[str]:
        """The sorted ids the app's listing shows (the cached list itself: do not change it).

        A user is listed when assigned directly or through any assigned group.
        """
        listed = self._listings.get(app.id)
        if listed is None:
            ids = {user_id for user_id, state in app.app_users.items() if state.direct}
            for group_id in app.group_ids:
                ids.update(self._member_sets[group_id])
            listed = self._listings[app.id] = sorted(ids)
        return listed

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

    def _set_app_user_fields(
        self, state: AppUserState, *, status: str | None, sync_state: str | None, external_id: str | None
    ) -> None:
        now = self._clock()
        if status is not None:
            _check_choice("app user status", status, APP_USER_STATUSES)
            if status != state.status:
                state.status_changed = now
            state.status = status
        if sync_state is not None:
            _check_choice("syncState", sync_state, SYNC_STATES)
            state.sync_state = sync_state
        if external_id is not None:
            state.external_id = external_id
        state.last_updated = now

    def _rendered_app_users(self, app: EmulatedApp, user_ids: list[str], base_url: str, expand: bool) -> list[bytes]:
        """:meth:`_app_user_json` serialised as ``web.json_response`` does it, cached until what it shows changes."""
        by_variant = self._rendered.setdefault(app.id, {})
        rendered = by_variant.setdefault((expand, base_url, self.user_type_id), {})
        return [
            rendered.get(user_id) or self._render_app_user(rendered, app, user_id, base_url, expand)
            for user_id in user_ids
        ]

    def _render_app_user(
        self, rendered: dict[str, bytes], app: EmulatedApp, user_id: str, base_url: str, expand: bool
    ) -> bytes:
        body = rendered[user_id] = json.dumps(self._app_user_json(app, user_id, base_url, expand)).encode()
        return body

    def _app_user_json(self, app: EmulatedApp, user_id: str, base_url: str, expand: bool) -> dict[str, Any]:
        """An app user as Okta lists it; ``_embedded.user`` only with ``expand=user``."""
        user = self._users[user_id]
        state = self._app_user_state(app, user_id)
        links: dict[str, Any] = {"app": _href(base_url, f"/api/v1/apps/{app.id}")}
        group = None if state.direct else self._assigning_group(app, user_id)
        if group is not None:
            links["group"] = {"name": group.name, **_href(base_url, f"/api/v1/groups/{group.id}")}
        links["user"] = _href(base_url, f"/api/v1/users/{user_id}")
        body: dict[str, Any] = {
            "id": user_id,
            "externalId": state.external_id,
            "created": _timestamp(state.created),
            "lastUpdated": _timestamp(state.last_updated),
            "scope": "USER" if state.direct else "GROUP",
            "status": state.status,
            "statusChanged": _timestamp(state.status_changed),
            "passwordChanged": None,
            "syncState": state.sync_state,
        }
        if state.last_sync is not None:
            body["lastSync"] = _timestamp(state.last_sync)
        body["credentials"] = {"userName": state.user_name or user.profile.get("login")}
        body["profile"] = {**mapped_app_profile(user.profile), **state.profile_overrides}
        body["_links"] = links
        if expand:
            body["_embedded"] = {"user": user_json(user, base_url, self.user_type_id)}
        return body

    # -- caches (call with the lock held) --------------------------------------
    #
    # What an app user's JSON shows: the user (status, profile, times), its app
    # user state, and, for a GROUP-scoped one, the first assigned group it is a
    # member of. What a listing shows: direct assignments and the members of the
    # assigned groups. Each mutator drops exactly what it may have changed.

    def _drop_listing(self, app_id: str) -> None:
        self._listings.pop(app_id, None)

    def _drop_rendered(self, app_id: str, user_id: str) -> None:
        for rendered in self._rendered.get(app_id, {}).values():
            rendered.pop(user_id, None)

    def _drop_rendered_user(self, user_id: str) -> None:
        """The user changed: its JSON is stale in every app and in every group member listing."""
        for app_id in self._apps:
            self._drop_rendered(app_id, user_id)
        for rendered in self._rendered_members.values():
            rendered.pop(user_id, None)

    def _drop_membership_change(self, group_id: str, user_id: str) -> None:
        """The user joined or left the group: stale in its member listing and in the apps it is assigned to."""
        self._member_listings.pop(group_id, None)
        for app in self._apps.values():
            if group_id in app.group_ids:
                self._drop_listing(app.id)
                self._drop_rendered(app.id, user_id)

    def _drop_group_assignment(self, app_id: str, group_id: str) -> None:
        """The group was assigned to or unassigned from the app: its members' scope or group may change."""
        self._drop_listing(app_id)
        for member_id in self._member_sets[group_id]:
            self._drop_rendered(app_id, member_id)


# ---------------------------------------------------------------------------
# Request helpers
# ---------------------------------------------------------------------------


def rate_limit_bucket(path: str) -> str:
    """The rate-limit bucket a path counts against (Okta limits per endpoint family)."""
    if path.startswith("/oauth2/"):
        return TOKEN_PATH
    for family in ("/api/v1/apps", "/api/v1/users", "/api/v1/groups"):
        if path == family or path.startswith(family + "/"):
            return family
    return "/api/v1"


def required_scope(path: str) -> str:
    """The OAuth scope a read of this path needs."""
    family = rate_limit_bucket(path)
    return {"/api/v1/users": "okta.users.read", "/api/v1/groups": "okta.groups.read"}.get(family, "okta.apps.read")


def split_authorization(header: str) -> tuple[str, str]:
    """``(scheme, credential)`` from an Authorization header.

    ``SSWS`` may be glued to the token: okta 3.4.6's generated API methods send
    ``SSWS<token>`` (its ``Configuration.auth_settings`` concatenates without a
    space) and the design notes record that SSWS works against Okta with this
    SDK, so the emulator accepts both forms. Other schemes need the space.
    """
    scheme, _, credential = header.strip().partition(" ")
    if scheme.startswith("SSWS") and scheme != "SSWS":
        return "SSWS", scheme.removeprefix("SSWS")
    return scheme, credential.strip()


def authorization_scheme(header: str) -> str | None:
    """The scheme for the request log, never the credential (``SSWS (no space)`` for the glued form)."""
    if not header:
        return None
    scheme, _, _ = header.strip().partition(" ")
    if scheme.startswith("SSWS") and scheme != "SSWS":
        return "SSWS (no space)"
    return scheme if scheme in {"SSWS", "Bearer", "DPoP", "Basic"} else "unknown"


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _parse_limit(
    raw: str | None,
    default: int = APP_USERS_DEFAULT_LIMIT,
    maximum: int = APP_USERS_MAX_LIMIT,
    minimum: int = 1,
) -> int:
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not minimum <= limit <= maximum:
        raise _OktaHTTPError(
            400,
            okta_error(
                "E0000001",
                "Api validation failed: limit",
                [f"limit: The value must be between {minimum} and {maximum}."],
            ),
        )
    return limit


def _parse_cursor(raw: str | None, pattern: re.Pattern[str]) -> str | None:
    """The ``after`` cursor (the last id of the previous page); 400 E0000029 when it cannot be one."""
    if raw is not None and not pattern.fullmatch(raw):
        raise _OktaHTTPError(400, okta_error("E0000029", "Invalid paging request.", ["Invalid cursor."]))
    return raw


def _json_array(items: list[bytes]) -> bytes:
    """``json.dumps`` of a list, from its items' JSON, in one copy (a 500-user page is about a megabyte)."""
    chunks = [b", "] * (2 * len(items) - 1) if items else []
    chunks[::2] = items
    return b"".join([b"[", *chunks, b"]"])


def _page_links(request: web.Request, base_url: str, limit: int, next_cursor: str | None) -> list[str]:
    """``Link`` values as Okta formats them: parameters sorted, ``limit`` always present."""
    params = {**request.query, "limit": str(limit)}
    links = [f'<{base_url}{request.path}?{urlencode(sorted(params.items()))}>; rel="self"']
    if next_cursor is not None:
        params["after"] = next_cursor
        links.append(f'<{base_url}{request.path}?{urlencode(sorted(params.items()))}>; rel="next"')
    return links


def _not_found(resource_id: str, kind: str) -> _OktaHTTPError:
    return _OktaHTTPError(404, okta_error("E0000007", f"Not found: Resource not found: {resource_id} ({kind})"))


def _oauth_error(status: int, error: str, description: str) -> _OktaHTTPError:
    return _OktaHTTPError(status, {"error": error, "error_description": description})


def _www_authenticate(scheme: str) -> dict[str, str]:
    if scheme != "Bearer":
        return {}
    return {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access token is invalid."'}


def _check_choice(what: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")


_REPLACING_FAULTS = frozenset({FaultKind.STATUS, FaultKind.DROP, FaultKind.NON_JSON})
"""Faults that answer in place of the handler; the others change or delay the handler's own answer."""


def _fault_response(
    request: web.Request, rule: FaultRule, rate_headers: Mapping[str, str]
) -> tuple[web.StreamResponse, int | None]:
    if rule.kind is FaultKind.DROP:
        _close_transport(request)
        return web.Response(), None
    if rule.kind is FaultKind.NON_JSON:
        content_type = "text/html"
        body = f"<html><body><h1>{rule.status} Service error</h1></body></html>".encode()
    else:
        content_type = _JSON
        body = json.dumps(_fault_error(rule.status)).encode()
    if not rule.rate_limit_headers:
        _write_bare_response(request, rule.status, content_type, body)
        return web.Response(), rule.status
    response = web.Response(body=body, status=rule.status, content_type=content_type, headers=rate_headers)
    return response, rule.status


def _fault_error(status: int) -> dict[str, Any]:
    if status == 429:
        return okta_error("E0000047", _RATE_LIMIT_SUMMARY)
    try:
        summary = HTTPStatus(status).phrase
    except ValueError:
        summary = "Error"
    return okta_error(_OKTA_ERROR_CODES.get(status, "E0000009"), summary)


def _cut_response(
    request: web.Request, rule: FaultRule, response: web.StreamResponse
) -> tuple[web.StreamResponse, int | None]:
    """The handler's answer with its body cut short (TRUNCATED), or broken off by a reset (RESET)."""
    body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
    kept = body[: len(body) // 2 if rule.keep_bytes is None else rule.keep_bytes]
    headers = {name: value for name, value in response.headers.items() if name.lower() != "content-length"}
    if rule.kind is FaultKind.TRUNCATED:
        return web.Response(body=kept, status=response.status, headers=headers), response.status
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = f"HTTP/1.1 {response.status} OK\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    if request.transport is not None:
        request.transport.write(head.encode() + kept)
        reset_connection(request.transport)
    return web.Response(), None


def reset_connection(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP reset (SO_LINGER 0) once what was written is flushed, as a crashed peer or a proxy does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.close()


def _close_transport(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


def _write_bare_response(request: web.Request, status: int, content_type: str, body: bytes) -> None:
    """Write an HTTP answer straight to the socket and close it.

    aiohttp.web always adds a ``Date`` header; this is the one way to answer
    without one (as some proxies and load balancers do).
    """
    head = (
        f"HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    if request.transport is not None:
        request.transport.write(head.encode() + body)
    _close_transport(request)


# ---------------------------------------------------------------------------
# Runners
# ---------------------------------------------------------------------------


@asynccontextmanager
async def run_okta_emulator(emulator: OktaEmulator, *, port: int = 0) -> AsyncIterator[str]:
    """Serve the emulator on 127.0.0.1 in the running event loop; yields its base URL.

    ``port=0`` picks a free port. Example::

        async with run_okta_emulator(emulator) as org_url:
            ...  # org_url == "http://127.0.0.1:54321"
    """
    runner = web.AppRunner(emulator.make_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        host, bound_port = runner.addresses[0][:2]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()


@contextmanager
def okta_emulator_in_thread(emulator: OktaEmulator, *, port: int = 0, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve the emulator from its own event loop in a daemon thread; yields its base URL.

    For sync code and for tests that run the reconciler as a subprocess.
    The emulator's Python API stays usable from the calling thread.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="okta-emulator", daemon=True)
    thread.start()
    serving = run_okta_emulator(emulator, port=port)
    try:
        base_url = asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(timeout_s)
        try:
            yield base_url
        finally:
            asyncio.run_coroutine_threadsafe(serving.__aexit__(None, None, None), loop).result(timeout_s)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        loop.close()
