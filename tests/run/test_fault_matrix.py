"""The fault matrix: every fault either side can throw at a run, end to end, and what a person then sees.

Each test runs the ``reconcile`` command against the Okta emulator and the real
scim2-server behind :mod:`tests.support.fault_proxy`, with one fault injected, and
checks what an operator would: the exit code, the run's status and error in
``history``, the request log (retryable faults retried, others not), that no
write reached the platform when a read was partial or failed, and that the next
clean run converges: it applies what is left, a dry-run then finds nothing, and
the platform holds exactly what Okta assigns.

The scenario is small and spans several pages on both sides (Okta pages of 2,
SCIM pages of 2): 5 users assigned in Okta; on the platform 2 of them in sync,
1 edited by hand, and 1 user Okta no longer assigns; 2 assigned users were
never pushed. A clean run plans 4 writes: 1 update, 2 creates, 1 deactivation.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import reconciler.run.reconcile as reconcile_module
from reconciler.net.retries import RetryPolicy
from reconciler.okta.source import OktaSource
from reconciler.scim.http import ScimConnection
from reconciler.testing.okta import FaultKind, OktaEmulator, okta_emulator_in_thread
from reconciler.testing.scenario import write_local_config
from tests.conftest import FAST_RETRIES, OKTA_RETRIES, OKTA_TOKEN, SCIM_TOKEN, Okta, all_users, provision
from tests.support.cli_runner import Result, reconcile
from tests.support.fault_proxy import FaultProxy, ProxyFault, run_fault_proxy

TIMEOUT_S = 0.5
"""``okta.timeout_s`` and ``scim.timeout_s`` in the tests that hold an answer: short, so a read timeout costs little."""
NORMAL_TIMEOUT_S = 10.0
"""The same, in every other test: far above any answer on a busy machine, so no request times out by accident
(a 404 that took 0.5 s to come back would be retried, and a test counting statuses would see it twice)."""
SHORT_TIMEOUTS = pytest.mark.parametrize("client_timeout_s", [TIMEOUT_S], ids=["short-timeouts"])
HELD_S = 1.2
"""How long a held answer waits: longer than TIMEOUT_S, so the client times out."""
OKTA_PAGE_SIZE = 2
SCIM_PAGE_SIZE = 2
SCIM_RETRY = RetryPolicy(attempts=3, backoff_multiplier_s=0.01, max_backoff_s=0.05, jitter_s=0.01, retry_after_cap_s=5)
OKTA_LISTING = "/api/v1/apps/*/users"
SECOND_SCIM_PAGE = {"startIndex": str(1 + SCIM_PAGE_SIZE)}
WRITES = ("POST", "PUT", "PATCH")
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PUT_ONLY_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": False},
    "filter": {"supported": True, "maxResults": 1000},
    "etag": {"supported": True},
}
"""What a platform without PATCH announces: the reconciler then PUTs, with If-Match."""


# --- set-up ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries as in production, without production's backoff (half a second, doubling)."""
    assert ScimConnection.__init__.__kwdefaults__ is not None
    monkeypatch.setitem(ScimConnection.__init__.__kwdefaults__, "retry", SCIM_RETRY)
    monkeypatch.setattr(OKTA_RETRIES, FAST_RETRIES)
    monkeypatch.setattr("reconciler.net.pacing.RESET_MARGIN_S", 0.1)  # the emulator's reset times are exact


