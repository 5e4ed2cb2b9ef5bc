"""``make screenshot``: the README's picture of a report (docs/report.png), taken by the same headless Chromium
as the browser tests, of a report of real runs.

::

    python -m tests.support.report_screenshot docs/report.png

It builds the store of tests/report/conftest.py's ``evidence`` (dry-runs, applies, a saved plan, a safety stop,
a failure and a System Log repair, against the Okta emulator and scim2-server on 127.0.0.1), writes its report,
and screenshots the first screen at 1200 × 1500 pixels.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from reconciler.testing.scim_server import run_scim2_server
from tests.conftest import SCIM_TOKEN
from tests.report.conftest import build_evidence
from tests.support.chromium import Chromium, find_chromium
from tests.support.cli_runner import reconcile

WIDTH, HEIGHT = 1200, 1500


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs/report.png").resolve()
    with (
        tempfile.TemporaryDirectory(prefix="report-screenshot-") as folder,
        run_scim2_server(SCIM_TOKEN, ["--dynamic-tenants"]) as server,
    ):
        root = Path(folder)
        with build_evidence(root / "state", server) as evidence:
            page = root / "report.html"
            result = reconcile("--config", evidence.config_file, "report", "--out", page)
            if result.code != 0:
                print(result.stderr, file=sys.stderr)
                return result.code
        chromium = Chromium(find_chromium(), root / "profile")
        chromium.screenshot(page, target, WIDTH, HEIGHT)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
