"""``reconcile demo --keep-running``, ``demo okta`` and ``demo serve-okta`` as a newcomer uses them: real processes.

The demo runs as a child process and stays up; the commands it prints are run against its config; Okta's side is
changed through the emulator's control endpoint and seen as drift; SIGTERM ends it with no process left behind;
and a config whose demo has ended says so instead of a bare connection error.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli_runner import reconcile

DEMO_USERS = "120"  # the fewest the demo takes: the fastest


@dataclass
class LiveDemo:
    process: subprocess.Popen[str]
    output: Path
    cwd: Path

    def text(self) -> str:
        return self.output.read_text()

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> re.Match[str]:
        """The first match of ``pattern`` in the demo's output, once it has printed it."""
        deadline = time.monotonic() + timeout_s
        while (found := re.search(pattern, self.text(), re.MULTILINE)) is None:
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited ({self.process.returncode}):\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout_s} s:\n{self.text()}")
            time.sleep(0.05)
        return found

    def children(self) -> list[int]:
        """The pids of the demo's child processes (the scim2-server)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]


def _start_demo(cwd: Path, *args: str) -> LiveDemo:
    output = cwd / "demo.out"
    environment = {k: v for k, v in os.environ.items() if k != "RECONCILER_CONFIG"}
    environment["PYTHONUNBUFFERED"] = "1"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "demo", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
            text=True,
        )
    return LiveDemo(process, output, cwd)


@pytest.fixture
def live_demo(tmp_path: Path) -> Iterator[LiveDemo]:
    demo = _start_demo(tmp_path, "--users", DEMO_USERS, "--keep-running")
    try:
        yield demo
    finally:
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait(10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _actions(config: Path) -> dict[str, str]:
    """user_name -> action kind, from a dry-run's JSON."""
    result = reconcile("--config", config, "--dry-run", "--output", "json")
    assert result.code in (0, 2), result.stderr
    return {action["user_name"]: action["kind"] for action in result.json()["actions"]}


def test_keep_running_serves_its_printed_config_takes_changes_by_hand_and_stops_cleanly(
    live_demo: LiveDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_demo.wait_for(r"^Serving until Ctrl-C")
    config = live_demo.cwd / live_demo.wait_for(r"^Config: (\S+)$").group(1)
    monkeypatch.chdir(live_demo.cwd)  # the printed commands are relative to the demo's directory

    assert reconcile("--config", config, "check").code == 0
    before = _actions(config)
    assert "create" in before.values(), "the demo leaves its drift for the newcomer to apply"
    applied = reconcile("--config", config)
    assert applied.code == 0, applied.stdout + applied.stderr
    assert "create" not in _actions(config).values()

    hired = reconcile("demo", "okta", "--config", config, "hire", "new.hire@example.com")
    assert hired.code == 0, hired.stderr
    assert "new.hire@example.com" in hired.stdout and "assigned directly" in hired.stdout
    leaver = next(name for name, kind in before.items() if kind == "update")  # pushed, so on the platform
    assert reconcile("demo", "okta", "--config", config, "deactivate", leaver).code == 0
    drift = _actions(config)
    assert drift["new.hire@example.com"] == "create"
    assert drift[leaver] == "deactivate"

    refused = reconcile("demo", "okta", "--config", config, "unassign", "nobody@example.com")
    assert refused.code == 1 and "nobody@example.com" in refused.stderr

    servers = live_demo.children()
    assert servers, "the SCIM server runs as the demo's child"
    live_demo.process.send_signal(signal.SIGTERM)
    assert live_demo.process.wait(15) == 0
    assert not [pid for pid in servers if _alive(pid)], "no scim2-server left behind"

    gone = reconcile("--config", config, "--dry-run")
    assert gone.code == 1
    assert "Okta emulator and SCIM server are gone" in gone.stderr and "demo --keep-running" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_a_plain_demo_run_says_its_servers_are_gone_when_its_state_is_used_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = _start_demo(tmp_path, "--users", DEMO_USERS)
    assert demo.process.wait(120) == 0, demo.text()
    monkeypatch.chdir(tmp_path)
    config = Path("demo-state/config.toml")
    assert reconcile("--config", config, "history").code == 0, "the store is still there to read"
    for command in (["--dry-run"], ["check"], []):
        result = reconcile("--config", config, *command)
        assert result.code == 1, (command, result.stderr)
        assert "`reconcile demo` run whose Okta emulator and SCIM server are gone" in result.stderr
        assert "demo --keep-running" in result.stderr
    okta = reconcile("demo", "okta", "--config", config, "users")
    assert okta.code == 1 and "does not answer" in okta.stderr


def test_serve_okta_serves_the_emulator_alone_with_its_token_and_control_endpoint(tmp_path: Path) -> None:
    demo = _start_demo(tmp_path, "serve-okta", "--users", "5", "--state", "okta-state")
    try:
        demo.wait_for(r"^Serving until Ctrl-C")
        org_url = demo.wait_for(r'^org_url = "(\S+)"$').group(1)
        app_id = demo.wait_for(r'^app_id = "(\S+)"$').group(1)
        token = (tmp_path / "okta-state" / "okta.token").read_text().strip()
        assert (tmp_path / "okta-state" / "okta.token").stat().st_mode & 0o777 == 0o600
        headers = {"Authorization": f"SSWS {token}"}
        listed = httpx.get(f"{org_url}/api/v1/apps/{app_id}/users", headers=headers)
        assert listed.status_code == 200 and len(listed.json()) == 5
        control = f"{org_url}/demo/v1/apps/{app_id}/users"
        assert httpx.get(control).status_code == 401, "the control endpoint wants the API token"
        hired = httpx.post(control, headers=headers, json={"login": "ann@example.com"})
        assert hired.status_code == 201 and hired.json()["assigned"] == "direct"
        assert len(httpx.get(f"{org_url}/api/v1/apps/{app_id}/users", headers=headers).json()) == 6
    finally:
        demo.process.send_signal(signal.SIGTERM)
        assert demo.process.wait(15) == 0, demo.text()


def test_a_demo_too_small_for_its_drift_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = reconcile("demo", "--users", "40")
    assert result.code == 64
    assert "--users: expected a number of at least 120" in result.stderr
