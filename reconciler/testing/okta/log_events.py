"""The System Log events the emulator writes, in Okta's ``LogEvent`` shape. Pure functions of the records.

Key order and the values of the contexts follow the events Okta serves (the spec's ``ListLogs`` example and
the events quoted in Okta's migration guide): ``actor``, ``client``, ``authenticationContext``,
``displayMessage``, ``eventType``, ``outcome``, ``published``, ``securityContext``, ``severity``,
``debugContext``, ``legacyEventType``, ``transaction``, ``uuid``, ``version`` (the string ``"0"``),
``request``, ``target``. A ``WEB`` event comes from an admin's request (client and ipChain on 127.0.0.1);
a ``JOB`` event from a background job (a group assignment's fan-out), with an empty client and ipChain.
What the catalogue below verified, and how, is listed in :mod:`reconciler.testing.okta.system_log`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.testing.okta.records import ID_ALPHABET, EmulatedApp, EmulatedGroup, EmulatedUser
from reconciler.testing.okta.shapes import okta_timestamp

ADMIN_ACTOR = {
    "id": "00uOktaEmulatorAdm1",
    "type": "User",
    "alternateId": "admin@emulator.example.com",
    "displayName": "Emulator Admin",
    "detailEntry": None,
}
"""Who makes every change through the emulator's Python API (tests never depend on it)."""
SYSTEM_ACTOR = {"id": "0oaOktaSystemActor1", "type": "PublicClientApp", "alternateId": "Okta System",
                "displayName": "Okta System", "detailEntry": None}  # fmt: skip
"""Who Okta's own jobs (its provisioning pushes) are attributed to."""
WEB_CLIENT = {
    "userAgent": {"rawUserAgent": "okta-emulator", "os": "Unknown", "browser": "UNKNOWN"},
    "zone": "null",
    "device": "Unknown",
    "id": None,
    "ipAddress": "127.0.0.1",
    "geographicalContext": None,
}
JOB_CLIENT = {"userAgent": None, "zone": None, "device": None, "id": None, "ipAddress": None,
              "geographicalContext": None}  # fmt: skip
SECURITY_CONTEXT = {"asNumber": None, "asOrg": None, "isp": None, "domain": None, "isProxy": None}
WEB_REQUEST = {"ipChain": [{"ip": "127.0.0.1", "geographicalContext": None, "version": "V4", "source": None}]}
JOB_REQUEST: dict[str, Any] = {"ipChain": []}


@dataclass(frozen=True)
class EventKind:
    """One event type as Okta writes it: its display message and, where known, its legacy type."""

    event_type: str
    display_message: str
    legacy_event_type: str | None = None


USER_MEMBERSHIP_ADD = EventKind(
    "application.user_membership.add", "Add user to application membership", "app.generic.provision.assign_user_to_app"
)
USER_MEMBERSHIP_REMOVE = EventKind(
    "application.user_membership.remove",
    "Remove user from application membership",
    "app.generic.provision.deactivate_user_from_app",
)
USER_MEMBERSHIP_UPDATE = EventKind(
    "application.user_membership.update",
    "Update user's application membership",
    "app.generic.config.app_user_property_update",
)
USER_MEMBERSHIP_CHANGE_USERNAME = EventKind(
    "application.user_membership.change_username",
    "Change user's application username",
    "app.generic.config.app_username_update",
)
GROUP_APP_ASSIGNMENT_ADD = EventKind("group.application_assignment.add", "Add assigned application to group")
GROUP_APP_ASSIGNMENT_REMOVE = EventKind("group.application_assignment.remove", "Remove assigned application from group")
GROUP_MEMBERSHIP_ADD = EventKind(
    "group.user_membership.add", "Add user to group membership", "core.user_group_member.user_add"
)
GROUP_MEMBERSHIP_REMOVE = EventKind(
    "group.user_membership.remove", "Remove user from group membership", "core.user_group_member.user_remove"
)
GROUP_CREATE = EventKind("group.lifecycle.create", "Create Okta group")
GROUP_PROFILE_UPDATE = EventKind("group.profile.update", "Update group profile")
APP_CREATE = EventKind("application.lifecycle.create", "Create application")
USER_CREATE = EventKind("user.lifecycle.create", "Create Okta user")
USER_PROFILE_UPDATE = EventKind("user.account.update_profile", "Update user profile for Okta")
USER_DELETE_INITIATED = EventKind("user.lifecycle.delete.initiated", "Delete Okta user")
USER_DELETE_COMPLETED = EventKind("user.lifecycle.delete.completed", "Delete Okta user completed")
USER_LIFECYCLE = {
    "activate": EventKind("user.lifecycle.activate", "Activate Okta user"),
    "deactivate": EventKind("user.lifecycle.deactivate", "Deactivate Okta user"),
    "suspend": EventKind("user.lifecycle.suspend", "Suspend Okta user"),
    "unsuspend": EventKind("user.lifecycle.unsuspend", "Unsuspend Okta user"),
    "lock": EventKind("user.account.lock", "Max sign in attempts exceeded"),
    "unlock": EventKind("user.account.unlock_by_admin", "Okta user unlocked by admin"),
    "expire_password": EventKind("user.account.expire_password", "Expire user password"),
    "reset_password": EventKind("user.account.reset_password", "Reset user password"),
}
PUSH_LEGACY = {("push_profile", "SUCCESS"): "app.user_management.push_profile_success",
               ("push_profile", "FAILURE"): "app.user_management.push_profile_failure"}  # fmt: skip
