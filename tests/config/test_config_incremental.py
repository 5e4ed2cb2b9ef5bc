"""``[incremental]``: the System Log follower's settings, their defaults, bounds and per-tenant overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_config, load_fleet
from reconciler.config.incremental_model import IncrementalConfig
from tests.config.test_config import ENV, MINIMAL, REPO, WriteConfig, load, problems_of
from tests.config.test_config import write_config as write_config  # the fixture
from tests.config.test_config_tenants import ENV as FLEET_ENV
from tests.config.test_config_tenants import fleet_problems, tenant


def test_a_file_without_incremental_follows_the_log_with_the_documented_defaults(write_config: WriteConfig) -> None:
    settings = load(write_config, MINIMAL).incremental
    assert settings == IncrementalConfig(
        enabled=True,
        poll_s=10.0,
        overlap_s=900.0,
        max_gap_s=1800.0,
        recheck_after_s=180.0,
        window_s=600.0,
        batch_limit=1000,
    )
    assert (settings.window_text, settings.max_gap) == ("10m", "30m")


def test_every_key_is_read_from_the_file(write_config: WriteConfig) -> None:
    text = MINIMAL + (
        '[incremental]\nenabled = false\npoll = "5s"\noverlap = "20m"\nmax_gap = "1h"\n'
        'recheck_after = 0\nwindow = "15m"\nbatch_limit = 200\n'
    )
    settings = load(write_config, text).incremental
    assert settings == IncrementalConfig(False, 5.0, 1200.0, 3600.0, 0.0, 900.0, 200)
    assert settings.window_text == "15m"


def test_the_example_file_shows_every_key_at_its_default() -> None:
    assert "\n[incremental]\n" in (REPO / "config.example.toml").read_text()
    assert load_config(REPO / "config.example.toml", ENV).incremental == IncrementalConfig()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('poll = "500ms"', 'incremental.poll: expected a duration such as "30m", "6h" or "1d", got "500ms"'),
        ("poll = 0.5", 'incremental.poll: expected a duration from "1s" to "10m", got 0.5'),
        ('poll = "11m"', 'incremental.poll: expected a duration from "1s" to "10m", got "11m"'),
        (
            'poll = "0s"',
            'incremental.poll: 0 is not a usable duration here: set one greater than 0, such as "30m" — or remove '
            'it for the default, "10s"',
        ),
        ('overlap = "2d"', 'incremental.overlap: expected a duration of at most "1d", got "2d"'),
        ('max_gap = "31d"', 'incremental.max_gap: expected a duration of at most "30d", got "31d"'),
        ('window = "-1m"', 'incremental.window: expected a duration such as "30m", "6h" or "1d", got "-1m"'),
        ("batch_limit = 5000", "incremental.batch_limit: expected an integer from 1 to 1000, got 5000"),
        ("batch_limit = 0", "incremental.batch_limit: expected an integer from 1 to 1000, got 0"),
        ('enabled = "yes"', 'incremental.enabled: expected true or false, got "yes"'),
        ('pol = "10s"', "incremental.pol: unknown key — did you mean poll?"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key_and_the_fix(write_config: WriteConfig, line: str, problem: str) -> None:
    assert problems_of(write_config(MINIMAL + f"[incremental]\n{line}\n")) == [problem]


def test_bounds_are_inclusive(write_config: WriteConfig) -> None:
    lowest = load(write_config, MINIMAL + '[incremental]\npoll = "1s"\nbatch_limit = 1\n').incremental
    assert (lowest.poll_s, lowest.batch_limit) == (1.0, 1)
    assert load(write_config, MINIMAL + '[incremental]\npoll = "10m"\n').incremental.poll_s == 600.0


def test_a_tenant_overrides_the_top_level_incremental_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[incremental]\npoll = "30s"\nwindow = "20m"\n'
        + tenant("acme", "[tenants.incremental]", "enabled = false", 'poll = "5s"')
        + tenant("globex")
    )
    fleet = load_fleet(path, FLEET_ENV)
    acme, globex = (config.incremental for config in fleet.tenants)
    assert (acme.enabled, acme.poll_s, acme.window_s) == (False, 5.0, 1200.0)
    assert (globex.enabled, globex.poll_s, globex.window_s) == (True, 30.0, 1200.0)


def test_a_tenants_bad_value_is_named_after_the_tenant(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[incremental]\npoll = "1h"\n' + tenant("acme") + tenant("globex", "[tenants.incremental]"))
    assert fleet_problems(path) == [
        'tenants[acme].incremental.poll (from the top-level [incremental]): expected a duration from "1s" to "10m", '
        'got "1h"',
        'tenants[globex].incremental.poll (from the top-level [incremental]): expected a duration from "1s" to '
        '"10m", got "1h"',
    ]
