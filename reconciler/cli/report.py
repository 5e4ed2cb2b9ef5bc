"""``reconcile report``: the report of one target over a period, written whole to ``--out`` or not at all."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

from reconciler.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from reconciler.config.model import Config, FleetConfig, fingerprint
from reconciler.files import write_private_stream
from reconciler.logs import tell
from reconciler.report.collect import ReportError, action_entry, collect_report
from reconciler.report.export import EntrySource, write_csv, write_json
from reconciler.report.html import render_html
from reconciler.report.model import Period, Report
from reconciler.report.period import period_of
from reconciler.store import Store

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
    page = args.format == "html"
    config = fleet.tenants[0]
    try:
        report = collect_report(
            config,
            store,
            period,
            limit=args.max_actions if page else 0,
            coverage_limit=args.max_actions if page else None,
            now=now,
        )
    except ReportError as error:
        tell(f"reconcile report: {error}")
        return EXIT_FAILURE
    write = _writer(args.format, report, _entries(store, config, period))
    if str(out) == STDOUT:
        write(sys.stdout)
        return EXIT_OK
    try:
        write_private_stream(out, write)
    except OSError as error:
        tell(f"reconcile report: cannot write --out {out}: {error.strerror or error}")
        return EXIT_FAILURE
    print(f"report of {report.summary.runs} run(s) written to {out}")
    return EXIT_OK


def _entries(store: Store, config: Config, period: Period) -> EntrySource:
    """The period's actions of one kind, read from the store as an export writes them."""
    target = fingerprint(config)
    return lambda kind: map(action_entry, store.stream_live_actions(target, period.start, period.end, kind))


def _writer(form: str, report: Report, entries: EntrySource) -> Callable[[TextIO], object]:
    if form == "json":
        return lambda out: write_json(report, entries, out)
    if form == "csv":
        return lambda out: write_csv(report, entries, out)
    page = render_html(report)
    return lambda out: out.write(page)


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
