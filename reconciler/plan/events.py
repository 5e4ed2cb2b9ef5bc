"""Which System Log events touch the app, and whom: events in, affected Okta users (and groups) out. Pure.

The follower reconciles affected users against Okta's *current* state, never against an event's
payload, so an event seen twice, or out of order, costs a read and changes nothing. What counts:

===================================  ======================================================
``application.user_membership.*``    this app's AppInstance among the targets: its User
``application.provision.user.*``     Okta's own push for this app that did not succeed: its User
                                     (a successful push leaves nothing to repair)
``group.application_assignment.*``   a group (un)assigned to this app: all its members
``group.user_membership.*``          a member joined or left a group assigned to this app
``user.lifecycle.*``                 a user (de|re)activated, suspended, deleted…
``user.account.update_profile``,     a profile edit (the mapping may read any field)
``user.account.update_primary_email``
``application.lifecycle.update``,    this app's configuration or state changed: a full
``.activate|.deactivate|.delete``,   audit, not per-user work
``application.provision.field_…``
===================================  ======================================================

Everything else is ignored and counted.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.config.mapping import SourceSpec
from reconciler.models.events import LogEvent
from reconciler.models.records import OktaAssignment, Plan, PlatformUser
from reconciler.plan.decisions import PlanPolicy
from reconciler.plan.projection import projection_for
from reconciler.plan.users import PlanBuilder

USER, APP, GROUP = "User", "AppInstance", "UserGroup"
USER_EVENT_PREFIXES = ("user.lifecycle.", "user.account.update_profile", "user.account.update_primary_email")
APP_MEMBERSHIP_PREFIX = "application.user_membership."
PUSH_PREFIX = "application.provision.user."
FULL_AUDIT_PREFIXES = (
    "application.lifecycle.update",
    "application.lifecycle.activate",
    "application.lifecycle.deactivate",
    "application.lifecycle.delete",
    "application.provision.field_mapping_rule.",
)


@dataclass(frozen=True, slots=True)
class AppScope:
    """What the follower knows of the app: its id, and the groups that assign users to it or are pushed."""

    app_id: str
    group_ids: frozenset[str] = frozenset()
    known_users: Container[str] | None = None
    """Okta users the app is known to hold; when given, user events of anybody else are ignored (a
    membership event makes a user known first). None: every user event is looked at."""


@dataclass
class Affected:
    """What a batch of events asks the follower to look at."""

    users: dict[str, datetime] = field(default_factory=dict)
    """Okta user id → the earliest ``published`` of the events naming it (time to repair starts there)."""
    groups: dict[str, datetime] = field(default_factory=dict)
    """Groups (un)assigned to the app: each member is to be looked at."""
    groups_assigned: set[str] = field(default_factory=set)
    groups_unassigned: set[str] = field(default_factory=set)
    full_audit: list[str] = field(default_factory=list)
    """Why a full audit is needed (the app's configuration changed), one line per event."""
    acted: int = 0
    ignored: int = 0
    push_failures: int = 0
    """Okta's own pushes to this app that failed: drift to repair now."""

    def add_user(self, user_id: str, published: datetime) -> None:
        _keep_earliest(self.users, user_id, published)

    def add_group(self, group_id: str, published: datetime) -> None:
        _keep_earliest(self.groups, group_id, published)

    @property
    def nothing(self) -> bool:
        return not (self.users or self.groups or self.full_audit)


def _keep_earliest(times: dict[str, datetime], key: str, published: datetime) -> None:
    known = times.get(key)
    times[key] = published if known is None or published < known else known


def affected_by(events: Iterable[LogEvent], scope: AppScope) -> Affected:
    """The users, groups and audits a batch of events calls for (see the module's table)."""
    affected = Affected()
    for event in events:
        if _take(event, scope, affected):
            affected.acted += 1
        else:
            affected.ignored += 1
    return affected


def _take(event: LogEvent, scope: AppScope, affected: Affected) -> bool:
    """Whether the event touches the app; what it touches is added to ``affected``."""
    kind = event.event_type
    for_this_app = scope.app_id in event.target_ids(APP)
    if kind.startswith(PUSH_PREFIX):  # Okta's own push: only one that did not succeed leaves drift behind
        return for_this_app and event.outcome != "SUCCESS" and _users(event, affected, scope=None, push=True)
    if kind.startswith(APP_MEMBERSHIP_PREFIX):
        return for_this_app and _users(event, affected, scope=None)
    if kind.startswith("group.application_assignment."):
        return for_this_app and _groups(event, affected)
    if kind.startswith("group.user_membership."):
        if not scope.group_ids.intersection(event.target_ids(GROUP)):
            return False
        return _users(event, affected, scope=None)
    if kind.startswith(USER_EVENT_PREFIXES):
        return _users(event, affected, scope=scope)
    if kind.startswith(FULL_AUDIT_PREFIXES) and for_this_app:
        affected.full_audit.append(f"{kind} at {event.published.isoformat()} (event {event.uuid})")
        return True
    return False


def _users(event: LogEvent, affected: Affected, scope: AppScope | None, push: bool = False) -> bool:
    """The event's User targets (only those the scope knows, when it knows whom the app holds)."""
    known = scope.known_users if scope is not None else None
    users = [u for u in event.target_ids(USER) if known is None or u in known]
    for user_id in users:
        affected.add_user(user_id, event.published)
    if push and users:
        affected.push_failures += 1
    return bool(users)


def _groups(event: LogEvent, affected: Affected) -> bool:
    groups = event.target_ids(GROUP)
    for group_id in groups:
        affected.add_group(group_id, event.published)
        if event.event_type.endswith(".remove"):
            affected.groups_unassigned.add(group_id)
        elif event.event_type.endswith(".add"):
            affected.groups_assigned.add(group_id)
    return bool(groups)


def plan_affected(
    user_ids: Collection[str],
    assignments: Sequence[OktaAssignment],
    candidates: Sequence[PlatformUser],
    mapping: Mapping[str, SourceSpec],
    policy: PlanPolicy,
) -> Plan:
    """The plan for a few Okta users: their assignments as Okta has them now (an unassigned user has
    none) against the platform users that could be theirs (``candidates``).

    The same planner as a full run's, on a partial listing: only actions about ``user_ids`` are kept, so a
    platform user found by name but linked to somebody outside the batch is never acted on here (a full
    audit judges it with everybody).
    """
    builder = PlanBuilder(candidates, mapping, policy, whole_listing=False)
    builder.add(assignments)
    whole = builder.finish()
    kept = tuple(action for action in whole.actions if action.okta_user_id in user_ids)
    return Plan(kept, whole.in_sync, whole.pairs)


def wanted_user_name(assignment: OktaAssignment, mapping: Mapping[str, SourceSpec]) -> str | None:
    """The userName the mapping gives this user on the platform (None when Okta's answer leaves it unknown)."""
    projection = projection_for(mapping)
    if projection.user_name_index is None:
        return None
    name = projection.okta_values(assignment)[projection.user_name_index]
    return name if isinstance(name, str) and name else None
