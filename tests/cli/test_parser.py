"""The command line itself: every command says what it does, every argument what it is, nothing is ignored.

An option a command would not act on is refused (exit 64) wherever it is written, and the
shell completion that ``reconcile completion bash|zsh`` installs offers the commands and options.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from reconciler.cli.parser import COMMAND_OPTIONS, build_parser
from tests.support.cli_runner import reconcile

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> dict[str, argparse.ArgumentParser]:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def _documented(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


def test_every_command_says_what_it_does_and_every_argument_what_it_is() -> None:
    parsers = {"(no command)": build_parser(), **_commands()}
    undocumented = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in parsers.items()
        for action in _documented(parser)
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert undocumented == []
    without_description = [name for name, parser in parsers.items() if not (parser.description or "").strip()]
    assert without_description == []


@pytest.mark.parametrize("command", sorted(_commands()))
def test_a_command_s_help_is_its_own(command: str) -> None:
    result = reconcile(command, "--help")
    assert result.code == 0
    description = _commands()[command].description
    assert description and description.split()[0] in result.stdout
    if "dry_run" not in COMMAND_OPTIONS[command]:  # a run's option, and follow's, not another command's
        assert "--dry-run" not in _usage(result.stdout)


# Every shared option with a value that would be valid for a command that takes it.
SHARED = {
    "--config": ["--config", "x.toml"],
    "--tenant": ["--tenant", "acme"],
    "--output": ["--output", "json"],
    "--log-level": ["--log-level", "INFO"],
    "--log-format": ["--log-format", "json"],
    "--quiet": ["--quiet"],
    "--dry-run": ["--dry-run"],
    "--save-plan": ["--save-plan", "plan.json"],
}
POSITIONALS = {"show": ["1"], "apply": ["plan.json"], "db": ["status"], "completion": ["bash"], "ack": ["list"]}


def _offered(command: str) -> set[str]:
    """The options ``reconcile COMMAND --help`` lists: what a user is told the command takes."""
    return set(re.findall(r"(--[a-z-]+)", _usage(reconcile(command, "--help").stdout)))


def _usage(help_text: str) -> str:
    return help_text.split("\n\n", 1)[0]


@pytest.mark.parametrize("command", sorted(_commands()))
def test_an_option_a_command_does_not_offer_is_refused_before_it_too(command: str) -> None:
    """Every command × every shared option: not in its --help means refused, written before or after it."""
    refused = [option for option in SHARED if option not in _offered(command)]
    for option in refused:
        for argv in (
            [*SHARED[option], command, *POSITIONALS.get(command, [])],
            [command, *POSITIONALS.get(command, []), *SHARED[option]],
        ):
            result = reconcile(*argv)
            assert result.code == 64, (argv, result)
            assert option in result.stderr and "Traceback" not in result.stderr, (argv, result.stderr)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--output", "json", "db", "status"], "db prints one line of text: it takes no --output"),
        (["db", "status", "--output", "json"], "db prints one line of text: it takes no --output"),
        (["--dry-run", "check"], "`reconcile check` takes no --dry-run: --dry-run is for a run (no command)"),
        (["--dry-run", "history"], "`reconcile history` takes no --dry-run"),
        (["--tenant", "acme", "serve"], "serve serves every tenant of the file: --tenant is for one-off commands"),
        (["serve", "--tenant", "acme"], "serve serves every tenant of the file"),
        (["history", "--limit", "-1"], "--limit: expected a number of at least 1, got -1"),
        (["history", "--limit", "0"], "--limit: expected a number of at least 1, got 0"),
        (["history", "--limit", "all"], "--limit: expected a whole number, got 'all'"),
        (["show", "0"], "RUN_ID: expected a number of at least 1, got 0"),
        (["apply", "plan.json", "-q"], "`reconcile apply` takes no --quiet"),
        (["--config", "x.toml", "demo"], "`reconcile demo` takes no --config"),
        (["demo", "--users", "40"], "--users: expected a number of at least 120, got 40"),
    ],
)
def test_ignored_options_are_refused_with_the_reason(argv: list[str], says: str) -> None:
    result = reconcile(*argv)
    assert result.code == 64
    assert says in result.stderr
    assert f"reconcile {argv[0]}" in result.stderr or argv[0].startswith("-")  # the command's own usage line


def test_options_a_command_takes_are_accepted_before_and_after_it() -> None:
    before = build_parser().parse_args(["--config", "a.toml", "--output", "json", "history", "--limit", "3"])
    after = build_parser().parse_args(["history", "--config", "a.toml", "--output", "json"])
    assert (before.config, before.output, before.limit) == ("a.toml", "json", 3)
    assert (after.config, after.output, after.limit) == ("a.toml", "json", 20)


# --- shell completion ----------------------------------------------------------------------------------


def _complete(line: str, shell: str = "bash") -> list[str]:
    """What argcomplete answers the shell for ``line`` (its protocol: environment in, candidates in a file)."""
    handle, name = tempfile.mkstemp(suffix=".completion")
    os.close(handle)
    out = Path(name)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": shell,
        **({"_ARGCOMPLETE_SUPPRESS_SPACE": "1"} if shell == "zsh" else {}),  # as the zsh script sets it
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
    }
    try:
        subprocess.run([sys.executable, "-m", "reconciler"], env=env, check=True, timeout=60, capture_output=True)
        return sorted(filter(None, (c.strip() for c in out.read_text().split("\n"))))
    finally:
        out.unlink(missing_ok=True)


def test_completion_offers_the_commands_and_each_command_s_options() -> None:
    assert _complete("reconcile hi") == ["history"]
    assert _complete("reconcile s") == ["serve", "show", "status"]
    assert _complete("reconcile db ") == ["status", "upgrade"]
    history_options = _complete("reconcile history --")
    assert "--limit" in history_options and "--output" in history_options
    assert "--dry-run" not in history_options and "--quiet" not in history_options
    assert _complete("reconcile --output ") == ["json", "text"]


def test_zsh_completion_describes_each_command() -> None:
    candidates = _complete("reconcile ch", shell="zsh")
    assert candidates == [
        "check:test the Okta and SCIM connections and show what the platform supports; writes nothing"
    ]


def test_the_bash_script_completes_the_installed_command(tmp_path: Path) -> None:
    """``eval "$(reconcile completion bash)"`` in bash, then a Tab after ``reconcile hi``: as a user's shell does."""
    script = reconcile("completion", "bash")
    assert script.code == 0 and "reconcile" in script.stdout
    (tmp_path / "completion.sh").write_text(script.stdout)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "reconcile").write_text(f'#!/bin/sh\nexec {sys.executable} -m reconciler "$@"\n')
    (bin_dir / "reconcile").chmod(0o755)
    tab = (
        f"source {tmp_path / 'completion.sh'}; "
        'COMP_LINE="reconcile hi"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(reconcile hi); COMP_CWORD=1; '
        '_python_argcomplete reconcile hi reconcile; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "-c", tab], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "history"


def test_zsh_script_registers_reconcile() -> None:
    script = reconcile("completion", "zsh")
    assert script.code == 0
    assert script.stdout.startswith("#compdef reconcile")
    assert "compdef _python_argcomplete reconcile" in script.stdout
