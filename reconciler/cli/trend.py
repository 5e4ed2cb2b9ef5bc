"""The drift trend above ``reconcile history``: one sparkline per tenant, oldest run left, newest right.

A run's drift is what its plan found to repair (create + update + deactivate + reactivate + conflict, from the
run's ``planned_*`` columns). Every line shares one scale, so tenants compare at a glance: ``▁`` is in sync, ``█``
the most drift shown, any drift at least ``▂``. A run without a plan (it failed before planning, or is still
running) is a gap, ``·``; a run the safety gates stopped is ``!`` whatever its drift, since what it found was
not applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from reconciler.models.runs import RunStatus
from reconciler.report.model import DRIFT_KINDS
from reconciler.store import Run

BARS = "▁▂▃▄▅▆▇█"
NO_PLAN = "·"
BLOCKED = "!"


@dataclass(frozen=True, slots=True)
class Point:
    """One run on the chart: its drift (None without a plan) and whether the safety gates stopped it."""

    drift: int | None
    blocked: bool


def drift_of(run: Run) -> int | None:
    """The drift the run's plan found; None if the run never planned."""
    summary = run.summary
    return None if summary is None else sum(summary[kind] for kind in DRIFT_KINDS)


def trend_lines(runs: Sequence[Run]) -> dict[str, list[Point]]:
    """The runs (newest first, as the store lists them) as points per tenant, oldest first; one line without tenants."""
    lines: dict[str, list[Point]] = {}
    tenants = any(run.tenant for run in runs)
    for run in reversed(runs):
        label = (run.tenant or "-") if tenants else "drift"
        lines.setdefault(label, []).append(Point(drift_of(run), run.status is RunStatus.BLOCKED))
    return dict(sorted(lines.items()))


def glyph(point: Point, top: int) -> str:
    """The point's character on a scale whose ``█`` is ``top`` drift."""
    if point.blocked:
        return BLOCKED
    if point.drift is None:
        return NO_PLAN
    if point.drift == 0 or top == 0:
        return BARS[0]
    return BARS[max(1, -(-point.drift * (len(BARS) - 1) // top))]


_STYLES = {BLOCKED: "bold red", NO_PLAN: "dim", BARS[0]: "green"}


def render_trend(console: Console, runs: Sequence[Run]) -> None:
    """The sparklines and a legend with the scale; nothing when there is no run."""
    if not runs:
        return
    lines = trend_lines(runs)
    drifts = [point.drift for points in lines.values() for point in points if point.drift is not None]
    top = max(drifts, default=0)
    width = max(len(label) for label in lines)
    console.print(Text("Drift per run, oldest left", style="bold"))
    for label, points in lines.items():
        line = Text(f"{label:<{width}}  ")
        for point in points:
            char = glyph(point, top)
            line.append(char, style=_STYLES.get(char, "yellow"))
        last = next((p.drift for p in reversed(points) if p.drift is not None), None)
        line.append(f"  last {last if last is not None else '-'}")
        console.print(line, highlight=False)
    scale = f"min {min(drifts)}, max {top}" if drifts else "no run planned"
    legend = f"{BARS[0]} in sync … {BARS[-1]} {top} to repair ({scale}; create+update+deactivate+reactivate+conflict)"
    console.print(escape(f"{legend}; {NO_PLAN} no plan; {BLOCKED} blocked by a safety threshold"), highlight=False)
    console.print()
