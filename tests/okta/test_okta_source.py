"""OktaSource reads every assignment through the okta SDK, or fails as a whole with a clear SourceError."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from okta.models.app_user import AppUser

from reconciler.errors import SourceError
from reconciler.models.records import OktaAssignment
from reconciler.okta.answers import next_cursor
from reconciler.okta.page import app_user_as_dict, assignment_from_app_user
from reconciler.okta.sdk import HTTPS_CHECK_ENV, SDK_LOGGER_NAME
from reconciler.okta.source import OktaSource
from reconciler.secret import Secret
from reconciler.testing.okta import FaultKind, OktaEmulator, run_okta_emulator
from tests.conftest import FAST_RETRIES, OKTA_RETRIES

API_TOKEN = "00source-test-api-token-4f9a"
LISTING = "/api/v1/apps/*/users"
APP_USER_URI = re.compile(r"/api/v1/apps/[^/?]+/users(?:/[^/?]+)?(?:\?|$)")


@dataclass
class Org:
    emulator: OktaEmulator
    url: str
    app_id: str

    def source(self, **overrides: Any) -> OktaSource:
        settings: dict[str, Any] = {
            "org_url": self.url,
            "app_id": self.app_id,
            "auth": "api_token",
            "token": Secret(API_TOKEN),
            "timeout_s": 5.0,
            **overrides,
        }
        return OktaSource(**settings)


@pytest.fixture(autouse=True)
def fast_page_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Transient failures are retried as in production, without its half-second backoff."""
    monkeypatch.setattr(OKTA_RETRIES, FAST_RETRIES)


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    emulator = OktaEmulator(seed=11, api_tokens=[API_TOKEN])
    app = emulator.create_app()
    async with run_okta_emulator(emulator) as url:
        yield Org(emulator, url, app.id)


async def list_all(source: OktaSource) -> list[OktaAssignment]:
    async with source:
        return await source.list_assignments()


def expected_assignments(emulator: OktaEmulator, app_id: str) -> dict[str, tuple[Any, ...]]:
    """What the emulator holds, read through its Python API."""
    expected = {}
    for user_id in emulator.listed_user_ids(app_id):
        user = emulator.user(user_id)
        expected[user_id] = (user.profile["login"], user.status, user.profile)
    return expected


# -- the whole listing --------------------------------------------------------


async def test_lists_every_assignment_across_pages(org: Org) -> None:
    emulator = org.emulator
    seeded = emulator.add_assigned_users(org.app_id, 1234)
    emulator.set_user_status(seeded[0].id, "SUSPENDED")
    emulator.mark_provisioned(org.app_id, seeded[1].id, scim_id="scim-1")
    emulator.set_app_user(org.app_id, seeded[2].id, sync_state="ERROR")
    group = emulator.create_group("Contractors")
    member = emulator.create_user(login="contractor@example.com", first_name="Con", last_name="Tractor")
    emulator.add_group_member(group.id, member.id)
    emulator.assign_group(org.app_id, group.id)

    assignments = await list_all(org.source())

    assert org.emulator.request_count(LISTING) == 3
    assert {r.query["limit"] for r in emulator.requests} == {"500"}
    assert {r.auth_scheme for r in emulator.requests} == {"SSWS"}  # "SSWS <token>", with its space
    by_id = {assignment.okta_user_id: assignment for assignment in assignments}
    assert len(by_id) == len(assignments) == 1235
    assert {
        user_id: (a.user_name, a.user_status, a.user_profile) for user_id, a in by_id.items()
    } == expected_assignments(emulator, org.app_id)
    assert by_id[seeded[0].id].user_status == "SUSPENDED"
    assert (by_id[seeded[1].id].scim_id, by_id[seeded[1].id].app_status) == ("scim-1", "PROVISIONED")
    assert by_id[seeded[1].id].sync_state == "SYNCHRONIZED"
    assert by_id[seeded[2].id].sync_state == "ERROR"
    assert (by_id[member.id].scope, by_id[seeded[3].id].scope) == ("GROUP", "USER")
    assert by_id[seeded[3].id].app_profile["givenName"] == seeded[3].profile["firstName"]


