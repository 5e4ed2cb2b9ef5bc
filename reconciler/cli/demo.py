"""``reconcile demo``: the whole job on this machine, no Okta org needed.

It starts the project's Okta emulator and the real ``scim2-server`` on free
loopback ports, plays Okta's own SCIM pushes for most of ~200 assigned users
(some assigned through a group), then breaks things the ways push breaks in
real life: users assigned before provisioning was on, hand edits, renames,
missed deactivations, users disabled on the platform, a hand-made account, a
duplicate, service accounts. Groups drift too (``[groups] push_assigned``): a
group never pushed, one renamed in Okta, members removed and added by hand on
the platform, a hand-made platform group. Then it shows the dry-run plan,
applies it, and shows a second dry-run that is in sync.

State (config, token files, the SQLite store) stays in ``./demo-state`` so that
``reconcile --config demo-state/config.toml history`` works afterwards. With
``keep_running`` the demo stops after the first dry-run and keeps both servers up
until Ctrl-C or SIGTERM, the drift left for a person to plan, save and apply, and
Okta's side open to change through the emulator's control endpoint
(``reconcile demo okta ...``). :func:`serve_okta` serves the emulator alone, in front
of any SCIM platform.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from reconciler.cli.consoles import print_rule
from reconciler.cli.demo_state import write_demo_marker
from reconciler.cli.invocation import again
from reconciler.cli.render import render_group_plan, render_plan
from reconciler.config.load import load_config
from reconciler.run.alerting import reconcile_and_alert
from reconciler.run.outcome import RunOutcome
from reconciler.store import Store
from reconciler.testing.okta import OktaEmulator, run_okta_emulator
from reconciler.testing.scenario import (
    GROUP_NAME,
    GROUPS_CONFIG,
    seed_scenario,
    write_local_config,
    write_secret_file,
)
from reconciler.testing.scim_server import run_scim2_server

DEMO_STATE = Path("demo-state")


def run_demo(console: Console, users: int = 200, state: Path = DEMO_STATE, *, keep_running: bool = False) -> int:
    """Exit 0 when the second dry-run has nothing left to write; with ``keep_running``, once stopped."""
    return asyncio.run(_demo(console, users, state, keep_running))


async def _demo(console: Console, users: int, state: Path, keep_running: bool) -> int:
    shutil.rmtree(state, ignore_errors=True)
    okta_token, scim_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    emulator = OktaEmulator(seed=2026, api_tokens=[okta_token])
    with run_scim2_server(scim_token) as scim:
        async with (
            run_okta_emulator(emulator) as org_url,
            httpx.AsyncClient(
                base_url=scim.base_url,
                headers={"Authorization": f"Bearer {scim_token}"},
                limits=httpx.Limits(max_connections=4),  # scim2-server's listen backlog is small
            ) as client,
        ):
            print_rule(console, "[bold]okta-reconciler demo")
            console.print(f"Okta emulator on {org_url}, scim2-server on {scim.base_url}")
            app_id = await seed_scenario(emulator, client, users, groups=True)
            console.print(
                f"Seeded {users} assigned users (a quarter through the group {GROUP_NAME!r}), 3 pushed groups, "
                "and drift."
            )
            config_path = write_local_config(
                state, org_url, app_id, scim.base_url, okta_token, scim_token, GROUPS_CONFIG
            )
            write_demo_marker(state, org_url, scim.base_url, keep_running=keep_running)
            config = load_config(config_path)
            with Store(config.store.url) as store:
                before = await _step(console, store, config, dry_run=True, title="1. Dry-run: what drifted")
                if keep_running:
                    _explain_live(console, config_path, org_url, app_id)
                    await _until_stopped(console)
                    return 0
                applied = await _step(console, store, config, dry_run=False, title="2. Apply")
                after = await _step(console, store, config, dry_run=True, title="3. Dry-run again")
    return _conclude(console, state, before, applied, after)


async def _step(console: Console, store: Store, config: Any, *, dry_run: bool, title: str) -> RunOutcome:
    outcome = await reconcile_and_alert(config, store, dry_run=dry_run)
    if outcome.plan is not None and (dry_run or not outcome.plan.actions):
        render_plan(console, outcome.plan, f"{title} (run {outcome.run_id})")
        if outcome.group_plan is not None:
            render_group_plan(console, outcome.group_plan)
    elif outcome.plan is not None:
        print_rule(console, f"[bold]{title} (run {outcome.run_id})")
        console.print(f"Applied {outcome.applied.succeeded} action(s), {outcome.applied.failed} failed.")
    if outcome.error:
        console.print(f"[red]{outcome.status.value}:[/] {outcome.error}")
    return outcome


def _conclude(console: Console, state: Path, before: RunOutcome, applied: RunOutcome, after: RunOutcome) -> int:
    groups_left = after.group_plan is not None and bool(after.group_plan.writes)
    converged = after.plan is not None and not after.plan.writes and not groups_left and not applied.applied.failed
    console.rule()
    if converged:
        console.print("[green]In sync:[/] what is left is for a person (conflicts) or reported only (unmanaged).")
    else:
        console.print("[red]Not in sync after apply[/]: see the runs below.")
    config = ("--config", state / "config.toml")
    console.print("Inspect the runs with:")
    console.print(f"  {escape(again(*config, 'history'))}", soft_wrap=True)
    console.print(f"  {escape(again(*config, 'show', applied.run_id))}", soft_wrap=True)
    return 0 if converged else 1


def _explain_live(console: Console, config_path: Path, org_url: str, app_id: str) -> None:
    """What to try against the live servers: the commands, and how to change Okta's side."""
    config = ("--config", config_path)
    tries = [
        ("check", "both connections, and what the platform supports"),
        ("--dry-run", "the plan above, again"),
        ("--dry-run --save-plan plan.json", "the plan, saved for review"),
        ("apply plan.json", "apply exactly that plan"),
        ("", "plan and apply"),
        ("history", "the runs so far"),
        ("serve", "reconcile on a schedule (metrics on 127.0.0.1:9464)"),
    ]
    changes = [
        "users",
        "hire new.hire@example.com",
        "assign USER",
        "unassign USER",
        "deactivate USER",
        "suspend USER",
        "unsuspend USER",
        "rename USER NEW_LOGIN",
    ]
    print_rule(console, "[bold]The servers stay up: try the commands")
    console.print(f"Config: {config_path}", soft_wrap=True)
    for args, what in tries:
        console.print(f"  {again(*config, *args.split())}    # {what}", soft_wrap=True, markup=False)
    console.print("Change Okta's side by hand (USER: a login or an Okta id), then dry-run again:")
    for change in changes:
        console.print(f"  {again('demo', 'okta', *config, *change.split())}", soft_wrap=True, markup=False)
    token_file = config_path.parent / "okta.token"
    curl = f'curl -H "Authorization: SSWS $(cat {token_file})" {org_url}/demo/v1/apps/{app_id}/users'
    console.print(f"  or: {curl}", soft_wrap=True, markup=False)