@pytest.fixture(autouse=True)
def small_okta_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Okta pages of OKTA_PAGE_SIZE (the reconciler asks for 500, Okta's maximum), so a few users span pages."""
    build = reconcile_module.okta_source

    def with_small_pages(*args: Any, **kwargs: Any) -> OktaSource:
        source = build(*args, **kwargs)
        source.page_size = OKTA_PAGE_SIZE
        return source

    monkeypatch.setattr(reconcile_module, "okta_source", with_small_pages)


@pytest.fixture
def okta() -> Iterator[Okta]:
    """The Okta emulator with half-second rate-limit windows, so that waiting out a 429 is quick."""
    emulator = OktaEmulator(seed=23, api_tokens=[OKTA_TOKEN], rate_limit_window_s=0.5)
    app = emulator.create_app()
    with okta_emulator_in_thread(emulator) as org_url:
        yield Okta(emulator, org_url, app.id)


@pytest.fixture
def proxy(scim_url: str) -> Iterator[FaultProxy]:
    with run_fault_proxy(scim_url) as running:
        yield running
    assert running.callback_errors == [], "a callback of the test failed"


@dataclass
class World:
    okta: Okta
    proxy: FaultProxy
    platform: httpx.Client
    """Straight to the SCIM server, not through the proxy: to seed it and to look at it."""
    config_file: Path
    scim_ids: dict[str, str]
    """Okta user id → SCIM id, for the users provisioned at the start."""
    in_sync: list[str]
    edited: str
    never_pushed: list[str]
    leaver: str

    @property
    def emulator(self) -> OktaEmulator:
        return self.okta.emulator

    def run(self, *args: str) -> Result:
        """``reconcile --config F --output json [args]``, in this process."""
        return reconcile("--config", self.config_file, "--output", "json", *args)

    def last_run(self) -> dict[str, Any]:
        runs: list[dict[str, Any]] = reconcile("--config", self.config_file, "history", "--output", "json").json()
        return runs[0]

    def actions(self, run_id: int) -> list[dict[str, Any]]:
        shown = reconcile("--config", self.config_file, "show", str(run_id), "--output", "json").json()
        return list(shown["actions"])

    def user_name(self, okta_id: str) -> str:
        return str(self.emulator.user(okta_id).profile["login"])

    def clear_faults(self) -> None:
        self.proxy.clear_faults()
        self.emulator.clear_faults()


@pytest.fixture
def client_timeout_s() -> float:
    """The timeouts the world's config sets; a test that holds an answer parametrizes it to TIMEOUT_S."""
    return NORMAL_TIMEOUT_S


@pytest.fixture
def world(tmp_path: Path, okta: Okta, proxy: FaultProxy, platform: httpx.Client, client_timeout_s: float) -> World:
    users = [user.id for user in okta.emulator.add_assigned_users(okta.app_id, 6)]
    in_sync, edited, never_pushed, leaver = users[:2], users[2], users[3:5], users[5]
    scim_ids = provision(okta, platform, [*in_sync, edited, leaver])
    _patch_directly(platform, scim_ids[edited], displayName="Edited By Hand")
    okta.emulator.unassign_user(okta.app_id, leaver)
    config_file = write_local_config(
        tmp_path / "state", okta.org_url, okta.app_id, proxy.base_url, OKTA_TOKEN, SCIM_TOKEN
    )
    text = config_file.read_text()
    text = text.replace("[okta]\n", f"[okta]\ntimeout_s = {client_timeout_s}\n", 1)
    text = text.replace("[scim]\n", f"[scim]\ntimeout_s = {client_timeout_s}\npage_size = {SCIM_PAGE_SIZE}\n", 1)
    config_file.write_text(text)
    return World(okta, proxy, platform, config_file, scim_ids, in_sync, edited, never_pushed, leaver)


def _patch_directly(platform: httpx.Client, scim_id: str, **values: Any) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": values}]}
    platform.patch(f"/Users/{scim_id}", json=body).raise_for_status()


def _push_like_okta(world: World, okta_id: str) -> None:
    """What Okta's own push does for a user: POST it to the platform (straight, not through the proxy)."""
    provision(world.okta, world.platform, [okta_id])


# --- what every test checks --------------------------------------------------------------------


def assert_platform_matches_okta(world: World) -> None:
    """Each user Okta assigns exactly once, active, linked, with Okta's attributes; every other user inactive."""
    users = all_users(world.platform)
    counts = Counter(user["userName"].casefold() for user in users)
    assert max(counts.values()) == 1, f"duplicates on the platform: {counts}"
    by_name = {user["userName"].casefold(): user for user in users}
    for okta_id in world.emulator.listed_user_ids(world.okta.app_id):
        profile = world.emulator.user(okta_id).profile
        user = by_name.pop(profile["login"].casefold())
        assert (user["active"], user.get("externalId")) == (True, okta_id)
        assert user.get("displayName") == profile["displayName"]
    assert all(user["active"] is False for user in by_name.values()), "a user Okta does not assign is active"


def assert_next_clean_run_converges(world: World, *, left_to_apply: bool = True) -> None:
    """With the faults gone: a run applies what is left, a dry-run then finds nothing, the platform is Okta's.

    ``left_to_apply=False`` (the faulty run applied everything) goes straight to the dry-run.
    """
    world.clear_faults()
    if left_to_apply:
        applied = world.run()
        assert applied.code == 0, (applied.stdout, applied.stderr)
        assert applied.json()["status"] == "succeeded"
    audit = world.run("--dry-run")
    assert audit.code == 0, audit.stdout
    assert audit.json()["status"] == "succeeded" and audit.json()["actions"] == []
    assert_platform_matches_okta(world)


def assert_succeeded(result: Result, applied: int = 4) -> None:
    """Exit 0, every planned write applied (4 in the scenario), no error."""
    assert result.code == 0, (result.stdout, result.stderr)
    outcome = {key: result.json()[key] for key in ("status", "error", "applied", "failed")}
    assert outcome == {"status": "succeeded", "error": None, "applied": applied, "failed": 0}


def assert_failed_before_planning(world: World, result: Result, *says: str) -> str:
    """Exit 1, the run recorded as failed with an error naming the cause, nothing planned, nothing written."""
    assert result.code == 1, (result.stdout, result.stderr)
    run = world.last_run()
    assert run["run_id"] == result.json()["run_id"]
    assert run["status"] == "failed" and run["summary"] is None, "a run that could not read both sides never plans"
    for text in says:
        assert text in run["error"], run["error"]
    assert world.actions(run["run_id"]) == []
    assert world.proxy.writes_forwarded() == [], "a failed or partial read drove a write"
    return str(run["error"])


def _statuses(world: World, method: str, path: str = "*", **query: str) -> list[int | None]:
    return [request.status for request in world.proxy.seen(method, path, **query)]


# --- SCIM reads --------------------------------------------------------------------------------


@SHORT_TIMEOUTS
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": "1"},
        {"status": 429},
        {"status": 500},
        {"status": 502},
        {"status": 503},
        {"fault": ProxyFault.DELAY, "delay_s": HELD_S},
        {"fault": ProxyFault.RESET},
    ],
    ids=["429-retry-after", "429", "500", "502", "503", "read-timeout", "reset-mid-body"],
)
def test_a_passing_fault_on_a_scim_page_is_retried(world: World, fault: dict[str, Any]) -> None:
    world.proxy.inject("GET", "/Users", query=SECOND_SCIM_PAGE, **fault)

    assert_succeeded(world.run())

    second_page = world.proxy.seen("GET", "/Users", **SECOND_SCIM_PAGE)
    assert [request.fault is not None for request in second_page] == [True, False], "retried once, then read"
    if "retry_after" in fault:
        assert second_page[1].at - second_page[0].at >= 0.9, "Retry-After: 1 was honoured"
    assert_next_clean_run_converges(world, left_to_apply=False)


