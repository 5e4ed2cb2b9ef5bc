"""`make bench-report` cannot rot: its store filler and its timed reports, end to end at a tiny size."""

from __future__ import annotations

import json

import pytest

from benchmarks import evidence_report


def test_the_report_bench_end_to_end_at_a_tiny_size(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("BENCH_OKTA_TOKEN", "BENCH_SCIM_TOKEN"):
        monkeypatch.setenv(variable, "not-a-real-token-only-the-bench")

    code = evidence_report.main(["--users", "300", "--runs", "20", "--days", "2"])

    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and "target: the page within 5 s and 5 MB: met" in out
    assert figures["users"] == 300 and figures["runs"] == 22, "20 full audits and 2 System Log repairs"
    assert figures["actions"] >= 300, "the first apply creates every user"
    for form in ("html", "json", "csv"):
        assert figures[f"{form}_s"] > 0 and figures[f"{form}_mb"] > 0 and figures[f"{form}_rss_mb"] > 20
