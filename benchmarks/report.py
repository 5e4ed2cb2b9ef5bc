"""What the bench prints: one rich table per size and side, then one JSON line per size."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.baselines import NaiveResult, RawResult
from benchmarks.scenario import Minimum


@dataclass(frozen=True)
class RunRow:
    """One reconcile run as measured: requests counted on the servers (or by httpx, for scim2-server)."""

    name: str
    okta: int
    scim_get: int
    scim_writes: int
    minimum: Minimum
    wall_s: float
    cpu_s: float
    rss_mb: float
    floor_s: float | None = None
    """The latency floor (lightweight server); None where it does not apply."""
    raw: RawResult | None = None
    """The bare client's run against the same server (scim2-server)."""
    plan_us_per_user: float | None = None
    okta_429s: int = 0

    @property
    def requests(self) -> int:
        return self.okta + self.scim_get + self.scim_writes

    @property
    def ratio(self) -> float | None:
        if self.floor_s:
            return self.wall_s / self.floor_s
        if self.raw is not None and self.raw.wall_s:
            return self.wall_s / self.raw.wall_s
        return None


def _fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _versus(actual: int, minimum: int) -> str:
    text = f"{actual:,}"
    return text if actual == minimum else f"[bold red]{text}[/]"


def runs_table(title: str, rows: Sequence[RunRow], caption: str) -> Table:
    """Requests vs the minimum, wall time vs its floor, CPU, planning cost and memory, one row per run."""
    raw = any(row.raw is not None for row in rows)
    table = Table(title=title, caption=caption, caption_justify="left", title_justify="left")
    for header in ("run", "Okta", "SCIM GET", "SCIM writes", "requests", "minimum"):
        table.add_column(header, justify="right" if header != "run" else "left")
    for header in ("wall s", "raw floor s" if raw else "floor s", "wall/floor", "CPU s", "plan µs/user", "peak RSS MB"):
        table.add_column(header, justify="right")
    for row in rows:
        minimum = row.minimum
        floor = row.raw.wall_s if row.raw is not None else row.floor_s
        table.add_row(
            row.name,
            _versus(row.okta, minimum.okta_pages + minimum.token_requests),
            _versus(row.scim_get, minimum.scim_reads),
            _versus(row.scim_writes, minimum.writes),
            _versus(row.requests, minimum.requests),
            f"{minimum.requests:,}",
            _fmt_s(row.wall_s),
            _fmt_s(floor),
            _fmt_ratio(row.ratio),
            _fmt_s(row.cpu_s),
            "—" if row.plan_us_per_user is None else f"{row.plan_us_per_user:.1f}",
            f"{row.rss_mb:,.0f}",
        )
    return table


def naive_table(naive: NaiveResult, ours: RunRow) -> Table:
    """The naive baseline beside our dry-run (neither writes)."""
    table = Table(
        title='Naive baseline: one GET /Users?filter=userName eq "…" per desired user (as Okta does before a '
        "create), after the Okta pages, same read concurrency",
        title_justify="left",
        caption=(
            f"Measured whole ({naive.lookups:,} lookups in {naive.lookups_s:.2f} s)."
            if not naive.sampled
            else f"Wall time extrapolated from a sample of {naive.lookups:,}: the first {naive.lookups:,} desired "
            f"users took {naive.lookups_s:.2f} s, scaled linearly to {naive.population:,}, plus the Okta listing "
            f"({naive.okta_s:.2f} s). Requests are exact. --naive-full measures it whole."
        ),
        caption_justify="left",
    )
    for header in ("", "requests", "wall s", "naive / ours: requests", "naive / ours: wall"):
        table.add_column(header, justify="right" if header else "left")
    wall = f"{naive.wall_s:,.2f}" + (" (extrapolated)" if naive.sampled else "")
    table.add_row("naive", f"{naive.requests:,}", wall, "", "")
    table.add_row("ours (dry-run)", f"{ours.requests:,}", f"{ours.wall_s:,.2f}", "", "")
    table.add_row("ratio", "", "", f"{naive.requests / ours.requests:,.1f}×", f"{naive.wall_s / ours.wall_s:,.1f}×")
    return table


def json_line(fields: Mapping[str, Any]) -> str:
    """The machine-readable line; the issue's keys first, in its order."""
    return json.dumps(dict(fields), separators=(", ", ": "))


def print_problems(console: Console, problems: Sequence[str]) -> None:
    for problem in problems:
        console.print(f"[bold red]CHECK FAILED:[/] {problem}")
