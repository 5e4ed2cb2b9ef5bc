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
class GroupAction:
    kind: GroupActionKind
    name: str
    """The Okta group's name (the platform's displayName for UNMANAGED)."""
    okta_group_id: str | None = None
    scim_id: str | None = None
    members: tuple[str, ...] = ()
    """Okta user ids to add (CREATE_GROUP, ADD_MEMBERS); SCIM user ids to remove (REMOVE_MEMBERS)."""
    reason: str = ""

    @property
    def writes(self) -> bool:
        return self.kind in GROUP_WRITE_KINDS


@dataclass(frozen=True)
class GroupPlan:
    actions: tuple[GroupAction, ...]
    in_sync: int = 0
    unresolved_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Okta group id → members whose user is neither on the platform nor created by this run (left out)."""

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
