"""Alerting: the pure rules, then real runs that reach a real webhook receiver and a real SMTP server.

Both receivers listen on 127.0.0.1; runs go against the Okta emulator and
scim2-server (see conftest.py). Each run opens a new Store on the same SQLite
file, so every dedupe check is also a check that the alert state survives a
restart.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from reconciler.alerts import (
    BLOCKED,
    CONSECUTIVE_FAILURES,
    DRIFT,
    FAILED,
    GROUP_DRIFT,
    QUARANTINED,
    Condition,
    ConditionState,
    Event,
    Notification,
    compose,
    conditions_of,
    judged_by,
    state_changes,
    transitions,
)
from reconciler.config import AlertsConfig, Config, fingerprint, load_config
from reconciler.models.groups import GroupAction, GroupActionKind, GroupPlan
from reconciler.models.records import Plan
from reconciler.models.runs import RunStatus
from reconciler.plan.gate import GateDecision, Trip
from reconciler.run.alerting import alert_after_run, reconcile_and_alert
from reconciler.run.apply import ApplyResult
from reconciler.run.outcome import RunOutcome
from reconciler.secret import Secret
from reconciler.store import Store
from reconciler.testing.scenario import write_local_config
from reconciler.testing.scim_server import free_loopback_port
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta, all_users, provision
from tests.support.cli_runner import reconcile as reconcile_cli
from tests.support.factories import plan_of

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0
WRONG_OKTA_TOKEN = "wrong-okta-token-5d2e8a0c9b7f"
COULD_NOT_PLAN = "Run failed before it could plan: nothing was written"


def drift_title(users: int, limit: int) -> str:
    return f"okta-reconciler: Drift: {users} users out of line with Okta, above alert_drift = {limit}"


# --- the pure rules ---------------------------------------------------------------------------


def outcome_of(status: RunStatus, plan: Plan | None = None, **fields: Any) -> RunOutcome:
    gate = fields.pop("gate", GateDecision() if plan is not None else None)
    return RunOutcome(run_id=7, status=status, plan=plan, gate=gate, **fields)


def condition(key: str, title: str = "something") -> Condition:
    return Condition(key, title, run_id=7)


def state(key: str, *, since: datetime, sent: datetime | None, title: str = "earlier") -> ConditionState:
    return ConditionState(key=key, title=title, active_since=since, last_sent_at=sent, last_run_id=6)


def events(notifications: list[Notification]) -> list[tuple[str, Event]]:
    return [(n.key, n.event) for n in notifications]


def test_a_new_condition_starts() -> None:
    told = transitions({}, {DRIFT: condition(DRIFT)}, NOW, 24 * HOUR)
    assert events(told) == [(DRIFT, Event.STARTED)]
    assert told[0].active_since == NOW and told[0].condition == condition(DRIFT)


def test_a_persisting_condition_is_told_again_only_after_realert_after() -> None:
    previous = {DRIFT: state(DRIFT, since=NOW - timedelta(hours=30), sent=NOW - timedelta(hours=23))}
    assert transitions(previous, {DRIFT: condition(DRIFT)}, NOW, 24 * HOUR) == []
    later = NOW + timedelta(hours=1)
    again = transitions(previous, {DRIFT: condition(DRIFT, "now")}, later, 24 * HOUR)
    assert events(again) == [(DRIFT, Event.STILL_ACTIVE)]
    assert again[0].active_since == NOW - timedelta(hours=30) and again[0].title == "now"


def test_a_cleared_condition_resolves_with_its_stored_title() -> None:
    two_hours_ago = NOW - timedelta(hours=2)
    previous = {FAILED: state(FAILED, since=two_hours_ago, sent=two_hours_ago, title="Run failed")}
    told = transitions(previous, {}, NOW, 24 * HOUR)
    assert events(told) == [(FAILED, Event.RESOLVED)]
    assert told[0].title == "Run failed" and told[0].condition is None


def test_conditions_the_run_could_not_judge_keep_their_state() -> None:
    previous = {
        DRIFT: state(DRIFT, since=NOW, sent=NOW),
        f"{DRIFT}:deactivate": state(f"{DRIFT}:deactivate", since=NOW, sent=NOW),
        BLOCKED: state(BLOCKED, since=NOW, sent=NOW),
    }
    judged = judged_by(outcome_of(RunStatus.FAILED, error="Okta unreachable"))
    assert judged == {FAILED, CONSECUTIVE_FAILURES, QUARANTINED}
    current = {FAILED: condition(FAILED)}
    later = NOW + timedelta(days=3)
    assert events(transitions(previous, current, later, 24 * HOUR, judged)) == [(FAILED, Event.STARTED)]
    changes = state_changes(previous, current, [], told=True, now=later, judged=judged)
    assert changes.remove == [] and [s.key for s in changes.save] == [FAILED]


def test_a_condition_never_told_is_told_when_a_channel_takes_it_and_forgotten_quietly_if_it_clears() -> None:
    never_told = {DRIFT: state(DRIFT, since=NOW - timedelta(days=2), sent=None)}
    told = transitions(never_told, {DRIFT: condition(DRIFT)}, NOW, 24 * HOUR)
    assert events(told) == [(DRIFT, Event.STARTED)] and told[0].active_since == NOW - timedelta(days=2)
    assert transitions(never_told, {}, NOW, 24 * HOUR) == []
    assert state_changes(never_told, {}, [], told=False, now=NOW).remove == [DRIFT]


def test_state_changes_record_what_was_told() -> None:
    previous = {
        BLOCKED: state(BLOCKED, since=NOW - timedelta(hours=1), sent=NOW - timedelta(hours=1)),
        FAILED: state(FAILED, since=NOW - timedelta(hours=5), sent=NOW - timedelta(hours=5)),
    }
    current = {BLOCKED: condition(BLOCKED, "still blocked"), DRIFT: condition(DRIFT)}
    notifications = transitions(previous, current, NOW, 24 * HOUR)
    assert events(notifications) == [(DRIFT, Event.STARTED), (FAILED, Event.RESOLVED)]

    changes = state_changes(previous, current, notifications, told=True, now=NOW)
    saved = {s.key: s for s in changes.save}
    assert saved[DRIFT].active_since == NOW and saved[DRIFT].last_sent_at == NOW
    assert saved[BLOCKED].last_sent_at == NOW - timedelta(hours=1) and saved[BLOCKED].title == "still blocked"
    assert changes.remove == [FAILED]

    untold = state_changes(previous, current, notifications, told=False, now=NOW)
    assert {s.key: s.last_sent_at for s in untold.save}[DRIFT] is None, "told again by the next run"
    assert untold.remove == [], "the resolution is told again by the next run"


def test_drift_alerts_above_the_total_and_per_kind_limits() -> None:
    alerts = AlertsConfig(alert_drift=5, alert_drift_by_kind={"deactivate": 2, "unmanaged": 3})
    at_limit = conditions_of(outcome_of(RunStatus.DRIFT, plan_of(create=3, conflict=2, unmanaged=3)), alerts, 0)
    assert at_limit == {}, "unmanaged users are not drift, and the limits are not exceeded"

    found = conditions_of(outcome_of(RunStatus.DRIFT, plan_of(create=1, deactivate=3, conflict=2)), alerts, 0)
    assert set(found) == {DRIFT, f"{DRIFT}:deactivate"}
    assert found[DRIFT].counts == {"create": 1, "deactivate": 3, "conflict": 2}
    assert "6 users" in found[DRIFT].title and "alert_drift = 5" in found[DRIFT].title
    assert found[f"{DRIFT}:deactivate"].counts == {"deactivate": 3}
    assert found[f"{DRIFT}:deactivate"].examples == tuple(f"deactivate{n}@example.com" for n in range(3))


def test_group_drift_alerts_on_its_own_and_by_group_kind() -> None:
    groups = GroupPlan(
        (
            GroupAction(GroupActionKind.CREATE_GROUP, "Phishing drill", "00g1"),
            GroupAction(GroupActionKind.REMOVE_MEMBERS, "Engineering", "00g2", "g-2", ("s1", "s2")),
            GroupAction(GroupActionKind.CONFLICT, "Sales", "00g3"),
            GroupAction(GroupActionKind.UNMANAGED, "Book club", scim_id="g-9"),
        )
    )
    outcome = replace(outcome_of(RunStatus.DRIFT, plan_of(create=1)), group_plan=groups)
    alerts = AlertsConfig(alert_drift=2, alert_drift_by_kind={"remove_members": 0, "create": 5})
    found = conditions_of(outcome, alerts, 0)
    assert set(found) == {GROUP_DRIFT, f"{DRIFT}:remove_members"}
    assert found[GROUP_DRIFT].counts == {"create_group": 1, "remove_members": 1, "conflict": 1}
    assert "3 group changes" in found[GROUP_DRIFT].title, "unmanaged groups are not drift"
    assert found[f"{DRIFT}:remove_members"].examples == ("Engineering",)
    assert judged_by(outcome) >= {DRIFT}, "a run that planned its groups judges their drift, and clears it"


def test_examples_stop_at_ten() -> None:
    found = conditions_of(outcome_of(RunStatus.DRIFT, plan_of(update=40)), AlertsConfig(alert_drift=1), 0)
    assert len(found[DRIFT].examples) == 10 and found[DRIFT].counts == {"update": 40}


def test_a_blocked_run_names_the_trips_and_what_was_held() -> None:
    gate = GateDecision((Trip("deactivate", "30 deactivate planned, above max_deactivate = 20"),), stop_all=False)
    outcome = outcome_of(RunStatus.BLOCKED, plan_of(create=2, deactivate=30), gate=gate)
    found = conditions_of(outcome, AlertsConfig(alert_drift=1000), 0)
    assert set(found) == {BLOCKED}
    assert found[BLOCKED].details == ("30 deactivate planned, above max_deactivate = 20",)
    assert found[BLOCKED].counts == {"deactivate": 30}, "skip_gated: the creates were not held"


def test_a_run_that_could_not_plan_judges_failures_only() -> None:
    outcome = outcome_of(RunStatus.FAILED, error="Okta answered 401")
    found = conditions_of(outcome, AlertsConfig(consecutive_failures=3), consecutive_failures=3)
    assert set(found) == {FAILED, CONSECUTIVE_FAILURES}
    assert found[FAILED].details == ("Okta answered 401",)
    assert "3 consecutive failed runs" in found[CONSECUTIVE_FAILURES].title
    assert judged_by(outcome) == {FAILED, CONSECUTIVE_FAILURES, QUARANTINED}


def test_a_partial_apply_is_a_failure() -> None:
    applied = ApplyResult(succeeded=8, failed=2)
    found = conditions_of(outcome_of(RunStatus.PARTIAL, plan_of(update=10), applied=applied), AlertsConfig(), 0)
    assert set(found) == {FAILED} and "2 of 10 writes failed" in found[FAILED].title


def test_the_message_masks_secrets_and_says_how_to_inspect(tmp_path: Path) -> None:
    config_path = write_local_config(
        tmp_path / "my state", "http://127.0.0.1:1", "0oa1", "http://u:p@127.0.0.1:2/scim?x=1", OKTA_TOKEN, SCIM_TOKEN
    )
    config = load_config(config_path)
    leaky = condition(FAILED, "Run failed")
    leaky = replace(leaky, details=(f"the server said: bad token {SCIM_TOKEN}",))
    message = compose([Notification(Event.STARTED, FAILED, "Run failed", NOW, leaky)], config, 7)
    assert SCIM_TOKEN not in message.body and "u:p" not in message.body and "x=1" not in message.body
    assert f"reconcile --config '{config_path}' show 7" in message.body
    assert message.notify_type == "failure"
    assert message.title == "okta-reconciler: Run failed" and "Tenant" not in message.body

    of_a_tenant = compose(
        [Notification(Event.STARTED, FAILED, "Run failed", NOW, leaky)], replace(config, tenant="acme"), 7
    )
    assert of_a_tenant.title == "okta-reconciler [acme]: Run failed"
    assert "Tenant acme, run 7: Okta app 0oa1" in of_a_tenant.body


# --- receivers on 127.0.0.1 -------------------------------------------------------------------


@dataclass
class Webhook:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """An HTTP server that keeps every JSON body posted to it."""
    posts: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posts.append({"path": self.path, **json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Webhook(f"json://127.0.0.1:{server.server_port}/hooks/reconciler", posts)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Mailbox:
    url: str
    messages: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """An SMTP server (aiosmtpd) that keeps every message; plain SMTP, no TLS, no login."""
    port = free_loopback_port()
    box = Mailbox(f"mailto://127.0.0.1:{port}?from=reconciler@example.com&to=ops@example.com")
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# --- real runs --------------------------------------------------------------------------------


def alerting_config(tmp_path: Path, okta: Okta, scim_url: str, alerts: str, okta_token: str = OKTA_TOKEN) -> Path:
    return write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, scim_url, okta_token, SCIM_TOKEN, f"[alerts]\n{alerts}"
    )


async def run_once(config: Config, *, dry_run: bool = True) -> RunOutcome:
    """One run, which alerts as it ends, with a Store of its own as a new process would have."""
    with Store(config.store.url) as store:
        return await reconcile_and_alert(config, store, dry_run=dry_run)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (OKTA_TOKEN, SCIM_TOKEN, WRONG_OKTA_TOKEN):
            assert secret not in text


async def test_drift_alerts_once_again_after_realert_after_and_when_repaired(
    okta: Okta, scim_url: str, webhook: Webhook, tmp_path: Path
) -> None:
    config_path = alerting_config(
        tmp_path, okta, scim_url, f'urls = ["{webhook.url}"]\nalert_drift = 3\nrealert_after = "6h"\n'
    )
    config = load_config(config_path)
    people = okta.emulator.add_assigned_users(okta.app_id, 5)  # never pushed: 5 creates

    first = await run_once(config)
    for _ in range(2):
        await run_once(config)
    assert len(webhook.posts) == 1, "three runs, one condition: one alert"
    [post] = webhook.posts
    assert post["path"] == "/hooks/reconciler" and post["type"] == "warning"
    assert post["title"] == drift_title(5, 3)
    assert "Counts: create 5" in post["message"]
    assert all(person.profile["login"] in post["message"] for person in people)
    assert f"Run {first.run_id}:" in post["message"]
    assert f"reconcile --config {config_path} show {first.run_id}" in post["message"]
    assert_no_secret(json.dumps(post))

    with Store(config.store.url) as restarted:
        stored = restarted.alert_states(fingerprint(config))
    assert set(stored) == {DRIFT} and stored[DRIFT].last_run_id == first.run_id + 2

    fourth = await run_once(config)
    with Store(config.store.url) as store:  # as if the fourth run had ended 6 h after the first
        later = datetime.now(UTC) + timedelta(hours=6, seconds=1)
        assert await alert_after_run(store, config, fourth, now=later) != []
    assert len(webhook.posts) == 2
    assert webhook.posts[1]["title"].startswith("okta-reconciler: Still active: Drift: 5 users")

    await run_once(config, dry_run=False)  # repairs; it found the drift all the same, so no news yet
    repaired = await run_once(config)
    assert len(webhook.posts) == 3
    resolved = webhook.posts[2]
    assert resolved["type"] == "success"
    assert resolved["title"] == drift_title(5, 3).replace("Drift:", "Resolved: Drift:")
    assert f"show {repaired.run_id}" in resolved["message"]
    with Store(config.store.url) as restarted:
        assert restarted.alert_states(fingerprint(config)) == {}


async def test_failures_alert_then_consecutive_failures_then_recovery(
    okta: Okta, scim_url: str, webhook: Webhook, tmp_path: Path
) -> None:
    alerts = f'urls = ["{webhook.url}"]\nalert_drift = 1\nconsecutive_failures = 2\n'
    config = load_config(alerting_config(tmp_path, okta, scim_url, alerts))
    broken = replace(config, okta=replace(config.okta, token=Secret(WRONG_OKTA_TOKEN)))
    okta.emulator.add_assigned_users(okta.app_id, 2)

    await run_once(config)
    assert [p["title"] for p in webhook.posts] == [drift_title(2, 1)]

    failed = await run_once(broken)
    assert failed.status is RunStatus.FAILED
    assert len(webhook.posts) == 2, "a run that could not read Okta resolves no drift"
    assert webhook.posts[1]["title"] == f"okta-reconciler: {COULD_NOT_PLAN}"
    assert webhook.posts[1]["type"] == "failure" and failed.error and failed.error in webhook.posts[1]["message"]

    await run_once(broken)
    assert webhook.posts[2]["title"] == "okta-reconciler: 2 consecutive failed runs (consecutive_failures = 2)"
    await run_once(broken)
    assert len(webhook.posts) == 3, "still failing: nothing new to tell"

    await run_once(config)
    assert len(webhook.posts) == 4
    recovery = webhook.posts[3]
    assert recovery["type"] == "success"
    assert recovery["title"] == f"okta-reconciler: Resolved: {COULD_NOT_PLAN} (+1 more)"
    assert "Resolved: 3 consecutive failed runs" in recovery["message"]
    assert "Drift" not in recovery["message"], "the drift persists, and was told already"
    assert_no_secret(*(json.dumps(post) for post in webhook.posts))


async def test_the_email_arrives_and_a_dead_channel_only_costs_a_log_line(
    okta: Okta, scim_url: str, mailbox: Mailbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead_port = free_loopback_port()
    dead = f"json://127.0.0.1:{dead_port}/hook-token-0f9e8d7c"
    alerts = f'urls = ["{dead}", "{mailbox.url}"]\nalert_drift = 1\n\n[thresholds]\nmax_create_ratio = 1.0\n'
    config = load_config(alerting_config(tmp_path, okta, scim_url, alerts))
    people = okta.emulator.add_assigned_users(okta.app_id, 12)

    with caplog.at_level(logging.DEBUG):
        outcome = await run_once(config)

    assert outcome.status is RunStatus.DRIFT
    [mail] = mailbox.messages
    assert mail["Subject"] == drift_title(12, 1)
    assert mail["To"] == "ops@example.com"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Counts: create 12" in text and "Users (10 of 12): " in text
    assert sum(person.profile["login"] in text for person in people) == 10
    assert f"show {outcome.run_id}" in text
    assert_no_secret(mail.as_string())

    assert "alert channel 1 (json://) did not take the alert" in caplog.text
    assert "hook-token-0f9e8d7c" not in caplog.text and str(dead_port) not in caplog.text
    assert str(mailbox.url.split("?")[0]) not in caplog.text


async def test_without_channels_conditions_are_tracked_and_told_once_a_channel_is_added(
    okta: Okta, scim_url: str, webhook: Webhook, tmp_path: Path
) -> None:
    config = load_config(alerting_config(tmp_path, okta, scim_url, "alert_drift = 1\n"))
    okta.emulator.add_assigned_users(okta.app_id, 2)
    await run_once(config)
    with Store(config.store.url) as store:
        [pending] = store.alert_states(fingerprint(config)).values()
    assert pending.key == DRIFT and pending.last_sent_at is None

    with_channel = replace(config, alerts=replace(config.alerts, urls=(Secret(webhook.url),)))
    await run_once(with_channel)
    await run_once(with_channel)
    assert [p["title"] for p in webhook.posts] == [drift_title(2, 1)]


def test_an_empty_okta_listing_is_blocked_exits_3_writes_nothing_and_alerts(
    okta: Okta, scim_url: str, platform: httpx.Client, webhook: Webhook, tmp_path: Path
) -> None:
    config_path = alerting_config(tmp_path, okta, scim_url, f'urls = ["{webhook.url}"]\n')
    user_ids = [user.id for user in okta.emulator.add_assigned_users(okta.app_id, 4)]
    provision(okta, platform, user_ids)
    for user_id in user_ids:
        okta.emulator.unassign_user(okta.app_id, user_id)
    before = all_users(platform)

    result = reconcile_cli("--config", config_path, "--output", "json")

    assert result.code == 3
    assert all_users(platform) == before
    [post] = webhook.posts
    run_id = result.json()["run_id"]
    assert post["title"] == "okta-reconciler: Blocked by the safety gate: 4 writes held back"
    assert post["type"] == "failure"
    assert "Okta listed no assignment" in post["message"] and "Counts: deactivate 4" in post["message"]
    assert all(user["userName"] in post["message"] for user in before)
    assert f"reconcile --config {config_path} show {run_id}" in post["message"]
    assert_no_secret(json.dumps(post), result.stdout, result.stderr)
