"""The ``reconcile`` command's arguments: every command, its options, and their help.

Each command is offered only the options it acts on (``COMMAND_OPTIONS``). The shared
options may also be written before the command (``reconcile --config FILE history``);
one given there that the command would ignore is refused, not silently dropped.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from reconciler import __version__
from reconciler.cli.confirm import NO_COMMAND_HELP
from reconciler.cli.demo_commands import add_demo_subcommands
from reconciler.cli.exits import EXIT_USAGE
from reconciler.config.service_model import valid_replica_name
from reconciler.logs import LOG_FORMATS
from reconciler.report.period import parse_duration, parse_moment

DEFAULT_MAX_ACTIONS = 500

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SHELLS = ("bash", "zsh")

_SHARED = ("config", "tenant", "output", "log_level", "log_format", "quiet")
"""The shared options, by their ``dest``: all of them are offered to a run (no command)."""

COMMAND_OPTIONS: dict[str, tuple[str, ...]] = {
    "history": ("config", "tenant", "output", "log_level", "log_format"),
    "show": ("config", "output", "log_level", "log_format"),
    "apply": ("config", "tenant", "output", "log_level", "log_format", "yes"),
    "check": ("config", "tenant", "output", "log_level", "log_format"),
    "status": ("config", "tenant", "output", "log_level", "log_format"),
    "ack": ("config", "tenant", "output", "log_level", "log_format"),
    "db": ("config", "log_level", "log_format"),
    "serve": ("config", "log_level", "log_format"),
    "follow": ("config", "tenant", "log_level", "log_format", "dry_run"),
    "report": ("config", "tenant", "log_level", "log_format"),
    "demo": ("log_level", "log_format"),
    "completion": (),
}
"""The shared options each command acts on; any other is refused before the command or not offered after it."""

_RUN_ONLY = {"dry_run": "--dry-run", "save_plan": "--save-plan", "yes": "--yes"}
"""Options of a run (no command): given with a command that does not take them, they are refused."""

_WHY_NOT = {
    ("serve", "tenant"): "serve serves every tenant of the file: --tenant is for one-off commands",
    ("apply", "dry_run"): "apply sends a saved plan: it takes no --dry-run",
    (
        "serve",
        "dry_run",
    ): ("serve applies on a schedule: it takes no --dry-run (see the audit timer for a dry-run service)"),
    ("db", "output"): "db prints one line of text: it takes no --output",
    ("show", "tenant"): "a run id names one run of one tenant: show takes no --tenant",
}
"""The reason given when a command is handed an option it does not take, where a general one would not do."""


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means drift here, so usage errors exit 64."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _at_least(least: int, why: str = "") -> Callable[[str], int]:
    """A whole number of at least ``least`` (a count or a run id): ``--limit -1`` is a mistake, not "all"."""

    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected a number of at least {least}, got {value}{why}")
        return value

    return number


_positive = _at_least(1)

DEMO_MIN_USERS = 120
"""Below it, the demo's 10 missed deactivations are over the gate's 10% and its apply is blocked."""


def _add_shared(parser: argparse.ArgumentParser, default: object, offered: Sequence[str] = _SHARED) -> None:
    """The shared options that ``offered`` names; ``default`` is None on the top parser, SUPPRESS on a command's."""
    if "config" in offered:
        parser.add_argument(
            "--config", metavar="FILE", default=default, help="configuration file (default: $RECONCILER_CONFIG)"
        )
    if "tenant" in offered:
        parser.add_argument(
            "--tenant", metavar="NAME", default=default, help="with a file of [[tenants]]: the tenant a command is for"
        )
    if "output" in offered:
        parser.add_argument(
            "--output", choices=("text", "json"), default=default, help="text (default) or json on stdout"
        )
    if "log_level" in offered:
        parser.add_argument(
            "--log-level",
            default=default,
            choices=LOG_LEVELS,
            help="stderr's log level (default WARNING; INFO for serve)",
        )
    if "log_format" in offered:
        parser.add_argument(
            "--log-format",
            choices=LOG_FORMATS,
            default=default,
            help="text (default) or json: one JSON object per line",
        )
    if "quiet" in offered:
        parser.add_argument(
            "--quiet",
            "-q",
            action="store_true",
            default=False if default is None else default,
            help="no progress display (it is shown on stderr only when stderr is a terminal)",
        )


