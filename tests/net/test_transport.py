"""Transport safety: TLS verified by default on both sides, ``ca_bundle`` for a private CA, no plain http off loopback.

Real TLS servers on 127.0.0.1 with a CA made for the test (tests/support/tls_servers.py):
the Okta emulator's own app and a small SCIM endpoint, reached through the
``reconcile`` command, the okta SDK's session (OAuth token request included)
and httpx.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from reconciler.config import load_config
from reconciler.errors import ConfigError, SourceError, TargetError
from reconciler.okta.source import OktaSource
from reconciler.secret import Secret
from reconciler.testing.okta import OktaEmulator
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN
from tests.support.cli_runner import reconcile
from tests.support.scim_clients import reader_on
from tests.support.tls_servers import TlsFiles, empty_scim_app, make_tls_files, serve_in_thread

ENV = {"OKTA_API_TOKEN": OKTA_TOKEN, "SCIM_TOKEN": SCIM_TOKEN}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


class TlsPair:
    """The Okta emulator and an empty SCIM endpoint, both over TLS with the test CA."""

    def __init__(self, emulator: OktaEmulator, app_id: str, org_url: str, scim_url: str) -> None:
        self.emulator, self.app_id, self.org_url, self.scim_url = emulator, app_id, org_url, scim_url


@pytest.fixture
def tls_pair(tls: TlsFiles) -> Iterator[TlsPair]:
    emulator = OktaEmulator(seed=5, api_tokens=[OKTA_TOKEN])
    app = emulator.create_app()
    emulator.add_assigned_users(app.id, 2)
    context = tls.server_context()
    with serve_in_thread([(emulator.make_app(), context), (empty_scim_app(), context)]) as (org_url, scim_base):
        yield TlsPair(emulator, app.id, org_url, scim_base + "/v2")


def config_with_ca_bundles(state: Path, pair: TlsPair, okta_ca: Path | None, scim_ca: Path | None) -> Path:
    """A config file for the pair, each side trusting ``*_ca`` (relative to the config file) when given."""
    path = write_local_config(state, pair.org_url, pair.app_id, pair.scim_url, OKTA_TOKEN, SCIM_TOKEN)
    text = path.read_text()
    if okta_ca is not None:
        text = text.replace('token_file = "okta.token"\n', f'token_file = "okta.token"\nca_bundle = "{okta_ca}"\n')
    if scim_ca is not None:
        text = text.replace('token_file = "scim.token"\n', f'token_file = "scim.token"\nca_bundle = "{scim_ca}"\n')
    path.write_text(text)
    return path


@pytest.mark.parametrize("untrusted", ["okta", "scim"])
def test_without_the_ca_bundle_the_run_fails_with_a_clear_certificate_error(
    tls: TlsFiles, tls_pair: TlsPair, tmp_path: Path, untrusted: str
) -> None:
    """TLS is verified by default: a certificate from an unknown CA fails the run, naming the option to set."""
    bundle = tmp_path / "state" / "private-ca.pem"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(tls.ca_pem.read_bytes())
    relative = Path("private-ca.pem")  # relative to the config file, like the other paths
    config = config_with_ca_bundles(
        tmp_path / "state",
        tls_pair,
        okta_ca=None if untrusted == "okta" else relative,
        scim_ca=None if untrusted == "scim" else relative,
    )

    started = time.monotonic()
    result = reconcile("--config", config, "--dry-run", "--output", "json")

    assert result.code == 1, result.stderr
    error = result.json()["error"]
    assert "certificate" in error and "does not verify" in error
    assert f"set {untrusted}.ca_bundle" in error
    assert "gave up after" not in error, "a certificate that does not verify is not retried"
    assert time.monotonic() - started < 10
    if untrusted == "okta":
        assert tls_pair.emulator.request_count() == 0, "no request went out over the unverified connection"


def test_with_the_ca_bundle_both_sides_are_read_over_tls(tls: TlsFiles, tls_pair: TlsPair, tmp_path: Path) -> None:
    config = config_with_ca_bundles(tmp_path / "state", tls_pair, okta_ca=tls.ca_pem, scim_ca=tls.ca_pem)

    result = reconcile("--config", config, "--dry-run", "--output", "json")

    assert result.code == 2, result.stderr  # drift: the two assigned users are missing on the platform
    assert result.json()["summary"]["create"] == 2
    assert tls_pair.emulator.request_count("/api/v1/apps/*/users") == 1


async def test_the_okta_token_request_goes_through_the_same_verified_session(tls: TlsFiles) -> None:
    """private_key_jwt: the POST to /oauth2/v1/token uses the ca_bundle too, and fails without it."""
    emulator = OktaEmulator(seed=6)
    app = emulator.create_app()
    emulator.add_assigned_users(app.id, 3)
    service_app = emulator.new_service_app(["okta.apps.read", "okta.users.read"])
    async with _served(emulator.make_app(), tls) as org_url:

        def source(ca_bundle: Path | None) -> OktaSource:
            return OktaSource(
                org_url=org_url,
                app_id=app.id,
                auth="private_key",
                client_id=service_app.client_id,
                private_key=Secret(service_app.private_key_pem),
                timeout_s=5,
                ca_bundle=ca_bundle,
            )

        with pytest.raises(SourceError, match=r"TLS certificate does not verify .*okta\.ca_bundle"):
            await source(None).list_assignments()
        assert emulator.request_count() == 0
        assert len(await source(tls.ca_pem).list_assignments()) == 3
    assert emulator.request_count("/oauth2/v1/token", "POST") == 1


async def test_a_certificate_for_another_host_is_refused_even_from_the_trusted_ca(tmp_path: Path) -> None:
    """Hostname verification stays on with a ca_bundle: a cert for localhost does not do for 127.0.0.1."""
    other_host = make_tls_files(tmp_path / "tls", hosts=("localhost",))
    async with _served(empty_scim_app(), other_host) as base_url:
        async with reader_on(base_url + "/v2", Secret(SCIM_TOKEN), ca_bundle=other_host.ca_pem) as reader:
            with pytest.raises(TargetError, match=r"TLS certificate does not verify.*scim\.ca_bundle"):
                await reader.list_users()
            assert reader.request_counts["GET"] == 1, "not retried"
        async with reader_on(
            base_url.replace("127.0.0.1", "localhost") + "/v2", Secret(SCIM_TOKEN), ca_bundle=other_host.ca_pem
        ) as reader:
            assert await reader.list_users() == []


@asynccontextmanager
async def _served(app: web.Application, tls: TlsFiles) -> AsyncIterator[str]:
    """Serve ``app`` over TLS on 127.0.0.1 in the running event loop; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context()).start()
        host, port = runner.addresses[0][:2]
        yield f"https://{host}:{port}"
    finally:
        await runner.cleanup()