async def _until_stopped(console: Console) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM; the callers' contexts then stop both servers."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    console.print("Serving until Ctrl-C (or SIGTERM).")
    sys.stdout.flush()
    try:
        await stopped.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    console.print("Stopping the Okta emulator and the SCIM server.")


def serve_okta(console: Console, *, port: int, users: int, state: Path) -> int:
    """Serve the emulator alone, with ``users`` assigned to one app, in front of any SCIM platform."""
    return asyncio.run(_serve_okta(console, port, users, state))


async def _serve_okta(console: Console, port: int, users: int, state: Path) -> int:
    token = secrets.token_urlsafe(32)
    emulator = OktaEmulator(seed=2026, api_tokens=[token])
    app = emulator.create_app()
    emulator.add_assigned_users(app.id, users)
    state.mkdir(parents=True, exist_ok=True)
    token_file = state / "okta.token"
    write_secret_file(token_file, token + "\n")
    async with run_okta_emulator(emulator, port=port) as org_url:
        console.print(f"Okta emulator on {org_url}: app {app.id}, {users} users assigned, none pushed yet.")
        console.print(f"API token (also in {token_file}, mode 0600): {token}", soft_wrap=True, markup=False)
        table = (
            f'[okta]\norg_url = "{org_url}"\napp_id = "{app.id}"\nauth = "api_token"\n'
            f'token_file = "{token_file.resolve()}"'
        )
        console.print("Your config's [okta] table, before your platform's [scim]:", markup=False)
        console.print(table, soft_wrap=True, markup=False)
        console.print(
            f"Change Okta's side by hand: {again('demo', 'okta', '--config', 'YOUR_CONFIG', 'users')} (assign, ...)",
            soft_wrap=True,
            markup=False,
        )
        await _until_stopped(console)
    return 0
