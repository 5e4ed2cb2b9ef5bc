"""What one user needs, decided alone: the lifecycle Okta wants, and the action for a matched pair, an
assignment to create, or a platform user no assignment claimed. The plan (:mod:`reconciler.plan.users`)
decides who is who; these decide what to do. Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Container
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

from reconciler.models.records import Action, ActionKind, Change, OktaAssignment, PlatformUser, looks_like_okta_user_id
from reconciler.plan.projection import Projection

INACTIVE_APP_STATUSES = frozenset({"INACTIVE", "DEPROVISIONED", "UNASSIGNED"})
"""AppUser statuses for an assignment Okta itself considers switched off."""

ACTIVE_USER_STATUSES = frozenset({"ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT"})
"""Okta user statuses for which Okta provisions the app: the person can work."""


class PlanPolicy(Protocol):
    unmanaged: Literal["report", "deactivate"]
    suspended: Literal["deactivate", "keep"]


class Lifecycle(Enum):
    """What Okta wants of a user's ``active`` flag on the platform."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    KEEP = "keep"
    """Leave ``active`` as it is and create nothing (Okta sends nothing either)."""


@dataclass(frozen=True, slots=True)
class Intent:
    lifecycle: Lifecycle
    reason: str


def intended_lifecycle(assignment: OktaAssignment, policy: PlanPolicy) -> Intent:
    """Desired active = assigned, and the Okta user can work (SUSPENDED per policy)."""
    return _intent(assignment.app_status, assignment.user_status, policy.suspended)


@functools.lru_cache(maxsize=256)
def _intent(app_status: str | None, status: str | None, suspended: str) -> Intent:
    """Cached: a plan asks this of every user, and there are only a handful of status pairs."""
    if app_status is None or status is None:  # never read as ACTIVE (the listing refuses it before this)
        return Intent(Lifecycle.KEEP, "Okta's answer gave no status: left as it is")
    if app_status in INACTIVE_APP_STATUSES:
        return Intent(Lifecycle.INACTIVE, f"app assignment is {app_status} in Okta")
    if status in ACTIVE_USER_STATUSES:
        return Intent(Lifecycle.ACTIVE, "assigned and active in Okta")
    if status == "SUSPENDED":
        if suspended == "deactivate":
            return Intent(Lifecycle.INACTIVE, "Okta user is SUSPENDED (policy.suspended = deactivate)")
        return Intent(Lifecycle.KEEP, "Okta user is SUSPENDED (policy.suspended = keep)")
    if status == "DEPROVISIONED":
        return Intent(Lifecycle.INACTIVE, "Okta user is DEPROVISIONED")
    return Intent(Lifecycle.KEEP, f"Okta user is {status}: not yet active, left as it is")


def action_for_pair(
    assignment: OktaAssignment, user: PlatformUser, projection: Projection, policy: PlanPolicy
) -> Action | None:
    intent = intended_lifecycle(assignment, policy)
    if intent.lifecycle is Lifecycle.INACTIVE:
        if user.active:
            return Action(
                ActionKind.DEACTIVATE,
                user.user_name,
                assignment.okta_user_id,
                user.scim_id,
                intent.reason,
                {"active": Change(True, False)},
            )
        return None
    wanted = projection.okta_values(assignment)
    if user.external_id == assignment.okta_user_id and user.active and projection.same_values(wanted, user):
        return None  # in sync: what 99 % of users are, at the cost of one comparison
    return pair_drift(assignment, user, intent, projection.changes(wanted, projection.platform_values(user)))


def pair_drift(
    assignment: OktaAssignment, user: PlatformUser, intent: Intent, changes: dict[str, Change]
) -> Action | None:
    """The action for a matched pair that is not plainly in sync (``changes``: the attributes that differ)."""

    def action(kind: ActionKind, reason: str) -> Action:
        return Action(kind, user.user_name, assignment.okta_user_id, user.scim_id, reason, changes)

    if user.external_id != assignment.okta_user_id:
        changes["externalId"] = Change(user.external_id, assignment.okta_user_id)
    if intent.lifecycle is Lifecycle.ACTIVE and not user.active:
        changes["active"] = Change(False, True)
        return action(ActionKind.REACTIVATE, "inactive on the platform, " + intent.reason)
    if "externalId" in changes:
        return action(ActionKind.LINK, "matched by userName, not linked to its Okta user")
    if changes:
        return action(ActionKind.UPDATE, "mapped attributes differ from Okta")
    return None


def create_action(assignment: OktaAssignment, projection: Projection) -> Action:
    wanted = projection.desired(projection.okta_values(assignment))
    changes = {text: Change(None, value) for text, value in wanted.items()}
    changes["externalId"] = Change(None, assignment.okta_user_id)
    changes["active"] = Change(None, True)
    return Action(
        ActionKind.CREATE,
        assignment.user_name,
        assignment.okta_user_id,
        None,
        "assigned and active in Okta, missing on the platform",
        changes,
    )


def action_for_leftover(user: PlatformUser, desired_ids: Container[str], policy: PlanPolicy) -> Action | None:
    """A platform user no Okta assignment claimed."""

    okta_user_id = user.external_id if looks_like_okta_user_id(user.external_id) else None

    def action(kind: ActionKind, reason: str, changes: dict[str, Change] | None = None) -> Action:
        return Action(kind, user.user_name, okta_user_id, user.scim_id, reason, changes or {})

    if user.external_id in desired_ids:
        return action(
            ActionKind.CONFLICT, f"duplicate: Okta user {user.external_id} is matched to another platform user"
        )
    if okta_user_id is not None:
        if user.active:
            return action(
                ActionKind.DEACTIVATE, "no longer assigned to the app in Okta", {"active": Change(True, False)}
            )
        return None
    if policy.unmanaged == "deactivate":
        if user.active:
            return action(
                ActionKind.DEACTIVATE,
                "never managed by Okta (policy.unmanaged = deactivate)",
                {"active": Change(True, False)},
            )
        return None
    state = "active" if user.active else "inactive"
    return action(ActionKind.UNMANAGED, f"{state} platform user that Okta never managed")