def _command(
    commands: argparse._SubParsersAction, name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    """A command with its one-line summary (in ``reconcile --help``) and what it does (in its own ``--help``)."""
    parser = commands.add_parser(name, help=summary, description=description)
    _add_shared(parser, argparse.SUPPRESS, COMMAND_OPTIONS[name])
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reconcile",
        description=(
            "Reconcile a SCIM 2.0 user store with an Okta app's assignments. With no COMMAND: one run, which "
            "reads Okta and the platform, plans the drift, passes it through the safety gate and applies it "
            "(--dry-run: plans only and writes nothing)."
        ),
        epilog=NO_COMMAND_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_shared(parser, None)
    parser.add_argument("--dry-run", action="store_true", help="plan only: no writer is built, nothing is written")
    parser.add_argument(
        "--save-plan", metavar="FILE", type=Path, help="with --dry-run: save the plan for `reconcile apply FILE`"
    )
    parser.add_argument(
        "--yes", "--auto-approve", dest="yes", action="store_true", help="apply without asking, even on a terminal"
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, help="what to do instead of a run (see below)"
    )
    history = _command(
        commands,
        "history",
        "list recent runs",
        "List the latest runs, newest first, with their status and counts.",
    )
    history.add_argument("--limit", type=_positive, default=20, help="how many runs, at least 1 (default 20)")
    show = _command(
        commands,
        "show",
        "print one run's actions with their outcomes",
        "Print one run from the store: its plan, every action with its outcome, and its group changes.",
    )
    show.add_argument("run_id", type=_positive, metavar="RUN_ID", help="the run's number (see `reconcile history`)")
    apply = _command(
        commands,
        "apply",
        "apply a plan saved by --dry-run --save-plan; stale actions are skipped",
        "Apply a plan saved by `reconcile --dry-run --save-plan FILE`, after checking it was made with these "
        "settings; an action whose user changed since the plan was made is skipped as stale.",
    )
    apply.add_argument("plan_file", type=Path, metavar="PLAN_FILE", help="the file --save-plan wrote")
    apply.add_argument(
        "--yes",
        "--auto-approve",
        dest="yes",
        action="store_true",
        default=argparse.SUPPRESS,  # `reconcile --yes apply FILE` means the same
        help="confirm a plan above the thresholds off a terminal, or one older than max_plan_age",
    )
    demo = _command(
        commands,
        "demo",
        "run against a local Okta emulator and SCIM server, no Okta org needed",
        "Start an Okta emulator and a SCIM server on this machine, seed them with drift, then dry-run, apply and "
        "dry-run again. Its config, tokens and store stay in ./demo-state.",
    )
    demo.add_argument(
        "--users",
        type=_at_least(DEMO_MIN_USERS, ": fewer, and the demo's deactivations trip the safety gate"),
        default=200,
        help=f"assigned users to seed, at least {DEMO_MIN_USERS} (default 200)",
    )
    add_demo_subcommands(demo)
    db = _command(
        commands,
        "db",
        "the store's schema: upgrade it, or show its status",
        "Upgrade the store's schema to this version's (upgrade), or say whether it is current (status: exit 1 "
        "when it is not).",
    )
    db.add_argument(
        "db_action", choices=("upgrade", "status"), help="upgrade: migrate the schema; status: show its revision"
    )
    _command(
        commands,
        "check",
        "test the Okta and SCIM connections and show what the platform supports; writes nothing",
        "Test both connections: Okta's token, app and groups, the SCIM endpoint's token, discovery and the "
        "features the platform supports. Reads only; no run is recorded.",
    )
    serve = _command(
        commands,
        "serve",
        "reconcile on the [schedule] as a service (systemd Type=notify)",
        "Run as a service: reconcile every tenant of the file on its [schedule], serve /metrics, and notify "
        "systemd (Type=notify). Stops on SIGTERM after the run in progress.",
    )
    serve.add_argument(
        "--replica", metavar="NAME", help="this replica's name in `reconcile status` (default: host name and pid)"
    )
    follow = _command(
        commands,
        "follow",
        "follow Okta's System Log in the foreground, repairing each change within seconds",
        "Follow the Okta System Log and repair the users each change touches, as `serve` does with "
        "[incremental] (see docs/incremental.md): a full audit first when there is no fresh cursor, then one "
        "incremental run per batch of events, each recorded in `history`. Ctrl-C or SIGTERM stops it after "
        "the batch in flight. Needs a token that may read the log (okta.logs.read) and a platform with SCIM filters.",
    )
    follow.add_argument(
        "--once", action="store_true", help="poll until caught up with the log, then exit (for scripts and tests)"
    )
    follow.add_argument(
        "--dry-run",
        action="store_true",
        default=argparse.SUPPRESS,  # `reconcile --dry-run follow` means the same
        help="plan and record each batch, send nothing; the stored cursor stays where it was",
    )
    _add_report(commands)
    _command(
        commands,
        "status",
        "per tenant: last run, status, drift, next run, and which replica holds it now",
        "For each tenant of the file: its last run, status and drift, its next run, and which replica holds it.",
    )
    ack = _command(
        commands,
        "ack",
        "acknowledge a reviewed finding (a conflict, an unmanaged user) so a dry-run exits 0; list, revoke",
        "Acknowledge a finding someone reviewed, with who and why, so that a dry-run no longer exits 2 for it "
        "while it stays as it is; list the acknowledgements, or revoke one.",
    )
    ack.add_argument(
        "what",
        choices=("conflict", "unmanaged", "list", "revoke"),
        metavar="conflict|unmanaged|list|revoke",
        help="acknowledge a conflict or an unmanaged user, list the acknowledgements, or revoke one",
    )
    ack.add_argument(
        "subject", nargs="?", metavar="ID", help="the finding's userName, Okta or SCIM id; for revoke, the number"
    )
    ack.add_argument("--reason", help="why it is acknowledged (required), kept in the store")
    ack.add_argument("--by", metavar="NAME", help="who acknowledges or revokes (default: the OS user)")
    ack.add_argument("--all", action="store_true", help="list: revoked acknowledgements too")
    completion = _command(
        commands,
        "completion",
        "print the shell completion script for bash or zsh",
        "Print the script that completes reconcile's commands and options. Load it from your shell's start-up "
        'file: eval "$(reconcile completion bash)" in ~/.bashrc, or the same with zsh in ~/.zshrc.',
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    return parser


def _add_report(commands: argparse._SubParsersAction) -> None:
    report = _command(
        commands,
        "report",
        "an audit report of a period from the store: one self-contained HTML page, JSON or CSV",
        "Write the evidence of a period, read from the store (no Okta or SCIM call, no secret): runs and their "
        "outcomes, the drift trend, time to revoke, every action with its before and after, the saved plans "
        "applied and by whom, and coverage at the last audit before --as-of. Times are UTC.",
    )
    report.add_argument(
        "--since", type=_argument(parse_duration), metavar="DURATION", help="the period: back from now (default 30d)"
    )
    report.add_argument(
        "--from", dest="from_", type=_argument(parse_moment), metavar="DATE", help="the period's start (UTC)"
    )
    report.add_argument(
        "--to", type=_argument(end_of_day_moment), metavar="DATE", help="its end (a date: that whole day; default now)"
    )
    report.add_argument(
        "--as-of",
        type=_argument(end_of_day_moment),
        metavar="DATE",
        help="coverage at the last full audit before this moment (default: the end of the period)",
    )
    report.add_argument("--format", choices=("html", "json", "csv"), default="html", help="default html")
    report.add_argument("--out", type=Path, metavar="FILE", help="default report.html|json|csv here; - for stdout")
    report.add_argument(
        "--max-actions",
        type=_positive,
        default=DEFAULT_MAX_ACTIONS,
        metavar="N",
        help=f"html: the latest N actions of each kind, and N users in coverage (default {DEFAULT_MAX_ACTIONS}); "
        "json and csv hold every one",
    )


def _argument(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a parser that raises ValueError with a message: argparse shows it with the option."""

    def checked(text: str) -> object:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return checked


def end_of_day_moment(text: str) -> object:
    return parse_moment(text, end_of_day=True)


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, checked: options a command would ignore are refused (exit 64), never dropped."""
    parser = build_parser()
    _offer_completion(parser)
    _refuse_before_demo_subcommands(parser, list(sys.argv[1:] if argv is None else argv))
    args, extras = parser.parse_known_args(argv)
    if extras:
        _refuse_unknown(_parser_of(parser, args.command), args.command, extras)
    if args.save_plan is not None and not args.dry_run:
        parser.error("--save-plan is only valid with --dry-run (and no command)")
    if args.yes and args.dry_run:
        parser.error("--yes approves writes: a --dry-run writes nothing")
    if args.command is not None:
        _refuse_ignored(_parser_of(parser, args.command), args)
    if getattr(args, "replica", None) is not None and not valid_replica_name(args.replica):
        parser.error("--replica: expected a name of 1 to 128 printable characters")
    return args


def _refuse_before_demo_subcommands(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """``demo --config F``: argparse would take F for one of demo's subcommands and blame that; name the option.

    (``demo okta --config F`` is that subcommand's own option, and taken.)
    """
    if "demo" not in words:
        return
    after = words[words.index("demo") + 1 :]
    mine = after[: after.index("okta")] if "okta" in after else after
    flags = {"--" + dest.replace("_", "-"): dest for dest in (*_SHARED, *_RUN_ONLY)} | {"-q": "quiet"}
    for word in mine:
        dest = flags.get(word.split("=", 1)[0])
        if dest is not None and dest not in COMMAND_OPTIONS["demo"]:
            _parser_of(parser, "demo").error(f"`reconcile demo` takes no --{dest.replace('_', '-')}")


def _parser_of(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The command's own parser, whose usage line an error about the command shows."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def _refuse_ignored(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options written before the command that the command does not take (a command's own parser offers only its)."""
    taken = COMMAND_OPTIONS[args.command]
    given = {dest: getattr(args, dest) for dest in (*_SHARED, *_RUN_ONLY) if dest not in taken}
    for dest, value in given.items():
        if value is None or value is False:
            continue
        flag = _RUN_ONLY.get(dest) or "--" + dest.replace("_", "-")
        general = f"`reconcile {args.command}` takes no {flag}"
        if dest in _RUN_ONLY:
            general += f": {flag} is for a run (no command)"
        parser.error(_WHY_NOT.get((args.command, dest)) or general)


def _refuse_unknown(parser: argparse.ArgumentParser, command: str | None, extras: list[str]) -> None:
    """Arguments nobody took: a shared option after a command that does not take it is named as such."""
    flags = {"--" + dest.replace("_", "-"): dest for dest in (*_SHARED, *_RUN_ONLY)} | {"-q": "quiet"}
    for extra in extras:
        dest = flags.get(extra.split("=", 1)[0])
        if command is not None and dest is not None:
            flag = "--" + dest.replace("_", "-")
            parser.error(_WHY_NOT.get((command, dest)) or f"`reconcile {command}` takes no {flag}")
    parser.error(f"unrecognized arguments: {' '.join(extras)}")


def _offer_completion(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request (argcomplete's protocol: ``_ARGCOMPLETE`` set) and exit; else nothing."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser, always_complete_options=False)  # options once a '-' is typed, as git does


def completion_script(shell: str) -> str:
    """The shell code that registers ``reconcile`` with argcomplete (what ``register-python-argcomplete`` prints)."""
    import argcomplete

    return argcomplete.shellcode(["reconcile"], shell=shell)
