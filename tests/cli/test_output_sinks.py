"""Output off a terminal (a file, a pipe): whole lines, nothing cut at 80 columns, no trailing space."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from reconciler.config import fingerprint, load_config
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users
from tests.support.cli_runner import reconcile, reconcile_process

LONG = 200


def _long(prefix: str, suffix: str = "") -> str:
    return (prefix + "x" * LONG)[: LONG - len(suffix)] + suffix


def _reconcile_into_file(out: Path, *args: str | Path) -> int:
    """``reconcile ARGS > out``, as a shell runs it: stdout is a regular file."""
    environment = {k: v for k, v in os.environ.items() if k != "RECONCILER_CONFIG"}
    with out.open("w", encoding="utf-8") as stdout:
        completed = subprocess.run(
            [sys.executable, "-m", "reconciler", *map(str, args)],
            stdout=stdout,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=environment,
            timeout=120,
        )
    assert not completed.stderr.strip() or completed.returncode in (0, 2), completed.stderr
    return completed.returncode


def _assert_whole_lines(text: str, wanted: list[str]) -> None:
    lines = text.splitlines()
    for line in lines:
        assert line == line.rstrip(), f"trailing space in {line!r}"
    for value in wanted:
        assert any(value in line for line in lines), f"{value[:40]}… is not whole on any one line"


def test_a_plan_in_a_file_keeps_200_character_names_and_values_whole(
    okta: Okta, config_file: Path, platform: httpx.Client, tmp_path: Path
) -> None:
    emulator = okta.emulator
    kept = emulator.create_user(login="kept@example.com", first_name="Kept", last_name="Person")
    kept_name = _long("kept-", "@example.com")
    emulator.assign_user(okta.app_id, kept.id, user_name=kept_name, profile={"displayName": _long("before-")})
    assert reconcile_process("--config", config_file).code == 0
    (platform_user,) = all_users(platform)
    new = emulator.create_user(login="new@example.com", first_name="New", last_name="Person")
    new_name, new_display = _long("new-", "@example.com"), _long("shown-")
    emulator.assign_user(okta.app_id, new.id, user_name=new_name, profile={"displayName": new_display})
    after = _long("after-")
    emulator.set_app_user(okta.app_id, kept.id, profile={"displayName": after})

    plan_txt = tmp_path / "plan.txt"
    assert _reconcile_into_file(plan_txt, "--config", config_file, "--dry-run") == 2
    plan = plan_txt.read_text(encoding="utf-8")
    wanted = [kept_name, new_name, new_display, after, _long("before-"), platform_user["id"], new.id, kept.id]
    _assert_whole_lines(plan, wanted)
    update_line = next(line for line in plan.splitlines() if kept_name in line)
    assert "update" in plan.lower() and kept.id in update_line, "one action per line, with its ids"
    assert "\x1b[" not in plan, "no terminal escapes in a file"

    history_txt = tmp_path / "history.txt"
    assert _reconcile_into_file(history_txt, "--config", config_file, "history") == 0
    history = history_txt.read_text(encoding="utf-8").splitlines()
    assert all(line == line.rstrip() for line in history)
    runs = [line for line in history if line.split() and line.split()[0].isdigit()]
    assert len(runs) == 2, "one run a line"
    assert "dry-run" in runs[0] and "drift" in runs[0] and "apply" in runs[1] and "succeeded" in runs[1]

    status_txt = tmp_path / "status.txt"
    assert _reconcile_into_file(status_txt, "--config", config_file, "status") == 0
    status = status_txt.read_text(encoding="utf-8").splitlines()
    assert all(line == line.rstrip() for line in status)
    assert sum("drift" in line for line in status) == 1, "the tenant on one line"


def test_history_says_why_a_run_failed_the_year_and_which_config_it_was_for(
    okta: Okta, config_file: Path, scim_url: str, tmp_path: Path
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 1)
    assert reconcile("--config", config_file, "--dry-run").code == 2
    store_line = next(line for line in config_file.read_text().splitlines() if line.startswith("url = "))
    other_app = okta.emulator.create_app(label="Another app")
    refused = "not-the-token-" + SCIM_TOKEN
    other = write_local_config(tmp_path / "other", okta.org_url, other_app.id, scim_url, OKTA_TOKEN, refused)
    own_store = next(line for line in other.read_text().splitlines() if line.startswith("url = "))
    other.write_text(other.read_text().replace(own_store, store_line))  # both configurations share one store
    failed = reconcile("--config", other)
    assert failed.code == 1

    history = reconcile("--config", config_file, "history")
    assert history.code == 0
    lines = history.stdout.splitlines()
    failed_line = next(line for line in lines if " failed " in line)
    drift_line = next(line for line in lines if " drift " in line)
    year = str(datetime.now(UTC).year)
    assert f"{year}-" in failed_line and f"{year}-" in drift_line, "the year is shown"
    assert "401" in failed_line, "why the run failed, on its line"
    this = fingerprint(load_config(config_file))[:8]
    assert f"{this}*" in drift_line and f"{this}*" not in failed_line, "which configuration each run was for"
    document = reconcile("--config", config_file, "history", "--output", "json").json()
    assert {run["config_fingerprint"][:8] for run in document} >= {this}
