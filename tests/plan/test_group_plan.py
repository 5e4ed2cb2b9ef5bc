"""The group plan (pure): every situation, and plan → apply → plan again finds nothing to do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.models.groups import GroupActionKind, GroupPlan, OktaGroup, PlatformGroup
from reconciler.plan.groups import plan_groups
from tests.conftest import examples

LINKS = {"00u1": "s1", "00u2": "s2", "00u3": "s3"}


def okta(group_id: str, name: str, *members: str) -> OktaGroup:
    return OktaGroup(group_id, name, frozenset(members))


def platform(scim_id: str, name: str, *members: str, external_id: str | None = None) -> PlatformGroup:
    return PlatformGroup(scim_id, name, external_id, frozenset(members))


def kinds(plan: GroupPlan) -> list[str]:
    return sorted(action.kind.value for action in plan.actions)


def test_a_group_missing_on_the_platform_is_created_with_its_members_even_users_created_this_run() -> None:
    plan = plan_groups([okta("00g1", "Engineering", "00u1", "00u9")], [], LINKS, frozenset({"00u9"}))
    (create,) = plan.actions
    assert (create.kind, create.name, create.members) == (GroupActionKind.CREATE_GROUP, "Engineering", ("00u1", "00u9"))


def test_a_member_with_no_platform_user_is_left_out_and_reported() -> None:
    plan = plan_groups([okta("00g1", "Engineering", "00u1", "00u8")], [], LINKS)
    assert plan.actions[0].members == ("00u1",)
    assert plan.unresolved_members == {"00g1": ("00u8",)}


def test_a_matched_group_gets_renamed_and_its_members_added_and_removed() -> None:
    desired = [okta("00g1", "Security Champions", "00u1", "00u2")]
    actual = [platform("g-1", "Security champs", "s2", "s3", external_id="00g1")]
    plan = plan_groups(desired, actual, LINKS)
    by_kind = {action.kind: action for action in plan.actions}
    assert set(by_kind) == {GroupActionKind.RENAME_GROUP, GroupActionKind.ADD_MEMBERS, GroupActionKind.REMOVE_MEMBERS}
    assert by_kind[GroupActionKind.ADD_MEMBERS].members == ("00u1",)
    assert by_kind[GroupActionKind.REMOVE_MEMBERS].members == ("s3",)
    assert all(action.scim_id == "g-1" for action in plan.actions)


def test_a_group_is_matched_by_name_regardless_of_case_when_it_has_no_external_id() -> None:
    plan = plan_groups([okta("00g1", "Engineering", "00u1")], [platform("g-1", "ENGINEERING", "s1")], LINKS)
    assert kinds(plan) == ["link_group", "rename_group"] and plan.in_sync == 0
    assert {a.scim_id for a in plan.actions} == {"g-1"}


def test_a_group_matched_by_name_with_another_external_id_is_linked() -> None:
    actual = [platform("g-1", "Eng", "s1", external_id="hr-42")]
    plan = plan_groups([okta("00g1", "Eng", "00u1")], actual, LINKS)
    (link,) = plan.actions
    assert (link.kind, link.okta_group_id) == (GroupActionKind.LINK_GROUP, "00g1")
    assert "'hr-42'" in link.reason


def test_an_unpushed_group_okta_pushed_once_is_deleted_only_with_delete_unpushed() -> None:
    once_pushed = platform("g-1", "Old team", "s1", external_id="00gAAAAAAAAAAAAAAAAA")
    hand_made = platform("g-2", "Hand made", external_id="hr-42")
    kept = plan_groups([], [once_pushed, hand_made], LINKS)
    assert kinds(kept) == ["unmanaged", "unmanaged"]
    deleting = plan_groups([], [once_pushed, hand_made], LINKS, delete_unpushed=True)
    assert kinds(deleting) == ["delete_group", "unmanaged"]
    delete = next(a for a in deleting.actions if a.kind is GroupActionKind.DELETE_GROUP)
    assert (delete.scim_id, delete.writes) == ("g-1", True)


def test_member_counts_weigh_membership_actions_by_their_members() -> None:
    desired = [okta("00g1", "Eng", "00u1", "00u2"), okta("00g2", "Ops", "00u3")]
    actual = [platform("g-1", "Eng", "s3", "s9", external_id="00g1")]
    counts = plan_groups(desired, actual, LINKS).member_counts()
    assert counts == {"create_group": 1, "add_members": 2, "remove_members": 2}


def test_two_platform_groups_with_one_name_are_a_conflict_and_neither_is_touched() -> None:
    actual = [platform("g-1", "Engineering"), platform("g-2", "engineering")]
    plan = plan_groups([okta("00g1", "Engineering", "00u1")], actual, LINKS)
    assert kinds(plan) == ["conflict"]
    assert "g-1, g-2" in plan.actions[0].reason


def test_a_platform_group_okta_does_not_push_is_reported_only() -> None:
    plan = plan_groups([], [platform("g-1", "Hand made", "s1")], LINKS)
    assert kinds(plan) == ["unmanaged"]
    assert plan.actions[0].scim_id == "g-1"


def test_a_group_in_line_with_okta_is_in_sync() -> None:
    actual = [platform("g-1", "Eng", "s1", "s2", external_id="00g1")]
    plan = plan_groups([okta("00g1", "Eng", "00u1", "00u2")], actual, LINKS)
    assert plan.actions == () and plan.in_sync == 1


# --- property: applying the plan converges --------------------------------------------------------

USERS = [f"00u{n}" for n in range(6)]
NAMES = ["Eng", "eng", "Sales", "Ops", "Security"]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[OktaGroup], list[PlatformGroup], dict[str, str]]:
    links = {user: f"s{user[3:]}" for user in draw(st.sets(st.sampled_from(USERS)))}
    desired = [
        okta(f"00g{n}", draw(st.sampled_from(NAMES)) + str(n), *draw(st.sets(st.sampled_from(USERS))))
        for n in range(draw(st.integers(0, 3)))
    ]
    actual = [
        platform(
            f"g-{n}",
            draw(st.sampled_from(NAMES + [g.name for g in desired])),
            *draw(st.sets(st.sampled_from(sorted(links.values()) or ["s0"]))),
            external_id=draw(st.sampled_from([None, *(g.okta_group_id for g in desired)])),
        )
        for n in range(draw(st.integers(0, 3)))
    ]
    return desired, _unique_external_ids(actual), links


def _unique_external_ids(groups: list[PlatformGroup]) -> list[PlatformGroup]:
    seen: set[str] = set()
    unique = []
    for group in groups:
        if group.external_id in seen:
            group = PlatformGroup(group.scim_id, group.display_name, None, group.member_ids)
        seen.add(group.external_id or "")
        unique.append(group)
    return unique


def _apply(plan: GroupPlan, actual: list[PlatformGroup], links: dict[str, str]) -> list[PlatformGroup]:
    """What a platform looks like after the plan's writes (CREATE_GROUP sets externalId, as the applier will)."""
    groups = {g.scim_id: g for g in actual}
    for n, action in enumerate(plan.actions):
        if action.kind is GroupActionKind.CREATE_GROUP:
            members = frozenset(links[m] for m in action.members)
            groups[f"new-{n}"] = PlatformGroup(f"new-{n}", action.name, action.okta_group_id, members)
            continue
        if action.scim_id is None or action.kind in (GroupActionKind.CONFLICT, GroupActionKind.UNMANAGED):
            continue
        group = groups[action.scim_id]
        name, members, external_id = group.display_name, set(group.member_ids), group.external_id
        if action.kind is GroupActionKind.LINK_GROUP:
            external_id = action.okta_group_id
        elif action.kind is GroupActionKind.RENAME_GROUP:
            name = action.name
        elif action.kind is GroupActionKind.ADD_MEMBERS:
            members |= {links[m] for m in action.members}
        else:
            members -= set(action.members)
        groups[action.scim_id] = PlatformGroup(group.scim_id, name, external_id, frozenset(members))
    return list(groups.values())


@examples(3)
@given(worlds())
def test_applying_a_group_plan_leaves_only_conflicts_and_unmanaged_groups(
    world: tuple[list[OktaGroup], list[PlatformGroup], dict[str, str]],
) -> None:
    desired, actual, links = world
    first = plan_groups(desired, actual, links)
    second = plan_groups(desired, _apply(first, actual, links), links)
    assert {a.kind for a in second.actions} <= {GroupActionKind.CONFLICT, GroupActionKind.UNMANAGED}
    assert [a for a in second.actions if a.kind is GroupActionKind.CONFLICT] == [
        a for a in first.actions if a.kind is GroupActionKind.CONFLICT
    ]
