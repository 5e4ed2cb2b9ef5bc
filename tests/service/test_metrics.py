"""Prometheus /metrics and /healthz, scraped over HTTP from a service that ran with drift."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.config import load_config
from reconciler.hooks import http_observer, observe_http
from reconciler.models.runs import RunStatus
from reconciler.service.health import Health
from reconciler.service.metrics import ServiceMetrics
from reconciler.service.single import Service
from reconciler.store import Store
from reconciler.testing.scim_server import free_loopback_port
from tests.conftest import Okta, all_users, provision
from tests.service.test_service import eventually, running, service_config


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float | None:
    return scraped.get((name, tuple(sorted(labels.items()))))


async def test_metrics_and_health_after_a_run_with_drift(
    tmp_path: Path, okta: Okta, scim_url: str, platform: httpx.Client
) -> None:
    """3 users to create, 1 to deactivate, a group to push; then /healthz goes stale 3 intervals on."""
    people = okta.emulator.add_assigned_users(okta.app_id, 5)
    provision(okta, platform, [p.id for p in people[:2]])
    okta.emulator.unassign_user(okta.app_id, people[1].id)
    group = okta.emulator.create_group("Engineering")
    okta.emulator.add_group_member(group.id, people[0].id)
    port = free_loopback_port()
    listen, groups = f"127.0.0.1:{port}", f'[groups]\npush = ["{group.id}"]\n'
    config = load_config(service_config(tmp_path, okta, scim_url, interval="1h", metrics_listen=listen, extra=groups))
    skew = [0.0]
    with Store(config.store.url) as store:
        service = Service(config, store, environ={}, clock=lambda: time.time() + skew[0])
        async with running(service), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await eventually(lambda: service.last_outcome is not None, 20, "the first run")
            assert service.metrics_server is not None
            assert service.metrics_server.addresses == [("127.0.0.1", port)]
            response = await http.get("/metrics")
            health = await http.get("/healthz")
            skew[0] = 3 * 3600 + 60
            stale = await http.get("/healthz")
            assert (await http.get("/nothing")).status_code == 404
    assert service.last_outcome.status is RunStatus.SUCCEEDED
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    scraped = samples(response.text)

    assert value(scraped, "reconciler_drift", kind="create") == 3
    assert value(scraped, "reconciler_drift", kind="deactivate") == 1
    assert value(scraped, "reconciler_drift", kind="update") == 0
    assert value(scraped, "reconciler_in_sync_users") == 1
    assert value(scraped, "reconciler_actions_total", kind="create", outcome="succeeded") == 3
    assert value(scraped, "reconciler_actions_total", kind="deactivate", outcome="succeeded") == 1
    assert value(scraped, "reconciler_group_drift", kind="create_group") == 1
    assert value(scraped, "reconciler_group_drift", kind="remove_members") == 0
    assert value(scraped, "reconciler_group_actions_total", kind="create_group", outcome="succeeded") == 1
    assert value(scraped, "reconciler_runs_total", status="succeeded") == 1
    assert value(scraped, "reconciler_runs_total", status="failed") == 0
    assert value(scraped, "reconciler_run_duration_seconds_count") == 1
    last_success = value(scraped, "reconciler_last_success_timestamp_seconds")
    assert last_success is not None and abs(last_success - time.time()) < 60
    assert value(scraped, "reconciler_quarantined") == 0
    okta_ok = value(scraped, "reconciler_http_requests_total", service="okta", status="200")
    assert okta_ok is not None and okta_ok >= 1
    scim = {labels: n for (name, labels), n in scraped.items() if name == "reconciler_http_requests_total"}
    scim_statuses = {dict(labels)["status"] for labels in scim if dict(labels)["service"] == "scim"}
    assert {"200", "201"} <= scim_statuses  # the listings, and the POSTs of three users and one group
    assert sum(n for labels, n in scim.items() if dict(labels) == {"service": "scim", "status": "201"}) == 4
    assert len([u for u in all_users(platform) if u["active"]]) == 4

    assert health.status_code == 200 and health.text.startswith("ok: last successful run ended")
    assert stale.status_code == 503
    assert stale.text.startswith("stale: last successful run ended 3 h ago (")
    assert stale.text.endswith(", more than 3 x the 1 h interval\n")


async def test_a_taken_metrics_address_stops_the_service_before_ready(
    tmp_path: Path, okta: Okta, scim_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_loopback_port()
    config = load_config(service_config(tmp_path, okta, scim_url, interval="1h", metrics_listen=f"127.0.0.1:{port}"))
    with Store(config.store.url) as store:
        first = Service(config, store, environ={})
        async with running(first):
            await eventually(lambda: first.metrics_server is not None, 5, "the first metrics server")
            second = Service(config, store, environ={})
            with caplog.at_level(logging.ERROR, "reconciler.service"):
                assert await second.run() == 1
    assert f"cannot serve metrics on 127.0.0.1:{port} (metrics.listen)" in caplog.text


def test_health_counts_from_the_start_until_a_run_succeeds() -> None:
    now = [1000.0]
    health = Health(interval_s=60, started_at=1000.0, clock=lambda: now[0])
    assert health.check() == (True, "ok: no successful run yet; the service started 0 s ago")
    now[0] = 1000 + 181
    healthy, why = health.check()
    assert (healthy, why) == (
        False,
        "stale: no successful run yet; the service started 3 min ago, more than 3 x the 60 s interval",
    )
    health.last_success_at = 1170.0
    assert health.check()[0]
    now[0] = 1170 + 180
    assert health.check()[0]
    now[0] = 1170 + 181
    assert not health.check()[0]


def test_http_requests_are_counted_only_while_observed() -> None:
    metrics = ServiceMetrics()
    observe_http("okta", 200)
    with http_observer(metrics.observe_http):
        observe_http("okta", 200)
        observe_http("scim", 429)
        observe_http("scim", None)
    observe_http("scim", 500)
    scraped = samples(metrics.render().decode())
    assert value(scraped, "reconciler_http_requests_total", service="okta", status="200") == 1
    assert value(scraped, "reconciler_http_requests_total", service="scim", status="429") == 1
    assert value(scraped, "reconciler_http_requests_total", service="scim", status="error") == 1
    assert value(scraped, "reconciler_http_requests_total", service="scim", status="500") is None
