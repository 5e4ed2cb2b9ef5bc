"""``reconcile report`` refuses what it cannot report on, with a message that says why and what to do, a
non-zero exit, and never a file half-written: an empty store, a period without runs, a tenant that does not
exist, options that make no period, and an ``--out`` it cannot write."""

from __future__ import annotations

import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.testing.scenario import write_local_config
from reconciler.testing.scim_server import RunningScimServer
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.report.conftest import Evidence
from tests.support.cli_runner import reconcile
from tests.support.fleet_lab import fleet_lab

FILE_SIZE_LIMIT = 48 * 1024
"""Above SQLite's 32 KiB shared-memory file (a reader's), below the evidence page (about 70 KiB)."""


def test_a_store_that_does_not_exist_yet_is_named_and_not_created(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = reconcile("--config", config_file, "report", "--out", out)

    assert result.code == 1 and "no store at" in result.stderr and "reconcile --config" in result.stderr
    assert not out.exists() and not (config_file.parent / "reconciler.db").exists()


def test_a_target_the_store_never_ran_is_named(evidence: Evidence, okta: Okta, tmp_path: Path) -> None:
    other_app = okta.emulator.create_app().id
    shared_store = f'[store]\nurl = "{evidence.config.store.url}"\n'
    other = write_local_config(tmp_path / "other", okta.org_url, other_app, "http://127.0.0.1:9/v2", "t", "t")
    other.write_text(other.read_text().split("[store]")[0] + shared_store)
    out = tmp_path / "report.html"

    result = reconcile("--config", other, "report", "--out", out)

    assert result.code == 1 and "has no run of this configuration's target yet" in result.stderr
    assert "reconcile --dry-run" in result.stderr and not out.exists()


def test_a_period_without_runs_says_when_the_runs_were(evidence: Evidence, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = reconcile(
        "--config", evidence.config_file, "report", "--from", "2020-01-01", "--to", "2020-01-31", "--out", out
    )

    assert result.code == 1 and not out.exists()
    assert "no run of this configuration's target started between 2020-01-01 00:00 UTC and 2020-02-01" in result.stderr
    assert re.search(r"its \d+ run\(s\) started between \d{4}-\d\d-\d\d \d\d:\d\d UTC and ", result.stderr)
    assert "--since or --from/--to" in result.stderr


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--since", "0d"), "--since: expected a number and a unit"),
        (("--since", "a month"), "--since: expected a number and a unit"),
        (("--from", "2026-13-01"), "--from: expected a date (2026-11-01)"),
        (("--to", "yesterday"), "--to: expected a date"),
        (("--since", "7d", "--from", "2026-11-01"), "--since and --from both set the start"),
        (("--from", "2026-11-30", "--to", "2026-11-01"), "--from (2026-11-30 00:00 UTC) must be before --to"),
        (("--format", "pdf"), "--format: invalid choice: 'pdf'"),
        (("--max-actions", "0"), "--max-actions"),
    ],
)
def test_options_that_make_no_period_are_refused_by_name(
    evidence: Evidence, tmp_path: Path, options: tuple[str, ...], said: str
) -> None:
    result = reconcile("--config", evidence.config_file, "report", *options, "--out", tmp_path / "r.html")

    assert result.code == 64 and said in result.stderr, result.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_tenant_that_does_not_exist_is_refused_naming_the_tenants(
    tmp_path: Path, scim_server: RunningScimServer
) -> None:
    with fleet_lab(tmp_path, scim_server, f"sqlite:///{tmp_path / 'fleet.db'}", tenants=2, users=2) as lab:
        assert reconcile("--config", lab.config_path, "--tenant", "tenant-01", "--dry-run", env=lab.environment).code
        unknown = reconcile("--config", lab.config_path, "--tenant", "tenant-09", "report", "--out", tmp_path / "r")
        several = reconcile("--config", lab.config_path, "report", "--out", tmp_path / "r")
        chosen = reconcile("--config", lab.config_path, "--tenant", "tenant-01", "report", "--out", tmp_path / "r")

    assert unknown.code == 78 and 'no tenant "tenant-09"' in unknown.stderr and "tenant-01, tenant-02" in unknown.stderr
    assert several.code == 64 and "pass --tenant NAME (one of: tenant-01, tenant-02)" in several.stderr
    assert chosen.code == 0, chosen.stderr
    assert 'data-field="tenant">tenant-01<' in (tmp_path / "r").read_text(), "the chosen tenant's report"


def test_an_out_that_cannot_be_written_is_named_before_any_work(evidence: Evidence, tmp_path: Path) -> None:
    missing = reconcile("--config", evidence.config_file, "report", "--out", tmp_path / "no" / "such" / "r.html")
    folder = reconcile("--config", evidence.config_file, "report", "--out", tmp_path)

    assert missing.code == 1 and f"cannot write --out {tmp_path}/no/such/r.html" in missing.stderr
    assert "there is no directory" in missing.stderr and not (tmp_path / "no").exists()
    assert folder.code == 1 and "it is a directory: give a file name" in folder.stderr


def test_a_write_that_fails_half_way_leaves_the_previous_report_whole(evidence: Evidence, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    previous = "<html>the report of last month</html>\n"
    out.write_text(previous)
    store = Path(evidence.config.store.url.removeprefix("sqlite:///"))
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(store, copy / "reconciler.db")
    config = copy / "config.toml"
    config.write_text(evidence.config_file.read_text().replace(str(store), str(copy / "reconciler.db")))
    for name in ("okta.token", "scim.token"):
        shutil.copy(evidence.config_file.parent / name, copy / name)

    page = reconcile("--config", config, "report", "--out", "-").stdout
    assert len(page.encode()) > FILE_SIZE_LIMIT, "the page must be larger than what the process may write"

    def small_files() -> None:  # a file cannot grow past the limit: the store's reads fit, the page does not
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))

    command = [sys.executable, "-m", "reconciler", "--config", str(config), "report", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, preexec_fn=small_files)

    assert result.returncode == 1, result.stderr
    assert f"cannot write --out {out}: File too large" in result.stderr
    assert out.read_text() == previous, "the previous report is whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "report.html"], "no temporary file left"
    assert OKTA_TOKEN not in result.stderr and SCIM_TOKEN not in result.stderr