# --- configuration ----------------------------------------------------------------------------

OKTA = '[okta]\norg_url = "https://example.okta.com"\napp_id = "0oa1"\ntoken_env = "OKTA_API_TOKEN"\n'
SCIM = '[scim]\nbase_url = "https://scim.example.com/scim"\ntoken_env = "SCIM_TOKEN"\n'


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, ENV)
    return raised.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            OKTA.replace("https://example.okta.com", "http://example.okta.com") + SCIM,
            "okta.org_url: plain http:// to example.okta.com would send the credentials unencrypted — use https://",
        ),
        (
            OKTA + SCIM.replace("https://scim.example.com", "http://10.1.2.3:8080"),
            "scim.base_url: plain http:// to 10.1.2.3 would send the credentials unencrypted — use https://",
        ),
    ],
    ids=["okta", "scim"],
)
def test_plain_http_off_loopback_is_refused_at_load_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    [line] = problems_of(tmp_path, text)
    assert line.startswith(expected)
    assert "loopback" in line


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.8.9.10"])
def test_plain_http_to_a_loopback_host_is_accepted(tmp_path: Path, host: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        OKTA.replace("https://example.okta.com", f"http://{host}:8080")
        + SCIM.replace("https://scim.example.com", f"http://{host}:9090")
    )
    config = load_config(path, ENV)
    assert config.scim.base_url == f"http://{host}:9090/scim"


def test_plain_http_off_loopback_is_refused_by_the_scim_reader_too() -> None:
    with pytest.raises(
        TargetError, match=r"refusing plain http:// for SCIM at http://scim.example.com.*scim\.base_url"
    ):
        reader_on("http://scim.example.com/scim", Secret(SCIM_TOKEN))


def test_ca_bundles_are_read_relative_to_the_config_file(tls: TlsFiles, tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.pem").write_bytes(tls.ca_pem.read_bytes())
    path = tmp_path / "config.toml"
    path.write_text(OKTA + 'ca_bundle = "pki/ca.pem"\nmax_response_mb = 8\n' + SCIM + f'ca_bundle = "{tls.ca_pem}"\n')
    config = load_config(path, ENV)
    assert config.okta.ca_bundle == tmp_path / "pki" / "ca.pem"
    assert config.scim.ca_bundle == tls.ca_pem
    assert (config.okta.max_response_bytes, config.scim.max_response_bytes) == (8 << 20, 64 << 20)


def test_unusable_ca_bundles_name_the_key_and_the_fix(tls: TlsFiles, tmp_path: Path) -> None:
    (tmp_path / "not-pem.pem").write_text("hello\n")
    (tmp_path / "broken.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    text = OKTA + 'ca_bundle = "missing.pem"\n' + SCIM + 'ca_bundle = "not-pem.pem"\n'
    okta_line, scim_line = problems_of(tmp_path, text)
    assert okta_line.startswith(f"okta.ca_bundle: cannot read {tmp_path / 'missing.pem'}: No such file")
    assert scim_line.startswith(f"scim.ca_bundle: {tmp_path / 'not-pem.pem'} holds no PEM certificate")
    assert "set it to the PEM file of the CA" in okta_line

    [line] = problems_of(tmp_path, OKTA + SCIM + 'ca_bundle = "broken.pem"\n')
    assert line.startswith(f"scim.ca_bundle: {tmp_path / 'broken.pem'} is not a usable PEM CA bundle")


def test_max_response_mb_is_bounded(tmp_path: Path) -> None:
    [line] = problems_of(tmp_path, OKTA + SCIM + "max_response_mb = 0\n")
    assert line == "scim.max_response_mb: expected an integer from 1 to 4096, got 0"
