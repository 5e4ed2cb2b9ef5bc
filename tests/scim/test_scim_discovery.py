"""Reading what a SCIM server announces (pure): its ServiceProviderConfig flags, and the mapping compared with the
server's User schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scim2_models import ServiceProviderConfig

from reconciler.models.scim_path import CORE_USER_URN, ENTERPRISE_URN, parse_target_path
from reconciler.scim.discovery import (
    DEFAULT_CAPABILITIES,
    ScimCapabilities,
    UserSchema,
    capabilities_from,
    schema_attributes,
    unannounced_paths,
    user_extensions,
)

SCHEMAS = {
    "Resources": [
        {
            "id": CORE_USER_URN,
            "attributes": [
                {"name": "userName"},
                {"name": "name", "subAttributes": [{"name": "givenName"}, {"name": "familyName"}]},
                {"name": "emails", "subAttributes": [{"name": "value"}, {"name": "type"}]},
                {"name": "title"},
            ],
        },
        {"id": ENTERPRISE_URN, "attributes": [{"name": "department"}, {"name": "manager"}]},
    ]
}
RESOURCE_TYPES = {"Resources": [{"name": "User", "schemaExtensions": [{"schema": ENTERPRISE_URN, "required": False}]}]}
SERVER = UserSchema(user_extensions(RESOURCE_TYPES), schema_attributes(SCHEMAS))


def problems(*paths: str, schema: UserSchema = SERVER) -> list[str]:
    return unannounced_paths([parse_target_path(path) for path in paths], schema)


def test_announced_paths_pass_whatever_their_case() -> None:
    assert problems("userName", "name.givenName", 'emails[type eq "work"].value', "TITLE") == []
    assert problems(f"{ENTERPRISE_URN}:department", f"{ENTERPRISE_URN}:manager.value") == []


def test_an_attribute_missing_from_the_schema_is_named() -> None:
    assert problems("nickName", "name.middleName") == [
        f"nickName: {CORE_USER_URN} has no attribute nickName in the server's /Schemas",
        "name.middleName: name has no sub-attribute middleName",
    ]


def test_an_extension_the_user_resource_type_lacks_is_named() -> None:
    acme = "urn:example:acme:2.0:User"
    assert problems(f"{acme}:track") == [
        f"{acme}:track: the User resource type has no extension {acme} (it has: {ENTERPRISE_URN})"
    ]


def test_nothing_is_claimed_where_the_server_announced_nothing() -> None:
    assert problems("nickName", "urn:example:acme:2.0:User:track", schema=UserSchema(None, None)) == []


# -- /ServiceProviderConfig: read as scim2-models reads it, without importing it on every run ----------------

FLAG_VALUES = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(-3, 2000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["true", "false", "yes", "no", "on", "1", "0", "10", "maybe", "", " 5 ", "1e3"]),
    st.lists(st.booleans(), max_size=2),
    st.dictionaries(st.sampled_from(["supported", "x"]), st.booleans(), max_size=1),
)
PART = st.dictionaries(st.sampled_from(["supported", "maxResults", "vendorFlag"]), FLAG_VALUES, max_size=3)
PAYLOAD = st.dictionaries(
    st.sampled_from(["patch", "filter", "etag", "bulk", "sort", "Patch", "x-vendor"]),
    st.one_of(PART, FLAG_VALUES),
    max_size=5,
)


def capabilities_by_scim2_models(payload: dict[str, Any]) -> ScimCapabilities:
    """The reading the run used before, through scim2-models' ServiceProviderConfig: the reference."""
    subset = {
        name: {key: part[key] for key in ("supported", "maxResults") if key in part}
        for name in ("patch", "filter", "etag")
        if isinstance(part := payload.get(name), dict)
    }
    config = ServiceProviderConfig.model_validate(subset)
    max_results = config.filter.max_results if config.filter else None
    return ScimCapabilities(
        patch_supported=config.patch.supported is not False if config.patch else DEFAULT_CAPABILITIES.patch_supported,
        filter_supported=bool(config.filter and config.filter.supported),
        max_results=max_results if max_results and max_results > 0 else None,
        etag_supported=bool(config.etag and config.etag.supported),
    )


def reading(read: Callable[[dict[str, Any]], ScimCapabilities], payload: dict[str, Any]) -> object:
    """The capabilities, or the fields a ValidationError names (the run then warns and assumes the defaults)."""
    try:
        return read(payload)
    except pydantic.ValidationError as error:
        return sorted((problem["loc"], problem["type"]) for problem in error.errors())


@given(PAYLOAD)
def test_the_announced_flags_read_as_scim2_models_reads_them(payload: dict[str, Any]) -> None:
    assert reading(capabilities_from, payload) == reading(capabilities_by_scim2_models, payload)


def test_the_announced_flags_of_a_typical_server() -> None:
    payload = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "filter": {"supported": "true", "maxResults": "200"},
        "etag": {"supported": False},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "Bearer"}],
    }
    assert capabilities_from(payload) == ScimCapabilities(True, True, 200, False)
    with pytest.raises(pydantic.ValidationError):
        capabilities_from({"filter": {"maxResults": 2.5}})
