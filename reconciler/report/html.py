"""The report as one self-contained HTML page: jinja2 templates, the CSS inline, the charts as inline SVG.

Nothing is loaded from anywhere when the page is opened (no script, font, image or stylesheet by URL), so it
reads offline, keeps as evidence, and prints to PDF as it shows (``@media print`` in report.css). Every value
from the store goes through jinja2's autoescaping: a user name is text, never markup.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Final

import jinja2

from reconciler.report.charts import drift_trend, revoke_histogram
from reconciler.report.model import SUMMARY_KINDS, Report

TEMPLATE: Final = "report.html.j2"
STYLESHEET: Final = "report.css"


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("reconciler.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(num=number, moment=moment, day=day, duration=duration, show=shown_value)
    return environment


def render_html(report: Report) -> str:
    """The page of ``report``."""
    template = _environment().get_template(TEMPLATE)
    return template.render(
        report=report,
        kinds=SUMMARY_KINDS,
        css=files("reconciler.report").joinpath("templates", STYLESHEET).read_text(encoding="utf-8"),
        trend_svg=drift_trend(report.runs),
        revoke_svg=revoke_histogram(report.revocations) if report.revocations.count else "",
    )


def number(value: int | None) -> str:
    """``12,345``; an em dash for a figure the store does not have."""
    return "—" if value is None else f"{value:,}"


def moment(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def day(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def duration(seconds: float | None) -> str:
    """``850 ms``, ``42 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 d 4 h``."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def shown_value(value: object) -> str:
    """An attribute's value as the action log shows it: text as is, anything else as JSON; absent as "(none)"."""
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
