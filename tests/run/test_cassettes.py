"""vcrpy cassettes: a dry-run conversation is GETs only, and no cassette holds a credential."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from reconciler.config import load_config
from reconciler.run.reconcile import reconcile
from reconciler.store import Store
from reconciler.testing.scenario import write_local_config
from tests.support.cassette_scenario import (
    CASSETTES,
    DRY_RUN_CASSETTE,
    EXPECTED_SUMMARY,
    OKTA_TOKEN,
    SCIM_TOKEN,
    recorded_dry_run,
    recorder,
)

CREDENTIAL = re.compile(r"(?i)\b(SSWS|Bearer)\s+[A-Za-z0-9._~+/=-]{12,}")


def _interactions(cassette: Path) -> list[dict]:
    return list(yaml.safe_load(cassette.read_text())["interactions"])


def _assert_no_credentials(cassette: Path) -> None:
    text = cassette.read_text()
    assert not CREDENTIAL.search(text), f"{cassette.name} holds a credential"
    assert OKTA_TOKEN not in text and SCIM_TOKEN not in text
    for interaction in _interactions(cassette):
        headers = {name.lower() for name in interaction["request"]["headers"]}
        assert "authorization" not in headers, f"{cassette.name}: {interaction['request']['uri']}"


def test_a_recorded_dry_run_is_only_gets_and_carries_no_credential(tmp_path: Path) -> None:
    cassette = tmp_path / "dry_run.yaml"
    with recorded_dry_run(cassette) as outcome:
        assert outcome.plan is not None and outcome.plan.summary() == EXPECTED_SUMMARY
    interactions = _interactions(cassette)
    assert {i["request"]["method"] for i in interactions} == {"GET"}
    paths = {urlsplit(i["request"]["uri"]).path for i in interactions}
    assert any(p.endswith("/users") and "/api/v1/apps/" in p for p in paths), "Okta was read"
    assert any(p.endswith("/v2/Users") for p in paths), "the platform was read"
    _assert_no_credentials(cassette)


@pytest.mark.parametrize("cassette", sorted(CASSETTES.glob("*.yaml")), ids=lambda p: p.name)
def test_committed_cassettes_carry_no_credential(cassette: Path) -> None:
    _assert_no_credentials(cassette)


def test_committed_cassettes_exist() -> None:
    assert DRY_RUN_CASSETTE.exists(), "re-record with `make cassettes`"


def test_replaying_the_committed_dry_run_gives_the_same_plan(tmp_path: Path) -> None:
    """The whole pipeline on a recorded conversation, offline: no server runs here."""
    uris = [urlsplit(i["request"]["uri"]) for i in _interactions(DRY_RUN_CASSETTE)]
    okta = next(u for u in uris if u.path.startswith("/api/v1/apps/"))
    scim = next(u for u in uris if u.path.endswith("/Users"))
    app_id = okta.path.split("/")[4]
    config = load_config(
        write_local_config(
            tmp_path, f"http://{okta.netloc}", app_id, f"http://{scim.netloc}/v2", "any-okta-token", "any-scim-token"
        )
    )
    with Store(config.store.url) as store, recorder(record_mode="none").use_cassette(str(DRY_RUN_CASSETTE)):
        outcome = asyncio.run(reconcile(config, store, dry_run=True))
    assert outcome.error is None
    assert outcome.plan is not None and outcome.plan.summary() == EXPECTED_SUMMARY
