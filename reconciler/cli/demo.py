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
``reconcile --config demo-state/config.toml history`` works afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from reconciler.cli.invocation import again
from reconciler.cli.render import render_group_plan, render_plan
from reconciler.config.load import load_config
from reconciler.run.alerting import reconcile_and_alert
from reconciler.run.outcome import RunOutcome
from reconciler.store import Store
from reconciler.testing.okta import OktaEmulator, run_okta_emulator
from reconciler.testing.scenario import GROUP_NAME, GROUPS_CONFIG, seed_scenario, write_local_config
from reconciler.testing.scim_server import run_scim2_server

DEMO_STATE = Path("demo-state")


def run_demo(console: Console, users: int = 200, state: Path = DEMO_STATE) -> int:
    """Exit 0 when the second dry-run has nothing left to write."""
    return asyncio.run(_demo(console, users, state))


async def _demo(console: Console, users: int, state: Path) -> int:
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
            console.rule("[bold]okta-reconciler demo")
            console.print(f"Okta emulator on {org_url}, scim2-server on {scim.base_url}")
            app_id = await seed_scenario(emulator, client, users, groups=True)
            console.print(
                f"Seeded {users} assigned users (a quarter through the group {GROUP_NAME!r}), 3 pushed groups, "
                "and drift."
            )
            config_path = write_local_config(
                state, org_url, app_id, scim.base_url, okta_token, scim_token, GROUPS_CONFIG
            )
            config = load_config(config_path)
            with Store(config.store.url) as store:
                before = await _step(console, store, config, dry_run=True, title="1. Dry-run: what drifted")
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
        console.rule(f"[bold]{title} (run {outcome.run_id})")
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
