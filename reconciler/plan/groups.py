"""The group plan: a pure function from (Okta's pushed groups, the platform's groups, user links) to group actions.

Okta's Group Push keeps a platform group per pushed Okta group, named as the
Okta group, holding the platform users of its members. It drifts like user
push does: a rename not pushed, a member removed in Okta but not on the
platform, a member whose user was never provisioned, a group edited by hand.

Matching, in order (midPoint's correlation, as for users):
  1. a platform group whose ``externalId`` is the Okta group id;
  2. else the one platform group with the Okta group's name, compared without
     regard to case (two such groups: CONFLICT, a person decides).

Situations:
  CREATE_GROUP     an Okta group with no platform group: created with its members
  RENAME_GROUP     matched, but the platform's displayName differs
  ADD_MEMBERS      matched, and members are missing on the platform
  REMOVE_MEMBERS   matched, and the platform group holds users that are not members in Okta
  LINK_GROUP       matched by name: the platform group's ``externalId`` is set to the Okta group id
  CONFLICT         more than one platform group could be this Okta group
  DELETE_GROUP     a platform group Okta pushed once (its ``externalId`` is an Okta group id) that is no
                   longer pushed, only with ``delete_unpushed``; without it, such a group is UNMANAGED
  UNMANAGED        a platform group no pushed Okta group matched: reported, never touched

Members are kept by Okta user id (adds) or SCIM id (removes), and named for a
person (userName and both ids) from a :class:`MemberDirectory`, which also says
why a member is left out: not assigned to the app, or assigned but deactivated
in Okta, and so on. A member whose user is not on the platform
yet (the user plan creates it) is resolved to its SCIM id at apply time, after
the users' actions, so a group never waits for a second run. Groups are never
deleted unless the caller asks for DELETE_GROUP (``[groups] delete_unpushed``),
and never one Okta did not push.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from reconciler.models.groups import (
    GroupAction,
    GroupActionKind,
    GroupPlan,
    LeftOutMember,
    MemberDirectory,
    OktaGroup,
    PlatformGroup,
    looks_like_okta_group_id,
)
from reconciler.models.records import OktaAssignment, PlatformUser
from reconciler.plan.users import Lifecycle, PlanPolicy, intended_lifecycle


def plan_groups(
    desired: Sequence[OktaGroup],
    actual: Sequence[PlatformGroup],
    user_links: Mapping[str, str],
    users_to_create: frozenset[str] = frozenset(),
    *,
    delete_unpushed: bool = False,
    directory: MemberDirectory | None = None,
) -> GroupPlan:
    """The actions that make the platform's groups match Okta's pushed groups.

    ``user_links`` maps an Okta user id to its platform user's SCIM id (users
    this run manages and keeps); ``users_to_create`` are Okta user ids the
    user plan creates. A member in neither is left out and reported.
    ``delete_unpushed`` turns the unmatched groups Okta once pushed into DELETE_GROUP.
    ``directory`` names the members (see :func:`member_directory`); without it they are ids alone.
    """
    matches, conflicts = _match(desired, actual)
    actions: list[GroupAction] = list(conflicts)
    unresolved: dict[str, tuple[str, ...]] = {}
    in_sync = 0
    for group in desired:
        if group.okta_group_id in {c.okta_group_id for c in conflicts}:
            continue
        wanted, missing = _resolvable_members(group, user_links, users_to_create)
        if missing:
            unresolved[group.okta_group_id] = missing
        platform_group = matches.get(group.okta_group_id)
        if platform_group is None:
            actions.append(GroupAction(GroupActionKind.CREATE_GROUP, group.name, group.okta_group_id, members=wanted))
            continue
        found = _differences(group, platform_group, wanted, user_links)
        actions.extend(found)
        in_sync += not found
    claimed = {g.scim_id for g in matches.values()} | {c.scim_id for c in conflicts if c.scim_id}
    actions.extend(
        _unmatched(g, delete_unpushed)
        for g in actual
        if g.scim_id not in claimed and not _is_conflict_candidate(g, conflicts)
    )
    if directory is None:
        return GroupPlan(tuple(actions), in_sync, unresolved)
    okta_members = {group.okta_group_id: group.member_ids for group in desired}
    named = tuple(_named(action, directory, user_links, okta_members) for action in actions)
    names = {group.okta_group_id: group.name for group in desired}
    left_out = tuple(
        LeftOutMember(names[group_id], directory.by_okta_id(member, {}), directory.why_left_out(member))
        for group_id, missing in unresolved.items()
        for member in missing
    )
    return GroupPlan(named, in_sync, unresolved, left_out)


def member_directory(
    desired: Sequence[OktaAssignment],
    actual: Sequence[PlatformUser],
    user_links: Mapping[str, str],
    policy: PlanPolicy,
    pairs: Mapping[str, str] | None = None,
) -> MemberDirectory:
    """Both sides' userNames, who is whom (``pairs``: every Okta user id → SCIM id the user plan matched,
    ``user_links`` when not given), and why each assigned user without a link is no group member."""
    not_member_because = {}
    for assignment in desired:
        intent = intended_lifecycle(assignment, policy)
        if assignment.okta_user_id not in user_links and intent.lifecycle is not Lifecycle.ACTIVE:
            not_member_because[assignment.okta_user_id] = intent.reason
    return MemberDirectory(
        okta_names={a.okta_user_id: a.user_name for a in desired},
        scim_names={u.scim_id: u.user_name for u in actual},
        okta_of_scim={scim_id: okta_user_id for okta_user_id, scim_id in (pairs or user_links).items()},
        not_member_because=not_member_because,
    )


def _named(
    action: GroupAction,
    directory: MemberDirectory,
    links: Mapping[str, str],
    okta_members: Mapping[str, frozenset[str]],
) -> GroupAction:
    """The action with its members named; a removal's reason tells Okta members no longer provisioned apart."""
    if action.kind is not GroupActionKind.REMOVE_MEMBERS:
        return replace(action, named_members=tuple(directory.by_okta_id(m, links) for m in action.members))
    named = tuple(directory.by_scim_id(m) for m in action.members)
    in_okta_group = okta_members.get(action.okta_group_id or "", frozenset())
    still = [m for m in named if m.okta_user_id in in_okta_group]
    reasons = ["not members of the Okta group"] if len(still) < len(named) else []
    reasons += [f"{m.label()}: {directory.why_left_out(m.okta_user_id or '')}" for m in still]
    return replace(action, named_members=named, reason="; ".join(reasons))


