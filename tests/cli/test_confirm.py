"""Plan, confirm, apply: a live run on a terminal asks before its first write; off a terminal it does not.

The terminal is a real pseudo-terminal (pexpect), the run a real ``python -m reconciler`` process against the
Okta emulator and scim2-server.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import httpx
import pexpect
import pytest

from reconciler.cli.exits import EXIT_DECLINED, EXIT_OK, EXIT_USAGE
from tests.conftest import Okta, all_users
from tests.support.cli_runner import reconcile, reconcile_process

QUESTION = "Only 'yes' will be accepted to approve."
PROMPT_TIMEOUT_S = 60  # a cold `python -m reconciler` imports the okta SDK (seconds on a busy machine)


def _on_a_terminal(config_file: Path, *args: str) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k != "RECONCILER_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    env["COLUMNS"], env["NO_COLOR"] = "200", "1"
    return pexpect.spawn(
        sys.executable,
        ["-m", "reconciler", "--config", str(config_file), *args],
        env=env,
        encoding="utf-8",
        timeout=PROMPT_TIMEOUT_S,
        dimensions=(50, 200),
    )


_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _plain(shown: str) -> str:
    """What was printed, without the terminal's style codes (bold stays on a terminal with NO_COLOR)."""
    return _TERMINAL_CODES.sub("", shown)


def _finished(child: pexpect.spawn) -> tuple[int, str]:
    """Its exit status once it ends, and what it printed after the question."""
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, _plain(child.before)


def _latest_run(config_file: Path) -> dict:
    run_id = reconcile("--config", config_file, "history", "--output", "json").json()[0]["run_id"]
    return reconcile("--config", config_file, "show", str(run_id), "--output", "json").json()


def test_yes_on_a_terminal_applies_the_plan_it_showed(okta: Okta, config_file: Path, platform: httpx.Client) -> None:
    users = okta.emulator.add_assigned_users(okta.app_id, 3)
    child = _on_a_terminal(config_file)
    child.expect_exact(QUESTION)
    shown = _plain(child.before)
    assert "CREATE (3)" in shown and "Do you want to perform these actions?" in shown
    assert all(user.profile["login"] in shown for user in users)
    assert "3 write(s) will be sent" in shown
    assert all_users(platform) == [], "nothing is written before the answer"
    child.expect_exact("Enter a value:")
    child.sendline("yes")
    code, after = _finished(child)
    assert code == EXIT_OK, after
    assert "Applied 3 action(s), 0 failed." in after
    assert "CREATE (3)" not in after, "the plan is shown once, before the question"
    assert len(all_users(platform)) == 3
    assert _latest_run(config_file)["status"] == "succeeded"


@pytest.mark.parametrize("answer", ["no", "y", "eof", "ctrl-c"])
def test_anything_but_yes_applies_nothing(okta: Okta, config_file: Path, platform: httpx.Client, answer: str) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    child = _on_a_terminal(config_file)
    child.expect_exact("Enter a value:")
    if answer == "eof":
        child.sendeof()
    elif answer == "ctrl-c":
        child.sendintr()
    else:
        child.sendline(answer)
    code, after = _finished(child)
    assert code == EXIT_DECLINED, after
    assert "Apply cancelled" in after and "nothing was written" in after
    assert all_users(platform) == []
    run = _latest_run(config_file)
    assert run["mode"] == "apply" and run["status"] == "declined"
    assert {a["status"] for a in run["actions"]} == {"skipped"}
    assert all("declined" in a["reason"] or "declined" in (a["error"] or "") for a in run["actions"]), run["actions"]


def test_auto_approve_on_a_terminal_asks_nothing(okta: Okta, config_file: Path, platform: httpx.Client) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    code, shown = _finished(_on_a_terminal(config_file, "--auto-approve"))
    assert code == EXIT_OK, shown
    assert QUESTION not in shown
    assert len(all_users(platform)) == 2


def test_off_a_terminal_the_run_applies_without_asking(okta: Okta, config_file: Path, platform: httpx.Client) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    applied = reconcile_process("--config", config_file)  # stdin /dev/null, stdout a pipe: a script, a timer
    assert applied.code == EXIT_OK, applied.stderr
    assert QUESTION not in applied.stdout + applied.stderr
    assert "Applied 2 action(s), 0 failed." in applied.stdout
    assert len(all_users(platform)) == 2


def test_yes_with_dry_run_is_refused(config_file: Path) -> None:
    refused = reconcile("--config", config_file, "--dry-run", "--yes")
    assert refused.code == EXIT_USAGE
    assert "--yes approves writes: a --dry-run writes nothing" in refused.stderr


def test_help_says_what_running_with_no_command_does() -> None:
    shown = reconcile("--help").stdout
    assert "With no COMMAND, reconcile runs once" in shown
    assert "--auto-approve" in shown and "without a terminal" in shown
