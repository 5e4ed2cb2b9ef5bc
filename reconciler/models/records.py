"""The compact records that flow between the stages.

The source and the target turn what they read into these small frozen records
as soon as a page arrives, so that no SDK object or raw page outlives its
parsing, and the planner works on plain data.

The two records made once per user (:class:`OktaAssignment`,
:class:`PlatformUser`) are msgspec Structs rather than dataclasses: a run
makes 200,000 of them at 100,000 users, and a frozen Struct is built in a
seventh of the time. They are left out of the cyclic garbage collector
(``gc=False``): they hold only strings, flags and the dicts read from JSON,
never themselves, so no cycle can run through them, and the collector has
fewer objects to walk again and again while a run holds them all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

PROJECTION_FIELDS = frozenset({"values", "projection"})
"""Fields of both records that only cache what the mapping reads: not part of what a user is."""


def _same_user(record: Any, other: Any) -> bool:
    """Equal records: every field but the cached projection (a decoded record equals one built by hand)."""
    if type(other) is not type(record):
        return NotImplemented  # type: ignore[no-any-return]
    return all(
        getattr(record, name) == getattr(other, name)
        for name in record.__struct_fields__
        if name not in PROJECTION_FIELDS
    )


class OktaAssignment(msgspec.Struct, frozen=True, gc=False):
    """One user assigned to the Okta app, as the Management API lists it."""

    okta_user_id: str
    """The Okta user id (``AppUser.id``), sent to the platform as SCIM ``externalId``."""
    user_name: str
    """``AppUser.credentials.userName``: the SCIM ``userName`` Okta pushes."""
    app_status: str | None = None
    """``AppUser.status`` (ACTIVE, PROVISIONED, INACTIVE, ...)."""
    user_status: str | None = None
    """``_embedded.user.status`` (ACTIVE, SUSPENDED, DEPROVISIONED, ...). A listing without it is refused;
    None (a record built by hand) is never read as ACTIVE: the plan leaves such a user as it is."""
    scope: str | None = None
    """USER (assigned directly) or GROUP (through a group)."""
    sync_state: str | None = None
    scim_id: str | None = None
    """``AppUser.externalId``: the SCIM id Okta stored when it provisioned the user; None (absent, null or
    empty): none stored, as for a user Okta never provisioned."""
    app_profile: Mapping[str, Any] = msgspec.field(default_factory=dict)
    """The app-specific profile (givenName, familyName, email, ...)."""
    user_profile: Mapping[str, Any] | None = None
    """The Okta user's own profile from ``_embedded.user`` (a listing without it is refused); None: not known."""
    values: tuple[Any, ...] | None = None
    """The mapped attributes' values Okta wants, read once when the page was decoded with ``projection``
    (see :mod:`reconciler.plan.projection`); None: read from the profiles when needed."""
    projection: Any = None
    """The :class:`~reconciler.plan.projection.Projection` that read ``values``."""

    def __eq__(self, other: object) -> bool:
        return _same_user(self, other)


@dataclass(frozen=True, slots=True)
class ProfileFields:
    """The Okta profile fields a run reads (app profile, user profile); None keeps a whole profile."""

    app: frozenset[str] | None = None
    user: frozenset[str] | None = None


class PlatformUser(msgspec.Struct, frozen=True, gc=False):
    """One user of the platform, as its SCIM endpoint lists it."""

    scim_id: str
    user_name: str
    external_id: str | None
    active: bool
    resource: Mapping[str, Any]
    """The SCIM resource as read, for attribute comparison (and whole-resource writes when not ``partial``)."""
    version: str | None = None
    """``meta.version``: the ETag, when the server gives one."""
    partial: bool = False
    """``resource`` holds only the attributes a run compares; read the user again before a PUT."""
    values: bytes | None = None
    """The mapped attributes' values on the platform, read once when the page was decoded with ``projection``
    (see :mod:`reconciler.plan.projection`) and kept as their JSON; None: read from ``resource`` when needed."""
    projection: Any = None
    """The :class:`~reconciler.plan.projection.Projection` that read ``values``."""

    def __eq__(self, other: object) -> bool:
        return _same_user(self, other)


class ActionKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    LINK = "link"
    CONFLICT = "conflict"
    UNMANAGED = "unmanaged"


WRITE_KINDS = frozenset(
    {ActionKind.CREATE, ActionKind.UPDATE, ActionKind.DEACTIVATE, ActionKind.REACTIVATE, ActionKind.LINK}
)
"""Kinds that change the platform. CONFLICT and UNMANAGED are only reported."""


@dataclass(frozen=True, slots=True)
class Change:
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class Action:
    """One thing the plan found, with why, and the per-attribute before → after.

    ``changes`` is keyed by SCIM attribute path (``name.givenName``,
    ``emails[type eq "work"].value``, ``active``, ``externalId``). For a CREATE
    every ``before`` is None and the changes are the whole new resource.
    """

    kind: ActionKind
    user_name: str
    okta_user_id: str | None
    scim_id: str | None
    reason: str
    changes: Mapping[str, Change] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return self.kind in WRITE_KINDS

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "user_name": self.user_name,
            "okta_user_id": self.okta_user_id,
            "scim_id": self.scim_id,
            "reason": self.reason,
            "changes": {path: {"before": c.before, "after": c.after} for path, c in self.changes.items()},
        }


SUMMARY_KEYS = ("create", "update", "deactivate", "reactivate", "link", "conflict", "unmanaged", "in_sync")


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    in_sync: int
    pairs: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Okta user id → the SCIM id of the platform user it was matched with (what group members resolve by)."""

    @property
    def writes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.writes)

    @property
    def has_drift(self) -> bool:
        return bool(self.actions)

    def summary(self) -> dict[str, int]:
        counts = Counter(a.kind.value for a in self.actions)
        counts["in_sync"] = self.in_sync
        return {key: counts.get(key, 0) for key in SUMMARY_KEYS}


_OKTA_USER_ID = re.compile(r"^00u[0-9A-Za-z]{17}$")


def looks_like_okta_user_id(value: str | None) -> bool:
    """Whether a SCIM externalId is an Okta user id, i.e. Okta provisioned that user.

    Okta sends its user id as externalId; any other externalId (from an HR
    system, a previous IdP) marks a user that Okta never managed.
    """
    return bool(value) and _OKTA_USER_ID.match(value or "") is not None