def _unmatched(group: PlatformGroup, delete_unpushed: bool) -> GroupAction:
    if delete_unpushed and looks_like_okta_group_id(group.external_id):
        return GroupAction(
            GroupActionKind.DELETE_GROUP,
            group.display_name,
            group.external_id,
            group.scim_id,
            reason=f"pushed from Okta group {group.external_id}, which is no longer pushed",
        )
    return GroupAction(
        GroupActionKind.UNMANAGED, group.display_name, scim_id=group.scim_id, reason="no pushed Okta group"
    )


def _match(
    desired: Sequence[OktaGroup], actual: Sequence[PlatformGroup]
) -> tuple[dict[str, PlatformGroup], list[GroupAction]]:
    by_external_id = {g.external_id: g for g in actual if g.external_id}
    by_name: defaultdict[str, list[PlatformGroup]] = defaultdict(list)
    for platform_group in actual:
        by_name[platform_group.display_name.casefold()].append(platform_group)
    matches: dict[str, PlatformGroup] = {}
    claimed: set[str] = set()
    for group in desired:  # externalId first, so a renamed group is not taken by name by another
        if (found := by_external_id.get(group.okta_group_id)) is not None:
            matches[group.okta_group_id] = found
            claimed.add(found.scim_id)
    conflicts = []
    for group in desired:
        if group.okta_group_id in matches:
            continue
        candidates = [g for g in by_name.get(group.name.casefold(), []) if g.scim_id not in claimed]
        if len(candidates) == 1:
            matches[group.okta_group_id] = candidates[0]
            claimed.add(candidates[0].scim_id)
        elif len(candidates) > 1:
            ids = ", ".join(sorted(g.scim_id for g in candidates))
            conflicts.append(
                GroupAction(
                    GroupActionKind.CONFLICT,
                    group.name,
                    group.okta_group_id,
                    reason=f"{len(candidates)} platform groups are named {group.name!r} ({ids})",
                )
            )
    return matches, conflicts


def _is_conflict_candidate(group: PlatformGroup, conflicts: Sequence[GroupAction]) -> bool:
    return any(group.display_name.casefold() == c.name.casefold() for c in conflicts)


def _resolvable_members(
    group: OktaGroup, user_links: Mapping[str, str], users_to_create: frozenset[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(members that will have a platform user, members that will not), each sorted."""
    wanted = sorted(m for m in group.member_ids if m in user_links or m in users_to_create)
    missing = sorted(m for m in group.member_ids if m not in user_links and m not in users_to_create)
    return tuple(wanted), tuple(missing)


def _differences(
    group: OktaGroup, platform_group: PlatformGroup, wanted: tuple[str, ...], user_links: Mapping[str, str]
) -> list[GroupAction]:
    actions = []
    common = {"okta_group_id": group.okta_group_id, "scim_id": platform_group.scim_id}
    if platform_group.external_id != group.okta_group_id:
        was = platform_group.external_id
        actions.append(
            GroupAction(
                GroupActionKind.LINK_GROUP,
                group.name,
                **common,
                reason=f"matched by name; externalId was {was!r}" if was else "matched by name; no externalId",
            )
        )
    if platform_group.display_name != group.name:
        actions.append(
            GroupAction(
                GroupActionKind.RENAME_GROUP,
                group.name,
                **common,
                reason=f"named {platform_group.display_name!r} on the platform",
            )
        )
    to_add = tuple(m for m in wanted if user_links.get(m) not in platform_group.member_ids)
    if to_add:
        actions.append(GroupAction(GroupActionKind.ADD_MEMBERS, group.name, **common, members=to_add))
    wanted_scim_ids = {user_links[m] for m in wanted if m in user_links}
    to_remove = tuple(sorted(platform_group.member_ids - wanted_scim_ids))
    if to_remove:
        actions.append(
            GroupAction(
                GroupActionKind.REMOVE_MEMBERS,
                group.name,
                **common,
                members=to_remove,
                reason="not members of the Okta group",
            )
        )
    return actions
