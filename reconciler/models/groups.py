"""Group records: Okta's pushed groups, the platform's groups, and the actions between them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class GroupActionKind(StrEnum):
    CREATE_GROUP = "create_group"
    LINK_GROUP = "link_group"
    RENAME_GROUP = "rename_group"
    ADD_MEMBERS = "add_members"
    REMOVE_MEMBERS = "remove_members"
    DELETE_GROUP = "delete_group"
    CONFLICT = "conflict"
    UNMANAGED = "unmanaged"


GROUP_WRITE_KINDS = frozenset(
    {
        GroupActionKind.CREATE_GROUP,
        GroupActionKind.LINK_GROUP,
        GroupActionKind.RENAME_GROUP,
        GroupActionKind.ADD_MEMBERS,
        GroupActionKind.REMOVE_MEMBERS,
        GroupActionKind.DELETE_GROUP,
    }
)
"""Kinds that change the platform's groups. CONFLICT and UNMANAGED are only reported."""


_OKTA_GROUP_ID = re.compile(r"00g[A-Za-z0-9]{17}")


def looks_like_okta_group_id(value: str | None) -> bool:
    """Whether a platform group's externalId is an Okta group id, i.e. Okta pushed that group."""
    return value is not None and _OKTA_GROUP_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class OktaGroup:
    """A group Okta pushes: its id, its name, and its members' Okta user ids."""

    okta_group_id: str
    name: str
    member_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class PlatformGroup:
    """A group of the platform, as its SCIM endpoint lists it: members are SCIM user ids."""

    scim_id: str
    display_name: str
    external_id: str | None
    member_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class GroupMember:
    """A member as a person reads it: the userName, and each id known (Okta's, the platform's)."""

    user_name: str | None
    okta_user_id: str | None = None
    scim_id: str | None = None

    def label(self) -> str:
        """The userName; an id, saying whose, when the name is not known."""
        if self.user_name:
            return self.user_name
        return f"okta user {self.okta_user_id}" if self.okta_user_id else f"platform user {self.scim_id}"

    def to_json(self) -> dict[str, str | None]:
        return {"user_name": self.user_name, "okta_user_id": self.okta_user_id, "scim_id": self.scim_id}


@dataclass(frozen=True, slots=True)
class LeftOutMember:
    """An Okta group member the platform group will not hold, and the true reason why."""

    group: str
    """The Okta group's name."""
    member: GroupMember
    why: str


@dataclass(frozen=True)
class MemberDirectory:
    """What the group plan needs to name members: userNames by Okta id and by SCIM id, and why an assigned
    user is no member (its user deactivated in Okta, say). Built from both sides' users by the run."""

    okta_names: Mapping[str, str] = field(default_factory=dict)
    scim_names: Mapping[str, str] = field(default_factory=dict)
    okta_of_scim: Mapping[str, str] = field(default_factory=dict)
    """SCIM id → Okta user id, for the platform users linked to an Okta user."""
    not_member_because: Mapping[str, str] = field(default_factory=dict)
    """Okta user id of an assigned user that is no member → why (e.g. ``Okta user is DEPROVISIONED``)."""

    def by_okta_id(self, okta_user_id: str, links: Mapping[str, str]) -> GroupMember:
        return GroupMember(self.okta_names.get(okta_user_id), okta_user_id, links.get(okta_user_id))

    def by_scim_id(self, scim_id: str) -> GroupMember:
        okta_user_id = self.okta_of_scim.get(scim_id)
        name = self.scim_names.get(scim_id) or (self.okta_names.get(okta_user_id) if okta_user_id else None)
        return GroupMember(name, okta_user_id, scim_id)

    def why_left_out(self, okta_user_id: str) -> str:
        if okta_user_id in self.not_member_because:
            return self.not_member_because[okta_user_id]
        if okta_user_id in self.okta_names:
            return "assigned to the app, but has no platform user in this run (see its user action)"
        return "not assigned to the app"


@dataclass(frozen=True, slots=True)
class GroupAction:
    kind: GroupActionKind
    name: str
    """The Okta group's name (the platform's displayName for UNMANAGED)."""
    okta_group_id: str | None = None
    scim_id: str | None = None
    members: tuple[str, ...] = ()
    """Okta user ids to add (CREATE_GROUP, ADD_MEMBERS); SCIM user ids to remove (REMOVE_MEMBERS)."""
    reason: str = ""
    named_members: tuple[GroupMember, ...] = ()
    """``members`` as a person reads them (userName and both ids), in the same order; empty when not known."""

    def member_entries(self) -> list[dict[str, str | None]]:
        """Each member with its userName and both ids, each id under its kind (for JSON and the store)."""
        if self.named_members:
            return [member.to_json() for member in self.named_members]
        kind = "scim_id" if self.kind is GroupActionKind.REMOVE_MEMBERS else "okta_user_id"
        return [{"user_name": None, "okta_user_id": None, "scim_id": None, kind: member} for member in self.members]

    @property
    def writes(self) -> bool:
        return self.kind in GROUP_WRITE_KINDS


@dataclass(frozen=True)
class GroupPlan:
    actions: tuple[GroupAction, ...]
    in_sync: int = 0
    unresolved_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Okta group id → members whose user is neither on the platform nor created by this run (left out)."""
    left_out: tuple[LeftOutMember, ...] = ()
    """``unresolved_members`` named, each with why it is left out; empty when the plan had no directory."""

    @property
    def writes(self) -> tuple[GroupAction, ...]:
        return tuple(a for a in self.actions if a.writes)

    def summary(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in GroupActionKind}
        for action in self.actions:
            counts[action.kind.value] += 1
        return counts | {"in_sync": self.in_sync}

    def member_counts(self) -> dict[str, int]:
        """Members each membership kind adds or removes in all: what the gate's member limits weigh."""
        return {
            kind.value: sum(len(a.members) for a in self.actions if a.kind is kind)
            for kind in (GroupActionKind.CREATE_GROUP, GroupActionKind.ADD_MEMBERS, GroupActionKind.REMOVE_MEMBERS)
        }
