"""``reconcile report`` on a store filled by real runs (tests/report/conftest.py): what the JSON, the CSV and the
page say is what the store holds, counted here straight from its tables."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from reconciler.config import fingerprint
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN
from tests.report.conftest import Evidence
from tests.support.cli_runner import reconcile


def report(evidence: Evidence, *args: str | Path) -> str:
    result = reconcile("--config", evidence.config_file, "report", *args)
    assert result.code == 0, result.stderr
    return result.stdout


def store_rows(evidence: Evidence, sql: str) -> list[sa.Row]:
    engine = sa.create_engine(evidence.config.store.url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), {"fp": fingerprint(evidence.config)}))
    finally:
        engine.dispose()


def test_the_json_counts_what_the_store_holds(evidence: Evidence) -> None:
    document = json.loads(report(evidence, "--format", "json", "--out", "-"))

    runs = store_rows(evidence, "SELECT id, mode, status FROM runs WHERE config_fingerprint = :fp ORDER BY id")
    summary = document["summary"]
    assert [(r["id"], r["mode"], r["status"]) for r in document["runs"]] == [tuple(r) for r in runs]
    assert summary["runs"] == len(runs) and set(evidence.runs.values()) <= {r.id for r in runs}
    assert summary["safety_stops"] == sum(r.status == "blocked" for r in runs) == 1
    assert summary["failures"] == sum(r.status in ("failed", "partial") for r in runs) == 1
    assert summary["incremental_runs"] == sum(r.mode == "incremental" for r in runs) >= 1
    assert summary["successful_runs"] == sum(r.status in ("succeeded", "drift") for r in runs)
    [(managed,)] = store_rows(
        evidence,
        "SELECT managed_count FROM runs WHERE config_fingerprint = :fp AND planned_in_sync IS NOT NULL "
        "AND mode != 'incremental' ORDER BY id DESC LIMIT 1",
    )
    last = summary["last_full_audit"]
    assert (last["run_id"], last["managed"]) == (evidence.runs["last_dry_run"], managed)
    succeeded = store_rows(
        evidence,
        "SELECT a.kind, COUNT(*) FROM actions a JOIN runs r ON r.id = a.run_id WHERE r.config_fingerprint = :fp "
        "AND r.mode != 'dry-run' AND a.status = 'succeeded' GROUP BY a.kind",
    )
    assert {k: n for k, n in summary["repaired"].items() if n} == dict(succeeded)
    assert summary["repaired"]["create"] == 20


def test_time_to_revoke_says_which_deactivations_okta_timed_and_which_were_first_detected(evidence: Evidence) -> None:
    revoke = json.loads(report(evidence, "--format", "json", "--out", "-"))["time_to_revoke"]

    by_user = {item["okta_user_id"]: item for item in revoke["revocations"]}
    assert set(by_user) == {*evidence.revoked_by_plan, evidence.revoked_by_log}
    assert revoke["count"] == 3 and (revoke["from_system_log"], revoke["from_first_detection"]) == (1, 2)
    from_log = by_user[evidence.revoked_by_log]
    assert (from_log["basis"], from_log["run_id"]) == ("system_log", evidence.runs["incremental"])
    [(published,)] = store_rows(
        evidence,
        f"SELECT okta_changed_at FROM actions WHERE okta_user_id = '{evidence.revoked_by_log}' AND kind = 'deactivate'",
    )
    assert _instant(from_log["changed_at"]) == _instant(published)
    [(plan_made_at,)] = store_rows(
        evidence, f"SELECT MIN(created_at) FROM actions WHERE run_id = {evidence.runs['plan_made']}"
    )
    for user in evidence.revoked_by_plan:  # found by the dry-run that made the plan, confirmed by its apply
        item = by_user[user]
        assert (item["basis"], item["run_id"]) == ("first_detected", evidence.runs["plan_applied"])
        assert abs((_instant(item["changed_at"]) - _instant(plan_made_at)).total_seconds()) < 1
        assert item["seconds"] == (_instant(item["confirmed_at"]) - _instant(item["changed_at"])).total_seconds()
    assert revoke["max_s"] == max(item["seconds"] for item in revoke["revocations"])
    assert sum(revoke["histogram"].values()) == 3


def test_a_saved_plan_is_shown_with_the_dry_run_that_made_it_and_who_applied_it(evidence: Evidence) -> None:
    document = json.loads(report(evidence, "--format", "json", "--out", "-"))

    [plan] = document["saved_plans"]
    [(started_by, replica)] = store_rows(
        evidence, f"SELECT started_by, replica FROM runs WHERE id = {evidence.runs['plan_applied']}"
    )
    assert (plan["run_id"], plan["plan_run_id"]) == (evidence.runs["plan_applied"], evidence.runs["plan_made"])
    assert plan["applied_by"] == started_by and started_by  # the OS user who ran `reconcile apply`
    assert plan["applied"] == 2 and plan["status"] == "succeeded"
    deactivations = document["actions"]["deactivate"]["entries"]
    sent = [e for e in deactivations if e["status"] == "succeeded"]
    assert {e["run_id"] for e in sent} == {evidence.runs["plan_applied"], evidence.runs["incremental"]}
    held = [e for e in deactivations if e["status"] == "skipped"]
    assert len(held) == 5 and {e["run_id"] for e in held} == {evidence.runs["stopped"]}
    assert all("max_deactivate" in e["error"] for e in held), "why the safety gate held them"
    assert all(e["changes"]["active"] == {"before": True, "after": False} for e in deactivations)


def test_the_csv_holds_the_same_records_as_the_json(evidence: Evidence) -> None:
    document = json.loads(report(evidence, "--format", "json", "--out", "-"))
    rows = list(csv.DictReader(io.StringIO(report(evidence, "--format", "csv", "--out", "-"))))

    records: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        records.setdefault(row["record"], []).append(row)
    assert [int(r["run_id"]) for r in records["run"]] == [r["id"] for r in document["runs"]]
    entries = [e for log in document["actions"].values() for e in log["entries"]]
    assert len(records["action"]) == len(entries) == sum(log["total"] for log in document["actions"].values())
    assert sorted(r["user_name"] for r in records["revocation"]) == sorted(
        item["user_name"] for item in document["time_to_revoke"]["revocations"]
    )
    summary = {r["field"]: r["value"] for r in records["summary"]}
    assert int(summary["runs"]) == document["summary"]["runs"]
    assert int(summary["repaired.create"]) == document["summary"]["repaired"]["create"]


def test_the_page_shows_the_stores_counts_and_no_secret(evidence: Evidence, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    said = report(evidence, "--out", out)

    page = out.read_text(encoding="utf-8")
    document = json.loads(report(evidence, "--format", "json", "--out", "-"))
    assert f"written to {out}" in said and out.stat().st_mode & 0o777 == 0o600
    for figure in ("runs", "full_audits", "incremental_runs", "successful_runs", "safety_stops", "failures"):
        assert re.search(rf'data-figure="{figure}">{document["summary"][figure]}<', page), figure
    assert page.count('data-run-row="') == document["summary"]["runs"]
    for run_id in evidence.runs.values():
        assert f'id="run-{run_id}"' in page
    assert OKTA_TOKEN not in page and SCIM_TOKEN not in page
    assert evidence.config.okta.app_id in page and evidence.config.scim.base_url in page
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    by_url = re.search(r"""url\(\s*["']?(https?:)?//""", page)
    assert "@import" not in page and not by_url, "no stylesheet or font by URL"


def _instant(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
