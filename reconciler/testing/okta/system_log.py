"""Okta's System Log: what a test does to it, and ``GET /api/v1/logs`` with Okta's polling semantics.

Every change made through the emulator's methods writes the events Okta writes (shapes in
:mod:`~reconciler.testing.okta.log_events`, storage and paging in :mod:`~reconciler.testing.okta.log_store`):

=====================================  ==========================================================  ===================
method                                 events (targets)                                            transaction
=====================================  ==========================================================  ===================
``create_user``                        ``user.lifecycle.create`` then, if ACTIVE, ``.activate``    WEB
                                       (User)
``set_user_status``                    ``user.lifecycle.deactivate|suspend|unsuspend|activate``,   WEB
                                       ``user.account.lock|unlock_by_admin|expire_password|
                                       reset_password``, as the transition is (User)
``update_user_profile``                ``user.account.update_profile`` (User)                      WEB
``delete_user``                        ``.deactivate`` if not yet, ``user.lifecycle.delete.        WEB
                                       initiated``, ``.delete.completed`` (User)
``assign_user``                        ``application.user_membership.add`` (``.update`` if         WEB
                                       already listed) (AppUser, AppInstance, User)
``unassign_user``                      ``application.user_membership.remove`` (``.update`` if a    WEB
                                       group still lists the user) (same targets)
``set_app_user``                       ``application.user_membership.update``; a new userName:     WEB
                                       ``.change_username`` (same targets)
``mark_provisioned``                   ``application.provision.user.push`` SUCCESS (same targets)  JOB
``assign_group`` / ``unassign_group``  ``group.application_assignment.add|remove`` (AppInstance,   WEB, then JOB
                                       UserGroup), then one ``application.user_membership.add|
                                       remove`` per member newly (un)listed
``add_group_member`` /                 ``group.user_membership.add|remove`` (User, UserGroup),     WEB, then JOB
``remove_group_member``                then ``application.user_membership.add|remove`` per app
                                       whose listing of the user changed
``create_group`` / ``rename_group``    ``group.lifecycle.create`` / ``group.profile.update``       WEB
                                       (UserGroup)
``create_app``                         ``application.lifecycle.create`` (AppInstance)              WEB
``record_push``                        ``application.provision.user.<operation>`` with its         JOB
                                       outcome (AppUser, AppInstance, User)
=====================================  ==========================================================  ===================

``clear_external_id`` (a test hook for a state Okta does not log) and :meth:`log_paused` blocks (state at
rest, e.g. ``add_assigned_users``) write nothing.

Verified, and where: the event type names against Okta's event-type catalogue and its Events-API migration
guide (okta/okta-developer-docs), which also gives the legacy types written here
(``app.generic.provision.assign_user_to_app``, ``.deactivate_user_from_app``,
``app.generic.config.app_user_property_update``, ``.app_username_update``,
``core.user_group_member.user_add|user_remove``, ``app.user_management.push_profile_success|failure``);
the targets of ``application.user_membership.add`` (AppUser ``0ua…``, AppInstance, User) and of
``group.user_membership.add`` (User, UserGroup with alternateId ``unknown``) against real events quoted in
public integrations' docs (Cortex XSOAR's Okta integration); the key order, ``version`` ``"0"`` and the
contexts against the spec's ``ListLogs`` example and the migration guide's event. Not verified, so kept
plain: the display messages other than the add events', the targets of ``.remove``/``.update``/
``.change_username`` and of the push events (taken to be those of ``.add``), and the legacy types of
``user.lifecycle.*`` (``legacyEventType`` is null there rather than guessed).

``GET /api/v1/logs``: a polling request (no ``until``) reads events by persistence time from ``since``
(default 7 days back) or after its cursor, and always answers ``Link: <…>; rel="self"`` and
``rel="next"`` (limit, filter and q kept, since dropped, ``after`` = an opaque cursor; on an empty page the
request's own cursor); a bounded request (``since`` + ``until``) reads by ``published``, ASCENDING or
DESCENDING, with a next link only while more remain. ``limit`` 0..1000 (default 100); ``filter`` as
:mod:`~reconciler.testing.okta.log_filter` reads it; ``q`` keywords (case-insensitive, all must appear);
a ``since`` more than 180 days back is 400 E0000053; events older than the retention (90 days) are gone.
The endpoint has its own rate-limit bucket (``/api/v1/logs``, 120 a minute by default, Okta's figure for
Workforce Identity orgs, the tier whose 600/minute user and app limits the emulator's default follows) and
needs the ``okta.logs.read`` scope with an access token (403 E0000006 otherwise).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from reconciler.testing.okta.errors import OktaHTTPError, okta_error
from reconciler.testing.okta.log_events import PUSH_LEGACY, SYSTEM_ACTOR, Transaction, log_event, push_kind
from reconciler.testing.okta.log_filter import parse_filter
from reconciler.testing.okta.log_store import Query, decode_cursor, encode_cursor
from reconciler.testing.okta.org import OktaOrg
from reconciler.testing.okta.paging import JSON, base_url, json_array

LOGS_PATH = "/api/v1/logs"
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
DEFAULT_SPAN_S = 7 * 86400
"""``since`` defaults to 7 days before ``until`` (now, for a polling request)."""
MAX_SINCE_AGE_S = 180 * 86400


class SystemLogAdmin(OktaOrg):
    """What a test does to the System Log, and the endpoint that serves it."""

    _logs_denied = False

    def set_log_delay(self, seconds: float) -> None:
        """Events written from now on are persisted (visible to ``/api/v1/logs``) this long after they are
        published, so a follower sees them late and, with delays that vary, out of ``published`` order."""
        with self._lock:
            self._log_store.delay_s = seconds

    def set_log_retention(self, seconds: float) -> None:
        """How long events are kept (Okta: 90 days); older ones are no longer served."""
        with self._lock:
            self._log_store.retention_s = seconds

    def deny_logs(self, denied: bool = True) -> None:
        """Make ``/api/v1/logs`` answer 403 E0000006 to every credential, as for an admin without the
        permission to read the System Log."""
        with self._lock:
            self._logs_denied = denied

    def add_log_event(self, event: dict[str, Any] | bytes, *, delay_s: float | None = None) -> None:
        """Publish any event as it is, even a malformed one (bytes are served verbatim): for tests of bad input.
        It is published now; ``delay_s`` (default: :meth:`set_log_delay`'s) until it is persisted."""
        with self._lock:
            self._log_store.add(event, self._clock(), delay_s)

    def record_push(
        self,
        app_id: str,
        user_id: str,
        operation: str = "push_profile",
        result: str = "FAILURE",
        reason: str | None = "Automatic provisioning of user to app failed: the app answered 500",
        *,
        delay_s: float | None = None,
    ) -> dict[str, Any]:
        """Write the event of one of Okta's own pushes to the app (``application.provision.user.<operation>``,
        outcome ``result``): the push itself is not emulated, only what Okta logs of it. Returns the event."""
        kind = push_kind(operation)
        with self._lock:
            app = self._apps[app_id]
            now = self._clock()
            event = log_event(
                kind,
                now,
                Transaction.job(),
                self._app_user_targets(app, user_id),
                result=result,
                reason=reason if result != "SUCCESS" else None,
                legacy_event_type=PUSH_LEGACY.get((operation, result)),
                severity="INFO" if result == "SUCCESS" else "WARN",
                actor=SYSTEM_ACTOR,
            )
            self._log_store.add(event, now, delay_s)
            return event

    def logged_events(self, prefix: str = "") -> list[dict[str, Any]]:
        """Every event written so far whose eventType starts with ``prefix``, persisted or not, in persistence
        order (malformed ones left out)."""
        with self._lock:
            bodies = [event.body for event in self._log_store.events if (event.event_type or "").startswith(prefix)]
        return [event for event in map(_parsed, bodies) if event is not None and event.get("eventType") is not None]

    # -- serving -----------------------------------------------------------

    def _add_log_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(LOGS_PATH, self._list_logs)

    async def _list_logs(self, request: web.Request) -> web.Response:
        query = request.query
        limit = _limit(query.get("limit"))
        descending = _sort_order(query.get("sortOrder"))
        since, until = _time(query, "since"), _time(query, "until")
        selection = Query(limit, parse_filter(query["filter"]) if "filter" in query else None, _keywords(query))
        with self._lock:
            if self._logs_denied:
                raise OktaHTTPError(
                    403, okta_error("E0000006", "You do not have permission to perform the requested action")
                )
            now = self._clock()
            if since is not None and since < now - MAX_SINCE_AGE_S:
                cause = "since: must be within the last 180 days (events are kept 90 days)"
                raise OktaHTTPError(400, okta_error("E0000053", "Invalid date.", [cause]))
            if until is None:
                if descending:
                    cause = "sortOrder: DESCENDING needs a bounded request (since and until); polling is ASCENDING"
                    raise OktaHTTPError(400, okta_error("E0000001", "Api validation failed: sortOrder", [cause]))
                after = query.get("after")
                start = decode_cursor("p", after) if after else ((now - DEFAULT_SPAN_S if since is None else since), -1)
                page, position = self._log_store.polling(start, selection, now)
                next_cursor: str | None = encode_cursor("p", position)
            else:
                after = decode_cursor("b", query["after"]) if "after" in query else None
                lower = until - DEFAULT_SPAN_S if since is None else since
                page, bounded_position = self._log_store.bounded(
                    lower, until, after, selection, now, descending=descending
                )
                next_cursor = None if bounded_position is None else encode_cursor("b", bounded_position)
        response = web.Response(body=json_array(page), content_type=JSON, charset="utf-8")
        for link in _links(request, limit, next_cursor, polling=until is None):
            response.headers.add("Link", link)
        return response


def _links(request: web.Request, limit: int, next_cursor: str | None, *, polling: bool) -> list[str]:
    """``self`` (the request, its limit shown) and ``next`` (limit, filter, q kept; ``since`` dropped when
    polling; ``after`` the cursor)."""
    url = base_url(request) + request.path
    asked = {**request.query, "limit": str(limit)}
    links = [f'<{url}?{urlencode(sorted(asked.items()))}>; rel="self"']
    if next_cursor is not None:
        dropped = {"after", "since"} if polling else {"after"}
        following = {key: value for key, value in asked.items() if key not in dropped}
        following["after"] = next_cursor
        links.append(f'<{url}?{urlencode(sorted(following.items()))}>; rel="next"')
    return links


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = -1
    if not 0 <= limit <= MAX_LIMIT:
        cause = f"limit: The value must be between 0 and {MAX_LIMIT}."
        raise OktaHTTPError(400, okta_error("E0000001", "Api validation failed: limit", [cause]))
    return limit


def _sort_order(raw: str | None) -> bool:
    """True for DESCENDING."""
    if raw not in (None, "ASCENDING", "DESCENDING"):
        cause = f"sortOrder: {raw!r} is not ASCENDING or DESCENDING"
        raise OktaHTTPError(400, okta_error("E0000001", "Api validation failed: sortOrder", [cause]))
    return raw == "DESCENDING"


def _time(query: Any, name: str) -> float | None:
    """An ISO 8601 time parameter as epoch seconds (UTC when it names no zone); 400 when unreadable."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        cause = f"{name}: {raw!r} is not an ISO 8601 time such as 2026-01-31T12:00:00.000Z"
        raise OktaHTTPError(400, okta_error("E0000001", f"Api validation failed: {name}", [cause])) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _keywords(query: Any) -> list[str]:
    return str(query.get("q", "")).lower().split()


def _parsed(body: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(body)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
