"""Saved plans are bound to what shaped them: the mapping, the policy, the groups settings, and their age."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.config import load_config
from reconciler.run.saved.document import signature_of, signing_key
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users
from tests.support.cli_runner import Result, reconcile


def _save(config_file: Path, plan_file: Path) -> Result:
    return reconcile("--config", config_file, "--dry-run", "--save-plan", plan_file)


def _apply(config_file: Path, plan_file: Path, *args: str) -> Result:
    return reconcile("--config", config_file, "apply", plan_file, *args)


def _planned(okta: Okta, config_file: Path, users: int) -> Path:
    """``users`` new assignees, and a dry-run's plan to create them, saved beside the config."""
    okta.emulator.add_assigned_users(okta.app_id, users)
    plan_file = config_file.parent / "plan.json"
    assert _save(config_file, plan_file).code == 2
    return plan_file


def _modes(config_file: Path) -> list[str]:
    return [run["mode"] for run in reconcile("--config", config_file, "history", "--output", "json").json()]


def _rewrite_signed(plan_file: Path, config_file: Path, **members: Any) -> None:
    """Change members of a saved plan and sign it again with the config's credentials, as a valid file would be."""
    document = json.loads(plan_file.read_text())
    for name, value in members.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    document["signature"]["value"] = signature_of(document, signing_key(load_config(config_file)))
    plan_file.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ('[mapping]\ndisplayName = "profile.nickName"\n', 'mapping.displayName: "profile.displayName" in the plan'),
        (
            '[mapping]\ntitle = { source = "profile.title", default = "Staff" }\n',
            "mapping.title: not mapped in the plan",
        ),
        ('[mapping]\nlocale = ""\n', 'mapping.locale: "profile.locale" in the plan, not mapped now'),
        ('[policy]\nsuspended = "deactivate"\n', 'policy.suspended: "keep" in the plan, "deactivate" now'),
        ('[policy]\nunmanaged = "deactivate"\n', 'policy.unmanaged: "report" in the plan, "deactivate" now'),
        ("[groups]\npush_assigned = true\n", "groups.push_assigned: false in the plan, true now"),
    ],
)
def test_a_plan_made_under_other_settings_is_refused_naming_what_changed(
    change: str, named: str, okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    plan_file = _planned(okta, config_file, 2)
    original = config_file.read_text()
    config_file.write_text(original + change)

    refused = _apply(config_file, plan_file, "--yes")
    assert refused.code == 1
    assert "the saved plan is stale" in refused.stderr and named in refused.stderr, refused.stderr
    assert "Make a new plan" in refused.stderr and str(plan_file) in refused.stderr
    assert all_users(platform) == [], "nothing is written"
    assert _modes(config_file) == ["dry-run"], "no apply was started"

    config_file.write_text(original)
    assert _apply(config_file, plan_file).code == 0, "under the settings it was made with, it applies"
    assert len(all_users(platform)) == 2


def test_connection_tuning_and_thresholds_do_not_make_a_plan_stale(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    plan_file = _planned(okta, config_file, 2)
    text = config_file.read_text()
    text = text.replace("[okta]\n", "[okta]\ntimeout_s = 12\nrate_limit_share = 0.3\n")
    text = text.replace(
        "[scim]\n", "[scim]\ntimeout_s = 9\nwrite_concurrency = 1\nread_concurrency = 2\npage_size = 7\n"
    )
    config_file.write_text(text + "[thresholds]\nmax_create = 500\n[alerts]\nalert_drift = 7\n")

    applied = _apply(config_file, plan_file)
    assert applied.code == 0, applied.stderr
    assert len(all_users(platform)) == 2


def test_the_plan_records_what_shaped_it_and_no_secret(okta: Okta, config_file: Path) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 1)
    config_file.write_text(config_file.read_text() + '[mapping]\ntitle = { constant = "Staff" }\n')
    plan_file = config_file.parent / "plan.json"
    assert _save(config_file, plan_file).code == 2
    text = plan_file.read_text()
    assert OKTA_TOKEN not in text and SCIM_TOKEN not in text
    document = json.loads(text)
    assert document["version"] == 2
    binding = document["binding"]
    assert binding["mapping"]["title"] == {"constant": "Staff"}
    assert binding["mapping"]["userName"] == "credentials.userName"
    assert binding["policy"] == {"unmanaged": "report", "suspended": "keep"}
    assert binding["groups"] == {"push": [], "push_assigned": False, "delete_unpushed": False}


def test_a_plan_older_than_max_plan_age_needs_yes(okta: Okta, config_file: Path, platform: httpx.Client) -> None:
    plan_file = _planned(okta, config_file, 2)
    made = datetime.now(UTC) - timedelta(hours=25, minutes=3)
    _rewrite_signed(plan_file, config_file, created_at=made.isoformat(timespec="seconds"))

    refused = _apply(config_file, plan_file)
    assert refused.code == 1
    assert "it is 1 d 1 h old, older than [thresholds] max_plan_age (1 d)" in refused.stderr, refused.stderr
    assert "pass --yes" in refused.stderr and "Make a new plan" in refused.stderr
    assert all_users(platform) == [] and _modes(config_file) == ["dry-run"]

    text = config_file.read_text()
    config_file.write_text(text + '[thresholds]\nmax_plan_age = "2d"\n')
    raised = _apply(config_file, plan_file, "--output", "json")
    assert raised.code == 0, raised.stderr
    assert raised.json()["applied"] == 2, "younger than a raised limit"

    config_file.write_text(text)
    _rewrite_signed(plan_file, config_file, created_at=(datetime.now(UTC) - timedelta(days=3)).isoformat())
    confirmed = _apply(config_file, plan_file, "--yes")
    assert confirmed.code == 1, "confirmed, and stale: its creates were done by the apply above"
    assert "this plan is 3 d old, older than max_plan_age (1 d); --yes given: applying it" in confirmed.stderr
    assert "Applied 0, failed 0, stale 2" in confirmed.stdout
    assert _modes(config_file)[0] == "apply-plan"


def test_a_plan_saved_by_the_previous_version_is_refused_with_the_way_forward(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    plan_file = _planned(okta, config_file, 1)
    _rewrite_signed(plan_file, config_file, version=1, binding=None)  # what version 1 wrote: no binding

    refused = _apply(config_file, plan_file, "--yes")
    assert refused.code == 1
    assert "saved by an earlier version of okta-reconciler (saved-plan format 1)" in refused.stderr
    assert "reconcile --dry-run --save-plan FILE" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert all_users(platform) == []
