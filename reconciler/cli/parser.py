"""The ``reconcile`` command's arguments: every command, its options, and their help."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from reconciler import __version__
from reconciler.logs import LOG_FORMATS

EXIT_USAGE = 64


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 means drift here, so usage errors exit 64."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_common(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--config", metavar="FILE", default=default, help="configuration file (default: $RECONCILER_CONFIG)"
    )
    parser.add_argument(
        "--tenant", metavar="NAME", default=default, help="with a file of [[tenants]]: the tenant a command is for"
    )
    parser.add_argument("--output", choices=("text", "json"), default=default, help="text (default) or json")
    parser.add_argument(
        "--log-level",
        default=default,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level on stderr (default WARNING; INFO for serve)",
    )
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default=default, help="text (default) or json: one JSON object per line"
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=False if default is None else default,
        help="no progress display (it is shown on stderr only when stderr is a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reconcile", description="Reconcile a SCIM 2.0 user store with an Okta app's assignments.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser, None)
    parser.add_argument("--dry-run", action="store_true", help="plan only: no writer is built, nothing is written")
    parser.add_argument(
        "--save-plan", metavar="FILE", type=Path, help="with --dry-run: save the plan for `reconcile apply FILE`"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    history = commands.add_parser("history", help="list recent runs")
    _add_common(history, argparse.SUPPRESS)
    history.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    show = commands.add_parser("show", help="print one run's actions with their outcomes")
    _add_common(show, argparse.SUPPRESS)
    show.add_argument("run_id", type=int, metavar="RUN_ID")
    apply = commands.add_parser("apply", help="apply a plan saved by --dry-run --save-plan; stale actions are skipped")
    _add_common(apply, argparse.SUPPRESS)
    apply.add_argument("plan_file", type=Path, metavar="PLAN_FILE")
    apply.add_argument(
        "--yes",
        action="store_true",
        help="confirm a plan above the thresholds off a terminal, or one older than max_plan_age",
    )
    demo = commands.add_parser("demo", help="run against a local Okta emulator and SCIM server, no Okta org needed")
    demo.add_argument("--users", type=int, default=200, help="assigned users to seed (default 200)")
    demo.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    db = commands.add_parser("db", help="the store's schema: upgrade it, or show its status")
    _add_common(db, argparse.SUPPRESS)
    db.add_argument("db_action", choices=("upgrade", "status"), metavar="upgrade|status")
    check = commands.add_parser(
        "check", help="test the Okta and SCIM connections and show what the platform supports; writes nothing"
    )
    _add_common(check, argparse.SUPPRESS)
    serve = commands.add_parser("serve", help="reconcile on the [schedule] as a service (systemd Type=notify)")
    _add_common(serve, argparse.SUPPRESS)
    serve.add_argument(
        "--replica", metavar="NAME", help="this replica's name in `reconcile status` (default: host name and pid)"
    )
    status = commands.add_parser(
        "status", help="per tenant: last run, status, drift, next run, and which replica holds it now"
    )
    _add_common(status, argparse.SUPPRESS)
    return parser
