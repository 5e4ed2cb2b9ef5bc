"""`make bench` cannot rot: its whole machinery, end to end, at a tiny size.

Real processes as in `make bench` (the Okta emulator and the lightweight SCIM server, each in
its own process, 1 ms latency); the reconciler runs in this process (``--in-process``), where
``reconciler.run.reconcile`` is already imported, to keep the test quick.
"""

from __future__ import annotations

import json

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


def test_fleet_bench_end_to_end_at_a_tiny_size(postgres, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """benchmarks/fleet.py as `make bench` runs it, one replica, two tenants, a one-second window."""
    code = fleet.main(["--max-replicas", "1", "--tenants", "2", "--users", "3", "--window-s", "1"], postgres=postgres)
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(next(line for line in out.splitlines() if line.startswith('{"check": "fleet"')))
    assert result["checks_passed"] is True
    assert result["replicas_1"]["per_minute"] > 0 and result["replicas_1"]["ratio"] == 1.0
    assert "Fleet: 2 tenants of 3 users" in out
