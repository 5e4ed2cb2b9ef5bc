"""The JSON shapes Okta answers with: users, groups, apps, app users and app group assignments.

Pure functions of the records and the base URL the request came to (Okta's links are absolute). Their key
order is Okta's own (see ``../shared/okta-recorded``), and the listings cache their serialised output, so a
change here changes the wire for every endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from reconciler.testing.okta.records import AppUserState, EmulatedApp, EmulatedGroup, EmulatedUser

USER_LIFECYCLE_LINKS = {
    "ACTIVE": ("suspend", "resetPassword", "expirePassword", "deactivate"),
    "SUSPENDED": ("unsuspend", "deactivate"),
    "STAGED": ("activate", "deactivate"),
    "PROVISIONED": ("activate", "deactivate"),
    "DEPROVISIONED": ("activate",),
}
"""The lifecycle operations a user's ``_links`` offer in each status (``deactivate`` in the others)."""
GROUP_LOGOS = (
    (
        "medium",
        "https://ok11static.oktacdn.com/assets/img/logos/groups/okta-medium.d7fb831bc4e7e1a5d8bd35dfaf405d9e.png",
    ),
    ("large", "https://ok11static.oktacdn.com/assets/img/logos/groups/okta-large.511fcb0de9da185b52589cb14d581c2c.png"),
)


def okta_timestamp(epoch: float) -> str:
    """Okta's timestamp format: ``2020-08-27T18:14:07.000Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_timestamp = lru_cache(maxsize=4096)(okta_timestamp)
""":func:`okta_timestamp`, memoised: a user's JSON shows the same few instants several times over."""


def _href(base_url: str, path: str) -> dict[str, str]:
    return {"href": base_url + path}


def user_json(user: EmulatedUser, base_url: str, user_type_id: str) -> dict[str, Any]:
    """A user as ``GET /api/v1/users/{id}`` and ``_embedded.user`` show it."""
    user_path = f"/api/v1/users/{user.id}"
    links: dict[str, Any] = {
        action: {"href": f"{base_url}{user_path}/lifecycle/{action}", "method": "POST"}
        for action in USER_LIFECYCLE_LINKS.get(user.status, ("deactivate",))
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
            "logo": [{"name": name, "href": href, "type": "image/png"} for name, href in GROUP_LOGOS],
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


def app_user_json(
    app_id: str,
    user: EmulatedUser,
    state: AppUserState,
    group: EmulatedGroup | None,
    base_url: str,
    user_type_id: str,
    *,
    expand: bool,
) -> dict[str, Any]:
    """An app user as Okta lists it; ``group`` is the one that assigns it (GROUP scope), ``_embedded.user``
    only with ``expand=user``."""
    links: dict[str, Any] = {"app": _href(base_url, f"/api/v1/apps/{app_id}")}
    if group is not None:
        links["group"] = {"name": group.name, **_href(base_url, f"/api/v1/groups/{group.id}")}
    links["user"] = _href(base_url, f"/api/v1/users/{user.id}")
    body: dict[str, Any] = {
        "id": user.id,
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
        body["_embedded"] = {"user": user_json(user, base_url, user_type_id)}
    return body


def app_group_json(app: EmulatedApp, group: EmulatedGroup, base_url: str, *, expand: bool) -> dict[str, Any]:
    """An ApplicationGroupAssignment; the newest assignment has priority 0, as Okta numbers them."""
    app_path = f"/api/v1/apps/{app.id}"
    body: dict[str, Any] = {
        "id": group.id,
        "lastUpdated": _timestamp(app.group_assigned_at.get(group.id, app.created)),
        "priority": len(app.group_ids) - 1 - app.group_ids.index(group.id),
        "profile": {},
        "_links": {
            "app": _href(base_url, app_path),
            "self": _href(base_url, f"{app_path}/groups/{group.id}"),
            "group": _href(base_url, f"/api/v1/groups/{group.id}"),
        },
    }
    if expand:
        body["_embedded"] = {"group": group_json(group, base_url)}
    return body