@SHORT_TIMEOUTS
@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"status": 503}, "503 Service Unavailable"),
        ({"fault": ProxyFault.DELAY, "delay_s": HELD_S}, f"timed out: no answer within {TIMEOUT_S:g} s"),
        ({"fault": ProxyFault.RESET}, "the connection broke before the answer was complete"),
    ],
    ids=["503", "read-timeout", "reset-mid-body"],
)
def test_a_passing_fault_that_persists_fails_the_run_before_any_write(
    world: World, fault: dict[str, Any], says: str
) -> None:
    world.proxy.inject("GET", "/Users", query=SECOND_SCIM_PAGE, times=None, **fault)

    assert_failed_before_planning(world, world.run(), says, f"gave up after {SCIM_RETRY.attempts} attempts")

    assert len(world.proxy.seen("GET", "/Users", **SECOND_SCIM_PAGE)) == SCIM_RETRY.attempts
    assert_next_clean_run_converges(world)


@pytest.mark.parametrize("fault", [ProxyFault.TRUNCATE, ProxyFault.MALFORMED], ids=["truncated", "malformed"])
def test_a_scim_page_that_is_not_json_fails_the_run_unretried(world: World, fault: ProxyFault) -> None:
    """A complete answer that is not JSON will not become JSON by asking again."""
    world.proxy.inject("GET", "/Users", fault, query=SECOND_SCIM_PAGE)

    assert_failed_before_planning(world, world.run(), "SCIM GET /Users answered malformed JSON")

    assert len(world.proxy.seen("GET", "/Users", **SECOND_SCIM_PAGE)) == 1
    assert_next_clean_run_converges(world)


def test_a_total_that_changes_once_between_pages_gets_the_listing_read_again(world: World) -> None:
    world.proxy.inject("GET", "/Users", ProxyFault.TOTAL_RESULTS, total_results=5, query=SECOND_SCIM_PAGE)

    assert_succeeded(world.run())

    assert len(world.proxy.seen("GET", "/Users", startIndex="1")) == 2, "the listing was read again from the start"
    assert_next_clean_run_converges(world, left_to_apply=False)


