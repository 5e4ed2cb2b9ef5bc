"""The documented install leaves what the systemd units point at: the wheel, built and installed as
docs/service.md says (``pip install`` into the venv at /opt/okta-reconciler), holds every ``Documentation=`` file.

The wheel is built offline (hatchling, the build backend, is a test dependency) and installed under a scratch
prefix that stands for /opt/okta-reconciler.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

UNITS = Path(__file__).resolve().parents[2] / "systemd"
REPO = UNITS.parent
PREFIX = "/opt/okta-reconciler/"
SERVICE_DOC = REPO / "docs" / "service.md"


def _documentation_paths() -> list[str]:
    """Every ``file://`` path the units name in ``Documentation=``, relative to the install prefix."""
    paths = []
    for unit in sorted(UNITS.iterdir()):
        for line in unit.read_text().splitlines():
            if line.startswith("Documentation="):
                for url in line.removeprefix("Documentation=").split():
                    assert url.startswith("file://" + PREFIX), f"{unit.name}: {url} is not under {PREFIX}"
                    paths.append(url.removeprefix("file://" + PREFIX))
    return paths


def test_every_documentation_path_of_the_units_exists_after_the_documented_install(tmp_path: Path) -> None:
    assert f"python3 -m venv {PREFIX.rstrip('/')} && {PREFIX}bin/pip install" in SERVICE_DOC.read_text()
    paths = _documentation_paths()
    assert paths, "the units name their documentation"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    build = [*pip, "wheel", "--no-build-isolation", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), str(REPO)]
    subprocess.run(build, check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("okta_reconciler-*.whl")
    prefix = tmp_path / "opt-okta-reconciler"
    # --ignore-installed: without it pip uninstalls the copy this very test runs from (the venv's editable install).
    install = [*pip, "install", "--no-deps", "--no-index", "--ignore-installed", "--prefix", str(prefix), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=120)

    missing = [path for path in paths if not (prefix / path).is_file()]
    assert not missing, f"named by Documentation= but not installed: {missing}"
    assert subprocess.run([*pip, "show", "okta-reconciler"], capture_output=True).returncode == 0, "the venv lost it"
    installed_readme = (prefix / "share/doc/okta-reconciler/README.md").read_text()
    for link in re.findall(r"\]\((docs/[^)#]+)\)", installed_readme):  # the README's links resolve beside it
        assert (prefix / "share/doc/okta-reconciler" / link).is_file(), link
