"""Listing pages decoded into PlatformUser records, whole or with only the attributes a run compares."""

from __future__ import annotations

import json

import pytest

from reconciler.scim.page import PageError, page_decoder, release_resource

ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
RESOURCE = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
    "id": "2819c223",
    "externalId": "00u1234567890abcdefg",
    "userName": "bjensen@example.com",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "title": "Tour Guide",
    "active": False,
    ENTERPRISE_URN: {"department": "Tours"},
    "meta": {"resourceType": "User", "version": 'W/"3694e05e9dff591"', "location": "https://x/Users/2819c223"},
}


def page(*resources: object, total: object = 1) -> bytes:
    return json.dumps({"schemas": [], "totalResults": total, "Resources": list(resources)}).encode()


def test_kept_attributes_only_and_the_version_from_meta() -> None:
    total, (user,) = page_decoder(frozenset({"name", ENTERPRISE_URN})).decode(page(RESOURCE))

    assert total == 1
    assert (user.scim_id, user.user_name, user.external_id, user.active) == (
        "2819c223", "bjensen@example.com", "00u1234567890abcdefg", False,
    )  # fmt: skip
    assert user.version == 'W/"3694e05e9dff591"' and user.partial
    assert set(user.resource) == {"id", "externalId", "userName", "name", "active", ENTERPRISE_URN}
    assert user.resource[ENTERPRISE_URN] == {"department": "Tours"}


def test_without_keep_the_resource_is_whole() -> None:
    _, (user,) = page_decoder(None).decode(page(RESOURCE))
    assert user.resource == RESOURCE and not user.partial


@pytest.mark.parametrize("keep", [None, frozenset({"name"})], ids=["whole", "kept"])
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (page(total=None), "without totalResults"),
        (page(total="many"), "totalResults is 'many'"),
        (b'{"totalResults": 1, "Resources": [', "malformed JSON"),
        (page({"id": "x"}), "userName is required"),
        (page({"id": "x", "userName": "a", "active": "yes"}), "active must be true or false"),
        (page({"id": "x", "userName": "a", "meta": {"version": 3}}), "meta.version must be a string"),
    ],
)
def test_what_cannot_be_read_is_named(keep: frozenset[str] | None, body: bytes, says: str) -> None:
    with pytest.raises((PageError, ValueError), match=says):
        page_decoder(keep).decode(body)


def test_a_released_user_says_so_when_read_by_mistake() -> None:
    decoder = page_decoder(frozenset({"name"}))
    (user,) = decoder.decode(json.dumps({"totalResults": 1, "Resources": [RESOURCE]}).encode())[1]
    release_resource(user)
    with pytest.raises(RuntimeError, match="released"):
        dict(user.resource)
    whole = page_decoder(None).decode(json.dumps({"totalResults": 1, "Resources": [RESOURCE]}).encode())[1][0]
    release_resource(whole)  # a whole user is the caller's own: kept
    assert whole.resource == RESOURCE
