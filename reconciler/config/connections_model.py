"""The two connections' tables, ``[okta]`` and ``[scim]``: where each side is, its credentials, its limits. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from reconciler.config.keys import (
    CREDENTIAL,
    ENV_NAME,
    PATH,
    SECRET_FILE,
    STRINGS,
    URL,
    Key,
    choice,
    integer,
    seconds,
    setting,
    share,
    text,
)
from reconciler.net.limits import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_RESPONSE_MB
from reconciler.secret import Secret

DEFAULT_SCOPES: Final = ("okta.apps.read", "okta.users.read", "okta.groups.read")


MAX_PAGE_SIZE: Final = 1000


MAX_CONCURRENCY: Final = 64


OktaAuth = Literal["api_token", "private_key"]


def _token_keys(what: str, example_env: str, note: str = "") -> tuple[Key, Key, Key]:
    """``token_env``, ``token_file`` and ``token_credential``: three ways to give one token."""
    return (
        Key(
            "token_env",
            ENV_NAME,
            f'The NAME of the environment variable holding {what}, e.g. ``"{example_env}"``.{note} Exactly one of '
            "``token_env``, ``token_file`` and ``token_credential``.",
        ),
        Key("token_file", SECRET_FILE, f"Or: a file holding {what}."),
        Key("token_credential", CREDENTIAL, f"Or, under systemd: the name given to ``LoadCredential=`` for {what}."),
    )


def _ca_bundle_key(side: str, why: str, default: str) -> Key:
    return text(
        "ca_bundle",
        f"A PEM file of the CA certificate(s) to trust for {side} instead of the system's, {why}. Default: {default}.",
        PATH,
    )


def _response_cap_key(side: str, example: str) -> Key:
    return integer(
        "max_response_mb",
        1,
        4096,
        f"An answer from {side} larger than this (in MiB, counted decompressed) is refused unread and fails the "
        f"run: {example}.",
        default=DEFAULT_MAX_RESPONSE_MB,
    )


@dataclass(frozen=True)
class OktaConfig:
    """Okta: where the desired state comes from, the app whose assignments are reconciled.

    Preferred credentials: an API service app (Applications › Create App Integration › API
    Services), client authentication *Public key / Private key*, with the scopes ``okta.apps.read``,
    ``okta.users.read`` and ``okta.groups.read`` granted and a read-only admin role. Alternatively an
    API token (Security › API › Tokens), which carries its admin's rights.
    """

    org_url: str = setting(
        text(
            "org_url", 'Your Okta org URL, without a path and without ``-admin``: ``"https://example.okta.com"``.', URL
        )
    )
    app_id: str = setting(
        text(
            "app_id",
            "The id of the SCIM app in Okta whose assignments are reconciled (Applications › the app: the id is "
            "the last part of its admin URL, starting with ``0oa``).",
        )
    )
    auth: OktaAuth = setting(
        choice(
            "auth",
            OktaAuth,
            "How the reconciler authenticates to the Okta Management API: ``api_token``, an SSWS API token "
            "(Security › API › Tokens) with the rights of the admin who created it; ``private_key``, an OAuth 2.0 "
            "API service app with private_key_jwt, granted only ``scopes``: preferred for production.",
            default="api_token",
        )
    )
    token: Secret | None = setting(
        *_token_keys("the SSWS API token", "OKTA_API_TOKEN", ' With ``auth = "api_token"``.'), default=None
    )
    client_id: str | None = setting(
        text("client_id", 'With ``auth = "private_key"``: the client id of the API service app.'), default=None
    )
    private_key: Secret | None = setting(
        Key(
            "private_key_file",
            SECRET_FILE,
            'With ``auth = "private_key"``: the API service app\'s private key, a PEM file or a JWK (JSON).',
        ),
        Key("private_key_credential", CREDENTIAL, "Or, under systemd: that key given by ``LoadCredential=``."),
        default=None,
    )
    """The PEM or JWK text."""
    scopes: tuple[str, ...] = setting(
        text("scopes", 'The scopes asked with ``auth = "private_key"``; the reconciler only reads Okta.', STRINGS),
        default=DEFAULT_SCOPES,
    )
    timeout_s: float = setting(seconds("timeout_s", "Seconds before a request to Okta is abandoned."), default=30.0)
    rate_limit_share: float = setting(
        share(
            "rate_limit_share",
            "The share of each Okta rate-limit window (``X-Rate-Limit-Limit`` per minute) a run may spend, greater "
            "than 0. Okta lets an API token use 50 % of an endpoint's limit by default, and other integrations "
            "share the rest: at this share the run waits for the window to reset instead of meeting a 429.",
        ),
        default=0.5,
    )
    ca_bundle: Path | None = setting(
        _ca_bundle_key("Okta", "e.g. when a TLS-inspecting proxy re-signs traffic", "the system's CAs"), default=None
    )
    max_response_bytes: int = setting(
        _response_cap_key("Okta", "a 500-user page is about 1 MB"), default=DEFAULT_MAX_RESPONSE_BYTES
    )


@dataclass(frozen=True)
class ScimConfig:
    """The platform whose users are repaired: its SCIM 2.0 endpoint, its bearer token, and how hard to press it."""

    base_url: str = setting(
        text(
            "base_url",
            'The platform\'s SCIM 2.0 base URL: the "Base URL" entered in the Okta app, e.g. '
            '``"https://scim-api.example.com/scim"`` (the reconciler appends ``/Users``, ``/ServiceProviderConfig``, '
            "...).",
            URL,
        )
    )
    token: Secret = setting(*_token_keys("the bearer token", "SCIM_TOKEN"))
    page_size: int = setting(
        integer("page_size", 1, MAX_PAGE_SIZE, "Users asked per page when listing. Servers may cap it lower."),
        default=100,
    )
    timeout_s: float = setting(seconds("timeout_s", "Seconds before a SCIM request is abandoned."), default=30.0)
    read_concurrency: int = setting(
        integer(
            "read_concurrency",
            1,
            MAX_CONCURRENCY,
            "Pages read at once after the first one (which tells how many there are).",
        ),
        default=4,
    )
    write_concurrency: int = setting(
        integer(
            "write_concurrency",
            1,
            MAX_CONCURRENCY,
            "Writes (creates, updates, deactivations) in flight at most. When the platform answers 429 the "
            "reconciler halves this, honours ``Retry-After``, and climbs back as writes succeed.",
        ),
        default=4,
    )
    ca_bundle: Path | None = setting(
        _ca_bundle_key(
            "the platform", "for an endpoint whose certificate a private CA signed", "the system's CAs (certifi)"
        ),
        default=None,
    )
    max_response_bytes: int = setting(
        _response_cap_key("the platform", "a 1000-user page is a few MB"), default=DEFAULT_MAX_RESPONSE_BYTES
    )
