"""What a run keeps of each side, derived from the mapping."""

from __future__ import annotations

import json

from reconciler.mapping import DEFAULT_MAPPING, ENTERPRISE_URN, profile_fields, resource_attributes
from reconciler.okta_page import decode_app_users
from reconciler.records import ProfileFields


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
