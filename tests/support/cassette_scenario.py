"""A small drifted scenario, recorded with vcrpy as a dry-run conversation.

``make cassettes`` (``python -m tests.support.cassette_scenario``) re-records
``cassettes/dry_run.yaml``; ``tests/run/test_cassettes.py`` replays it offline and
checks that every cassette is free of credentials.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import vcr

from reconciler.config import load_config
from reconciler.run.outcome import RunOutcome
from reconciler.run.reconcile import reconcile
from reconciler.store import Store
from reconciler.testing.okta import OktaEmulator, okta_emulator_in_thread
from reconciler.testing.scenario import push_like_okta, write_local_config
from reconciler.testing.scim_server import run_scim2_server

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
DRY_RUN_CASSETTE = CASSETTES / "dry_run.yaml"
OKTA_TOKEN = "cassette-okta-token-0d9e8f7a6b5c"
SCIM_TOKEN = "cassette-scim-token-1a2b3c4d5e6f"
EXPECTED_SUMMARY = {
    "create": 2,
    "update": 1,
    "deactivate": 1,
    "reactivate": 0,
    "link": 0,
    "conflict": 0,
    "unmanaged": 1,
    "in_sync": 1,
}


def recorder(record_mode: str = "all") -> vcr.VCR:
    """vcrpy set up so that no credential reaches a cassette."""
    return vcr.VCR(
        record_mode=record_mode,
        filter_headers=["authorization", "cookie", "set-cookie"],
        filter_post_data_parameters=["client_assertion"],
        match_on=["method", "scheme", "host", "port", "path", "query"],
        decode_compressed_response=True,
    )


async def _seed(emulator: OktaEmulator, app_id: str, scim_url: str) -> None:
    people = emulator.add_assigned_users(app_id, 5)
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    async with httpx.AsyncClient(base_url=scim_url, headers=headers) as client:
        for person in people[2:]:
            emulator.mark_provisioned(app_id, person.id, await push_like_okta(client, person))
        emulator.set_app_user(app_id, people[2].id, profile={"displayName": "Changed In Okta"})
        emulator.unassign_user(app_id, people[3].id)
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "svc@example.com"}
        (await client.post("/Users", json=body)).raise_for_status()


@contextmanager
def recorded_dry_run(cassette: Path) -> Iterator[RunOutcome]:
    """Build the scenario on live local servers and record a dry-run of it into ``cassette``."""
    emulator = OktaEmulator(seed=3, api_tokens=[OKTA_TOKEN])
    app = emulator.create_app()
    with (
        run_scim2_server(SCIM_TOKEN) as scim,
        okta_emulator_in_thread(emulator) as org_url,
        tempfile.TemporaryDirectory() as state,
    ):
        asyncio.run(_seed(emulator, app.id, scim.base_url))
        config = load_config(write_local_config(Path(state), org_url, app.id, scim.base_url, OKTA_TOKEN, SCIM_TOKEN))
        cassette.unlink(missing_ok=True)
        with Store(config.store.url) as store, recorder().use_cassette(str(cassette)):
            yield asyncio.run(reconcile(config, store, dry_run=True))


if __name__ == "__main__":
    with recorded_dry_run(DRY_RUN_CASSETTE) as outcome:
        assert outcome.plan is not None and outcome.plan.summary() == EXPECTED_SUMMARY, outcome
    print(f"recorded {DRY_RUN_CASSETTE}")
