"""``reconcile check``: test both connections and show what the platform can do. Nothing is written.

Like Okta's "Test API Credentials" button, plus what a run will do with
what it finds: PATCH or PUT, filtered lookups or a listing scan, the page
cap, ``If-Match``, and which mapped attributes the server's User resource
does not announce (those would be sent, dropped, and sent again every run).
With ``[groups]``, it also reads the pushed groups on both sides (a name in
``groups.push`` that matches no group, or a credential without
``okta.groups.read``, fails the check as it would fail a run).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape

from reconciler.config.model import Config
from reconciler.errors import ReconcileError
from reconciler.models.scim_path import parse_target_path
from reconciler.okta.source import OktaAppSummary
from reconciler.run.wiring import okta_source, read_groups, scim_reader
from reconciler.scim.discovery import ScimCapabilities, UserSchema, unannounced_paths


@dataclass(frozen=True)
class OktaSide:
    app: OktaAppSummary | None = None
    error: str | None = None


@dataclass(frozen=True)
class ScimSide:
    capabilities: ScimCapabilities | None = None
    filter_works: bool | None = None
    """Whether a ``userName eq`` filter was answered; None when the server does not announce filtering."""
    users: int | None = None
    user_schema: UserSchema | None = None
    error: str | None = None


@dataclass(frozen=True)
class GroupsSide:
    pushed: list[str] = field(default_factory=list)
    """The pushed Okta groups' names."""
    members: int = 0
    """Memberships of the pushed groups in Okta."""
    platform_groups: int = 0
    error: str | None = None
    not_read: str | None = None
    """Why the groups were not read: a side's connection failed, and it is reported once, on its own line."""


@dataclass(frozen=True)
class CheckReport:
    okta: OktaSide
    scim: ScimSide
    page_size: int
    mapping_warnings: list[str] = field(default_factory=list)
    groups: GroupsSide | None = None
    """None without ``[groups]``."""

    @property
    def ok(self) -> bool:
        groups_ok = self.groups is None or self.groups.error is None
        return self.okta.error is None and self.scim.error is None and groups_ok

    def effective_page_size(self) -> int:
        """The page size a run asks for: ``scim.page_size``, cut to the server's ``filter.maxResults``."""
        max_results = self.scim.capabilities.max_results if self.scim.capabilities else None
        return min(self.page_size, max_results or self.page_size)


async def run_check(config: Config) -> CheckReport:
    """Both sides at once; a failure of one is reported, not raised, and does not hide the other."""
    okta, scim = await asyncio.gather(_check_okta(config), _check_scim(config))
    warnings: list[str] = []
    if scim.user_schema is not None:
        warnings = unannounced_paths((parse_target_path(text) for text in config.mapping), scim.user_schema)
    groups = None
    if config.groups.enabled:
        failed = [side for side, error in (("Okta", okta.error), ("SCIM", scim.error)) if error is not None]
        if failed:
            groups = GroupsSide(not_read=f"not read: the {' and '.join(failed)} connection failed (see above)")
        else:
            groups = await _check_groups(config)
    return CheckReport(okta, scim, config.scim.page_size, warnings, groups)


async def _check_groups(config: Config) -> GroupsSide:
    try:
        async with okta_source(config) as source, scim_reader(config) as reader:
            desired, actual = await read_groups(config, source, reader)
    except ReconcileError as error:
        return GroupsSide(error=str(error))
    return GroupsSide([g.name for g in desired], sum(len(g.member_ids) for g in desired), len(actual))


async def _check_okta(config: Config) -> OktaSide:
    try:
        async with okta_source(config) as source:
            return OktaSide(app=await source.describe_app())
    except ReconcileError as error:
        return OktaSide(error=str(error))


async def _check_scim(config: Config) -> ScimSide:
    try:
        async with scim_reader(config) as reader:
            capabilities = await reader.discover()
            users = await reader.count_users()
            works = await reader.filter_works() if capabilities.filter_supported else None
            schema = await reader.discover_user_schema()
            return ScimSide(capabilities, works, users, schema)
    except ReconcileError as error:
        return ScimSide(error=str(error))


