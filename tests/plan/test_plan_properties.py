"""Property tests of the planner: plan → apply to a model → plan again finds nothing to write."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from reconciler.config.mapping import DEFAULT_MAPPING
from reconciler.models.records import ActionKind, OktaAssignment, PlatformUser
from reconciler.models.scim_path import build_resource
from reconciler.plan.users import PlanBuilder, plan
from tests.conftest import examples
from tests.support.factories import okta_id
from tests.support.target_model import apply_to_model


@dataclass(frozen=True)
class Policy:
    unmanaged: Literal["report", "deactivate"]
    suspended: Literal["deactivate", "keep"]


NAMES = ["ann", "Ann", "ANN", "bob", "Bob", "zoë", "ZOË", "chloé", "李", "o'neil", "eve"]
DOMAINS = ["example.com", "EXAMPLE.com"]
user_names = st.builds(lambda n, d: f"{n}@{d}", st.sampled_from(NAMES), st.sampled_from(DOMAINS))
texts = st.one_of(st.none(), st.text(min_size=0, max_size=6))
okta_ids = st.integers(min_value=1, max_value=8).map(okta_id)
scim_ids = st.sampled_from([f"s{n}" for n in range(1, 9)])
policies = st.builds(Policy, st.sampled_from(["report", "deactivate"]), st.sampled_from(["deactivate", "keep"]))


@st.composite
def app_profiles(draw, user_name: str) -> dict:
    profile = {
        "givenName": draw(texts),
        "familyName": draw(texts),
        "email": draw(st.sampled_from([user_name, user_name.upper(), "shared@example.com"])),
        "displayName": draw(texts),
        "locale": draw(st.sampled_from(["en_US", "fr_FR"])),
    }
    dropped = draw(st.sets(st.sampled_from(sorted(profile))))
    return {k: v for k, v in profile.items() if k not in dropped}


@st.composite
def assignments(draw) -> list[OktaAssignment]:
    ids = draw(st.lists(okta_ids, unique=True, max_size=6))
    result = []
    for okta_user_id in ids:
        name = draw(user_names)
        expanded = draw(st.booleans())
        result.append(
            OktaAssignment(
                okta_user_id=okta_user_id,
                user_name=name,
                app_status=draw(st.sampled_from(["ACTIVE", "ACTIVE", "PROVISIONED", "INACTIVE"])),
                user_status=draw(st.sampled_from(["ACTIVE", "SUSPENDED", "DEPROVISIONED", "STAGED"]))
                if expanded
                else None,
                scope=draw(st.sampled_from(["USER", "GROUP"])),
                scim_id=draw(st.one_of(st.none(), scim_ids)),
                app_profile=draw(app_profiles(name)),
                user_profile={"login": name} if expanded else None,
            )
        )
    return _each_attribute_known_somewhere(result)


def _each_attribute_known_somewhere(result: list[OktaAssignment]) -> list[OktaAssignment]:
    """Users miss attributes, but not every user the same one: that listing is refused, never planned
    (see tests/plan/test_mapping.py and tests/run/test_missing_fields.py)."""
    if not result:
        return result
    first = result[0]
    profile = dict(first.app_profile)
    for name in ("givenName", "familyName", "email", "displayName", "locale"):
        if all(name not in a.app_profile for a in result):
            profile[name] = None
    return [msgspec.structs.replace(first, app_profile=profile), *result[1:]]


@st.composite
def platform_users(draw) -> list[PlatformUser]:
    ids = draw(st.lists(scim_ids, unique=True, max_size=6))
    result = []
    for scim_id in ids:
        name = draw(user_names)
        external_id = draw(st.one_of(st.none(), okta_ids, st.just("HR-77")))
        active = draw(st.booleans())
        resource = build_resource(
            {
                "userName": name,
                "name.givenName": draw(texts),
                'emails[type eq "work"].value': draw(st.sampled_from([name, name.lower()])),
                "displayName": draw(texts),
                "externalId": external_id,
                "active": active,
            }
        )
        resource["id"] = scim_id
        result.append(PlatformUser(scim_id, name, external_id, active, resource))
    return result


SETTINGS = examples(4)


@SETTINGS
@given(assignments(), platform_users(), policies)
def test_applying_a_plan_leaves_nothing_to_write_but_the_renames_it_held_back(desired, actual, policy):
    """The model refuses a write onto a taken userName, as a server does: no plan sends one.

    A rename onto a name that another user gives up in the same plan is held back (the writes of a
    phase go out together, in no promised order); the next plan makes it, and the plans converge.
    """
    first = plan(desired, actual, DEFAULT_MAPPING, policy)
    after = apply_to_model(actual, first.actions)
    second = plan(desired, after, DEFAULT_MAPPING, policy)
    held_back = {a.okta_user_id for a in first.actions if a.kind is ActionKind.CONFLICT and "userName" in a.changes}
    assert {w.okta_user_id for w in second.writes} <= held_back, second.writes
    for _ in range(len(desired)):
        after = apply_to_model(after, second.actions)
        second = plan(desired, after, DEFAULT_MAPPING, policy)
    assert second.writes == (), second.writes


@SETTINGS
@given(assignments(), platform_users(), policies)
def test_conflict_subjects_are_never_written(desired, actual, policy):
    result = plan(desired, actual, DEFAULT_MAPPING, policy)
    conflicted_scim = {a.scim_id for a in result.actions if a.kind is ActionKind.CONFLICT and a.scim_id}
    # A duplicate platform user is a conflict about that platform user (scim_id set);
    # its Okta user stays matched to the other one. Otherwise the Okta user is the subject.
    conflicted_okta = {a.okta_user_id for a in result.actions if a.kind is ActionKind.CONFLICT and a.scim_id is None}
    for write in result.writes:
        assert write.scim_id not in conflicted_scim
        if write.kind is not ActionKind.DEACTIVATE:
            assert write.okta_user_id not in conflicted_okta


@SETTINGS
@given(assignments(), platform_users(), policies)
def test_plans_only_known_kinds_and_each_platform_user_at_most_once(desired, actual, policy):
    result = plan(desired, actual, DEFAULT_MAPPING, policy)
    assert {a.kind for a in result.actions} <= set(ActionKind)
    written = [a.scim_id for a in result.writes if a.scim_id]
    assert len(written) == len(set(written))
    assert sum(result.summary().values()) >= len(result.actions)


@SETTINGS
@given(assignments(), platform_users(), policies)
def test_user_okta_wants_active_is_never_deactivated(desired, actual, policy):
    result = plan(desired, actual, DEFAULT_MAPPING, policy)
    wanted_active = {
        a.okta_user_id
        for a in desired
        if a.app_status in ("ACTIVE", "PROVISIONED") and a.user_status in (None, "ACTIVE")
    }
    for action in result.writes:
        if action.kind is ActionKind.DEACTIVATE:
            assert action.okta_user_id not in wanted_active


@SETTINGS
@given(assignments(), platform_users(), policies)
def test_no_plan_deletes_a_platform_user(desired, actual, policy):
    """The reconciler never deletes: every platform user is still there after any plan is applied."""
    result = plan(desired, actual, DEFAULT_MAPPING, policy)
    assert not any("delete" in action.kind.value for action in result.actions)
    after = apply_to_model(actual, result.actions)
    assert {u.scim_id for u in actual} <= {u.scim_id for u in after}


@SETTINGS
@given(assignments(), platform_users(), policies, st.lists(st.integers(min_value=0, max_value=8), max_size=3))
def test_a_plan_built_page_by_page_as_okta_answers_is_the_plan_of_the_whole_listing(desired, actual, policy, cuts):
    """A run feeds each Okta page to a PlanBuilder as it arrives: the plan must be the one of the whole listing."""
    builder = PlanBuilder(actual, DEFAULT_MAPPING, policy)
    bounds = [0, *sorted(min(cut, len(desired)) for cut in cuts), len(desired)]
    for start, end in itertools.pairwise(bounds):
        builder.add(desired[start:end])
    whole = plan(desired, actual, DEFAULT_MAPPING, policy)
    assert builder.finish() == whole
    assert builder.finish().pairs == whole.pairs
