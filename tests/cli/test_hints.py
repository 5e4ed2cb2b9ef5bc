"""Every command the tool prints for the user to run next works when pasted as it is.

The command runs as a real process, invoked the ways people invoke it (by a path, from ``PATH``,
as ``python -m reconciler``, with the config in ``$RECONCILER_CONFIG``); each hint line it prints
is then split as a POSIX shell would (shlex) and run in the same directory, and must succeed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.invocation import command_from
from tests.conftest import Okta

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/bin:/bin"  # no `reconcile` on it: a hint must not rely on one being installed


def _console_script(directory: Path) -> Path:
    """A ``reconcile`` as pip installs it: a Python script calling main(), argv[0] as invoked."""
    directory.mkdir(exist_ok=True)
    script = directory / "reconcile"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom reconciler.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


def _run(argv: list[str], cwd: Path, path: str = SYSTEM_PATH, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("RECONCILER_CONFIG", "COLUMNS")}
    environment.update(PYTHONPATH=str(ROOT), PATH=path, **env)
    return subprocess.run(argv, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def hints(output: str) -> list[str]:
    """The command lines offered: after "... with:" on the same line, or on the indented lines below it."""
    found: list[str] = []
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if "with:" not in line:
            continue
        rest = line.split("with:", 1)[1].strip()
        if rest:
            found.append(rest)
            continue
        for below in lines[number + 1 :]:
            if not below.startswith("  "):
                break
            found.append(below.strip())
    return found


def _paste(hint: str, cwd: Path, path: str = SYSTEM_PATH) -> subprocess.CompletedProcess[str]:
    assert "|" not in shlex.split(hint), hint  # nothing a shell would read as a pipe
    return _run(shlex.split(hint), cwd, path)


def _configured(okta: Okta, config_file: Path, where: Path) -> Path:
    """The config moved to ``where`` (a directory with a space in its name), with the run's users to create."""
    okta.emulator.add_assigned_users(okta.app_id, 3)
    where.mkdir(parents=True)
    for name in ("okta.token", "scim.token"):
        (config_file.parent / name).rename(where / name)
    moved = where / "config.toml"
    config_file.rename(moved)
    return moved


def test_hints_of_a_dry_run_a_saved_plan_and_its_apply_run_as_pasted(
    okta: Okta, config_file: Path, tmp_path: Path
) -> None:
    config = _configured(okta, config_file, tmp_path / "my configs")
    _console_script(tmp_path / "bin")
    relative_config = str(config.relative_to(tmp_path))
    quoted = shlex.quote(str(config))  # the file as the run resolved it
    dry_run = _run(["bin/reconcile", "--config", relative_config, "--dry-run", "--save-plan", "plan.json"], tmp_path)
    assert dry_run.returncode == 2, dry_run.stderr
    offered = hints(dry_run.stdout)
    assert offered == [
        f"bin/reconcile --config {quoted} show {_run_id(offered[0])}",
        f"bin/reconcile --config {quoted} apply plan.json",
    ]
    shown, applied = (_paste(hint, tmp_path) for hint in offered)
    assert shown.returncode == 0, shown.stderr
    assert applied.returncode == 0, applied.stderr
    assert "Applied 3" in applied.stdout
    (after_apply,) = hints(applied.stdout)
    assert after_apply.startswith(f"bin/reconcile --config {quoted} show ")
    assert _paste(after_apply, tmp_path).returncode == 0


def test_a_hint_names_the_command_as_it_was_invoked(okta: Okta, config_file: Path, tmp_path: Path) -> None:
    config = _configured(okta, config_file, tmp_path / "conf")
    bin_dir = tmp_path / "bin"
    _console_script(bin_dir)
    on_path = f"{bin_dir}:{SYSTEM_PATH}"
    from_path = _run(["reconcile", "--dry-run"], tmp_path, on_path, RECONCILER_CONFIG=str(config))
    (hint,) = hints(from_path.stdout)
    assert hint == f"reconcile --config {config} show {_run_id(hint)}"  # --config, though it came from the env
    assert _paste(hint, tmp_path, on_path).returncode == 0
    as_module = _run([sys.executable, "-m", "reconciler", "--config", str(config), "--dry-run"], tmp_path)
    (hint,) = hints(as_module.stdout)
    assert hint.startswith(f"{sys.executable} -m reconciler --config {config} show ")
    assert _paste(hint, tmp_path).returncode == 0


def test_the_demo_s_last_lines_run_as_pasted(tmp_path: Path) -> None:
    _console_script(tmp_path / "bin")
    demo = _run(["bin/reconcile", "demo", "--users", "120"], tmp_path)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr
    offered = hints(demo.stdout)
    assert [shlex.split(hint)[:4] for hint in offered] == [
        ["bin/reconcile", "--config", "demo-state/config.toml", "history"],
        ["bin/reconcile", "--config", "demo-state/config.toml", "show"],
    ]
    for hint in offered:
        pasted = _paste(hint, tmp_path)
        assert pasted.returncode == 0, (hint, pasted.stderr)


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("-c", ("reconcile",)),
        (str(ROOT / "reconciler" / "__main__.py"), (sys.executable, "-m", "reconciler")),
        ("/no/such/reconcile", ("reconcile",)),
    ],
)
def test_the_command_is_read_from_argv0(argv0: str, expected: tuple[str, ...]) -> None:
    assert command_from(argv0) == expected


def _run_id(hint: str) -> str:
    return shlex.split(hint)[-1]
