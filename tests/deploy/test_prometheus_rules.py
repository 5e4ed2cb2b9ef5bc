"""The alert rules of deploy/prometheus: promtool accepts them, and its unit tests fire each alert from synthetic
series and keep each quiet when the series are healthy (deploy/prometheus/alerts_test.yml)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.deploy.promtool import promtool

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_rules() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


def test_each_alert_fires_from_synthetic_series_and_stays_quiet_when_healthy() -> None:
    tested = _promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    alerts = {rule["alert"] for group in _load("alerts.yml")["groups"] for rule in group["rules"]}
    firing, quiet = set(), set()
    for case in _load("alerts_test.yml")["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == alerts, f"alerts no unit test fires: {sorted(alerts - firing)}"
    assert quiet == alerts, f"alerts no unit test shows quiet: {sorted(alerts - quiet)}"


def test_each_alert_has_a_summary_a_description_and_a_runbook_section() -> None:
    runbook = (RULES.parents[1] / "docs" / "alerts.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    for group in _load("alerts.yml")["groups"]:
        for rule in group["rules"]:
            annotations = rule["annotations"]
            assert annotations["summary"] and annotations["description"], rule["alert"]
            assert annotations["runbook"] == f"docs/alerts.md#{rule['alert'].lower()}"
            assert rule["alert"].lower() in anchors, f"docs/alerts.md has no section for {rule['alert']}"


def _load(name: str) -> dict:
    return yaml.safe_load((RULES / name).read_text())
