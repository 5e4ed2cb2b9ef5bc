"""The report's charts, drawn by pygal as SVG to inline in the page: no script, no font, no request.

pygal puts a ``<script>`` in every chart for its tooltips (its config, and a link to its JavaScript on a CDN):
the report takes neither. ``js=[]`` drops the link and :func:`_without_scripts` (a pygal ``xml_filter``) the
inline config; a browser still shows each point's ``<title>`` on hover, with no script at all.

Every run is one mark (``data-run``, its run id, and ``data-status``), linked to the run's row in the page's
runs table, so a reader goes from a spike to the run that found it. The lines of each kind join the full audits
only: a System Log repair, about a few users, would read as a dip to zero, so it is a mark of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final
from xml.etree.ElementTree import Element

import pygal
from pygal.style import Style

from reconciler.models.runs import FULL_AUDIT_MODES
from reconciler.report.model import DRIFT_KINDS, RevokeStats, RunPoint

KIND_COLOURS: Final = {
    "create": "#2e7d32",
    "update": "#1565c0",
    "deactivate": "#c62828",
    "reactivate": "#6a1b9a",
    "conflict": "#ef6c00",
}
RUN_COLOUR: Final = "#455a64"
INCREMENTAL_COLOUR: Final = "#00838f"
STOP_COLOUR: Final = "#000000"
FAILED_COLOUR: Final = "#9e9e9e"
RUN_SERIES: Final = "full audit (total)"
INCREMENTAL_SERIES: Final = "System Log repair"
MARK_SIZES: Final = {RUN_SERIES: 2.5, INCREMENTAL_SERIES: 2.5, "safety stop": 6, "failed": 5}
FAILED_STATUSES: Final = frozenset({"failed", "partial", "interrupted"})
SYSTEM_FONTS: Final = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def _style(colours: Sequence[str]) -> Style:
    return Style(
        font_family=SYSTEM_FONTS,
        background="white",
        plot_background="white",
        foreground="#222",
        foreground_strong="#000",
        foreground_subtle="#bbb",
        colors=tuple(colours),
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
        title_font_size=14,
    )


def _without_scripts(root: Element) -> Element:
    """Remove every ``<script>`` pygal added (its tooltip config), and the ``<desc>`` texts only that script
    reads (each point's value and position, again): a browser shows each point's ``<title>`` without them."""
    for parent in list(root.iter()):
        for child in list(parent):
            if _local(child.tag) in ("script", "desc"):
                parent.remove(child)
    return root


def _local(tag: object) -> str:
    """An element's tag without its namespace; "" for a comment (whose tag is a function)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _common(colours: Sequence[str]) -> dict[str, Any]:
    return {
        "style": _style(colours),
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": False,
        "width": 960,
        "height": 360,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 4,
        "truncate_legend": -1,
    }


def _rendered(chart: pygal.graph.graph.Graph) -> str:
    chart.add_xml_filter(_without_scripts)
    return str(chart.render(is_unicode=True))


def drift_trend(runs: Sequence[RunPoint]) -> str:
    """Drift found by kind over time (a line per kind, across the full audits), and one mark per run at its
    total drift, linked to the run's row: a full audit, a System Log repair, a safety stop and a failed run
    each have their own kind of mark, as SVG."""
    colours = [*KIND_COLOURS.values(), RUN_COLOUR, INCREMENTAL_COLOUR, STOP_COLOUR, FAILED_COLOUR]
    chart = pygal.DateTimeLine(
        **_common(colours),
        x_value_formatter=lambda moment: moment.strftime("%Y-%m-%d %H:%M"),
        x_label_rotation=20,
        stroke_style={"width": 1.5},
        allow_interruptions=True,
        min_scale=1,
        include_x_axis=True,
        title="Drift found per run, by kind",
        y_title="users",
    )
    audits = [run for run in runs if run.mode in FULL_AUDIT_MODES]
    for kind in DRIFT_KINDS:
        line = [(_naive(run.started_at), None if run.drift is None else run.drift[kind]) for run in audits]
        chart.add(kind, line, show_dots=False)
    for series, chosen in _marks(runs).items():
        chart.add(series, [_mark(run) for run in chosen], stroke=False, dots_size=MARK_SIZES[series])
    return _rendered(chart)


def _marks(runs: Sequence[RunPoint]) -> dict[str, list[RunPoint]]:
    """Each run in exactly one series of marks: a safety stop, a failure, a System Log repair or a full audit."""
    marks: dict[str, list[RunPoint]] = {RUN_SERIES: [], INCREMENTAL_SERIES: [], "safety stop": [], "failed": []}
    for run in runs:
        if run.status == "blocked":
            marks["safety stop"].append(run)
        elif run.drift is None or run.status in FAILED_STATUSES:
            marks["failed"].append(run)
        elif run.mode not in FULL_AUDIT_MODES:
            marks[INCREMENTAL_SERIES].append(run)
        else:
            marks[RUN_SERIES].append(run)
    return marks


def _mark(run: RunPoint) -> dict[str, Any]:
    when = run.started_at.strftime("%Y-%m-%d %H:%M UTC")
    found = ", ".join(f"{kind} {n}" for kind, n in (run.drift or {}).items() if n) or "no drift"
    planned = found if run.drift is not None else "no plan"
    return {
        "value": (_naive(run.started_at), run.total_drift or 0),
        "tooltip": f"run {run.id} ({run.mode}, {run.status}), {when}: {planned}",
        "xlink": {"href": f"#run-{run.id}", "target": "_self"},
        "node": {"data-run": run.id, "data-status": run.status},
    }


def _naive(moment: datetime) -> datetime:
    """pygal's time axis takes naive datetimes; the report's are UTC."""
    return moment.replace(tzinfo=None)


def whole_ticks(top: int, at_most: int = 8) -> list[int]:
    """Ticks for a count axis: whole numbers from 0 past ``top``, at most ``at_most`` of them."""
    step = max(1, -(-top // (at_most - 1)))
    return list(range(0, top + step + 1, step))


def revoke_histogram(stats: RevokeStats) -> str:
    """How many deactivations took how long to reach the platform, as SVG bars."""
    chart = pygal.Bar(
        **_common([KIND_COLOURS["deactivate"]]),
        title="Time to revoke",
        y_title="deactivations",
        show_legend=False,
        min_scale=1,
    )
    chart.height = 280
    chart.x_labels = [label for label, _ in stats.histogram]
    chart.y_labels = whole_ticks(max(n for _, n in stats.histogram))
    chart.add("deactivations", [{"value": n, "tooltip": f"{label}: {n}"} for label, n in stats.histogram])
    return _rendered(chart)
