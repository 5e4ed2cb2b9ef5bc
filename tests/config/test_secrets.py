"""Credentials leak nowhere, and secret files must be private.

Every command runs with known, distinctive credentials at DEBUG log level
(text and JSON log formats), on success and through the failures that tend to
echo a credential: a SCIM server and an Okta that put the Authorization header
in their error bodies (placed where an error message is cut short), wrong
tokens, a private-key service app. Then each credential, in every form it
could take (raw, base64, ``Bearer``/``SSWS`` header, URL-quoted, its first
half as a cut message would keep it), is looked for in: stdout and stderr,
every log line, exception texts (with their tracebacks and causes), JSON
output, the saved plan, every row of every table of the store (and the raw
database file), the alerts sent, and the cassettes.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from aiohttp import web

from reconciler.config import load_config
from reconciler.errors import ConfigError, ReconcileError
from reconciler.logs import RedactingFilter
from reconciler.net.retries import RetryPolicy
from reconciler.okta.source import OktaSource
from reconciler.scim.discovery import DEFAULT_CAPABILITIES
from reconciler.secret import Secret, redact
from reconciler.testing.scenario import write_local_config
from tests.conftest import FAST_RETRIES, OKTA_RETRIES, OKTA_TOKEN, SCIM_TOKEN, Okta, provision
from tests.support.cassette_scenario import CASSETTES, recorder
from tests.support.cassette_scenario import OKTA_TOKEN as CASSETTE_OKTA_TOKEN
from tests.support.cassette_scenario import SCIM_TOKEN as CASSETTE_SCIM_TOKEN
from tests.support.cli_runner import Result, reconcile
from tests.support.scim_clients import reader_on, writer_of
from tests.support.tls_servers import serve_in_thread

ALERT_SECRET = "alert-hook-secret-6b1f0d9e2c7a4835"
"""A token in the alert URL's path, as webhook URLs carry them."""
WRONG_OKTA_TOKEN = "wrong-okta-token-3e9c1a7f5d2b8064"
WRONG_SCIM_TOKEN = "wrong-scim-token-8a2d6f0b4c9e1735"
SCIM_ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
PADDING = 280
"""Echoed credentials start here in error bodies: where a 300-character excerpt would cut them."""


