"""The in-memory org's records: users, groups, apps and their assignments, service clients and tokens.

Plain data: :class:`~reconciler.testing.okta.org.OktaOrg` and the resource modules change them (and drop the
answers they make stale), so tests change the org through the emulator's methods, not by assigning to these.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

ID_ALPHABET = string.ascii_letters + string.digits
"""What Okta ids are made of, after their three-character prefix (``00u``, ``00g``, ``0oa``, ...)."""

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
    key_id: str | None = None
    """The ``kid`` of the registered public key (a JWK's), which an assertion that names one must match."""


@dataclass(frozen=True)
class ServiceAppCredentials:
    """What a service app's administrator hands to the reconciler."""

    client_id: str
    private_key_pem: str


@dataclass(frozen=True)
class AccessToken:
    """An access token the token endpoint issued: for whom, with which scopes, until when (epoch seconds)."""

    client_id: str
    scopes: frozenset[str]
    expires_at: float


def check_choice(what: str, value: str, allowed: frozenset[str]) -> None:
    """Refuse a status or state Okta does not know, before it reaches the records."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")
