"""`make bench` cannot rot: its whole machinery, end to end, at a tiny size.

Real processes as in `make bench` (the Okta emulator and the lightweight SCIM server, each in
its own process, 1 ms latency); the reconciler runs in this process (``--in-process``), where
``reconciler.run.reconcile`` is already imported, to keep the test quick, but for the test of the
per-user figures, whose memory must be the reconciler's own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest

from benchmarks import bench, fleet
from benchmarks.scenario import Drift, Minimum, okta_pages, scim_pages

N = 300


def test_scenario_arithmetic() -> None:
    assert Drift.for_size(100_000) == Drift(333, 333, 334)
    assert Drift.for_size(N) == Drift(1, 1, 1)
    assert (okta_pages(100_000), okta_pages(500), okta_pages(501), scim_pages(0, 1000)) == (200, 1, 2, 1)
    minimum = Minimum(okta_pages=200, scim_pages=101, writes=1000)
    assert minimum.requests == 200 + 101 + 1 + 1000
    # max(200 × 20 ms, 20 ms + ⌈100/4⌉ × 20 ms) + ⌈1000/4⌉ × 20 ms
    assert minimum.floor_s(0.020, 4, 4) == pytest.approx(4.0 + 5.0)


def test_bench_end_to_end_at_a_tiny_size(capsys: pytest.CaptureFixture[str]) -> None:
    transport = httpx.AsyncHTTPTransport.handle_async_request
    code = bench.main(
        ["--n", str(N), "--latency-ms", "1", "--naive-sample", "50", "--no-scim2", "--no-pacing", "--in-process"]
        + ["--first-request-attempts", "0"]  # timed in the test below
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert httpx.AsyncHTTPTransport.handle_async_request is transport  # the request counter is gone again
    assert "lightweight SCIM server" in out
    assert "extrapolated from a sample of 50" in out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"n"')]
    assert len(lines) == 1, out
    result = lines[0]
    assert list(result)[:9] == [
        "n", "requests", "requests_min", "wall_s", "floor_s", "plan_us_per_user", "rss_mb", "naive_requests",
        "naive_wall_s",
    ]  # fmt: skip
    assert result["n"] == N
    assert result["checks_passed"] is True
    assert result["dry_run_summary"] == {
        "create": 1, "update": 1, "deactivate": 1, "reactivate": 0, "link": 0, "conflict": 0, "unmanaged": 0,
        "in_sync": N - 2,
    }  # fmt: skip
    assert result["dry_run_requests"] == result["dry_run_requests_min"] == 1 + 1 + 1  # Okta, discovery, SCIM page
    assert result["requests"] == result["requests_min"] == 3 + 3  # the same reads + one write per action
    assert result["recheck_writes"] == 0
    assert result["okta_429s"] == 0
    assert result["naive_requests"] == N + 1
    assert result["wall_s"] > 0 and result["floor_s"] > 0 and result["plan_us_per_user"] > 0


def test_bench_reports_cpu_memory_and_first_request_per_user(capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's per-user keys, from a runner in its own process and a real `reconcile --dry-run` process."""
    args = ["--n", str(N), "--latency-ms", "1", "--naive-sample", "10", "--no-scim2", "--no-pacing", "--fast-start"]
    code = bench.main([*args, "--first-request-attempts", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(next(line for line in out.splitlines() if line.startswith('{"n"')))
    assert result["cpu_us_per_user"] > 0
    assert result["cpu_us_per_user"] == pytest.approx(result["dry_run_cpu_s"] / N * 1e6, rel=0.02)
    # Memory: the dry-run's peak above the runner's RSS after its import (a Python with httpx, sqlalchemy and the
    # reconciler loaded: tens of MB, so a real reading and not a zero).
    assert result["rss_after_import_mb"] > 30
    assert math.isfinite(result["bytes_per_user"]) and result["bytes_per_user"] > 0
    above = (result["dry_run_peak_rss_mb"] - result["rss_after_import_mb"]) * 2**20
    assert result["bytes_per_user"] == pytest.approx(above / N, rel=0.01, abs=2**20 * 0.1 / N)
    assert result["dry_run_peak_rss_mb"] <= result["rss_mb"]
    # A fresh process cannot start Python and send a request in under 50 ms; a clock mix-up would give
    # a negative figure or one in the billions.
    assert result["first_request_attempts_s"] == [result["first_request_s"]]
    assert 0.05 < result["first_request_s"] < 60
    assert "Per user, first dry-run:" in out and "Process start → first request:" in out


def test_profile_of_the_dry_run_alone_with_pyinstrument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What `make profile` does, at a tiny size: the first dry-run alone, its call tree as HTML and text."""
    args = ["--n", str(N), "--latency-ms", "1", "--no-scim2", "--no-pacing", "--in-process", "--dry-run-only"]
    profile_dir = tmp_path / "profile"
    code = bench.main(
        [*args, "--first-request-attempts", "0", "--profiler", "pyinstrument", "--profile-dir", str(profile_dir)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert sorted(path.name for path in profile_dir.iterdir()) == [
        f"lightweight-{N}-dry-run.html",
        f"lightweight-{N}-dry-run.txt",
    ]
    tree = (profile_dir / f"lightweight-{N}-dry-run.txt").read_text()
    assert "reconcile" in tree  # the reconciler's own frames are in the call tree
    assert f"profile written: {profile_dir / f'lightweight-{N}-dry-run.html'}" in out
    result = json.loads(next(line for line in out.splitlines() if line.startswith('{"n"')))
    assert result["checks_passed"] is True
    assert result["dry_run_requests"] == result["dry_run_requests_min"]
    assert "requests" not in result and "naive_requests" not in result  # no apply, no naive baseline


def test_fleet_bench_end_to_end_at_a_tiny_size(postgres, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """benchmarks/fleet.py as `make bench` runs it, one replica, two tenants, a one-second window."""
    code = fleet.main(["--max-replicas", "1", "--tenants", "2", "--users", "3", "--window-s", "1"], postgres=postgres)
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(next(line for line in out.splitlines() if line.startswith('{"check": "fleet"')))
    assert result["checks_passed"] is True
    assert result["replicas_1"]["per_minute"] > 0 and result["replicas_1"]["ratio"] == 1.0
    assert "Fleet: 2 tenants of 3 users" in out
