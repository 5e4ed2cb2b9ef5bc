"""The django-scim2 peer (tests/support/django_peer) over real HTTP: what it does, quirks included.

These pin down the behaviours the peer scenarios of tests/scim/test_peers.py run into, so that a change of
django-scim2 (or of the adapter) shows here first, by name, rather than as a puzzling scenario failure.
Quirks are asserted as they are, not as RFC 7644 would have them.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import SCIM_TOKEN
from tests.support.django_peer_server import DjangoScimServer

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _ada() -> dict[str, Any]:
    return {
        "schemas": [CORE, ENTERPRISE],
        "userName": "ada@example.com",
        "externalId": "00u-ada",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "displayName": "Ada Lovelace",
        "nickName": "Ada",
        "title": "Engineer",
        "locale": "en_GB",
        "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
        "active": True,
        ENTERPRISE: {
            "employeeNumber": "E-100",
            "costCenter": "CC-1",
            "organization": "Analytical Engines",
            "division": "R&D",
            "department": "Research",
            "manager": {"value": "00u-manager-1"},
        },
    }


def _create(peer: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = peer.post("/Users", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _patch(peer: httpx.Client, user_id: str, *operations: dict[str, Any]) -> httpx.Response:
    return peer.patch(f"/Users/{user_id}", json={"schemas": [PATCH_OP], "Operations": list(operations)})


def test_a_created_user_reads_back_with_core_and_enterprise_attributes(peer: httpx.Client) -> None:
    created = _create(peer, _ada())

    user = peer.get(f"/Users/{created['id']}").raise_for_status().json()

    assert user == created
    assert user["schemas"] == [CORE, ENTERPRISE]
    assert (user["userName"], user["externalId"], user["active"]) == ("ada@example.com", "00u-ada", True)
    assert user["name"] == {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"}
    assert (user["displayName"], user["nickName"], user["title"], user["locale"]) == (
        "Ada Lovelace",
        "Ada",
        "Engineer",
        "en_GB",
    )
    assert user[ENTERPRISE] == _ada()[ENTERPRISE]
    assert user["groups"] == []


def test_quirk_the_email_type_is_dropped_and_only_the_primary_address_is_kept(peer: httpx.Client) -> None:
    emails = [
        {"value": "work@example.com", "type": "work"},
        {"value": "home@example.com", "type": "home", "primary": True},
    ]

    user = _create(peer, {"userName": "two@example.com", "emails": emails})

    assert user["emails"] == [{"value": "home@example.com", "primary": True}]


def test_quirk_a_user_without_email_or_external_id_answers_empty_strings(peer: httpx.Client) -> None:
    user = _create(peer, {"schemas": [CORE], "userName": "bare@example.com"})

    assert user["emails"] == [{"value": "", "primary": True}]
    assert user["externalId"] == ""
    assert user["displayName"] == "bare@example.com"  # synthesised: given + family name, else userName
    assert user["schemas"] == [CORE] and ENTERPRISE not in user


def test_quirk_attributes_it_does_not_keep_are_dropped_silently(peer: httpx.Client) -> None:
    user = _create(peer, {"userName": "x@example.com", "profileUrl": "https://example.com/x", "ims": [{"value": "x"}]})

    assert "profileUrl" not in user and "ims" not in user


def test_meta_has_no_version_and_no_etag_header_and_last_modified_stays_the_creation_time(peer: httpx.Client) -> None:
    created = _create(peer, _ada())

    patched = _patch(peer, created["id"], {"op": "replace", "path": "title", "value": "Analyst"})

    assert "version" not in patched.json()["meta"] and "etag" not in patched.headers
    assert patched.json()["meta"]["lastModified"] == created["meta"]["created"]
    assert patched.headers["content-type"] == "application/scim+json"


def test_the_default_page_is_50_and_start_index_and_count_page_through(peer: httpx.Client) -> None:
    for number in range(55):
        _create(peer, {"userName": f"user{number:02}@example.com"})

    default = peer.get("/Users").raise_for_status().json()
    second = peer.get("/Users", params={"startIndex": 51, "count": 10}).raise_for_status().json()
    big = peer.get("/Users", params={"startIndex": 1, "count": 1000}).raise_for_status().json()

    assert (default["totalResults"], default["itemsPerPage"], default["startIndex"]) == (55, 50, 1)
    assert (second["totalResults"], second["itemsPerPage"], second["startIndex"]) == (55, 5, 51)
    assert big["itemsPerPage"] == 55  # filter.maxResults (50) is announced, not enforced
    paged = [user["id"] for user in default["Resources"] + second["Resources"]]
    assert sorted(paged) == sorted(user["id"] for user in big["Resources"]) and len(set(paged)) == 55
    assert paged == sorted(paged)  # ordered by the id as a string: "1", "10", "11", ..., "2"


def test_a_user_name_filter_matches_without_regard_to_case(peer: httpx.Client) -> None:
    created = _create(peer, _ada())
    _create(peer, {"userName": "grace@example.com"})

    found = peer.get("/Users", params={"filter": 'userName eq "ADA@Example.COM"'}).raise_for_status().json()

    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == created["id"]


def test_quirk_a_filter_on_an_attribute_outside_its_map_finds_nobody(peer: httpx.Client) -> None:
    _create(peer, _ada())

    for expression in ('externalId eq "00u-ada"', 'emails.value eq "ada@example.com"'):
        found = peer.get("/Users", params={"filter": expression})
        assert found.status_code == 200 and found.json()["totalResults"] == 0, expression


PATCHES = [
    pytest.param({"op": "replace", "path": "active", "value": False}, {"active": False}, id="active"),
    pytest.param({"op": "replace", "value": {"active": False}}, {"active": False}, id="no-path-value-dict"),
    pytest.param({"op": "replace", "path": "externalId", "value": "00u-new"}, {"externalId": "00u-new"}, id="extId"),
    pytest.param({"op": "remove", "path": "externalId"}, {"externalId": ""}, id="remove-externalId"),
    pytest.param({"op": "replace", "path": "userName", "value": "a.l@example.com"}, {"userName": "a.l@example.com"}),
    pytest.param({"op": "replace", "path": "displayName", "value": "A. L."}, {"displayName": "A. L."}),
    pytest.param({"op": "add", "path": "nickName", "value": "Countess"}, {"nickName": "Countess"}, id="add-nickName"),
    pytest.param({"op": "replace", "path": "title", "value": "Analyst"}, {"title": "Analyst"}),
    pytest.param({"op": "remove", "path": "title"}, {"title": None}, id="remove-title"),
    pytest.param({"op": "replace", "path": "locale", "value": "fr_FR"}, {"locale": "fr_FR"}),
    pytest.param({"op": "replace", "path": "name.givenName", "value": "Augusta"}, {"name.givenName": "Augusta"}),
    pytest.param({"op": "replace", "path": "name.familyName", "value": "King"}, {"name.familyName": "King"}),
    pytest.param(
        {"op": "replace", "path": "emails", "value": [{"value": "al@example.com", "type": "work", "primary": True}]},
        {"emails": [{"value": "al@example.com", "primary": True}]},
        id="emails-whole",
    ),
    pytest.param(
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Security"},
        {"enterprise.department": "Security"},
        id="enterprise-department",
    ),
    pytest.param(
        {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "00u-m-9"},
        {"enterprise.manager": {"value": "00u-m-9"}},
        id="enterprise-manager.value",
    ),
    pytest.param(
        {"op": "remove", "path": f"{ENTERPRISE}:costCenter"}, {"enterprise.costCenter": None}, id="remove-costCenter"
    ),
    pytest.param(
        {"op": "replace", "value": {f"{ENTERPRISE}:division": "Hut 8", "title": "Analyst"}},
        {"enterprise.division": "Hut 8", "title": "Analyst"},
        id="no-path-urn-keys",
    ),
]


def _read(user: dict[str, Any], where: str) -> Any:
    if where.startswith("enterprise."):
        return user.get(ENTERPRISE, {}).get(where.removeprefix("enterprise."))
    attribute, _, sub = where.partition(".")
    return user.get(attribute, {}).get(sub) if sub else user.get(attribute)


@pytest.mark.parametrize(("operation", "expected"), PATCHES)
def test_each_patch_form_answers_200_with_the_user_as_stored(
    peer: httpx.Client, operation: dict[str, Any], expected: dict[str, Any]
) -> None:
    created = _create(peer, _ada())

    answer = _patch(peer, created["id"], operation)

    assert answer.status_code == 200, answer.text
    stored = peer.get(f"/Users/{created['id']}").json()
    assert answer.json() == stored
    for where, value in expected.items():
        assert _read(stored, where) == value, where
    assert stored[ENTERPRISE]["employeeNumber"] == "E-100"  # the rest is untouched


@pytest.mark.parametrize(
    ("operation", "status", "scim_type"),
    [
        pytest.param({"op": "replace", "path": 'emails[type eq "work"].value', "value": "x@e.com"}, 501, None),
        pytest.param({"op": "replace", "path": "profileUrl", "value": "https://e.com"}, 501, None),
        pytest.param({"op": "remove", "path": "userName"}, 400, "mutability"),
        pytest.param({"op": "replace", "path": "active", "value": "false"}, 400, None),
        pytest.param({"op": "remove"}, 500, None, id="remove-without-path"),  # django-scim2's ValueError, unmapped
    ],
)
def test_patch_forms_it_refuses(
    peer: httpx.Client, operation: dict[str, Any], status: int, scim_type: str | None
) -> None:
    created = _create(peer, _ada())

    answer = _patch(peer, created["id"], operation)

    assert answer.status_code == status, answer.text
    assert answer.json()["schemas"] == [ERROR] and answer.json()["status"] == status  # an integer, not a string
    assert answer.json().get("scimType") == scim_type
    assert peer.get(f"/Users/{created['id']}").json() == created


def test_a_duplicate_user_name_is_409_without_scim_type_and_only_exact_case_counts(peer: httpx.Client) -> None:
    _create(peer, _ada())

    duplicate = peer.post("/Users", json={"userName": "ada@example.com"})
    other_case = peer.post("/Users", json={"userName": "ADA@example.com"})

    assert duplicate.status_code == 409 and "scimType" not in duplicate.json()
    assert "UNIQUE constraint failed" in duplicate.json()["detail"]
    assert other_case.status_code == 201  # RFC 7643 says userName is case-insensitive; the column is not


def test_quirk_a_patch_to_a_taken_user_name_is_a_generic_500(peer: httpx.Client) -> None:
    _create(peer, _ada())
    grace = _create(peer, {"userName": "grace@example.com"})

    answer = _patch(peer, grace["id"], {"op": "replace", "path": "userName", "value": "ada@example.com"})

    assert answer.status_code == 500  # PatchView, unlike POST and PUT, does not map IntegrityError to 409
    assert answer.json()["detail"] == "Exception occurred while processing the SCIM request"


def test_requests_without_the_bearer_token_are_401(django_scim_server: DjangoScimServer) -> None:
    url = f"{django_scim_server.base_url}/Users"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {SCIM_TOKEN}"}):
        answer = httpx.get(url, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["schemas"] == [ERROR] and answer.headers["www-authenticate"].startswith("Bearer")


def test_unknown_ids_are_404_with_a_scim_error_and_delete_is_204(peer: httpx.Client) -> None:
    created = _create(peer, _ada())

    deleted = peer.delete(f"/Users/{created['id']}")
    missing = peer.get(f"/Users/{created['id']}")

    assert deleted.status_code == 204 and deleted.content == b""
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/scim+json"
    assert missing.json() == {"schemas": [ERROR], "detail": f"Resource {created['id']} not found", "status": 404}


def test_service_provider_config_announces_patch_but_no_filter_etag_or_sort(peer: httpx.Client) -> None:
    config = peer.get("/ServiceProviderConfig").raise_for_status().json()

    assert config["patch"] == {"supported": True}
    assert config["filter"] == {"supported": False, "maxResults": 50}  # it filters on userName all the same
    assert config["etag"] == {"supported": False} and config["sort"] == {"supported": False}
    assert config["bulk"]["supported"] is False
    assert [scheme["type"] for scheme in config["authenticationSchemes"]] == ["oauthbearertoken"]


def test_schemas_list_the_enterprise_extension_but_the_user_resource_type_does_not(peer: httpx.Client) -> None:
    schemas = peer.get("/Schemas").raise_for_status().json()
    resource_types = peer.get("/ResourceTypes").raise_for_status().json()

    assert {CORE, ENTERPRISE} <= {schema["id"] for schema in schemas["Resources"]}
    assert "totalResults" not in schemas  # a ListResponse without totalResults
    (user,) = [rt for rt in resource_types["Resources"] if rt["id"] == "User"]
    assert user["schema"] == CORE and user["endpoint"] == "/scim/v2/Users"
    assert "schemaExtensions" not in user