async def test_small_pages_are_followed_to_the_end(org: Org) -> None:
    seeded = org.emulator.add_assigned_users(org.app_id, 7)

    assignments = await list_all(org.source(page_size=2))

    assert [a.okta_user_id for a in assignments] == sorted(user.id for user in seeded)
    assert org.emulator.request_count(LISTING) == 4


async def test_an_empty_app_lists_nothing(org: Org) -> None:
    assert await list_all(org.source()) == []


@pytest.fixture(scope="module")
def service_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("key_format", ["pem", "jwk"])
async def test_private_key_auth(org: Org, service_key: rsa.RSAPrivateKey, key_format: str) -> None:
    client_id = org.emulator.register_client(service_key.public_key(), ["okta.apps.read", "okta.users.read"])
    seeded = org.emulator.add_assigned_users(org.app_id, 3)
    if key_format == "pem":
        private_key = Secret(_pem(service_key))
    else:
        private_key = Secret(json.dumps({**json.loads(RSAAlgorithm.to_jwk(service_key)), "kid": "k1", "use": "sig"}))

    assignments = await list_all(
        org.source(auth="private_key", token=None, client_id=client_id, private_key=private_key)
    )

    assert sorted(a.okta_user_id for a in assignments) == sorted(user.id for user in seeded)
    assert [r.auth_scheme for r in org.emulator.requests] == [None, "Bearer"]


# -- failures: one SourceError, never a partial list --------------------------


async def test_unreachable_okta_is_a_source_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    source = OktaSource(
        org_url=f"http://127.0.0.1:{closed_port}", app_id="0oaAPP", auth="api_token", token=Secret(API_TOKEN)
    )

    with pytest.raises(SourceError, match=rf"cannot reach Okta at http://127.0.0.1:{closed_port}: connection refused"):
        await list_all(source)


async def test_rejected_api_token_names_the_401_and_hides_the_token(org: Org) -> None:
    wrong_token = "00wrong-token-value-1234"

    with pytest.raises(SourceError) as raised:
        await list_all(org.source(token=Secret(wrong_token)))

    message = str(raised.value)
    assert "Okta rejected the API token (HTTP 401 E0000011: Invalid token provided)" in message
    assert wrong_token not in message
    assert wrong_token not in repr(raised.value)


async def test_forged_client_assertion_is_a_source_error(org: Org, service_key: rsa.RSAPrivateKey) -> None:
    client_id = org.emulator.register_client(service_key.public_key(), ["okta.apps.read", "okta.users.read"])
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(SourceError, match=r"client assertion \(HTTP 401 invalid_client"):
        await list_all(org.source(auth="private_key", client_id=client_id, private_key=Secret(_pem(forger))))


async def test_ungranted_scope_is_a_source_error(org: Org, service_key: rsa.RSAPrivateKey) -> None:
    client_id = org.emulator.register_client(service_key.public_key(), ["okta.apps.read"])
    source = org.source(
        auth="private_key", client_id=client_id, private_key=Secret(_pem(service_key)), scopes=["okta.users.manage"]
    )

    with pytest.raises(SourceError, match=r"refused the scopes okta.users.manage \(HTTP 400 invalid_scope"):
        await list_all(source)


async def test_unknown_app_is_a_source_error(org: Org) -> None:
    with pytest.raises(SourceError, match=r"Okta has no app 0oaMISSING \(HTTP 404 E0000007"):
        await list_all(org.source(app_id="0oaMISSING"))


async def test_failure_on_page_3_fails_the_whole_listing(org: Org) -> None:
    org.emulator.add_assigned_users(org.app_id, 1100)
    org.emulator.inject_fault(LISTING, status=500, nth=3, times=None)
    source = org.source()
    result: list[OktaAssignment] | None = None

    with pytest.raises(SourceError, match=rf"failed on page 3 of app {org.app_id}: HTTP 500 E0000009"):
        result = await list_all(source)

    assert result is None
    assert [r.status for r in org.emulator.requests] == [200, 200, 500, 500, 500]  # page 3 tried 3 times


