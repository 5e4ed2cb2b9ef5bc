"""Small builders for the records the planner works on."""

from __future__ import annotations

import itertools
from typing import Any

from reconciler.models.records import Action, ActionKind, OktaAssignment, Plan, PlatformUser
from reconciler.models.scim_path import build_resource

_counter = itertools.count(1)


def okta_id(n: int) -> str:
    """A valid-looking Okta user id, e.g. ``00u000000000000000007``."""
    return f"00u{n:017d}"


def assignment(
    n: int,
    user_name: str | None = None,
    *,
    app_status: str = "ACTIVE",
    user_status: str | None = "ACTIVE",
    scim_id: str | None = None,
    given: str = "Given",
    family: str = "Family",
    **profile: Any,
) -> OktaAssignment:
    user_name = user_name or f"user{n}@example.com"
    app_profile = {
        "givenName": given,
        "familyName": family,
        "email": user_name,
        "displayName": f"{given} {family}",
        "locale": "en_US",
        **profile,
    }
    return OktaAssignment(
        okta_user_id=okta_id(n),
        user_name=user_name,
        app_status=app_status,
        user_status=user_status,
        scope="USER",
        scim_id=scim_id,
        app_profile=app_profile,
        user_profile={"login": user_name, "email": user_name} if user_status else None,
    )


def platform_user(
    user_name: str,
    *,
    scim_id: str | None = None,
    external_id: str | None = None,
    active: bool = True,
    given: str = "Given",
    family: str = "Family",
    email: str | None = None,
    display_name: str | None = None,
) -> PlatformUser:
    scim_id = scim_id or f"scim-{next(_counter)}"
    resource = build_resource(
        {
            "userName": user_name,
            "name.givenName": given,
            "name.familyName": family,
            'emails[type eq "work"].value': email or user_name,
            "displayName": display_name or f"{given} {family}",
            "locale": "en_US",
            "externalId": external_id,
            "active": active,
        }
    )
    resource["id"] = scim_id
    return PlatformUser(scim_id, user_name, external_id, active, resource)


def in_sync_pair(n: int, **kwargs: Any) -> tuple[OktaAssignment, PlatformUser]:
    """An Okta assignment and the platform user that matches it exactly."""
    desired = assignment(n, **kwargs)
    actual = platform_user(desired.user_name, external_id=desired.okta_user_id)
    return desired, actual


def plan_of(**counts: int) -> Plan:
    """A plan with ``counts`` actions of each kind, e.g. ``plan_of(create=2, deactivate=30)``."""
    actions = tuple(
        Action(ActionKind(kind), f"{kind}{n}@example.com", None, None, "test")
        for kind, count in counts.items()
        for n in range(count)
    )
    return Plan(actions, in_sync=0)
