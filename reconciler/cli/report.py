"""``reconcile report``: the report of one target over a period, written whole to ``--out`` or not at all."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from reconciler.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from reconciler.config.model import FleetConfig
from reconciler.files import write_private_file
from reconciler.logs import tell
from reconciler.report.collect import ReportError, collect_report
from reconciler.report.export import render_csv, render_json
from reconciler.report.html import render_html
from reconciler.report.model import Report
from reconciler.report.period import period_of
from reconciler.store import Store

RENDERERS: Final[dict[str, Callable[[Report], str]]] = {"html": render_html, "json": render_json, "csv": render_csv}
STDOUT: Final = "-"


def run_report_command(args: argparse.Namespace, fleet: FleetConfig, store: Store) -> int:
    if len(fleet.tenants) != 1:
        names = ", ".join(config.tenant or "?" for config in fleet.tenants)
        tell(f"reconcile report: this file has several [[tenants]]: pass --tenant NAME (one of: {names})")
        return EXIT_USAGE
    now = datetime.now(UTC)
    try:
        period = period_of(args.since, args.from_, args.to, args.as_of, now)
    except ValueError as error:
        tell(f"reconcile report: {error}")
        return EXIT_USAGE
    out = args.out or Path(f"report.{args.format}")
    if str(out) != STDOUT and (problem := unwritable(out)):
        tell(f"reconcile report: cannot write --out {out}: {problem}")
        return EXIT_FAILURE
    limit = None if args.format != "html" else args.max_actions
    try:
        report = collect_report(fleet.tenants[0], store, period, limit=limit, now=now)
    except ReportError as error:
        tell(f"reconcile report: {error}")
        return EXIT_FAILURE
    text = RENDERERS[args.format](report)
    if str(out) == STDOUT:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        write_private_file(out, text)
    except OSError as error:
        tell(f"reconcile report: cannot write --out {out}: {error.strerror or error}")
        return EXIT_FAILURE
    print(f"report of {report.summary.runs} run(s) written to {out}")
    return EXIT_OK


def unwritable(out: Path) -> str | None:
    """Why ``out`` cannot be written, checked before any work; None when it can (the write may still fail)."""
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        return "it is a directory: give a file name"
    if not folder.is_dir():
        return f"there is no directory {folder}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the directory {folder} is not writable"
    return None
