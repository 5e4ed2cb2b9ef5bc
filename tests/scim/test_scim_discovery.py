"""Reading what a SCIM server announces (pure): the mapping compared with the server's User schema."""

from __future__ import annotations

from reconciler.models.scim_path import CORE_USER_URN, ENTERPRISE_URN, parse_target_path
from reconciler.scim.discovery import UserSchema, schema_attributes, unannounced_paths, user_extensions

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
