"""``reconcile demo`` and its subcommands: the arguments, and the client of the emulator's control endpoint.

- ``reconcile demo [--users N] [--keep-running]``: the demo (:mod:`reconciler.cli.demo`);
- ``reconcile demo serve-okta [--port N] [--users N] [--state DIR]``: the Okta emulator alone;
- ``reconcile demo okta [--config F] ACTION [USER] [NEW_LOGIN]``: change the emulator's Okta side by hand, over
  its control endpoint (``/demo/v1``, see ``reconciler/testing/okta/control.py``), with the config's org URL,
  app id and API token.

This module imports no test double: the emulator is reached over HTTP, and :mod:`reconciler.cli.demo` (the one
module allowed to import ``reconciler.testing``) is imported only when a server is to be started.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
from rich.console import Console

from reconciler.cli.consoles import console_for
from reconciler.cli.exits import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from reconciler.cli.invocation import again
from reconciler.config.load import load_config
from reconciler.errors import ConfigError

DEMO_STATE = Path("demo-state")
CONTROL_PATH = "/demo/v1/apps/{app_id}/users"
OKTA_ACTIONS = {
    "users": "list the org's users: login, status, how each is assigned to the app",
    "hire": "create an ACTIVE user with this login and assign it to the app",
    "assign": "assign the user to the app directly",
    "unassign": "remove the user's direct assignment",
    "deactivate": "deactivate the user in Okta (DEPROVISIONED)",
    "suspend": "suspend the user in Okta (SUSPENDED)",
    "unsuspend": "make the user ACTIVE again",
    "rename": "change the user's login (and email) to NEW_LOGIN",
}


def add_demo_subcommands(demo: argparse.ArgumentParser) -> None:
    """``demo``'s own options and subcommands (its ``--users`` is the parser's, checked there)."""
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="after the first dry-run, keep both servers up until Ctrl-C, the drift left for you to plan and apply",
    )
    subcommands = demo.add_subparsers(dest="demo_command", metavar="SUBCOMMAND", help="instead of the demo itself")
    serve = subcommands.add_parser(
        "serve-okta",
        help="serve the Okta emulator alone, in front of any SCIM platform",
        description="Serve the Okta emulator alone on 127.0.0.1, with users assigned to one app, and print the "
        "[okta] table that points a config at it.",
    )
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    serve.add_argument("--users", type=int, default=50, help="users assigned to its app (default 50)")
    serve.add_argument(
        "--state", type=Path, default=Path("demo-okta"), help="where its token file goes (default ./demo-okta)"
    )
    okta = subcommands.add_parser(
        "okta",
        help="change the demo's Okta side by hand (its emulator's control endpoint)",
        description="Assign, unassign, deactivate, suspend, rename or hire users in the demo's Okta emulator.",
    )
    okta.add_argument(
        "--config",
        dest="demo_config",
        type=Path,
        default=DEMO_STATE / "config.toml",
        help="the demo's config (default: demo-state/config.toml)",
    )
    actions = "; ".join(f"{name}: {what}" for name, what in OKTA_ACTIONS.items())
    okta.add_argument("action", choices=tuple(OKTA_ACTIONS), metavar="ACTION", help=actions)
    okta.add_argument("user", nargs="?", metavar="USER", help="a login or an Okta user id (hire: the new login)")
    okta.add_argument("new_login", nargs="?", metavar="NEW_LOGIN", help="rename: the user's new login")


def _usage_error(message: str) -> int:
    print(f"reconcile demo: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_demo_command(args: argparse.Namespace) -> int:
    """Run ``reconcile demo ...`` once its arguments are parsed."""
    if args.demo_command == "okta":
        return _okta_command(args)
    from reconciler.cli.demo import run_demo, serve_okta

    if args.demo_command == "serve-okta":
        if args.users < 0:
            return _usage_error("demo serve-okta --users: expected 0 or more")
        if not 0 <= args.port <= 65535:
            return _usage_error("demo serve-okta --port: expected 0 (a free port) to 65535")
        return serve_okta(console_for(), port=args.port, users=args.users, state=args.state)
    return run_demo(console_for(), users=args.users, keep_running=args.keep_running)


def _okta_command(args: argparse.Namespace) -> int:
    needs_user = args.action != "users"
    if needs_user != (args.user is not None) or (args.action == "rename") != (args.new_login is not None):
        usage = {"users": "users", "rename": "rename USER NEW_LOGIN", "hire": "hire LOGIN"}.get(args.action)
        return _usage_error(f"usage: reconcile demo okta {usage or args.action + ' USER'}")
    try:
        config = load_config(args.demo_config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"config: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if config.okta.auth != "api_token" or config.okta.token is None:
        print(f'reconcile: {args.demo_config}: the control endpoint takes the API token ([okta] auth = "api_token")')
        return EXIT_CONFIG
    base = config.okta.org_url.rstrip("/") + CONTROL_PATH.format(app_id=quote(config.okta.app_id, safe=""))
    headers = {"Authorization": f"SSWS {config.okta.token.reveal()}"}
    try:
        response = _send(base, headers, args)
    except httpx.TransportError as error:
        print(f"reconcile: the Okta emulator at {config.okta.org_url} does not answer ({error})", file=sys.stderr)
        print("Is `reconcile demo --keep-running` (or `reconcile demo serve-okta`) still running?", file=sys.stderr)
        return EXIT_FAILURE
    return _report(response, args)


def _send(base: str, headers: dict[str, str], args: argparse.Namespace) -> httpx.Response:
    with httpx.Client(headers=headers, timeout=10, trust_env=False) as client:
        if args.action == "users":
            return client.get(base)
        if args.action == "hire":
            return client.post(base, json={"login": args.user})
        body = {"login": args.new_login} if args.action == "rename" else None
        return client.post(f"{base}/{quote(args.user, safe='')}/{args.action}", json=body)


def _report(response: httpx.Response, args: argparse.Namespace) -> int:
    """The emulator's answer, in words; exit 1 with its ``errorSummary`` when it refused."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or body is None:
        summary = body.get("errorSummary") if isinstance(body, dict) else None
        hint = " (is this the demo's Okta emulator?)" if response.status_code == 404 and body is None else ""
        print(f"reconcile: demo okta {args.action}: {summary or f'HTTP {response.status_code}'}{hint}", file=sys.stderr)
        return EXIT_FAILURE
    console = Console(soft_wrap=True)
    if args.action == "users":
        for user in body:
            console.print(f"{user['login']}  {user['id']}  {user['status']}  {_assigned(user)}", markup=False)
        return EXIT_OK
    console.print(f"{args.action}: {body['login']} ({body['id']}) {body['status']}, {_assigned(body)}", markup=False)
    console.print(f"See the drift: {again('--config', args.demo_config, '--dry-run')}", markup=False)
    return EXIT_OK


def _assigned(user: dict) -> str:
    how = str(user["assigned"] or "")
    return "not assigned" if not how else "assigned directly" if how == "direct" else f"assigned through {how}"