def forms(secret: str) -> set[str]:
    """Every way ``secret`` could show up: as is, base64, in a header, URL-quoted, cut short."""
    encoded = secret.encode()
    return {
        secret,
        base64.b64encode(encoded).decode().rstrip("="),
        base64.urlsafe_b64encode(encoded).decode().rstrip("="),
        f"Bearer {secret}",
        f"SSWS {secret}",
        quote(secret, safe=""),
        secret[: max(12, len(secret) // 2)],
    }


def pem_forms(pem: str) -> set[str]:
    """A private key's body lines: any one of them is a piece of the key."""
    lines = [line for line in pem.strip().splitlines() if line and not line.startswith("-----")]
    return {line for line in lines if len(line) >= 32}


@dataclass
class Sinks:
    """Everything a run leaves where a person or a program may read it."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    stores: list[Path] = field(default_factory=list)

    def add(self, label: str, result: Result) -> Result:
        self.texts += [(f"{label}: stdout", result.stdout), (f"{label}: stderr", result.stderr)]
        return result

    def everything(self) -> Iterator[tuple[str, str]]:
        yield from self.texts
        for path in self.files:
            if path.is_dir():
                for file in sorted(p for p in path.rglob("*") if p.is_file()):
                    yield str(file), file.read_bytes().decode("utf-8", "replace")
            elif path.exists():
                yield str(path), path.read_bytes().decode("utf-8", "replace")
        for database in self.stores:
            yield from store_rows(database)
            for raw in (database, database.with_name(database.name + "-wal")):
                if raw.exists():  # deleted rows and free pages too
                    yield f"{raw} (raw bytes)", raw.read_bytes().decode("latin-1")

    def assert_clean(self, secrets: Iterable[str]) -> None:
        wanted = {form for secret in secrets for form in forms(secret)}
        leaks = [(where, form) for where, text in self.everything() for form in wanted if form in text]
        assert not leaks, f"credentials leaked: {leaks[:5]}"

    def assert_clean_of(self, pieces: Iterable[str]) -> None:
        leaks = [(where, piece) for where, text in self.everything() for piece in pieces if piece in text]
        assert not leaks, f"credentials leaked: {leaks[:5]}"


def store_rows(database: Path) -> Iterator[tuple[str, str]]:
    """Every row of every table, as text."""
    with sqlite3.connect(database) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"runs", "actions"} <= set(tables), tables
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from sqlite_master
                yield f"{database}: {table}", repr(row)


def sqlite_path(config_file: Path) -> Path:
    return Path(load_config(config_file, {}, read_secrets=False).store.url.removeprefix("sqlite:///"))


def run_ids(config_file: Path) -> list[int]:
    return [run["run_id"] for run in reconcile("--config", config_file, "history", "--output", "json").json()]


# --- receivers and echoing servers ----------------------------------------------------------------


@dataclass
class AlertInbox:
    bodies: list[str] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.text())  # not the path: it holds the alert URL's own secret
        return web.Response(text="ok")


@dataclass
class EchoingScim:
    """A SCIM endpoint that puts the request's Authorization header in its error answers, as debug proxies do."""

    listing_fails: bool = False
    """GET /Users answers 503 (Retry-After: 0) with the header echoed in an HTML page; else an empty listing."""
    padding: int = PADDING

    async def handle(self, request: web.Request) -> web.Response:
        echoed = "x" * self.padding + " Authorization: " + request.headers.get("Authorization", "")
        path = request.match_info["tail"]
        if request.method == "GET" and path == "Users":
            if self.listing_fails:
                return web.Response(
                    status=503, text=f"<pre>{echoed}</pre>", content_type="text/html", headers={"Retry-After": "0"}
                )
            body = {"totalResults": 0, "Resources": []}
            return web.json_response(body, content_type="application/scim+json")
        if request.method == "POST" and path == "Users":
            body = {"schemas": [SCIM_ERROR_URN], "status": "400", "scimType": "invalidValue", "detail": echoed}
            return web.json_response(body, status=400, content_type="application/scim+json")
        return web.json_response({"schemas": [SCIM_ERROR_URN], "status": "404", "detail": echoed}, status=404)


@dataclass
class EchoingOkta:
    """An Okta whose 401 names the token it refused, and whose 500 page echoes the request headers."""

    status: int = 401
    padding: int = PADDING

    async def handle(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        if self.status == 401:
            body = {"errorCode": "E0000011", "errorSummary": f"Invalid token provided: {authorization}"}
            return web.json_response(body, status=401)
        page = "<html><pre>" + "z" * self.padding + f" Authorization: {authorization}</pre></html>"
        return web.Response(status=self.status, text=page, content_type="text/html")


@dataclass
class Echoes:
    scim: EchoingScim
    okta: EchoingOkta
    inbox: AlertInbox
    scim_url: str
    org_url: str
    alert_url: str


@pytest.fixture
def echoes() -> Iterator[Echoes]:
    scim, okta, inbox = EchoingScim(), EchoingOkta(), AlertInbox()
    scim_app, okta_app, alert_app = web.Application(), web.Application(), web.Application()
    scim_app.router.add_route("*", "/v2/{tail:.*}", scim.handle)
    okta_app.router.add_route("*", "/{tail:.*}", okta.handle)
    alert_app.router.add_post("/{tail:.*}", inbox.receive)
    with serve_in_thread([(scim_app, None), (okta_app, None), (alert_app, None)]) as (scim_url, org_url, alert_url):
        alert = alert_url.replace("http://", "json://") + f"/hooks/{ALERT_SECRET}"
        yield Echoes(scim, okta, inbox, scim_url + "/v2", org_url, alert)


def alerts_section(alert_url: str) -> str:
    return f'[alerts]\nurls = ["{alert_url}"]\nalert_drift = 1\nconsecutive_failures = 1\n'


@pytest.fixture(autouse=True)
def quick_okta_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Okta 5xx are retried with backoff; the leak test does not need to wait for it."""
    monkeypatch.setattr(OKTA_RETRIES, FAST_RETRIES)


# --- every command, successful ----------------------------------------------------------------------


def test_every_command_leaks_no_credential(okta: Okta, scim_url: str, tmp_path: Path, echoes: Echoes) -> None:
    """dry-run (text, JSON, JSON logs), save-plan, apply PLAN, apply, history, show, db, check, serve: all at DEBUG."""
    service = '[schedule]\ninterval = "1h"\njitter = 0\n[metrics]\nlisten = ""\n'
    extra = alerts_section(echoes.alert_url) + service
    config = write_local_config(tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN, extra)
    sinks = Sinks(files=[config.parent / "plan.json", CASSETTES], stores=[sqlite_path(config)])
    debug = ("--config", config, "--log-level", "DEBUG")
    people = [user.id for user in okta.emulator.add_assigned_users(okta.app_id, 5)]
    with httpx.Client(base_url=scim_url, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as platform:
        provision(okta, platform, people[:3])
    okta.emulator.unassign_user(okta.app_id, people[0])

    assert sinks.add("dry-run", reconcile(*debug, "--dry-run")).code == 2
    assert (
        sinks.add("dry-run json", reconcile(*debug, "--dry-run", "--output", "json", "--log-format", "json")).code == 2
    )
    saved = sinks.add("save-plan", reconcile(*debug, "--dry-run", "--save-plan", config.parent / "plan.json"))
    assert saved.code == 2, saved.stderr
    applied = sinks.add("apply plan", reconcile(*debug, "apply", config.parent / "plan.json", "--yes"))
    assert applied.code == 0, applied.stderr
    okta.emulator.add_assigned_users(okta.app_id, 1)
    assert sinks.add("apply", reconcile(*debug, "--output", "json")).code == 0
    for output in ("text", "json"):
        assert sinks.add(f"history {output}", reconcile(*debug, "history", "--output", output)).code == 0
        for run_id in run_ids(config):
            assert sinks.add(f"show {run_id}", reconcile(*debug, "show", str(run_id), "--output", output)).code == 0
    assert sinks.add("db status", reconcile(*debug, "db", "status")).code == 0
    assert sinks.add("db upgrade", reconcile(*debug, "db", "upgrade")).code == 0
    for output in ("text", "json"):
        assert sinks.add(f"check {output}", reconcile(*debug, "check", "--output", output)).code == 0
    sinks.add("serve", serve_briefly(config, sqlite_path(config), runs_before=len(run_ids(config))))
    sinks.texts += [("alert", body) for body in echoes.inbox.bodies]

    assert echoes.inbox.bodies, "alerts went out (drift above alert_drift = 1)"
    assert len(run_ids(config)) >= 6
    sinks.assert_clean([OKTA_TOKEN, SCIM_TOKEN, ALERT_SECRET, CASSETTE_OKTA_TOKEN, CASSETTE_SCIM_TOKEN])


def serve_briefly(config: Path, database: Path, runs_before: int, timeout_s: float = 30) -> Result:
    """``reconcile serve`` as a process at DEBUG until it has finished one run, then SIGTERM; its output."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--config", str(config), "--log-level", "DEBUG", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={key: value for key, value in os.environ.items() if key != "RECONCILER_CONFIG"},
    )
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and finished_runs(database) <= runs_before:
            time.sleep(0.1)
        assert finished_runs(database) > runs_before, "serve finished a run"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    return Result(process.returncode, stdout, stderr)


def finished_runs(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT count(*) FROM runs WHERE status != 'running'").fetchone()
    return int(count)


# --- failures that echo credentials -------------------------------------------------------------------


def test_credentials_echoed_by_either_side_leak_nowhere(tmp_path: Path, okta: Okta, echoes: Echoes) -> None:
    """Echoed Authorization headers in SCIM and Okta error bodies, in listings and in writes."""
    sinks = Sinks()

    # The platform echoes the token when refusing each create (a 400, recorded per action).
    okta.emulator.add_assigned_users(okta.app_id, 3)
    writes = write_local_config(
        tmp_path / "writes",
        okta.org_url,
        okta.app_id,
        echoes.scim_url,
        OKTA_TOKEN,
        SCIM_TOKEN,
        alerts_section(echoes.alert_url),
    )
    sinks.stores.append(sqlite_path(writes))
    partial = sinks.add("refused writes", reconcile("--config", writes, "--log-level", "DEBUG", "--output", "json"))
    assert partial.code == 1 and partial.json()["failed"] == 3, partial.stdout
    assert "********" in partial.stdout, "the echoed token is masked, not shown as Secret(...)"
    assert "Secret(" not in partial.stdout
    # ... and in a listing that fails (503, retried at once: Retry-After 0), with JSON logs.
    echoes.scim.listing_fails = True
    failed = sinks.add(
        "failed listing", reconcile("--config", writes, "--log-level", "DEBUG", "--log-format", "json", "--dry-run")
    )
    assert failed.code == 1 and "503" in failed.stderr
    for output in ("text", "json"):
        for run_id in run_ids(writes):
            sinks.add("show", reconcile("--config", writes, "show", str(run_id), "--output", output))

    # Okta echoes the token it refused (401), then in a 500 page.
    okta_side = write_local_config(
        tmp_path / "okta",
        echoes.org_url,
        "0oaAPP",
        echoes.scim_url,
        OKTA_TOKEN,
        SCIM_TOKEN,
        alerts_section(echoes.alert_url),
    )
    echoes.scim.listing_fails = False
    sinks.stores.append(sqlite_path(okta_side))
    for status in (401, 500):
        echoes.okta.status = status
        result = sinks.add(f"okta {status}", reconcile("--config", okta_side, "--log-level", "DEBUG", "--dry-run"))
        assert result.code == 1 and f"{status}" in result.stderr, result.stderr
    sinks.add("history", reconcile("--config", okta_side, "history", "--output", "json"))
    sinks.texts += [("alert", body) for body in echoes.inbox.bodies]

    assert len(echoes.inbox.bodies) >= 2
    sinks.assert_clean([OKTA_TOKEN, SCIM_TOKEN, ALERT_SECRET])


def test_wrong_tokens_leak_nowhere(okta: Okta, scim_url: str, tmp_path: Path) -> None:
    sinks = Sinks()
    okta.emulator.add_assigned_users(okta.app_id, 1)
    for name, okta_token, scim_token in (
        ("okta", WRONG_OKTA_TOKEN, SCIM_TOKEN),
        ("scim", OKTA_TOKEN, WRONG_SCIM_TOKEN),
    ):
        config = write_local_config(tmp_path / name, okta.org_url, okta.app_id, scim_url, okta_token, scim_token)
        sinks.stores.append(sqlite_path(config))
        result = sinks.add(name, reconcile("--config", config, "--log-level", "DEBUG", "--output", "json"))
        assert result.code == 1 and "401" in result.json()["error"]
        sinks.add(f"{name} history", reconcile("--config", config, "history"))
    sinks.assert_clean([WRONG_OKTA_TOKEN, WRONG_SCIM_TOKEN, OKTA_TOKEN, SCIM_TOKEN])


def test_a_private_key_and_the_access_tokens_it_earns_leak_nowhere(okta: Okta, scim_url: str, tmp_path: Path) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    service_app = okta.emulator.new_service_app(["okta.apps.read", "okta.users.read", "okta.groups.read"])
    config = write_local_config(tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN)
    key_file = config.parent / "okta-private-key.pem"
    key_file.write_text(service_app.private_key_pem)
    key_file.chmod(0o600)
    config.write_text(
        config.read_text().replace(
            'auth = "api_token"\ntoken_file = "okta.token"\n',
            f'auth = "private_key"\nclient_id = "{service_app.client_id}"\nprivate_key_file = "{key_file.name}"\n',
        )
    )
    sinks = Sinks(stores=[sqlite_path(config)])
    result = sinks.add("private key", reconcile("--config", config, "--log-level", "DEBUG", "--output", "json"))
    assert result.code == 0, result.stderr
    assert okta.emulator.request_count("/oauth2/v1/token", "POST") == 1
    # The Okta access token the client assertion bought is a credential as well (read from the emulator's book).
    access_tokens = list(okta.emulator._access_tokens)
    assert access_tokens
    sinks.assert_clean([SCIM_TOKEN, *access_tokens])
    sinks.assert_clean_of(pem_forms(service_app.private_key_pem))


# --- exception texts ----------------------------------------------------------------------------------


def exception_texts(error: BaseException) -> list[tuple[str, str]]:
    """str, repr and the whole traceback with its causes, as a log's ``exc`` would show it."""
    return [("str", str(error)), ("repr", repr(error)), ("traceback", "".join(traceback.format_exception(error)))]


async def test_exceptions_carry_no_credential(echoes: Echoes, tmp_path: Path) -> None:
    sinks = Sinks()
    fast = RetryPolicy(attempts=2, backoff_multiplier_s=0.01, max_backoff_s=0.01, jitter_s=0)
    async with reader_on(echoes.scim_url, Secret(SCIM_TOKEN), retry=fast) as reader:
        with pytest.raises(ReconcileError) as refused:
            await writer_of(reader).create_user({"userName": "a@example.com"})
        sinks.texts += exception_texts(refused.value)
        echoes.scim.listing_fails = True
        with pytest.raises(ReconcileError) as unavailable:
            await reader.list_users()
        sinks.texts += exception_texts(unavailable.value)
    for status in (401, 500):
        echoes.okta.status = status
        source = OktaSource(org_url=echoes.org_url, app_id="0oaAPP", auth="api_token", token=Secret(OKTA_TOKEN))
        with pytest.raises(ReconcileError) as raised:
            await source.list_assignments()
        sinks.texts += exception_texts(raised.value)
    pasted = tmp_path / "config.toml"  # a token pasted where the NAME of its variable belongs
    pasted.write_text(OKTA_SECTION + f'token_env = "{OKTA_TOKEN}"\n' + SCIM_SECTION + f'token_env = "{SCIM_TOKEN}"\n')
    with pytest.raises(ConfigError) as config_error:
        load_config(pasted, {})
    sinks.texts += exception_texts(config_error.value)

    assert any("********" in text for _, text in sinks.texts)
    sinks.assert_clean([OKTA_TOKEN, SCIM_TOKEN])


async def test_a_credential_cut_short_in_an_excerpt_leaves_no_prefix(echoes: Echoes) -> None:
    """Error bodies are quoted cut short (300 characters): the credential is masked before the cut, so that
    no first characters of it survive, wherever the cut falls."""
    messages: list[str] = []
    once = RetryPolicy(attempts=1)
    echoes.scim.listing_fails, echoes.okta.status = True, 400  # a 400 is final: no retry
    for padding in range(250, 300, 2):
        echoes.scim.padding = echoes.okta.padding = padding
        async with reader_on(echoes.scim_url, Secret(SCIM_TOKEN), retry=once) as reader:
            reader._capabilities = DEFAULT_CAPABILITIES
            for attempt in (writer_of(reader).create_user({"userName": "a@example.com"}), reader.list_users()):
                with pytest.raises(ReconcileError) as raised:
                    await attempt
                messages.append(str(raised.value))
        source = OktaSource(org_url=echoes.org_url, app_id="0oaAPP", auth="api_token", token=Secret(OKTA_TOKEN))
        with pytest.raises(ReconcileError) as okta_raised:
            await source.list_assignments()
        messages.append(str(okta_raised.value))
    leaks = [m for m in messages if SCIM_TOKEN[:8] in m or OKTA_TOKEN[:8] in m]
    assert not leaks, leaks[:3]
    assert sum("…" in m for m in messages) > 20, "the excerpts were cut"


# --- cassettes ----------------------------------------------------------------------------------------


def test_a_cassette_recorded_through_the_command_holds_no_credential(okta: Okta, scim_url: str, tmp_path: Path) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    config = write_local_config(tmp_path / "state", okta.org_url, okta.app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN)
    cassette = tmp_path / "recorded.yaml"
    with recorder().use_cassette(str(cassette)):
        result = reconcile("--config", config, "--log-level", "DEBUG", "--dry-run")
    assert result.code == 2, result.stderr
    assert "/api/v1/apps/" in cassette.read_text() and "/Users" in cassette.read_text()
    Sinks(texts=[("recorded cassette", cassette.read_text())], files=[CASSETTES]).assert_clean(
        [OKTA_TOKEN, SCIM_TOKEN, CASSETTE_OKTA_TOKEN, CASSETTE_SCIM_TOKEN]
    )


# --- secret files must be private -------------------------------------------------------------------------

OKTA_SECTION = '[okta]\norg_url = "https://example.okta.com"\napp_id = "0oa1"\n'
SCIM_SECTION = '[scim]\nbase_url = "https://scim.example.com/scim"\n'


@pytest.mark.parametrize(
    ("mode", "who"),
    [(0o640, "its group"), (0o604, "others"), (0o644, "its group and others"), (0o660, "its group")],
)
def test_a_secret_file_others_may_read_is_refused_with_the_chmod_to_run(tmp_path: Path, mode: int, who: str) -> None:
    token = tmp_path / "scim token"
    token.write_text(SCIM_TOKEN)
    token.chmod(mode)
    config = tmp_path / "config.toml"
    config.write_text(OKTA_SECTION + 'token_env = "OKTA_API_TOKEN"\n' + SCIM_SECTION + 'token_file = "scim token"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(config, {"OKTA_API_TOKEN": OKTA_TOKEN})

    assert raised.value.problems == [
        f"scim.token_file: {token} is accessible to {who} (mode {mode:04o}): a secret file must be private to its "
        f"owner — run: chmod 600 '{token}'"
    ]
    token.chmod(0o600)
    assert load_config(config, {"OKTA_API_TOKEN": OKTA_TOKEN}).scim.token.reveal() == SCIM_TOKEN
    token.chmod(0o400)
    assert load_config(config, {"OKTA_API_TOKEN": OKTA_TOKEN}).scim.token.reveal() == SCIM_TOKEN


def test_every_kind_of_secret_file_is_checked(tmp_path: Path) -> None:
    for name in ("okta.token", "key.pem", "alert-urls"):
        (tmp_path / name).write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
        (tmp_path / name).chmod(0o644)
    (tmp_path / "alert-urls").write_text(f"json://127.0.0.1:9/{ALERT_SECRET}\n")
    config = tmp_path / "config.toml"
    for okta_auth in (
        'token_file = "okta.token"\n',
        'auth = "private_key"\nclient_id = "0oa2"\nprivate_key_file = "key.pem"\n',
    ):
        config.write_text(
            OKTA_SECTION + okta_auth + SCIM_SECTION + 'token_env = "SCIM_TOKEN"\n[alerts]\nurls_file = "alert-urls"\n'
        )
        with pytest.raises(ConfigError) as raised:
            load_config(config, {"SCIM_TOKEN": SCIM_TOKEN})
        keys = [problem.split(":", 1)[0] for problem in raised.value.problems]
        assert keys == [
            "okta.private_key_file" if "private_key" in okta_auth else "okta.token_file",
            "alerts.urls_file",
        ]
        assert all("chmod 600" in problem for problem in raised.value.problems)
        assert ALERT_SECRET not in str(raised.value)


def credentials_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        OKTA_SECTION + 'token_credential = "okta-token"\n' + SCIM_SECTION + 'token_credential = "scim-token"\n'
    )
    return config


def write_credentials(directory: Path, mode: int) -> None:
    directory.mkdir(parents=True)
    for name, value in (("okta-token", OKTA_TOKEN), ("scim-token", SCIM_TOKEN)):
        (directory / name).write_text(value)
        (directory / name).chmod(mode)


def test_credentials_systemd_made_are_not_held_to_the_mode_check(tmp_path: Path) -> None:
    """systemd makes a user service's credentials directory at $XDG_RUNTIME_DIR/credentials/UNIT (a system
    service's at /run/credentials/UNIT), readable by the service alone, and may grant access by ACL, which
    shows as group bits: a credential file there is read whatever its mode."""
    credentials = tmp_path / "runtime" / "credentials" / "okta-reconciler.service"
    write_credentials(credentials, 0o440)
    environ = {"CREDENTIALS_DIRECTORY": str(credentials), "XDG_RUNTIME_DIR": str(tmp_path / "runtime")}
    loaded = load_config(credentials_config(tmp_path), environ)
    assert loaded.scim.token.reveal() == SCIM_TOKEN


def test_credentials_in_a_directory_set_by_hand_are_checked_like_secret_files(tmp_path: Path) -> None:
    """$CREDENTIALS_DIRECTORY pointed by hand at an ordinary directory (a CLI run outside systemd): its files
    are secret files like any other, refused with the chmod to run when others may read them."""
    credentials = tmp_path / "etc" / "credentials"
    write_credentials(credentials, 0o644)
    environ = {"CREDENTIALS_DIRECTORY": str(credentials), "XDG_RUNTIME_DIR": str(tmp_path / "runtime")}
    with pytest.raises(ConfigError) as raised:
        load_config(credentials_config(tmp_path), environ)
    assert raised.value.problems == [
        f"{section}.token_credential: {credentials / name} is accessible to its group and others (mode 0644): a "
        f"secret file must be private to its owner — run: chmod 600 {credentials / name}"
        for section, name in (("okta", "okta-token"), ("scim", "scim-token"))
    ]
    for name in ("okta-token", "scim-token"):
        (credentials / name).chmod(0o600)
    assert load_config(credentials_config(tmp_path), environ).okta.token == Secret(OKTA_TOKEN)


# --- secrets too short to be real -----------------------------------------------------------------


@pytest.mark.parametrize("short", ["x", "e", "1234567"])
@pytest.mark.parametrize("where", ["env", "file", "credential"])
def test_a_token_under_8_characters_is_refused_naming_the_key_never_the_value(
    tmp_path: Path, short: str, where: str
) -> None:
    """A one-letter token would have the log scrubber mask that letter in every word: it never loads."""
    write_credentials(tmp_path / "credentials", 0o600)
    (tmp_path / "scim.token").write_text(short + "\n")
    (tmp_path / "scim.token").chmod(0o600)
    (tmp_path / "credentials" / "scim-token").write_text(short)
    scim_key = {"env": 'token_env = "SCIM_TOKEN"', "file": 'token_file = "scim.token"'}.get(
        where, 'token_credential = "scim-token"'
    )
    config = tmp_path / "config.toml"
    config.write_text(OKTA_SECTION + 'token_env = "OKTA_API_TOKEN"\n' + SCIM_SECTION + scim_key + "\n")
    environ = {
        "OKTA_API_TOKEN": OKTA_TOKEN,
        "SCIM_TOKEN": short,
        "CREDENTIALS_DIRECTORY": str(tmp_path / "credentials"),
    }

    with pytest.raises(ConfigError) as raised:
        load_config(config, environ)

    [problem] = raised.value.problems
    source = {"env": "environment variable SCIM_TOKEN", "file": str(tmp_path / "scim.token")}.get(
        where, str(tmp_path / "credentials" / "scim-token")
    )
    key = scim_key.split(" ")[0]
    assert problem == (
        f"scim.{key}: {source} holds fewer than 8 characters: too short to be a real secret — put the whole token there"
    )
    assert f"{short}\n" not in problem and f" {short} " not in problem


def test_a_token_under_16_characters_loads_with_a_warning_naming_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(OKTA_SECTION + 'token_env = "OKTA_API_TOKEN"\n' + SCIM_SECTION + 'token_env = "SCIM_TOKEN"\n')
    short = "Zq7-w4Lp_9x"  # 11 characters

    with caplog.at_level(logging.WARNING, logger="reconciler.config"):
        loaded = load_config(config, {"OKTA_API_TOKEN": OKTA_TOKEN, "SCIM_TOKEN": short})

    assert loaded.scim.token.reveal() == short
    assert [record.getMessage() for record in caplog.records] == [
        "scim.token_env: environment variable SCIM_TOKEN holds fewer than 16 characters, short for a real token: "
        "check that it is whole"
    ]
    assert short not in caplog.text


def test_a_private_key_or_an_alert_url_too_short_to_be_real_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key.jwk").write_text("{}")
    (tmp_path / "key.jwk").chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(
        OKTA_SECTION
        + 'auth = "private_key"\nclient_id = "0oa2"\nprivate_key_file = "key.jwk"\n'
        + SCIM_SECTION
        + 'token_env = "SCIM_TOKEN"\n[alerts]\nurls = ["a://b"]\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config, {"SCIM_TOKEN": SCIM_TOKEN})
    assert [problem.split(":")[0] for problem in raised.value.problems] == ["okta.private_key_file", "alerts.urls"]
    assert all("fewer than 8 characters" in problem for problem in raised.value.problems)


def test_the_log_scrubber_masks_a_secret_not_the_letters_of_ordinary_words() -> None:
    """However a secret reached it, the scrubber masks only values long enough to be told from words."""
    line = "Okta answered 200 for the assignments of app 0oa1"
    assert redact(line, ["e", "a", ""]) == line
    assert redact(f"token {SCIM_TOKEN} refused", [SCIM_TOKEN]) == "token ******** refused"
    record = logging.LogRecord("reconciler", logging.WARNING, __file__, 1, "reading %s", ("page 2 of app",), None)
    RedactingFilter([Secret("a"), Secret(SCIM_TOKEN)]).filter(record)
    assert record.getMessage() == "reading page 2 of app"


def test_the_demo_and_the_test_helper_write_secret_files_private(tmp_path: Path) -> None:
    config = write_local_config(tmp_path, "http://127.0.0.1:1", "0oa1", "http://127.0.0.1:2/v2", "a" * 20, "b" * 20)
    for name in ("okta.token", "scim.token"):
        assert (config.parent / name).stat().st_mode & 0o777 == 0o600
    assert load_config(config).scim.token.reveal() == "b" * 20
