"""The mapping: its forms (source, constant, join, transform, default), every attribute it may feed,
and what a run keeps of each side, derived from it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.config import PolicyConfig
from reconciler.config.mapping import DEFAULT_MAPPING, SourceSpec, mapping_problems
from reconciler.errors import SourceError
from reconciler.models.records import ActionKind, Change, OktaAssignment, PlatformUser, ProfileFields
from reconciler.models.scim_path import (
    CORE_USER_URN,
    ENTERPRISE_URN,
    build_resource,
    parse_target_path,
    read_attribute,
    read_target,
)
from reconciler.okta.page import decode_app_users
from reconciler.plan.mapping import (
    UNKNOWN,
    compile_mapping,
    desired_attributes,
    profile_fields,
    read_source,
    resource_attributes,
    spec_reader,
)
from reconciler.plan.users import plan
from reconciler.run.apply import patch_operations
from reconciler.scim.patch import apply_operations
from tests.conftest import examples
from tests.support.factories import okta_id


def test_profile_fields_are_the_profile_sources_of_the_mapping() -> None:
    mapping = {**DEFAULT_MAPPING, "title": "user.profile.title", "nickName": "id"}
    assert profile_fields(mapping) == ProfileFields(
        app=frozenset({"givenName", "familyName", "email", "displayName", "locale"}),
        user=frozenset({"title"}),
    )


def test_resource_attributes_name_top_level_attributes_and_extension_urns() -> None:
    mapping = {
        **DEFAULT_MAPPING,
        f"{ENTERPRISE_URN}:department": "profile.department",
        "urn:ietf:params:scim:schemas:core:2.0:User:title": "profile.title",
    }
    assert resource_attributes(mapping) == {
        "userName", "name", "emails", "displayName", "locale", ENTERPRISE_URN, "title",
    }  # fmt: skip


def test_a_page_keeps_only_the_profile_fields_asked_for() -> None:
    app_user = {
        "id": "00u1234567890abcdefg",
        "status": "PROVISIONED",
        "credentials": {"userName": "ada@example.com"},
        "profile": {"givenName": "Ada", "familyName": "Lovelace", "costCenter": "CC-1"},
        "_embedded": {"user": {"status": "ACTIVE", "profile": {"title": "Countess", "mobilePhone": None}}},
        "_links": {"app": {"href": "https://example.okta.com/api/v1/apps/0oa1"}},
    }
    fields = ProfileFields(app=frozenset({"givenName", "nickName"}), user=frozenset({"title"}))

    (whole,) = decode_app_users(json.dumps([app_user]))
    (kept,) = decode_app_users(json.dumps([app_user]), fields)

    assert whole.app_profile == app_user["profile"]
    assert kept.app_profile == {"givenName": "Ada"} and kept.user_profile == {"title": "Countess"}
    assert (kept.app_status, kept.user_status, kept.user_name) == ("PROVISIONED", "ACTIVE", "ada@example.com")


# --- every attribute the issue lists: mapped, created, compared, patched ------------------------

ACME_URN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
CORE_PATHS = [
    "name.givenName",
    "name.familyName",
    "name.middleName",
    "name.honorificPrefix",
    "name.honorificSuffix",
    "name.formatted",
    "displayName",
    "nickName",
    "title",
    'emails[type eq "work"].value',
    'phoneNumbers[type eq "mobile"].value',
    'phoneNumbers[type eq "work"].value',
    "locale",
    "preferredLanguage",
    "timezone",
    "userType",
]
ENTERPRISE_PATHS = [
    f"{ENTERPRISE_URN}:{name}"
    for name in ("employeeNumber", "costCenter", "organization", "division", "department", "manager.value")
]
EVERY_PATH = [*CORE_PATHS, *ENTERPRISE_PATHS, f"{ACME_URN}:trainingTrack"]
POLICY = PolicyConfig()
UNMAPPED = {"profileUrl": "https://platform.example.com/ada", "nickName": "platform's own"}


def _okta(n: int = 1, **app_profile: Any) -> OktaAssignment:
    return OktaAssignment(
        okta_user_id=okta_id(n),
        user_name=f"user{n}@example.com",
        app_status="ACTIVE",
        user_status="ACTIVE",
        app_profile=app_profile,
        user_profile={},
    )


def _platform(desired: OktaAssignment, attributes: Mapping[str, Any]) -> PlatformUser:
    resource = build_resource(
        {"userName": desired.user_name, **attributes, "externalId": desired.okta_user_id, "active": True}
    )
    resource["id"] = "scim-1"
    return PlatformUser("scim-1", desired.user_name, desired.okta_user_id, True, resource)


def _schemas_for(path: str) -> list[str]:
    schema = parse_target_path(path).schema
    return [CORE_USER_URN] if schema is None else [CORE_USER_URN, schema]


@pytest.mark.parametrize("path", EVERY_PATH)
@pytest.mark.parametrize("form", ["string", "table"])
def test_each_attribute_is_created_compared_and_patched(path: str, form: str) -> None:
    spec: SourceSpec = "profile.field" if form == "string" else {"source": "profile.field"}
    mapping = {"userName": "credentials.userName", path: spec}
    desired = _okta(field="New")

    (create,) = plan([desired], [], mapping, POLICY).actions
    assert create.kind is ActionKind.CREATE and create.changes[path] == Change(None, "New")
    created = build_resource({text: change.after for text, change in create.changes.items()})
    assert read_target(created, parse_target_path(path)) == "New"
    assert created["schemas"] == _schemas_for(path)

    unmapped = {key: value for key, value in UNMAPPED.items() if key != path}
    existing = _platform(desired, {path: "Old", **unmapped})
    (update,) = plan([desired], [existing], mapping, POLICY).actions
    assert update.kind is ActionKind.UPDATE and update.changes == {path: Change("Old", "New")}
    operations = patch_operations(existing.resource, update.changes)
    if "[" in path:
        attribute = path.partition("[")[0]
        (entry,) = read_attribute(existing.resource, parse_target_path(path))
        assert operations == [{"op": "replace", "path": attribute, "value": [{**entry, "value": "New"}]}]
    else:
        assert operations == [{"op": "replace", "path": path, "value": "New"}]

    after = apply_operations(existing.resource, operations)
    assert {key: after[key] for key in unmapped} == unmapped, "unmapped attributes are left alone"
    patched = PlatformUser("scim-1", desired.user_name, desired.okta_user_id, True, after)
    assert plan([desired], [patched], mapping, POLICY).actions == ()


def test_a_changed_mobile_number_keeps_the_other_numbers() -> None:
    path = 'phoneNumbers[type eq "mobile"].value'
    mapping = {"userName": "credentials.userName", path: "profile.mobilePhone"}
    desired = _okta(mobilePhone="+44 7700 900002")
    existing = _platform(desired, {path: "+44 7700 900001", 'phoneNumbers[type eq "work"].value': "+44 20 7946 0000"})

    (update,) = plan([desired], [existing], mapping, POLICY).actions
    (operation,) = patch_operations(existing.resource, update.changes)

    assert operation["path"] == "phoneNumbers"
    assert {entry["type"]: entry["value"] for entry in operation["value"]} == {
        "mobile": "+44 7700 900002",
        "work": "+44 20 7946 0000",
    }


def test_a_create_carries_every_schema_it_writes() -> None:
    mapping = {
        "userName": "credentials.userName",
        f"{ENTERPRISE_URN}:manager.value": "profile.managerId",
        f"{ACME_URN}:trainingTrack": "profile.track",
        "userType": {"constant": "Employee"},
    }
    (create,) = plan([_okta(managerId="00u-boss", track="Phishing 101")], [], mapping, POLICY).actions
    created = build_resource({text: change.after for text, change in create.changes.items()})
    assert created["schemas"] == [CORE_USER_URN, ENTERPRISE_URN, ACME_URN]
    assert created[ENTERPRISE_URN] == {"manager": {"value": "00u-boss"}}
    assert created[ACME_URN] == {"trainingTrack": "Phishing 101"} and created["userType"] == "Employee"


# --- the string form and { source = ... } ------------------------------------------------------

ASSIGNMENTS = [
    _okta(title="Engineer"),
    _okta(title=None),
    _okta(title=""),
    _okta(),  # the field absent from the app profile
    OktaAssignment(okta_user_id=okta_id(2), user_name="u2@example.com", user_profile=None),
    OktaAssignment(okta_user_id=okta_id(3), user_name="u3@example.com", user_profile={"title": " Boss "}),
]


@pytest.mark.parametrize("source", ["profile.title", "user.profile.title", "credentials.userName", "id"])
def test_the_string_form_and_a_source_table_read_alike(source: str) -> None:
    for assignment in ASSIGNMENTS:
        assert spec_reader({"source": source})(assignment) == spec_reader(source)(assignment)
        assert spec_reader(source)(assignment) == read_source(assignment, source)


# --- constant, transform, default, join -----------------------------------------------------------


def read(spec: SourceSpec, assignment: OktaAssignment) -> Any:
    ((_, attribute),) = [(a.text, a) for a in compile_mapping({"title": spec})]
    return attribute.read(assignment)


@pytest.mark.parametrize("constant", ["Employee", True, False, 42])
def test_a_constant_is_read_for_everyone(constant: Any) -> None:
    for assignment in ASSIGNMENTS:
        assert read({"constant": constant}, assignment) == constant


def test_transforms_apply_in_order_to_strings_only() -> None:
    spec: SourceSpec = {"source": "profile.email", "transform": ["trim", "lower"]}
    assert read(spec, _okta(email=" Ada@Example.COM ")) == "ada@example.com"
    assert read({"source": "profile.email", "transform": "upper"}, _okta(email="ada@x")) == "ADA@X"
    for value in (True, 42, ["A", "B"], None):
        assert read(spec, _okta(email=value)) == value
    assert read(spec, _okta()) is UNKNOWN, "a field Okta did not send stays unknown without a default"


def test_default_comes_after_the_transforms_and_is_not_transformed() -> None:
    spec: SourceSpec = {"source": "profile.title", "transform": ["trim", "upper"], "default": "Staff"}
    assert read(spec, _okta(title=" engineer ")) == "ENGINEER"
    for missing in (_okta(title=None), _okta(title=""), _okta(title="   "), _okta()):
        assert read(spec, missing) == "Staff"
    assert read({"source": "profile.title", "default": "Staff"}, _okta(title="   ")) == "   ", "not trimmed: not empty"
    assert read({"source": "profile.title", "default": False}, _okta()) is False


def test_a_default_does_not_stand_for_a_profile_okta_did_not_send() -> None:
    no_user_profile = OktaAssignment(okta_user_id=okta_id(2), user_name="u2@example.com", user_profile=None)
    assert read({"source": "user.profile.title", "default": "Staff"}, no_user_profile) is UNKNOWN
    assert read({"source": "user.profile.title", "default": "Staff"}, _okta()) == "Staff"


def test_join_skips_missing_parts_and_is_absent_when_all_are() -> None:
    spec: SourceSpec = {"join": ["profile.first", "profile.middle", "profile.last"]}
    assert read(spec, _okta(first="Ada", middle="", last="Lovelace")) == "Ada Lovelace"
    assert read(spec, _okta(first="Ada", middle=None)) == "Ada"
    assert (
        read({**spec, "separator": ", "}, _okta(first="Ada", middle="King", last="Lovelace")) == "Ada, King, Lovelace"
    )
    assert read({"join": ["profile.a", "profile.b"], "separator": "-"}, _okta(a=12, b="x")) == "12-x"
    assert read(spec, _okta(first="", middle=None)) is None


def test_join_of_a_profile_okta_did_not_send_is_unknown() -> None:
    spec: SourceSpec = {"join": ["profile.first", "user.profile.lastName"]}
    no_user_profile = OktaAssignment(
        okta_user_id=okta_id(2), user_name="u2@example.com", app_profile={"first": "Ada"}, user_profile=None
    )
    assert read(spec, no_user_profile) is UNKNOWN
    assert read({**spec, "default": "Nobody"}, no_user_profile) is UNKNOWN


def test_join_takes_transform_and_default() -> None:
    spec: SourceSpec = {"join": ["profile.a", "profile.b"], "separator": ".", "transform": "lower", "default": "n/a"}
    assert read(spec, _okta(a="Ada", b="LOVELACE")) == "ada.lovelace"
    assert read(spec, _okta()) == "n/a"


def test_an_unknown_join_is_neither_compared_nor_written_and_an_empty_one_removes() -> None:
    mapping = {"userName": "credentials.userName", "displayName": {"join": ["user.profile.a", "user.profile.b"]}}
    not_expanded = OktaAssignment(okta_user_id=okta_id(1), user_name="user1@example.com", app_status="ACTIVE")
    known = OktaAssignment(
        okta_user_id=okta_id(2), user_name="user2@example.com", app_status="ACTIVE", user_profile={"a": "Ada"}
    )
    platform = [_platform(not_expanded, {"displayName": "Kept"}), _platform(known, {"displayName": "Ada"})]
    assert plan([not_expanded, known], platform, mapping, POLICY).actions == ()
    with pytest.raises(SourceError, match=r'mapping\."displayName": no user\'s Okta profile has a value for it'):
        plan([not_expanded], platform[:1], mapping, POLICY)

    empty = OktaAssignment(
        okta_user_id=okta_id(1), user_name="user1@example.com", app_status="ACTIVE", user_profile={"a": "", "b": None}
    )
    existing = _platform(empty, {"displayName": "Stale"})
    (update,) = plan([empty], [existing], mapping, POLICY).actions
    assert update.changes == {"displayName": Change("Stale", None)}
    assert patch_operations(existing.resource, update.changes) == [{"op": "remove", "path": "displayName"}]


def test_profile_fields_include_every_source_a_spec_reads() -> None:
    mapping: dict[str, SourceSpec] = {
        "userName": "credentials.userName",
        "displayName": {"join": ["user.profile.firstName", "profile.lastName"]},
        "title": {"source": "user.profile.title", "default": "Staff"},
        "userType": {"constant": "Employee"},
        'emails[type eq "work"].value': {"source": "profile.email", "transform": ["trim", "lower"]},
    }
    assert profile_fields(mapping) == ProfileFields(
        app=frozenset({"lastName", "email"}), user=frozenset({"firstName", "title"})
    )
    assert resource_attributes(mapping) == {"userName", "displayName", "title", "userType", "emails"}


def test_mapping_problems_of_a_good_mapping_are_none() -> None:
    mapping: dict[str, SourceSpec] = {
        "userName": "credentials.userName",
        "displayName": {"join": ("user.profile.firstName", "user.profile.lastName"), "separator": " "},
        "title": {"source": "user.profile.title", "transform": ("trim",), "default": "Staff"},
        "userType": {"constant": 1},
        f"{ACME_URN}:trainingTrack": "user.profile.trainingTrack",
    }
    assert mapping_problems(mapping) == []


# --- the string form and { source = ... }, for any profile ------------------------------------------

FIELD_VALUES = st.one_of(st.none(), st.just(""), st.text(max_size=5), st.integers(), st.booleans())
PROFILES = st.dictionaries(st.sampled_from(["title", "email", "other"]), FIELD_VALUES, max_size=3)


@given(app_profile=PROFILES, user_profile=st.none() | PROFILES)
@examples(2)
def test_the_two_forms_read_alike_for_any_profile(
    app_profile: dict[str, Any], user_profile: dict[str, Any] | None
) -> None:
    assignment = OktaAssignment(
        okta_user_id=okta_id(1), user_name="u@example.com", app_profile=app_profile, user_profile=user_profile
    )
    for source in ("profile.title", "user.profile.title", "credentials.userName", "id"):
        assert spec_reader({"source": source})(assignment) == spec_reader(source)(assignment)
        assert spec_reader({"source": source, "transform": []})(assignment) == spec_reader(source)(assignment)
    string_form = desired_attributes(assignment, {"userName": "credentials.userName", "title": "user.profile.title"})
    table_form = desired_attributes(
        assignment, {"userName": {"source": "credentials.userName"}, "title": {"source": "user.profile.title"}}
    )
    assert string_form == table_form


# --- what cannot be mapped, and how a bad mapping is told -------------------------------------------


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("externalId", "the reconciler always sets externalId to the Okta user id"),
        ("ExternalId", "the reconciler always sets externalId to the Okta user id"),
        (f"{CORE_USER_URN}:externalId", "the reconciler always sets externalId to the Okta user id"),
        ("active", "the reconciler sets active to follow the user's assignment status in Okta"),
        ("id", "the platform assigns id"),
        ("meta", "the platform keeps meta"),
        ("schemas", "the reconciler writes schemas"),
    ],
)
def test_what_the_reconciler_or_the_platform_owns_cannot_be_mapped(path: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_target_path(path)
    [problem] = mapping_problems({"userName": "credentials.userName", path: "id"})
    assert problem.startswith(f'mapping."{path}": {why}') and "cannot be mapped" in problem


def test_an_extension_may_have_attributes_named_like_the_reserved_ones() -> None:
    assert parse_target_path(f"{ACME_URN}:active").schema == ACME_URN
    assert mapping_problems({"userName": "credentials.userName", f"{ACME_URN}:active": {"constant": True}}) == []


def test_username_cannot_be_a_constant() -> None:
    [problem] = mapping_problems({"userName": {"constant": "everyone"}})
    assert problem == 'mapping."userName": a constant would give every user the same userName; map a source'


def test_compiling_a_bad_mapping_names_the_key() -> None:
    with pytest.raises(ValueError, match=r'^mapping."title": unknown transform "capitalize"; use lower, upper, trim$'):
        compile_mapping({"title": {"source": "profile.title", "transform": "capitalize"}})


def test_a_plain_source_table_compiles_to_the_string_forms_reader() -> None:
    """No wrapper for { source = ... } alone: the 100k-user path costs what the string form costs."""
    ((_, plain), (_, table)) = [(a.text, a) for a in compile_mapping({"a": "profile.x", "b": {"source": "profile.x"}})]
    assert plain.read.__code__ is table.read.__code__
