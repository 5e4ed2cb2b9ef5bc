"""The records every stage shares: Okta's assignments, the platform's users and groups, actions and plans,
run statuses, and SCIM attribute paths. Plain data; imports nothing else of the package."""

from reconciler.models.groups import GroupAction, GroupActionKind, GroupPlan, OktaGroup, PlatformGroup
from reconciler.models.log import LogCursor
from reconciler.models.records import Action, ActionKind, Change, OktaAssignment, Plan, PlatformUser, ProfileFields
from reconciler.models.runs import ActionStatus, RunMode, RunStatus

__all__ = [
    "Action",
    "ActionKind",
    "ActionStatus",
    "Change",
    "GroupAction",
    "GroupActionKind",
    "GroupPlan",
    "LogCursor",
    "OktaAssignment",
    "OktaGroup",
    "Plan",
    "PlatformGroup",
    "PlatformUser",
    "ProfileFields",
    "RunMode",
    "RunStatus",
]
