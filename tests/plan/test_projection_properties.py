"""The projection path agrees with a plain dict-by-dict comparison, for random users, mappings and drifts.

Both sides are written as the JSON pages Okta and a SCIM server send, then decoded twice: with the
mapping's projection (each record carries its compared values, read straight from the decoded page)
and without (whole profiles and resources, as a reference). The plans must be the same, and every
matched pair's changed attributes must be exactly those a straightforward reading of the two dicts
finds, attribute by attribute, with SCIM's comparison rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import given
from hypothesis import strategies as st

from reconciler.models.records import ActionKind, Change, OktaAssignment, PlatformUser
from reconciler.models.scim_path import ENTERPRISE_URN, build_resource, read_target, values_equal
from reconciler.okta.page import decode_app_users
from reconciler.plan.mapping import UNKNOWN, compile_mapping, profile_fields, resource_attributes
from reconciler.plan.projection import projection_for
from reconciler.plan.users import Lifecycle, intended_lifecycle, plan
from reconciler.scim.page import page_decoder
from tests.conftest import examples
from tests.support.factories import okta_id


@dataclass(frozen=True)
class Policy:
    unmanaged: Literal["report", "deactivate"]
    suspended: Literal["deactivate", "keep"]


APP_FIELDS = ("givenName", "familyName", "email", "displayName", "nickName")
USER_FIELDS = ("department", "title", "email")
SOURCES = [f"profile.{name}" for name in APP_FIELDS] + [f"user.profile.{name}" for name in USER_FIELDS]

TARGET_CHOICES = (
    "name.givenName",
    "name.familyName",
    'emails[type eq "work"].value',
    "displayName",
    "nickName",
    "title",
    f"{ENTERPRISE_URN}:department",
)

values = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["Ada", "ada", "ADA", " Ada ", "Lovelace", "ada@example.com", "Tours"]),
    st.integers(min_value=0, max_value=2),
    st.booleans(),
)
specs = st.one_of(
    st.sampled_from(SOURCES),
    st.builds(lambda s: {"source": s}, st.sampled_from(SOURCES)),
    st.builds(
        lambda s, t: {"source": s, "transform": t},
        st.sampled_from(SOURCES),
        st.sampled_from(["lower", "upper", "trim", ["trim", "lower"]]),
    ),
    st.builds(lambda s: {"source": s, "default": "n/a"}, st.sampled_from(SOURCES)),
    st.builds(
        lambda parts: {"join": parts, "separator": " "}, st.lists(st.sampled_from(SOURCES), min_size=2, max_size=3)
    ),
    st.builds(lambda c: {"constant": c}, st.sampled_from(["Staff", "ada"])),
)
user_name_specs = st.sampled_from(
    ["credentials.userName", {"source": "credentials.userName", "transform": "lower"}, "profile.email"]
)


@st.composite
def mappings(draw: Any) -> dict[str, Any]:
    targets = draw(st.lists(st.sampled_from(TARGET_CHOICES), unique=True, min_size=1, max_size=5))
    return {"userName": draw(user_name_specs), **{target: draw(specs) for target in targets}}


def profile(draw: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Each field present with a value, null or empty, or absent."""
    present = draw(st.sets(st.sampled_from(names)))
    return {name: draw(values) for name in sorted(present)}


@st.composite
def app_users(draw: Any) -> list[dict[str, Any]]:
    """Okta's app users as its listing sends them (``expand=user``), with a profile email always there."""
    result = []
    for n in draw(st.lists(st.integers(min_value=1, max_value=8), unique=True, max_size=6)):
        user_name = draw(st.sampled_from(["ada@example.com", "Ada@Example.com", "bob@example.com"])) + str(n)
        app_profile = profile(draw, APP_FIELDS) | {"email": user_name}
        result.append(
            {
                "id": okta_id(n),
                "externalId": draw(st.one_of(st.none(), st.just(f"s{n}"))),
                "status": draw(st.sampled_from(["ACTIVE", "PROVISIONED", "INACTIVE"])),
                "scope": "USER",
                "syncState": "SYNCHRONIZED",
                "credentials": {"userName": user_name},
                "profile": app_profile,
                "_links": {"app": {"href": "https://example.okta.com/api/v1/apps/0oa1"}},
                "_embedded": {
                    "user": {
                        "id": okta_id(n),
                        "status": draw(st.sampled_from(["ACTIVE", "ACTIVE", "SUSPENDED", "DEPROVISIONED"])),
                        "profile": profile(draw, USER_FIELDS) | {"login": user_name},
                    }
                },
            }
        )
    return result