def check_document(report: CheckReport) -> dict[str, Any]:
    """The report as JSON-ready data (``--output json``)."""
    scim = report.scim
    schema = scim.user_schema
    return {
        "ok": report.ok,
        "okta": {"error": report.okta.error, "app": asdict(report.okta.app) if report.okta.app else None},
        "scim": {
            "error": scim.error,
            "users": scim.users,
            "capabilities": asdict(scim.capabilities) if scim.capabilities else None,
            "filter_works": scim.filter_works,
            "page_size": report.effective_page_size(),
            "user_extensions": list(schema.extensions) if schema and schema.extensions is not None else None,
            "user_attributes": (
                {urn: sorted(names) for urn, names in schema.attributes.items()}
                if schema and schema.attributes is not None
                else None
            ),
        },
        "mapping_warnings": report.mapping_warnings,
        "groups": asdict(report.groups) if report.groups is not None else None,
    }


def render_check(console: Console, config: Config, report: CheckReport) -> None:
    console.print(f"[bold]Okta[/] {escape(config.okta.org_url)}  app {escape(config.okta.app_id)}")
    for line in _okta_lines(report.okta):
        console.print(f"  {line}")
    console.print(f"[bold]SCIM[/] {escape(config.scim.base_url)}")
    for line in _scim_lines(report):
        console.print(f"  {line}")
    for warning in report.mapping_warnings:
        console.print(f"  [yellow]mapping:[/] {escape(warning)}")
    if report.groups is not None:
        console.print("[bold]Groups[/]")
        console.print(f"  {_groups_line(report.groups)}")
    if report.ok:
        console.print("[green]Both connections work.[/]")
    else:
        console.print("[red]A connection failed: see above.[/]")


def _groups_line(side: GroupsSide) -> str:
    if side.not_read is not None:
        return f"[yellow]–[/] {escape(side.not_read)}"
    if side.error is not None:
        return f"[red]✗[/] {escape(side.error)}"
    names = ", ".join(side.pushed) or "none (no group assigned to the app yet)"
    return (
        f"[green]✓[/] {len(side.pushed)} pushed ({escape(names)}), {side.members} memberships in Okta; "
        f"{side.platform_groups} groups on the platform"
    )


def _okta_lines(side: OktaSide) -> list[str]:
    if side.error is not None or side.app is None:
        return [f"[red]✗[/] {escape(side.error or 'no answer')}"]
    app = side.app
    status = app.status if app.status == "ACTIVE" else f"[yellow]{escape(app.status)}[/] (Okta pushes nothing)"
    features = ", ".join(app.features) or "none turned on"
    lines = [
        f"[green]✓[/] app {escape(app.label)!r} ({escape(app.name)}, {escape(app.sign_on_mode)}), {status}",
        f"provisioning: {escape(features)}",
        "assignments: readable" + ("" if app.has_assignments else " [yellow](none yet)[/]"),
    ]
    if app.rate_limit is not None:
        lines.append(f"rate limit: {app.rate_limit} requests per minute on the assignment listing")
    return lines


def _scim_lines(report: CheckReport) -> list[str]:
    side = report.scim
    if side.error is not None or side.capabilities is None:
        return [f"[red]✗[/] {escape(side.error or 'no answer')}"]
    capabilities = side.capabilities
    lines = [f"[green]✓[/] {side.users:,} users" if side.users is not None else "[green]✓[/] connected"]
    lines.append(
        "PATCH: supported (updates are PATCHes)"
        if capabilities.patch_supported
        else "PATCH: not supported (updates PUT the whole user; attributes not mapped are sent back unchanged)"
    )
    lines.append(_filter_line(capabilities, side.filter_works))
    lines.append(f"page size: {report.effective_page_size()}" + _cap_note(report))
    lines.append(
        "ETag: supported (writes carry If-Match; on 412 the user is read again and written once more)"
        if capabilities.etag_supported
        else "ETag: not supported (writes carry no If-Match)"
    )
    schema = side.user_schema.describe() if side.user_schema else "not read"
    lines.append(f"User schemas: {escape(schema)}")
    return lines


def _filter_line(capabilities: ScimCapabilities, works: bool | None) -> str:
    if not capabilities.filter_supported:
        return "filter: not supported (a lookup by userName scans the listing)"
    if works:
        return "filter: supported (a lookup by userName asks for userName eq)"
    return "filter: [yellow]announced, but refused[/] (a lookup by userName scans the listing)"


def _cap_note(report: CheckReport) -> str:
    max_results = report.scim.capabilities.max_results if report.scim.capabilities else None
    if max_results is None:
        return ""
    return f" (scim.page_size {report.page_size}; the server returns at most {max_results})"
