"""Groups assigned to apps: assigning and unassigning them, and ``GET /api/v1/apps/{appId}/groups``
(``limit`` 20..200, default 20, ``after``, ``expand=group``).

An assigned group's members are listed as the app's users with scope GROUP (see
:mod:`reconciler.testing.okta.app_users`).
"""

from __future__ import annotations

import json

from aiohttp import web

from reconciler.testing.okta.log_events import (
    GROUP_APP_ASSIGNMENT_ADD,
    GROUP_APP_ASSIGNMENT_REMOVE,
    EventKind,
    Transaction,
    app_target,
    group_target,
)
from reconciler.testing.okta.org import OktaOrg
from reconciler.testing.okta.paging import GROUP_ID, Paging, base_url, page_after, page_response
from reconciler.testing.okta.shapes import app_group_json

APP_GROUPS_PAGING = Paging(default_limit=20, max_limit=200, cursor=GROUP_ID, min_limit=20)
"""The spec's queryGroupAssignmentLimit: minimum 20, maximum 200, default 20."""


class AppGroupAdmin(OktaOrg):
    """What a test does to the groups assigned to an app."""

    def assign_group(self, app_id: str, group_id: str) -> None:
        """Assign a group: its members are listed as app users with scope GROUP.

        Logs ``group.application_assignment.add``, then Okta's fan-out: an ``application.user_membership.add``
        (a JOB) for each member the app did not list before."""
        with self._lock:
            app = self._apps[app_id]
            if group_id not in self._groups:
                raise KeyError(f"no Okta group {group_id}")
            if group_id not in app.group_ids:
                listed_before = self._listings([app_id], self._groups[group_id].member_ids)
                app.group_ids.append(group_id)
                app.group_assigned_at[group_id] = self._clock()
                self._cache.drop_group_assignment(app_id, self._member_sets[group_id])
                self._log_group_assignment(GROUP_APP_ASSIGNMENT_ADD, app_id, group_id, listed_before)

    def unassign_group(self, app_id: str, group_id: str) -> None:
        """Logs ``group.application_assignment.remove``, then an ``application.user_membership.remove`` (a JOB)
        for each member the app no longer lists."""
        with self._lock:
            app = self._apps[app_id]
            listed_before = self._listings([app_id], self._groups[group_id].member_ids)
            app.group_ids.remove(group_id)
            app.group_assigned_at.pop(group_id, None)
            self._cache.drop_group_assignment(app_id, self._member_sets[group_id])
            for member_id in self._groups[group_id].member_ids:
                self._forget_unlisted(app, member_id)
            self._log_group_assignment(GROUP_APP_ASSIGNMENT_REMOVE, app_id, group_id, listed_before)

    def _log_group_assignment(
        self, kind: EventKind, app_id: str, group_id: str, listed_before: dict[tuple[str, str], bool]
    ) -> None:
        targets = [app_target(self._apps[app_id]), group_target(self._groups[group_id])]
        self._write_event(kind, targets, Transaction.web(f"/api/v1/apps/{app_id}/groups/{group_id}"))
        self._log_listing_changes(listed_before, Transaction.job())

    # -- serving -----------------------------------------------------------

    def _add_app_group_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v1/apps/{app_id}/groups", self._list_app_groups)

    async def _list_app_groups(self, request: web.Request) -> web.Response:
        limit, after = APP_GROUPS_PAGING.read(request.query)
        expand = request.query.get("expand") == "group"
        url = base_url(request)
        with self._lock:
            app = self._app_or_404(request.match_info["app_id"])
            page, next_cursor = page_after(sorted(app.group_ids), after, limit)
            bodies = [app_group_json(app, self._groups[group_id], url, expand=expand) for group_id in page]
        return page_response(request, url, limit, next_cursor, [json.dumps(body).encode() for body in bodies])
