"""``reconcile history`` and ``show`` list the follower's incremental runs beside the full ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reconciler.config import fingerprint, load_config
from reconciler.models.records import Action, ActionKind, Change
from reconciler.models.runs import RunMode, RunStatus
from reconciler.store import Store
from tests.conftest import Okta
from tests.support.cli_runner import reconcile

PUBLISHED = datetime(2026, 12, 6, 9, 30, 1, tzinfo=UTC)


def test_history_and_show_list_an_incremental_run(okta: Okta, config_file: Path) -> None:
    [user] = okta.emulator.add_assigned_users(okta.app_id, 1)
    assert reconcile("--config", config_file).code == 0
    config = load_config(config_file)
    with Store(config.store.url) as store:  # what the follower records for one batch of events
        run_id = store.start_run(RunMode.INCREMENTAL, fingerprint(config))
        revoke = Action(
            ActionKind.DEACTIVATE,
            "u@example.com",
            user.id,
            "scim-1",
            "suspended in Okta",
            {"active": Change(True, False)},
        )
        store.record_outcome(store.record_intent(run_id, revoke), True)
        store.mark_okta_changes(run_id, {user.id: PUBLISHED})
        store.finish_run(run_id, RunStatus.SUCCEEDED)

    listed = reconcile("--config", config_file, "history", "--output", "json").json()
    assert [(r["run_id"], r["mode"]) for r in listed[:2]] == [(run_id, "incremental"), (run_id - 1, "apply")]
    table = reconcile("--config", config_file, "history").stdout
    assert any(str(run_id) in line and "incremental" in line and "succeeded" in line for line in table.splitlines())

    shown = reconcile("--config", config_file, "show", str(run_id), "--output", "json").json()
    assert (shown["mode"], shown["status"]) == ("incremental", "succeeded")
    [deactivated] = shown["actions"]
    assert (deactivated["kind"], deactivated["okta_changed_at"]) == ("deactivate", PUBLISHED.isoformat())
    text = reconcile("--config", config_file, "show", str(run_id)).stdout
    assert f"Run {run_id} incremental, succeeded" in text
