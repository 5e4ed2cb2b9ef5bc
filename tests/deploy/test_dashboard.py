"""The Grafana dashboard of deploy/grafana: the committed JSON is what its generator writes, with the variables
and panels an operator looks for."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

GRAFANA = Path(__file__).parents[2] / "deploy" / "grafana"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboard_build", GRAFANA / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_exprs() -> list[str]:
    board = json.loads((GRAFANA / "okta-reconciler.json").read_text())
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def test_the_committed_dashboard_is_what_the_generator_writes() -> None:
    assert (GRAFANA / "okta-reconciler.json").read_text() == generator().dashboard_json(), (
        "deploy/grafana/okta-reconciler.json is stale: run `make dashboards`"
    )


def test_the_dashboard_has_a_tenant_and_a_datasource_variable_and_the_panels() -> None:
    board = json.loads((GRAFANA / "okta-reconciler.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    tenant = variables["tenant"]
    assert tenant["includeAll"] and tenant["allValue"] == ".*"  # matches one target's series, which have no tenant
    titles = {panel["title"] for panel in board["panels"]}
    for wanted in (
        "Run outcomes",
        "Drift by kind",
        "Actions applied and failed",
        "Safety stops",
        "Time since the last successful run, against 3 × the interval",
        "Time to repair",
        "Okta rate budget left",
        "429 answers",
        "HTTP latency per side",
        "Lease holders per replica",
    ):
        assert wanted in titles
    exprs = dashboard_exprs()
    per_tenant = [e for e in exprs if "reconciler_tenant_" in e or "reconciler_drift" in e]
    assert per_tenant and all('tenant=~"$tenant"' in e for e in per_tenant)