def test_a_total_that_keeps_changing_between_pages_fails_the_run(world: World) -> None:
    world.proxy.inject("GET", "/Users", ProxyFault.TOTAL_RESULTS, total_results=5, query=SECOND_SCIM_PAGE, times=None)

    assert_failed_before_planning(world, world.run(), "totalResults changed between pages (4 on the first page, 5 at")

    assert len(world.proxy.seen("GET", "/Users", startIndex="1")) == 3
    assert_next_clean_run_converges(world)


def test_a_platform_user_deleted_during_the_listing_leaves_no_one_unseen(world: World) -> None:
    """Deleting a user of page 1 moves the first user of page 2 onto page 1, already read.

    Read across that change, the listing would miss that user, plan it as
    missing and POST it (to meet a 409). The total changes, so the listing is
    read again: the only POST is the deleted user's own re-creation, if Okta
    still wants it, and none meets a 409.
    """

    def delete_first_user_of_page_1() -> None:
        page = world.platform.get("/Users", params={"startIndex": 1, "count": SCIM_PAGE_SIZE}).raise_for_status()
        world.platform.delete(f"/Users/{page.json()['Resources'][0]['id']}").raise_for_status()

    world.proxy.inject("GET", "/Users", ProxyFault.PASS, query=SECOND_SCIM_PAGE, before=delete_first_user_of_page_1)

    result = world.run()

    assert result.code == 0 and result.json()["failed"] == 0, result.stdout
    assert 409 not in _statuses(world, "POST"), "a user the listing missed was POSTed"
    assert len(world.proxy.seen("GET", "/Users", startIndex="1")) == 2
    assert_next_clean_run_converges(world, left_to_apply=False)


def test_a_platform_user_added_during_the_listing_is_seen(world: World) -> None:
    """Okta's own push creates a never-pushed user between two pages: it is listed, not POSTed again."""
    pushed = world.never_pushed[0]
    world.proxy.inject(
        "GET", "/Users", ProxyFault.PASS, query=SECOND_SCIM_PAGE, before=lambda: _push_like_okta(world, pushed)
    )

    assert_succeeded(world.run(), applied=3)

    posted = [request.body["userName"] for request in world.proxy.seen("POST", "/Users")]
    assert posted == [world.user_name(world.never_pushed[1])]
    assert_next_clean_run_converges(world, left_to_apply=False)


@pytest.mark.parametrize("when", ["during the Okta listing", "during the writes"])
def test_okta_users_assigned_and_unassigned_mid_run_converge_on_the_next_run(world: World, when: str) -> None:
    """The run works from what it read; what changed in Okta meanwhile is repaired by the next run."""
    in_sync = world.in_sync[0]

    def change_assignments() -> None:
        world.emulator.unassign_user(world.okta.app_id, in_sync)
        world.emulator.add_assigned_users(world.okta.app_id, 1, domain="late.example.com")

    if when == "during the writes":
        world.proxy.inject("POST", "/Users", ProxyFault.PASS, before=change_assignments)
    else:
        world.emulator.inject_fault(OKTA_LISTING, kind=FaultKind.CALL, action=change_assignments)

    result = world.run()

    assert result.code == 0 and result.json()["status"] == "succeeded", result.stdout
    assert_next_clean_run_converges(world)
    assert not next(u for u in all_users(world.platform) if u.get("externalId") == in_sync)["active"]


# --- SCIM writes -------------------------------------------------------------------------------


@SHORT_TIMEOUTS
@pytest.mark.parametrize(
    ("method", "fault"),
    [
        ("PATCH", {"status": 503}),
        ("POST", {"status": 429}),
        ("POST", {"status": 502, "after_forwarding": True}),
        ("POST", {"fault": ProxyFault.DELAY, "delay_s": HELD_S}),
    ],
    ids=["503-on-patch", "429-on-post", "502-after-the-create-landed", "read-timeout-after-the-create-landed"],
)
def test_a_passing_fault_on_a_write_is_retried_without_a_duplicate(
    world: World, method: str, fault: dict[str, Any]
) -> None:
    """A create whose answer was lost is sent again; if the first had landed, the 409 is resolved by linking."""
    rule = world.proxy.inject(method, "/Users*", **fault)

    assert_succeeded(world.run())

    assert rule.fired == 1
    (faulted,) = [request for request in world.proxy.requests if request.fault is not None]
    sent_again = [r.status for r in world.proxy.seen(method, faulted.path) if r.body == faulted.body][1:]
    landed = fault.get("after_forwarding") or fault.get("fault") is ProxyFault.DELAY
    assert sent_again == ([409] if landed else [204 if method == "PATCH" else 201])
    assert_next_clean_run_converges(world, left_to_apply=False)


