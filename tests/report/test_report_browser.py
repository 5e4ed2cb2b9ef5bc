"""The report's page in a real headless Chromium: the DOM the browser built shows the store's counts, the trend
has one mark per run, the page asks the network for nothing, and it screenshots and prints to PDF."""

from __future__ import annotations

import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import sqlalchemy as sa

from reconciler.config import fingerprint
from tests.report.conftest import Evidence
from tests.support.chromium import Chromium
from tests.support.cli_runner import reconcile


class Elements(HTMLParser):
    """Every element of a serialised DOM with its attributes, and the text inside each ``data-figure``."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.figures: dict[str, str] = {}
        self._figure: str | None = None
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        self._figure = attributes.get("data-figure")

    def handle_data(self, data: str) -> None:
        if self._figure is not None and data.strip():
            self.figures[self._figure] = data.strip()
            self._figure = None

    def having(self, attribute: str, tag: str | None = None) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if attribute in attrs and tag in (None, name)]


def runs_of(evidence: Evidence) -> dict[int, str]:
    engine = sa.create_engine(evidence.config.store.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, status FROM runs WHERE config_fingerprint = :fp"),
                {"fp": fingerprint(evidence.config)},
            )
            return {run_id: status for run_id, status in rows}
    finally:
        engine.dispose()


def written_report(evidence: Evidence, tmp_path: Path) -> tuple[Path, dict]:
    page = tmp_path / "report.html"
    assert reconcile("--config", evidence.config_file, "report", "--out", page).code == 0
    document = reconcile("--config", evidence.config_file, "report", "--format", "json", "--out", "-").json()
    return page, document


def test_the_browsers_dom_shows_the_stores_counts_and_one_mark_per_run(
    evidence: Evidence, tmp_path: Path, chromium: Chromium
) -> None:
    page, document = written_report(evidence, tmp_path)

    dom = Elements(chromium.dump_dom(page))

    summary = document["summary"]
    for figure in ("runs", "full_audits", "incremental_runs", "successful_runs", "safety_stops", "failures"):
        assert dom.figures[figure] == f"{summary[figure]:,}", figure
    assert dom.figures["revocations"] == str(document["time_to_revoke"]["count"])
    assert len(dom.having("data-run-row", "tr")) == summary["runs"]
    marks = dom.having("data-run", "circle")
    runs = runs_of(evidence)
    assert sorted(int(str(mark["data-run"])) for mark in marks) == sorted(runs), "one mark per run"
    assert {int(str(m["data-run"])): m["data-status"] for m in marks} == runs
    [stop] = [mark for mark in marks if mark["data-status"] == "blocked"]
    assert int(str(stop["data-run"])) == evidence.runs["stopped"]
    assert {attrs["data-kind-total"] for attrs in dom.having("data-kind-total")} == set(document["actions"])


def test_the_page_makes_no_network_request(evidence: Evidence, tmp_path: Path, chromium: Chromium) -> None:
    page, _ = written_report(evidence, tmp_path)

    assert chromium.requests_made(page) == []


def test_the_page_screenshots_and_prints_to_pdf(evidence: Evidence, tmp_path: Path, chromium: Chromium) -> None:
    page, _ = written_report(evidence, tmp_path)

    png = chromium.screenshot(page, tmp_path / "report.png", 1200, 1600)
    pdf = chromium.print_to_pdf(page, tmp_path / "report.pdf")

    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == (1200, 1600)
    printed = pdf.read_bytes()
    assert printed.startswith(b"%PDF-") and printed.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", printed)) >= 2, "the report spans pages"