READ_TIMEOUT_S = 1.0
"""The client's timeout where a read timeout is the fault. Every other request of the test must answer
within it: a loopback page takes milliseconds, but a loaded 2-core machine stalls a process for a few
hundred (0.27 s seen for a whole listing while the suite ran on 4 workers), so 0.2 s was crossed."""
HELD_S = 3 * READ_TIMEOUT_S
"""How long the faulty answer is held: far beyond the timeout, so a late answer cannot slip in under it."""


@pytest.mark.parametrize(
    ("fault", "timeout_s"),
    [
        ({"status": 503}, 5.0),
        ({"kind": FaultKind.DELAY, "delay_s": HELD_S}, READ_TIMEOUT_S),
        ({"kind": FaultKind.RESET}, 5.0),
        ({"kind": FaultKind.DROP, "times": 2}, 5.0),
    ],
    ids=["503", "read-timeout", "reset-mid-body", "dropped"],
)
async def test_a_transient_failure_on_a_page_is_retried(org: Org, fault: dict[str, Any], timeout_s: float) -> None:
    """Only the read timeout needs a short client timeout; the other faults leave timing out of the test."""
    org.emulator.add_assigned_users(org.app_id, 3)
    rule = org.emulator.inject_fault(LISTING, nth=2, **{"times": 1, **fault})

    assert len(await list_all(org.source(page_size=2, timeout_s=timeout_s))) == 3
    assert rule.times is not None and rule.fired == rule.times
    assert rule.seen == 2 + rule.times  # page 1, then page 2 until it came through


async def test_a_transient_failure_that_persists_fails_after_bounded_attempts(org: Org) -> None:
    org.emulator.inject_fault(LISTING, status=502, times=None)

    with pytest.raises(SourceError, match=r"HTTP 502 .*\(gave up after 3 attempts\)"):
        await list_all(org.source())
    assert org.emulator.request_count(LISTING) == 3


async def test_503_without_date_or_rate_limit_headers(org: Org) -> None:
    org.emulator.add_assigned_users(org.app_id, 2)
    org.emulator.inject_fault(LISTING, status=503, rate_limit_headers=False, times=None)

    with pytest.raises(SourceError, match=r"page 1 of app \w+: HTTP 503 E0000009: Service Unavailable"):
        await list_all(org.source())


async def paced_org(window_s: float, limit: int) -> tuple[OktaEmulator, str]:
    emulator = OktaEmulator(seed=12, api_tokens=[API_TOKEN], rate_limit_window_s=window_s)
    emulator.set_rate_limit(limit, bucket="/api/v1/apps")
    return emulator, emulator.create_app().id


async def test_pacing_spends_only_its_share_of_the_window_and_meets_no_429() -> None:
    """10 requests a 1.5 s window, a share of 0.5: 12 pages take 3 windows' worth of waiting, never a 429."""
    emulator, app_id = await paced_org(window_s=1.5, limit=10)
    emulator.add_assigned_users(app_id, 60)
    async with run_okta_emulator(emulator) as url:
        source = Org(emulator, url, app_id).source(page_size=5, rate_limit_share=0.5)
        started = time.monotonic()
        assignments = await list_all(source)
        took = time.monotonic() - started

    statuses = [r.status for r in emulator.requests]
    assert len(assignments) == 60
    assert statuses == [200] * 12  # the minimum: 60 users / 5 a page, and not one 429
    assert source.rate_limited == 0
    assert source.rate_limit_waited_s > 0
    # 5 requests a window: the 12 pages span 3 windows, so the run waited out at least 2 resets,
    # and not much more than the budget implies (each wait ends at a reset, plus a 1 s margin).
    assert 2 * 1.5 - 0.5 <= took <= 3 * (1.5 + 1.0) + 1.0


async def test_a_429_is_waited_out_until_the_reset_and_the_listing_completes() -> None:
    emulator, app_id = await paced_org(window_s=1.0, limit=1000)
    emulator.add_assigned_users(app_id, 3)
    emulator.inject_fault(LISTING, status=429, times=1)
    async with run_okta_emulator(emulator) as url:
        source = Org(emulator, url, app_id).source()
        assignments = await list_all(source)

    assert len(assignments) == 3
    assert [r.status for r in emulator.requests] == [429, 200]
    assert source.rate_limited == 1