PUSH_OPERATIONS = ("push", "push_profile", "deactivate", "reactivate", "activate", "deprovision", "sync",
                   "verify_exists", "push_okta_password", "password")  # fmt: skip
"""The ``application.provision.user.<operation>`` event types Okta writes for its own pushes."""


@dataclass(frozen=True)
class Transaction:
    """The ``transaction`` events of one change share: a request (WEB) or a background job (JOB)."""

    type: str
    id: str
    request_uri: str | None = None

    @classmethod
    def web(cls, request_uri: str) -> Transaction:
        return cls("WEB", _random_id(27), request_uri)

    @classmethod
    def job(cls) -> Transaction:
        return cls("JOB", _random_id(20))


def user_target(user: EmulatedUser) -> dict[str, Any]:
    return _target(user.id, "User", str(user.profile.get("login")), _user_name(user))


def group_target(group: EmulatedGroup) -> dict[str, Any]:
    return _target(group.id, "UserGroup", "unknown", group.name)


def app_target(app: EmulatedApp) -> dict[str, Any]:
    return _target(app.id, "AppInstance", app.label, app.label)


def app_user_target(app_user_id: str, user: EmulatedUser, user_name: str | None) -> dict[str, Any]:
    return _target(app_user_id, "AppUser", user_name or str(user.profile.get("login")), _user_name(user))


def log_event(
    kind: EventKind,
    published: float,
    transaction: Transaction,
    targets: Sequence[dict[str, Any]],
    *,
    result: str = "SUCCESS",
    reason: str | None = None,
    legacy_event_type: str | None = None,
    severity: str = "INFO",
    actor: dict[str, Any] = ADMIN_ACTOR,
) -> dict[str, Any]:
    """One ``LogEvent`` as ``GET /api/v1/logs`` serves it."""
    web = transaction.type == "WEB"
    debug_data: dict[str, Any] = {"requestId": transaction.id}
    if transaction.request_uri is not None:
        debug_data.update(requestUri=transaction.request_uri, url=transaction.request_uri)
    if reason is not None:
        debug_data["errorMessage"] = reason
    return {
        "actor": actor,
        "client": WEB_CLIENT if web else JOB_CLIENT,
        "authenticationContext": {
            "authenticationProvider": None,
            "credentialProvider": None,
            "credentialType": None,
            "issuer": None,
            "interface": None,
            "authenticationStep": 0,
            "externalSessionId": "trs" + transaction.id[:22] if web else None,
        },
        "displayMessage": kind.display_message,
        "eventType": kind.event_type,
        "outcome": {"result": result, "reason": reason},
        "published": okta_timestamp(published),
        "securityContext": SECURITY_CONTEXT,
        "severity": severity,
        "debugContext": {"debugData": debug_data},
        "legacyEventType": legacy_event_type or kind.legacy_event_type,
        "transaction": {"type": transaction.type, "id": transaction.id, "detail": {}},
        "uuid": str(uuid.uuid4()),
        "version": "0",
        "request": WEB_REQUEST if web else JOB_REQUEST,
        "target": list(targets),
    }


def status_change_kind(old: str, new: str) -> EventKind | None:
    """The event Okta writes when a user's status goes from ``old`` to ``new`` (None: no change, or one made
    by the user rather than an admin, such as setting a new password after a reset)."""
    if old == new:
        return None
    by_new_status = {"DEPROVISIONED": "deactivate", "SUSPENDED": "suspend", "LOCKED_OUT": "lock",
                     "PASSWORD_EXPIRED": "expire_password", "RECOVERY": "reset_password"}  # fmt: skip
    if new in by_new_status:
        return USER_LIFECYCLE[by_new_status[new]]
    if old == "SUSPENDED":
        return USER_LIFECYCLE["unsuspend"]
    if old == "LOCKED_OUT":
        return USER_LIFECYCLE["unlock"]
    if old in {"STAGED", "PROVISIONED", "DEPROVISIONED"} and new in {"ACTIVE", "PROVISIONED"}:
        return USER_LIFECYCLE["activate"]
    return None


def push_kind(operation: str) -> EventKind:
    """``application.provision.user.<operation>``, for one of Okta's push operations."""
    if operation not in PUSH_OPERATIONS:
        raise ValueError(f"unknown push operation {operation!r}; expected one of {PUSH_OPERATIONS}")
    return EventKind(f"application.provision.user.{operation}", f"Provisioning: {operation.replace('_', ' ')} user")


def new_app_user_id() -> str:
    """An AppUser id (``0ua`` + 17 alphanumerics); not from the org's seeded ids, which tests may rely on."""
    return "0ua" + _random_id(17)


def _target(target_id: str, target_type: str, alternate_id: str, display_name: str) -> dict[str, Any]:
    return {"id": target_id, "type": target_type, "alternateId": alternate_id, "displayName": display_name,
            "detailEntry": None}  # fmt: skip


def _user_name(user: EmulatedUser) -> str:
    profile = user.profile
    return str(profile.get("displayName") or f"{profile.get('firstName')} {profile.get('lastName')}")


def _random_id(length: int) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))