def test_a_409_on_create_from_a_push_racing_the_run_links_the_user(world: World) -> None:
    """Okta pushes both never-pushed users just before the run POSTs them: each 409 is resolved by a link."""
    pushing = threading.Lock()
    pushed: list[str] = []

    def okta_pushes_them() -> None:
        with pushing:  # the creates run concurrently: the first one to arrive pushes both users, once
            for okta_id in set(world.never_pushed) - set(pushed):
                _push_like_okta(world, okta_id)
                pushed.append(okta_id)

    world.proxy.inject("POST", "/Users", ProxyFault.PASS, before=okta_pushes_them, times=None)

    assert_succeeded(world.run())

    assert _statuses(world, "POST", "/Users") == [409, 409], "each create met the pushed user, and linked it"
    assert_next_clean_run_converges(world, left_to_apply=False)


def test_a_409_on_create_with_no_one_to_link_fails_that_action_alone(world: World) -> None:
    world.proxy.inject(
        "POST", "/Users", status=409, body={"status": "409", "scimType": "uniqueness", "detail": "taken"}
    )

    result = world.run()

    assert result.code == 1
    document = result.json()
    assert (document["status"], document["applied"], document["failed"]) == ("partial", 3, 1)
    (failed,) = [action for action in world.actions(document["run_id"]) if action["status"] == "failed"]
    assert failed["kind"] == "create" and "409 Conflict (uniqueness): taken" in failed["error"]
    assert "no platform user with userName" in failed["error"]
    assert_next_clean_run_converges(world)


def test_a_404_on_patch_says_the_user_was_deleted_on_the_platform(world: World) -> None:
    """The hand-edited user is deleted on the platform between the read and its PATCH; the next run recreates it."""
    edited = world.scim_ids[world.edited]
    world.proxy.inject(
        "PATCH", f"/Users/{edited}", ProxyFault.PASS, before=lambda: world.platform.delete(f"/Users/{edited}")
    )

    result = world.run()

    assert result.code == 1 and result.json()["status"] == "partial" and result.json()["applied"] == 3
    (failed,) = [action for action in world.actions(result.json()["run_id"]) if action["status"] == "failed"]
    assert failed["kind"] == "update" and "deleted on the platform" in failed["error"] and "404" in failed["error"]
    assert _statuses(world, "PATCH", f"/Users/{edited}") == [404], "a 404 is not retried"
    assert_next_clean_run_converges(world)


def test_a_412_on_put_reads_the_user_again_and_keeps_the_concurrent_edit(world: World) -> None:
    """On a platform without PATCH each write is a PUT with If-Match; an edit made in between costs one re-read."""
    edited = world.scim_ids[world.edited]
    world.proxy.inject("GET", "/ServiceProviderConfig", status=200, body=PUT_ONLY_CONFIG, times=None)
    world.proxy.inject(
        "PUT", f"/Users/{edited}", ProxyFault.PASS, before=lambda: _patch_directly(world.platform, edited, title="Boss")
    )

    assert_succeeded(world.run())

    assert _statuses(world, "PUT", f"/Users/{edited}") == [412, 200]
    stored = world.platform.get(f"/Users/{edited}").raise_for_status().json()
    assert (
        stored["title"] == "Boss" and stored["displayName"] == world.emulator.user(world.edited).profile["displayName"]
    )
    assert_next_clean_run_converges(world, left_to_apply=False)


def test_a_412_again_after_the_re_read_fails_that_action_clearly(world: World) -> None:
    edited = world.scim_ids[world.edited]
    world.proxy.inject("GET", "/ServiceProviderConfig", status=200, body=PUT_ONLY_CONFIG, times=None)
    world.proxy.inject("PUT", f"/Users/{edited}", status=412, times=None)

    result = world.run()

    assert result.code == 1 and result.json()["status"] == "partial" and result.json()["applied"] == 3
    (failed,) = [action for action in world.actions(result.json()["run_id"]) if action["status"] == "failed"]
    assert "412 Precondition Failed" in failed["error"] and "changed on the platform again" in failed["error"]
    assert _statuses(world, "PUT", f"/Users/{edited}") == [412, 412], "re-read and retried once, not more"
    assert_next_clean_run_converges(world)


