"""Debian's ``promtool`` (package ``prometheus``), which ``make test`` installs when it is missing."""

from __future__ import annotations

import os
import shutil

import pytest


def promtool() -> str:
    """The path of ``promtool``; the test is skipped without it, with how to install it (failed under ``CI``)."""
    found = shutil.which("promtool")
    if found is None:
        why = "promtool is not installed: apt-get install prometheus (make test installs it as root)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI must check the alert rules: {why}", pytrace=False)
        pytest.skip(why)
    return found
