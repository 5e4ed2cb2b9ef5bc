"""Real components for the tests: scim2-server and the Okta emulator, both on 127.0.0.1.

Also the Hypothesis profiles: ``default`` for ``make test`` and a bare ``pytest``, ``full`` for
``make test-slow`` (``HYPOTHESIS_PROFILE=full``, or ``--hypothesis-profile=full``).
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings

from reconciler.net.retries import RetryPolicy
from reconciler.store import Store
from reconciler.testing.okta import OktaEmulator, okta_emulator_in_thread
from reconciler.testing.scenario import write_local_config
from reconciler.testing.scim_server import RunningScimServer, run_scim2_server
from tests.support.django_peer_server import DjangoScimServer, run_django_scim_server
from tests.support.postgres import BACKENDS, database_url

OKTA_TOKEN = "okta-api-token-7c1e5a9d3f0b42e8"
FAST_RETRIES = RetryPolicy(attempts=3, backoff_multiplier_s=0.01, max_backoff_s=0.05, jitter_s=0.01)
"""The shared retry policy made quick, with 3 attempts, for tests that go through Okta's retries."""
OKTA_RETRIES = "reconciler.okta.connection.RETRIES"
SCIM_TOKEN = "scim-bearer-token-4b8f2d6a0e1c9735"
"""Distinctive values, so that a test can prove they leak nowhere."""


# -- Hypothesis: the profile decides how many examples ------------------------------------------------

settings.register_profile(
    "default",
    max_examples=50,
    deadline=None,  # a wall-clock bound per example fails on a loaded machine, not on a bug
    suppress_health_check=[HealthCheck.too_slow],  # likewise: generation is slow when the cores are busy
    print_blob=True,  # a failure prints @reproduce_failure(...), so it reproduces on any machine
)
settings.register_profile("full", settings.get_profile("default"), max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def examples(weight: int) -> settings:
    """Settings for a property test that needs ``weight`` times the profile's examples (a wider input space).

    The profile keeps the say: ``full`` gives ``weight`` × 100 examples, ``default`` half as many.
    Call it in the decorator: test modules are imported after this module loaded the profile.
    """
    return settings(max_examples=weight * settings.default.max_examples)


@pytest.fixture(scope="session")
def scim_server() -> Iterator[RunningScimServer]:
    """One scim2-server for the session; each test gets a tenant of its own (see ``scim_url``)."""
    with run_scim2_server(SCIM_TOKEN, ["--dynamic-tenants"]) as server:
        yield server


@pytest.fixture
def scim_url(scim_server: RunningScimServer) -> str:
    """The base URL of a fresh, empty SCIM tenant."""
    return fresh_tenant(scim_server)


def fresh_tenant(scim_server: RunningScimServer) -> str:
    return scim_server.base_url.removesuffix("/v2") + f"/t{uuid.uuid4().hex}/v2"


@pytest.fixture(scope="session")
def django_scim_server() -> Iterator[DjangoScimServer]:
    """One django-scim2 peer (tests/support/django_peer) for the session; ``reset()`` empties it for each test."""
    with run_django_scim_server(SCIM_TOKEN) as server:
        yield server


PEERS = ("scim2-server", "django-scim2")
"""Independent SCIM servers that the scenarios of tests/scim/test_peers.py (and the end-to-end suite) run on."""


@pytest.fixture(params=PEERS)
def peer_url(request: pytest.FixtureRequest) -> str:
    """The base URL of an empty user store on each peer server in turn."""
    return empty_user_store(request, request.param)


def empty_user_store(request: pytest.FixtureRequest, peer: str) -> str:
    """The base URL of an empty user store on ``peer`` (one of PEERS), for a fixture of any scope.

    The django peer is started on first use only, and emptied for each caller.
    """
    if peer == "django-scim2":
        server = request.getfixturevalue("django_scim_server")
        server.reset()
        return str(server.base_url)
    return fresh_tenant(request.getfixturevalue("scim_server"))


@pytest.fixture
def platform(scim_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client on the tenant, to seed it and to look at it as a person would."""
    with httpx.Client(base_url=scim_url, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as client:
        yield client


@dataclass
class Okta:
    emulator: OktaEmulator
    org_url: str
    app_id: str


@pytest.fixture
def okta() -> Iterator[Okta]:
    """The Okta emulator, served from its own thread, with one SCIM app."""
    emulator = OktaEmulator(seed=11, api_tokens=[OKTA_TOKEN])
    app = emulator.create_app()
    with okta_emulator_in_thread(emulator) as org_url:
        yield Okta(emulator, org_url, app.id)


@pytest.fixture
def config_file(tmp_path: Path, okta: Okta, scim_url: str) -> Path:
    """A config file for the emulator and the SCIM tenant, with a SQLite store in tmp_path."""
    return write_local_config(tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN)


def all_users(platform: httpx.Client) -> list[dict]:
    """Every user of the tenant, read the simple way (one big page)."""
    response = platform.get("/Users", params={"startIndex": 1, "count": 1000})
    response.raise_for_status()
    return list(response.json().get("Resources", []))


def provision(okta: Okta, platform: httpx.Client, user_ids: list[str]) -> dict[str, str]:
    """Push users to the platform as Okta would, and record the SCIM ids in Okta; returns okta id → SCIM id."""
    scim_ids = {}
    for user_id in user_ids:
        profile = okta.emulator.user(user_id).profile
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": profile["login"],
            "name": {"givenName": profile["firstName"], "familyName": profile["lastName"]},
            "emails": [{"value": profile["email"], "type": "work", "primary": True}],
            "displayName": profile.get("displayName"),
            "locale": profile.get("locale"),
            "externalId": user_id,
            "active": True,
        }
        scim_ids[user_id] = platform.post("/Users", json=body).raise_for_status().json()["id"]
        okta.emulator.mark_provisioned(okta.app_id, user_id, scim_ids[user_id])
    return scim_ids


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A throwaway PostgreSQL server on 127.0.0.1 (tests.support.postgres.PostgresServer); in CI it must start."""
    from tests.support.postgres import postgres_for_session

    yield from postgres_for_session()


@pytest.fixture
def chromium(tmp_path: Path) -> object:
    """Headless Chromium with a fresh profile (tests.support.chromium.Chromium); in CI it must be installed."""
    from tests.support.chromium import chromium_for_test

    return chromium_for_test(tmp_path)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store database: a SQLite file, then a scratch PostgreSQL database."""
    yield from database_url(request, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cpu_bound tests first, in their order, then the rest in theirs.

    Started last, such a test ends the run alone on one core. ``make test``'s workers (``--dist worksteal``)
    each start on an even, contiguous share of this order, so the first worker takes these one after another
    while the others' shares and the steals overlap them.
    """
    items.sort(key=lambda item: item.get_closest_marker("cpu_bound") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what importing and collecting made (~220,000 objects, kept for the session) out of the collector's reach.

    Otherwise every full GC pass of a test process walks them all: ~0.1 s of CPU each (0.2 s before the SDK's
    whole client was imported lazily), up to 0.8 s of wall time seen on a busy machine, a stall that lands in
    the middle of whatever the test is timing. Garbage is collected first; what is frozen lives until the
    process ends anyway.
    """
    gc.collect()
    gc.freeze()