# --- a token revoked mid-run -------------------------------------------------------------------


def test_a_scim_token_revoked_during_the_writes_stops_them(world: World) -> None:
    """The first write passes, the next ones meet 401: those in flight fail, the rest are not sent."""
    world.proxy.inject(WRITES, "/Users*", status=401, nth=2, times=None)

    result = world.run()

    assert result.code == 1
    run = world.last_run()
    assert run["status"] == "failed" and "401" in run["error"] and "scim.token_env / scim.token_file" in run["error"]
    outcomes = Counter((action["kind"], action["status"]) for action in world.actions(run["run_id"]))
    assert outcomes == {("update", "succeeded"): 1, ("create", "failed"): 2, ("deactivate", "skipped"): 1}
    assert [request.method for request in world.proxy.writes_forwarded()] == ["PATCH"], "only the recorded success"
    assert_next_clean_run_converges(world)


def test_a_scim_token_revoked_during_the_listing_fails_the_run_unretried(world: World) -> None:
    world.proxy.inject("GET", "/Users", status=401, query=SECOND_SCIM_PAGE, times=None)

    assert_failed_before_planning(world, world.run(), "401 Unauthorized", "scim.token_env / scim.token_file")

    assert len(world.proxy.seen("GET", "/Users", **SECOND_SCIM_PAGE)) == 1
    assert_next_clean_run_converges(world)


def test_an_okta_token_revoked_between_pages_fails_the_run_unretried(world: World) -> None:
    world.emulator.inject_fault(
        OKTA_LISTING, kind=FaultKind.CALL, action=lambda: world.emulator.revoke_api_token(OKTA_TOKEN)
    )

    assert_failed_before_planning(world, world.run(), "Okta rejected the API token", "okta.token_env")

    assert [r.status for r in world.emulator.requests if r.path.endswith("/users")] == [200, 401]
    world.emulator.add_api_token(OKTA_TOKEN)
    assert_next_clean_run_converges(world)


# --- Okta reads --------------------------------------------------------------------------------


@SHORT_TIMEOUTS
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429},
        {"status": 503},
        {"kind": FaultKind.DELAY, "delay_s": HELD_S},
        {"kind": FaultKind.RESET},
        {"kind": FaultKind.DROP, "times": 2},
    ],
    ids=["429", "503", "read-timeout", "reset-mid-body", "dropped"],
)
def test_a_passing_fault_on_an_okta_page_is_retried(world: World, fault: dict[str, Any]) -> None:
    """A 429 is waited out until the rate-limit window resets; the others are retried after a backoff.

    (Every 5xx takes the same path as the 503; the SCIM side is tested with 500, 502 and 503 each.)
    """
    rule = world.emulator.inject_fault(OKTA_LISTING, nth=2, **{"times": 1, **fault})

    assert_succeeded(world.run())

    assert rule.times is not None and rule.fired == rule.times
    assert rule.seen == 3 + rule.times, "3 pages, the second until it came through"
    assert_next_clean_run_converges(world, left_to_apply=False)


@SHORT_TIMEOUTS
@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"status": 503}, "HTTP 503"),
        ({"kind": FaultKind.DELAY, "delay_s": HELD_S}, f"did not answer within {TIMEOUT_S:g} s"),
    ],
    ids=["503", "read-timeout"],
)
def test_a_passing_okta_fault_that_persists_fails_the_run_before_any_write(
    world: World, fault: dict[str, Any], says: str
) -> None:
    rule = world.emulator.inject_fault(OKTA_LISTING, nth=2, times=None, **fault)

    assert_failed_before_planning(world, world.run(), "page 2 of app", says, "gave up after 3 attempts")

    assert rule.fired == 3
    assert_next_clean_run_converges(world)


@pytest.mark.parametrize(
    "fault", [{"kind": FaultKind.TRUNCATED}, {"kind": FaultKind.NON_JSON, "status": 200}], ids=["truncated", "html"]
)
def test_an_okta_page_that_is_not_json_fails_the_run_unretried(world: World, fault: dict[str, Any]) -> None:
    world.emulator.inject_fault(OKTA_LISTING, nth=2, times=None, **fault)

    assert_failed_before_planning(world, world.run(), "page 2 of app", "not JSON")

    cursors = [r.query.get("after") for r in world.emulator.requests if r.path.endswith("/users")]
    assert len(cursors) == len(set(cursors)), "no page was asked for twice"
    assert_next_clean_run_converges(world)
