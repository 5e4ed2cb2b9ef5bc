"""The group part of a saved plan: each group action with a digest of its subject, checked again at apply.

A saved plan made with ``[groups]`` holds a ``groups`` member beside the user
actions (the signature covers it like the rest)::

    "groups": {
      "summary": {"create_group": 1, ..., "in_sync": 3},
      "actions": [{"kind": ..., "name": ..., "okta_group_id": ..., "scim_id": ...,
                   "members": [...], "reason": ..., "subject_digest": "<sha256 hex>"}, ...]
    }

A group action's subject is the Okta group (name and members), the platform
group it changes (or, for a create, the platform groups that would claim the
name or the Okta id), and, for the members it adds, which platform user each
resolves to: a member whose user was deactivated since the plan was made makes
its action stale rather than adding someone Okta no longer provisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.models.groups import GroupAction, GroupActionKind, GroupPlan, OktaGroup, PlatformGroup
from reconciler.run.saved.digest import Stale, digest_of, split_stale


def group_action_json(action: GroupAction) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "name": action.name,
        "okta_group_id": action.okta_group_id,
        "scim_id": action.scim_id,
        "members": list(action.members),
        "reason": action.reason,
    }


def group_action_from_json(item: Mapping[str, Any]) -> GroupAction:
    members = item["members"]
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise ValueError(f"members of group {item.get('name')!r} is not a list of ids")
    return GroupAction(
        kind=GroupActionKind(item["kind"]),
        name=str(item["name"]),
        okta_group_id=_optional_text(item["okta_group_id"]),
        scim_id=_optional_text(item["scim_id"]),
        members=tuple(members),
        reason=str(item["reason"]),
    )


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


class GroupLiveState:
    """Both sides' groups as read, and the users' links, indexed to find each group action's subject."""

    def __init__(self, desired: Sequence[OktaGroup], actual: Sequence[PlatformGroup], links: Mapping[str, str]) -> None:
        self.desired, self.actual, self.links = list(desired), list(actual), dict(links)
        self._okta = {g.okta_group_id: g for g in desired}
        self._platform = {g.scim_id: g for g in actual}

    def platform_group(self, scim_id: str) -> PlatformGroup | None:
        return self._platform.get(scim_id)

    def subject_state(self, action: GroupAction) -> dict[str, Any]:
        okta = self._okta.get(action.okta_group_id) if action.okta_group_id else None
        state: dict[str, Any] = {"okta_group": _okta_state(okta)}
        if action.scim_id is not None:
            state["platform_group"] = _platform_state(self.platform_group(action.scim_id))
        else:
            state["platform_claimants"] = [_platform_state(g) for g in self._claimants(action)]
        if action.kind in (GroupActionKind.CREATE_GROUP, GroupActionKind.ADD_MEMBERS):
            state["member_links"] = {member: self.links.get(member) for member in action.members}
        return state

    def subject_digest(self, action: GroupAction) -> str:
        return digest_of(self.subject_state(action))

    def _claimants(self, action: GroupAction) -> list[PlatformGroup]:
        folded = action.name.casefold()
        found = [
            g
            for g in self.actual
            if g.display_name.casefold() == folded or (action.okta_group_id and g.external_id == action.okta_group_id)
        ]
        return sorted(found, key=lambda g: g.scim_id)


def _okta_state(group: OktaGroup | None) -> dict[str, Any] | None:
    if group is None:
        return None
    return {"id": group.okta_group_id, "name": group.name, "members": sorted(group.member_ids)}


def _platform_state(group: PlatformGroup | None) -> dict[str, Any] | None:
    if group is None:
        return None
    return {
        "id": group.scim_id,
        "displayName": group.display_name,
        "externalId": group.external_id,
        "members": sorted(group.member_ids),
    }


def groups_document(plan: GroupPlan, live: GroupLiveState) -> dict[str, Any]:
    """The ``groups`` member of a saved plan."""
    return {
        "summary": plan.summary(),
        "actions": [group_action_json(a) | {"subject_digest": live.subject_digest(a)} for a in plan.actions],
    }


@dataclass(frozen=True)
class SavedGroupAction:
    action: GroupAction
    subject_digest: str


@dataclass(frozen=True)
class SavedGroups:
    actions: tuple[SavedGroupAction, ...]
    in_sync: int

    @property
    def plan(self) -> GroupPlan:
        return GroupPlan(tuple(saved.action for saved in self.actions), self.in_sync)

    @property
    def writes(self) -> list[SavedGroupAction]:
        return [saved for saved in self.actions if saved.action.writes]


def parse_groups(section: Mapping[str, Any]) -> SavedGroups:
    actions = []
    for item in section["actions"]:
        digest = item["subject_digest"]
        if not isinstance(digest, str) or len(digest) != 64:
            raise ValueError(f"subject_digest of group {item.get('name')!r} is not a sha256")
        actions.append(SavedGroupAction(group_action_from_json(item), digest))
    return SavedGroups(tuple(actions), int(section["summary"]["in_sync"]))


StaleGroupAction = Stale[GroupAction]


def split_stale_groups(saved: SavedGroups, live: GroupLiveState) -> tuple[list[GroupAction], list[StaleGroupAction]]:
    """The saved group writes whose subject is as it was at plan time, and the others with why."""
    return split_stale(saved.writes, live.subject_digest, lambda action: _stale_reason(action, live))


def _stale_reason(action: GroupAction, live: GroupLiveState) -> str:
    if action.scim_id is not None and live.platform_group(action.scim_id) is None:
        return f"stale: platform group {action.scim_id} is gone since the plan was made"
    subject = f"platform group {action.scim_id}" if action.scim_id else f"the platform groups matching {action.name}"
    return f"stale: Okta group {action.okta_group_id}, {subject} or its members' users changed since the plan was made"