def platform_resource(draw: Any, assignment: OktaAssignment, mapping: dict[str, Any], n: int) -> dict[str, Any]:
    """What Okta would have pushed for the user, then drifted: attributes dropped, changed, case-flipped."""
    wanted = {}
    for attribute in compile_mapping(mapping):
        value = attribute.read(assignment)
        if value is UNKNOWN:
            continue
        drift = draw(st.sampled_from(["same", "same", "same", "drop", "other", "case"]))
        if drift == "other":
            value = draw(values)
        elif drift == "case" and isinstance(value, str):
            value = value.swapcase()
        if attribute.text == "userName" and not (isinstance(value, str) and value):
            value = assignment.user_name  # a SCIM user always has a userName
        if drift != "drop" and value is not None:
            wanted[attribute.text] = value
    external_id = draw(st.sampled_from([assignment.okta_user_id, assignment.okta_user_id, None, "HR-1"]))
    resource = build_resource({**wanted, "externalId": external_id, "active": draw(st.booleans())})
    resource |= {"id": f"s{n}", "meta": {"resourceType": "User", "version": f'W/"{n}"'}, "x-vendor": {"a": 1}}
    resource.setdefault("userName", assignment.user_name)
    return resource


@dataclass
class Sides:
    mapping: dict[str, Any]
    okta_page: bytes
    scim_page: bytes


@st.composite
def sides(draw: Any) -> Sides:
    mapping = draw(mappings())
    users = draw(app_users())
    okta_page = json.dumps(users).encode()
    whole = decode_app_users(okta_page)
    resources = [platform_resource(draw, a, mapping, n) for n, a in enumerate(whole) if draw(st.booleans()) or n == 0]
    names = {r["userName"].casefold() for r in resources}
    extra = [
        r for r in (build_resource({"userName": "hr.only@example.com", "active": True}),) if "hr.only" not in names
    ]
    for index, resource in enumerate(extra):
        resource["id"] = f"hr{index}"
    scim_page = json.dumps({"totalResults": len(resources) + len(extra), "Resources": resources + extra}).encode()
    return Sides(mapping, okta_page, scim_page)


def decoded(sides: Sides, projected: bool) -> tuple[list[OktaAssignment], list[PlatformUser]]:
    if not projected:
        return decode_app_users(sides.okta_page), page_decoder(None).decode(sides.scim_page)[1]
    projection = projection_for(sides.mapping)
    desired = decode_app_users(sides.okta_page, profile_fields(sides.mapping), projection)
    actual = page_decoder(resource_attributes(sides.mapping)).decode(sides.scim_page, projection)[1]
    assert all(a.projection is projection for a in desired) and all(u.projection is projection for u in actual)
    return desired, actual


def reference_changes(assignment: OktaAssignment, resource: dict[str, Any], mapping: dict[str, Any]) -> dict:
    """The plain reading: each mapped attribute from the whole profile and the whole resource."""
    changes = {}
    for attribute in compile_mapping(mapping):
        wanted = attribute.read(assignment)
        current = read_target(resource, attribute.path)
        if wanted is not UNKNOWN and not values_equal(attribute.path, wanted, current):
            changes[attribute.text] = Change(current, wanted)
    return changes


policies = st.builds(Policy, st.sampled_from(["report", "deactivate"]), st.sampled_from(["deactivate", "keep"]))


@examples(6)
@given(sides(), policies)
def test_the_projection_path_and_a_dict_by_dict_reading_agree_on_every_action_and_attribute(sides, policy):
    try:
        reference = plan(*decoded(sides, projected=False), sides.mapping, policy)
    except Exception as error:  # a listing the plan refuses (an attribute nobody has) is refused both ways
        refused = type(error)
        try:
            plan(*decoded(sides, projected=True), sides.mapping, policy)
        except refused:
            return
        raise AssertionError(f"the reference refused the listing ({error}), the projection path did not") from None

    desired, actual = decoded(sides, projected=True)
    projected = plan(desired, actual, sides.mapping, policy)
    assert projected == reference

    whole_desired, whole_actual = decoded(sides, projected=False)
    assignments = {a.okta_user_id: a for a in whole_desired}
    resources = {u.scim_id: u.resource for u in whole_actual}
    actions = {a.okta_user_id: a for a in projected.actions if a.scim_id is not None}
    for okta_user_id, scim_id in projected.pairs.items():
        assignment = assignments[okta_user_id]
        if intended_lifecycle(assignment, policy).lifecycle is Lifecycle.INACTIVE:
            continue
        expected = reference_changes(assignment, resources[scim_id], sides.mapping)
        action = actions.get(okta_user_id)
        if action is None:
            assert expected == {}, (okta_user_id, expected)
        elif action.kind in (ActionKind.UPDATE, ActionKind.LINK, ActionKind.REACTIVATE):
            found = {k: v for k, v in action.changes.items() if k not in ("externalId", "active")}
            assert found == expected, (action, expected)