async def test_a_429_that_persists_is_a_source_error() -> None:
    emulator, app_id = await paced_org(window_s=0.5, limit=0)
    async with run_okta_emulator(emulator) as url:
        with pytest.raises(SourceError, match=r"HTTP 429 E0000047: API call exceeded rate limit"):
            await list_all(Org(emulator, url, app_id).source())

    assert [r.status for r in emulator.requests] == [429, 429, 429]  # RATE_LIMIT_ATTEMPTS, each after a reset


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"kind": FaultKind.DROP, "times": None}, r"closed the connection without answering \(page 1"),
        ({"kind": FaultKind.NON_JSON, "status": 200}, r"not an Okta org: .*/apps/\w+/users .* HTTP 200 and an HTML"),
        ({"kind": FaultKind.NON_JSON, "status": 502, "times": None}, r"page 1 of app \w+: HTTP 502: <html>"),
        ({"kind": FaultKind.TRUNCATED}, r"page 1 of app \w+: the answer is not JSON"),
    ],
)
async def test_broken_answers_are_source_errors(org: Org, fault: dict[str, Any], expected: str) -> None:
    org.emulator.inject_fault(LISTING, **fault)

    with pytest.raises(SourceError, match=expected):
        await list_all(org.source())


async def test_slow_okta_times_out(org: Org) -> None:
    org.emulator.set_latency(400)

    with pytest.raises(SourceError, match=r"did not answer within 0.1 s \(page 1"):
        await list_all(org.source(timeout_s=0.1))


