"""The two connections, ``[okta]`` and ``[scim]``: each read with its URL, its credentials and its transport limits.

Transport: plain ``http://`` is refused for any host but a loopback one (the
token would cross the network in clear), TLS is verified against the system's
trust store, or against ``ca_bundle`` alone when it is set (a private CA, a
path relative to the configuration file), and each answer is read up to
``max_response_mb``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from reconciler.config.connections_model import OktaAuth, OktaConfig, ScimConfig
from reconciler.config.secrets import read_private_key, read_token
from reconciler.config.table import Table


def read_okta(table: Table, environ: Mapping[str, str], base_dir: Path) -> OktaConfig | None:
    if not table.present:
        return None
    table.check_keys()
    org_url = table.http_url(
        "org_url", 'set it to your Okta org, e.g. "https://example.okta.com"', "https://example.okta.com"
    )
    if org_url is not None:
        _check_org_url(table, org_url)
    app_id = table.string("app_id", missing='set it to the id of the SCIM app in Okta, e.g. "0oa1b2c3d4e5f6g7h8i9"')
    auth = table.choice("auth")
    scopes = table.strings("scopes")
    timeout_s = table.seconds("timeout_s")
    ca_bundle = table.ca_bundle(base_dir)
    max_response_bytes = table.response_cap()
    rate_limit_share = table.ratio("rate_limit_share")
    if rate_limit_share == 0:
        table.note("rate_limit_share", "expected a share greater than 0: with 0 the reconciler could never read Okta")
        rate_limit_share = None
    token = client_id = private_key = None
    if auth == "api_token":
        _reject_keys(
            table, ("client_id", "private_key_file", "private_key_credential"), 'only used with auth = "private_key"'
        )
        token = read_token(table, environ, base_dir, "OKTA_API_TOKEN")
    elif auth == "private_key":
        _reject_keys(table, ("token_env", "token_file", "token_credential"), 'only used with auth = "api_token"')
        client_id = table.string("client_id", missing="set it to the client id of the Okta API service app")
        private_key = read_private_key(table, base_dir, environ)
    if not table.clean:
        return None
    assert org_url and app_id and scopes and timeout_s and rate_limit_share and max_response_bytes
    return OktaConfig(
        org_url,
        app_id,
        cast(OktaAuth, auth),
        token,
        client_id,
        private_key,
        scopes,
        timeout_s,
        rate_limit_share,
        ca_bundle,
        max_response_bytes,
    )


def _check_org_url(table: Table, org_url: str) -> None:
    parts = urlsplit(org_url)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        table.note("org_url", f'expected the org URL alone, without a path, e.g. "{parts.scheme}://{parts.netloc}"')
    if "-admin." in (parts.hostname or ""):
        table.note("org_url", 'use the org URL, not the admin console URL: remove "-admin"')


def _reject_keys(table: Table, keys: tuple[str, ...], why: str) -> None:
    for key in keys:
        if table.has(key):
            table.note(key, f"{why} — remove it or change auth")


def read_scim(table: Table, environ: Mapping[str, str], base_dir: Path) -> ScimConfig | None:
    if not table.present:
        return None
    table.check_keys()
    base_url = table.http_url(
        "base_url",
        'set it to the platform\'s SCIM base URL, e.g. "https://scim-api.example.com/scim"',
        "https://scim-api.example.com/scim",
    )
    page_size = table.integer("page_size")
    timeout_s = table.seconds("timeout_s")
    read_concurrency = table.integer("read_concurrency")
    write_concurrency = table.integer("write_concurrency")
    ca_bundle = table.ca_bundle(base_dir)
    max_response_bytes = table.response_cap()
    token = read_token(table, environ, base_dir, "SCIM_TOKEN")
    if not table.clean:
        return None
    assert base_url and token and page_size and timeout_s and read_concurrency and write_concurrency
    assert max_response_bytes
    return ScimConfig(
        base_url, token, page_size, timeout_s, read_concurrency, write_concurrency, ca_bundle, max_response_bytes
    )
