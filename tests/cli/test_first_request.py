"""What a run imports before its first request: only what that request needs.

A run's first request should leave within a second of the process start, and
importing is most of that second: what is needed later (an alert, a write, an
error's details, a store's first schema) is imported there. Each test runs the
real command in a child process against the Okta emulator and scim2-server, and
notes the modules loaded at the moment it first connects to either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.config.load import load_config
from reconciler.store import Store

NOT_BEFORE_THE_FIRST_REQUEST = {
    "scim2_models": "read only a SCIM error's details (the ServiceProviderConfig flags have models of their own)",
    "apprise": "needed once a run has something to tell",
    "alembic": "needed to create or upgrade a store's schema, not to open one at the newest revision",
    "sqlalchemy.dialects.postgresql": "needed by a PostgreSQL store only",
    "apscheduler": "needed by `reconcile serve` and `history`, not by a run",
    "prometheus_client": "needed by the service's metrics",
    "reconciler.testing": "the test doubles: only `reconcile demo` imports them",
}
"""Module → when it is needed instead."""

AT_FIRST_CONNECT = """
import json, os, runpy, socket, sys

def note_modules(event, args):
    if event == "socket.connect" and args[0].family in (socket.AF_INET, socket.AF_INET6) and not noted:
        noted.append(args[1])
        with open(os.environ["MODULES_AT_FIRST_CONNECT"], "w") as file:
            json.dump({"address": list(args[1]), "modules": sorted(sys.modules)}, file)

noted = []
sys.addaudithook(note_modules)
sys.argv[0] = "reconcile"
runpy.run_module("reconciler", run_name="__main__")
"""


def modules_at_first_request(config_file: Path, tmp_path: Path, *args: str) -> tuple[set[str], list]:
    """Run ``reconcile --config FILE ARGS`` as a user would; the modules loaded when it first connected, and where."""
    noted = tmp_path / "modules.json"
    environment = {k: v for k, v in os.environ.items() if k != "RECONCILER_CONFIG"} | {
        "MODULES_AT_FIRST_CONNECT": str(noted)
    }
    completed = subprocess.run(
        [sys.executable, "-c", AT_FIRST_CONNECT, "--config", str(config_file), *args],
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(noted.read_text())
    return set(seen["modules"]), seen["address"]


def loaded_too_early(modules: set[str]) -> dict[str, str]:
    return {
        name: when
        for name, when in NOT_BEFORE_THE_FIRST_REQUEST.items()
        if any(module == name or module.startswith(name + ".") for module in modules)
    }


@pytest.mark.parametrize("mode", [("--dry-run",), ()], ids=["dry-run", "live"])
def test_a_run_imports_only_what_its_first_request_needs(config_file: Path, tmp_path: Path, mode: tuple) -> None:
    Store(load_config(config_file).store.url).close()  # the store exists, at the newest revision, as after a first run
    modules, address = modules_at_first_request(config_file, tmp_path, *mode)
    assert address[0] == "127.0.0.1"  # the platform's or Okta's, not anything else
    assert loaded_too_early(modules) == {}
    assert {"reconciler.store", "reconciler.okta.source", "reconciler.scim.reader", "httpx"} <= modules