# -- configuration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("org_url", "expected"),
    [
        ("http://example.okta.com", r"refusing plain http:// for Okta at http://example.okta.com"),
        ("http://10.0.0.8:8080", r"refusing plain http://"),
        ("ftp://example.okta.com", r"is not an http\(s\) URL"),
        ("https://example.okta.com/oauth2/default", r"must be the bare org URL"),
    ],
)
def test_unsafe_or_malformed_org_urls_are_refused(org_url: str, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        OktaSource(org_url=org_url, app_id="0oaAPP", auth="api_token", token=Secret(API_TOKEN))


@pytest.mark.parametrize(
    "org_url", ["http://localhost:9", "http://127.0.0.2:9", "http://[::1]:9", "https://x.okta.com/"]
)
def test_loopback_http_and_https_are_accepted_without_leaving_the_sdk_switch_on(org_url: str) -> None:
    source = OktaSource(org_url=org_url, app_id="0oaAPP", auth="api_token", token=Secret(API_TOKEN))

    assert source.org_url == org_url.rstrip("/")
    assert HTTPS_CHECK_ENV not in os.environ


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"auth": "api_token", "token": None}, "no API token"),
        ({"auth": "private_key", "client_id": None, "private_key": Secret("x")}, "no client id"),
        (
            {"auth": "private_key", "client_id": "0oaC", "private_key": Secret("not a key")},
            "neither an unencrypted PEM",
        ),
        ({"auth": "oauth", "token": Secret(API_TOKEN)}, "okta auth must be one of"),
        ({"auth": "api_token", "token": Secret(API_TOKEN), "timeout_s": 0}, "more than 0 s"),
        ({"auth": "api_token", "token": Secret(API_TOKEN), "page_size": 501}, "between 1 and 500"),
    ],
)
def test_unusable_settings_are_refused(settings: dict[str, Any], expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        OktaSource(org_url="https://example.okta.com", app_id="0oaAPP", **settings)


async def test_sdk_logging_leaks_no_credential(org: Org, caplog: pytest.LogCaptureFixture) -> None:
    """The SDK logs whole requests at debug level, Authorization header included, when its logger is on."""
    org.emulator.add_assigned_users(org.app_id, 1)
    source = org.source()
    sdk_logger = logging.getLogger(SDK_LOGGER_NAME)
    handlers_before = list(sdk_logger.handlers)
    org.source()  # each Client() used to add a handler
    assert sdk_logger.handlers == handlers_before

    sdk_logger.disabled = False
    try:
        with caplog.at_level(logging.DEBUG, logger=SDK_LOGGER_NAME):
            await list_all(source)
    finally:
        sdk_logger.disabled = True

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Authorization" in logged
    assert "SSWS ********" in logged
    assert API_TOKEN not in logged


# -- parsing ------------------------------------------------------------------


APP_USER = {
    "id": "00u1dnq5S0CfjlkpABCD",
    "externalId": "00u5edt3PNbbjzvIABCD",
    "scope": "USER",
    "status": "PROVISIONED",
    "syncState": "SYNCHRONIZED",
    "credentials": {"userName": "saml.test@example.com"},
    "profile": {"givenName": "Saml", "familyName": "Test", "email": "saml.test@example.com"},
    "_embedded": {"user": {"id": "00u1dnq5S0CfjlkpABCD", "status": "ACTIVE", "profile": {"login": "saml.test"}}},
}


def test_assignment_from_an_expanded_app_user() -> None:
    assert assignment_from_app_user(APP_USER) == OktaAssignment(
        okta_user_id="00u1dnq5S0CfjlkpABCD",
        user_name="saml.test@example.com",
        app_status="PROVISIONED",
        user_status="ACTIVE",
        scope="USER",
        sync_state="SYNCHRONIZED",
        scim_id="00u5edt3PNbbjzvIABCD",
        app_profile={"givenName": "Saml", "familyName": "Test", "email": "saml.test@example.com"},
        user_profile={"login": "saml.test"},
    )


def without(path: str, body: dict[str, Any] = APP_USER) -> dict[str, Any]:
    """``body`` with the field at a dotted ``path`` left out (the rest untouched)."""
    head, _, rest = path.partition(".")
    if not rest:
        return {key: value for key, value in body.items() if key != head}
    return {**body, head: without(rest, body[head])}


@pytest.mark.parametrize(
    ("missing", "says"),
    [
        ("status", "has no status; Okta always sends it"),
        ("_embedded", "has no _embedded.user: the answer ignored expand=user"),
        ("_embedded.user", "has no _embedded.user: the answer ignored expand=user"),
        ("_embedded.user.status", "has no _embedded.user.status; Okta always sends it"),
        ("_embedded.user.profile", "has no _embedded.user.profile; Okta always sends it"),
        ("profile", "has no profile; Okta always sends it"),
    ],
)
def test_an_app_user_missing_a_field_the_run_needs_is_refused_naming_it(missing: str, says: str) -> None:
    null = [{**APP_USER, missing: None}] if "." not in missing else []
    for shape in [without(missing), *null]:
        with pytest.raises(SourceError) as refused:
            assignment_from_app_user(shape)
        assert str(refused.value).startswith("Okta app user 00u1dnq5S0CfjlkpABCD (saml.test@example.com) " + says)


@pytest.mark.parametrize("missing", ["credentials", "credentials.userName"])
def test_an_app_user_without_a_user_name_is_refused_naming_it(missing: str) -> None:
    with pytest.raises(SourceError, match=r"^Okta app user 00u1dnq5S0CfjlkpABCD has no credentials\.userName; "):
        assignment_from_app_user(without(missing))


@pytest.mark.parametrize(
    "shape", [without("externalId"), {**APP_USER, "externalId": None}, {**APP_USER, "externalId": ""}]
)
def test_an_app_user_without_an_external_id_has_no_scim_id_stored(shape: dict[str, Any]) -> None:
    """Normal: Okta stores the SCIM id only once it provisioned the user (and never for SSO-only apps)."""
    assert assignment_from_app_user(shape) == msgspec.structs.replace(assignment_from_app_user(APP_USER), scim_id=None)


@pytest.mark.parametrize("missing", ["scope", "syncState"])
def test_an_app_user_without_scope_or_sync_state_is_read_as_not_said(missing: str) -> None:
    """Neither is read by the plan: nothing is decided on them, so their absence is no reason to stop."""
    read = assignment_from_app_user(without(missing))
    assert (read.scope, read.sync_state) == {"scope": (None, "SYNCHRONIZED"), "syncState": ("USER", None)}[missing]


def test_assignment_from_the_sdk_model_equals_the_raw_json() -> None:
    model = AppUser.from_dict(APP_USER)

    assert model.to_dict().get("externalId") is None  # why app_user_as_dict does not use to_dict()
    assert assignment_from_app_user(app_user_as_dict(model)) == assignment_from_app_user(APP_USER)


@pytest.mark.parametrize(
    ("broken", "expected"),
    [({"id": None}, "has no id"), ({"credentials": {}}, "has no credentials.userName")],
)
def test_app_user_without_id_or_user_name_is_refused(broken: dict[str, Any], expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        assignment_from_app_user(APP_USER | broken)


@pytest.mark.parametrize(
    ("headers", "cursor"),
    [
        ({"Link": '<https://o.okta.com/api/v1/apps/a/users?limit=2>; rel="self"'}, None),
        ({"link": '<https://o.okta.com/api/v1/apps/a/users?after=00uB&limit=2>; rel="next"'}, "00uB"),
        (
            {"LINK": '<https://o/x?limit=2>; rel="self", <https://o/x?after=00uC&expand=user&limit=2>; rel="next"'},
            "00uC",
        ),
        ({"Link": ['<https://o/x?limit=2>; rel="self"', "<https://o/x?after=00uD>; rel=next"]}, "00uD"),
        ({"Content-Type": "application/json"}, None),
    ],
)
def test_next_cursor_from_link_headers(headers: dict[str, Any], cursor: str | None) -> None:
    assert next_cursor(headers) == cursor


def test_next_link_without_cursor_is_refused() -> None:
    with pytest.raises(SourceError, match="no after cursor"):
        next_cursor({"Link": '<https://o/x?limit=2>; rel="next"'})


# -- real recorded Okta answers -----------------------------------------------


def recorded_folder() -> Path:
    override = os.environ.get("RECONCILER_OKTA_RECORDED")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "shared" / "okta-recorded"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def recorded_app_users(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every AppUser object in a 2xx answer to GET/POST .../apps/{id}/users[/{userId}]."""
    for cassette in sorted(folder.glob("*.yaml")):
        for interaction in yaml.safe_load(cassette.read_text())["interactions"]:
            request, response = interaction["request"], interaction["response"]
            if request["method"] not in ("GET", "POST") or not APP_USER_URI.search(request["uri"]):
                continue
            if not 200 <= response["status"]["code"] < 300:
                continue
            body = response["body"]["string"]
            payload = json.loads(body.decode() if isinstance(body, bytes) else body)
            for app_user in payload if isinstance(payload, list) else [payload]:
                yield f"{cassette.name} {request['method']} {request['uri']}", app_user


def test_recorded_okta_app_users_parse() -> None:
    folder = recorded_folder()
    if not folder.is_dir():
        if in_ci():
            pytest.fail(f"recorded Okta responses missing at {folder} (set RECONCILER_OKTA_RECORDED)")
        pytest.skip(f"recorded Okta responses not found at {folder}")

    parsed = 0
    for where, recorded in recorded_app_users(folder):
        with pytest.raises(SourceError, match="has no _embedded.user: the answer ignored expand=user"):
            assignment_from_app_user(recorded)  # recorded without expand=user: never read as an ACTIVE user
        app_user = {**recorded, "_embedded": {"user": {"id": recorded["id"], "status": "ACTIVE", "profile": {}}}}
        assignment = assignment_from_app_user(app_user)
        assert assignment.okta_user_id == app_user["id"], where
        assert assignment.user_name == app_user["credentials"]["userName"], where
        assert assignment.scope == app_user["scope"], where
        assert assignment_from_app_user(app_user_as_dict(AppUser.from_dict(app_user))) == assignment, where
        parsed += 1

    assert parsed >= 5


def _pem(private_key: rsa.RSAPrivateKey) -> str:
    """PKCS#1 ("BEGIN RSA PRIVATE KEY"); the emulator hands out PKCS#8, so both forms are exercised."""
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


async def test_listing_outside_a_context_manager_closes_its_session(org: Org) -> None:
    org.emulator.add_assigned_users(org.app_id, 2)
    source = org.source()

    assert len(await source.list_assignments()) == 2
    assert len(await source.list_assignments()) == 2
    assert not source.connection.is_open
