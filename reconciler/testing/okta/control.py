"""The emulator's control endpoint: change Okta's side by hand while the emulator serves.

Real Okta is changed in its Admin Console; the emulator is changed here, over HTTP, so that a person trying
``reconcile demo --keep-running`` (or ``reconcile demo serve-okta``) can make drift and watch the reconciler
repair it. ``reconcile demo okta ...`` is the client; ``curl`` works as well. Every request needs the org's API
token (``Authorization: SSWS <token>``), as ``/api/v1/`` does. A user is named by Okta id or login.

====================================================  ====================================================
``GET  /demo/v1/apps/{appId}/users``                   every org user: id, login, status, how it is assigned
``POST /demo/v1/apps/{appId}/users``                   a new hire: ``{"login", "firstName", "lastName"}``,
                                                       created ACTIVE and assigned directly
``POST /demo/v1/apps/{appId}/users/{user}/{action}``   ``assign``, ``unassign``, ``deactivate``, ``suspend``,
                                                       ``unsuspend`` (back to ACTIVE), ``rename``
                                                       (``{"login": "new@example.com"}``: login, email and the
                                                       app user's userName), ``push-failure``
                                                       (``{"operation": "push_profile", "reason": "..."}``,
                                                       both optional: the System Log event of a failed push
                                                       by Okta)
====================================================  ====================================================

Answers are JSON: the user as the listing shows it, or an Okta error body whose ``errorSummary`` says what went
wrong (404 for an unknown user or app, 409 for an unassign the app does not allow, 400 for a bad body).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from reconciler.testing.okta.app_users import AppUserAdmin
from reconciler.testing.okta.errors import OktaHTTPError, not_found, okta_error
from reconciler.testing.okta.log_events import push_kind
from reconciler.testing.okta.oauth import split_authorization
from reconciler.testing.okta.records import EmulatedApp, EmulatedUser
from reconciler.testing.okta.system_log import SystemLogAdmin

CONTROL_PREFIX = "/demo/v1"
STATUS_ACTIONS = {"deactivate": "DEPROVISIONED", "suspend": "SUSPENDED", "unsuspend": "ACTIVE"}
"""The actions that change the Okta user's status, and the status each sets."""
USER_ACTIONS = ("assign", "unassign", "rename", "push-failure", *STATUS_ACTIONS)


class ControlAdmin(AppUserAdmin, SystemLogAdmin):
    """The control endpoint's routes and handlers, over the same methods the tests call."""

    def _add_control_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(CONTROL_PREFIX + "/apps/{app_id}/users", self._control_list)
        router.add_post(CONTROL_PREFIX + "/apps/{app_id}/users", self._control_hire)
        router.add_post(CONTROL_PREFIX + "/apps/{app_id}/users/{user}/{action}", self._control_change)

    async def _control_list(self, request: web.Request) -> web.Response:
        self._check_api_token(request)
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            return web.json_response([self._control_view(app, user) for user in self._users.values()])

    async def _control_hire(self, request: web.Request) -> web.Response:
        self._check_api_token(request)
        body = await _json_body(request)
        login = _required_text(body, "login")
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            if self._find_user(login) is not None:
                raise OktaHTTPError(400, okta_error("E0000001", f"A user with login {login} already exists"))
            first, last = body.get("firstName") or login.split("@")[0], body.get("lastName") or "New Hire"
            user = self.create_user(login=login, first_name=first, last_name=last, displayName=f"{first} {last}")
            self.assign_user(app.id, user.id)
            return web.json_response(self._control_view(app, user), status=201)

    async def _control_change(self, request: web.Request) -> web.Response:
        self._check_api_token(request)
        action = request.match_info["action"]
        if action not in USER_ACTIONS:
            raise OktaHTTPError(404, okta_error("E0000007", f"Unknown action {action}; expected one of {USER_ACTIONS}"))
        body = await _json_body(request) if action in ("rename", "push-failure") else {}
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            wanted = request.match_info["user"]
            user = self._find_user(wanted)
            if user is None:
                raise not_found(wanted, "User")
            self._apply_action(app, user, action, body)
            return web.json_response(self._control_view(app, user))

    def _apply_action(self, app: EmulatedApp, user: EmulatedUser, action: str, body: dict[str, Any]) -> None:
        """One change, as an admin makes it in Okta's console (call with the lock held)."""
        if action == "assign":
            self.assign_user(app.id, user.id)
        elif action == "unassign":
            self._unassign(app, user)
        elif action == "push-failure":
            self._record_push_failure(app, user, body)
        elif action == "rename":
            login = _required_text(body, "login")
            self.update_user_profile(user.id, login=login, email=login)
            if self._is_listed(app, user.id):
                self.set_app_user(app.id, user.id, user_name=login)
        else:
            self.set_user_status(user.id, STATUS_ACTIONS[action])

    def _record_push_failure(self, app: EmulatedApp, user: EmulatedUser, body: dict[str, Any]) -> None:
        operation = body.get("operation", "push_profile")
        try:
            push_kind(operation)
        except ValueError as error:
            raise OktaHTTPError(400, okta_error("E0000001", f"Api validation failed: operation ({error})")) from None
        reason = body.get("reason") or f"Automatic provisioning of user {user.profile.get('login')} to app failed"
        self.record_push(app.id, user.id, operation, "FAILURE", str(reason))

    def _unassign(self, app: EmulatedApp, user: EmulatedUser) -> None:
        state = app.app_users.get(user.id)
        if state is not None and state.direct:
            self.unassign_user(app.id, user.id)
            return
        group = self._assigning_group(app, user.id)
        why = f"through the group {group.name!r}: Okta unassigns them when they leave it" if group else "at all"
        raise OktaHTTPError(409, okta_error("E0000001", f"{user.profile['login']} is not assigned directly {why}"))

    def _control_view(self, app: EmulatedApp, user: EmulatedUser) -> dict[str, Any]:
        """What the listing shows of one user."""
        state = app.app_users.get(user.id)
        group = self._assigning_group(app, user.id)
        assigned = "direct" if state is not None and state.direct else (f"group {group.name}" if group else None)
        return {"id": user.id, "login": user.profile.get("login"), "status": user.status, "assigned": assigned}

    def _find_user(self, id_or_login: str) -> EmulatedUser | None:
        """By Okta id, else by login without regard to case (call with the lock held)."""
        wanted = id_or_login.casefold()
        by_login = (user for user in self._users.values() if str(user.profile.get("login")).casefold() == wanted)
        return self._users.get(id_or_login) or next(by_login, None)

    def _check_api_token(self, request: web.Request) -> None:
        """The control endpoint takes the org's API token only (an access token's scopes only read)."""
        scheme, credential = split_authorization(request.headers.get("Authorization", ""))
        with self._lock:
            if scheme != "SSWS" or credential not in self._api_tokens:
                raise OktaHTTPError(401, okta_error("E0000011", "Invalid token provided"))


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text() or "{}")
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise OktaHTTPError(400, okta_error("E0000003", "The request body was not a JSON object"))
    return body


def _required_text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise OktaHTTPError(400, okta_error("E0000001", f"Api validation failed: {key} (a non-empty string)"))
    return value.strip()
