"""The configuration file: read, validated as a whole, secrets wrapped.

Validation collects every problem before it raises, so that one run of
``reconcile`` shows everything to fix, one line per problem, each naming its
key. It does no network I/O; it only reads the file, the environment and the
secret files the configuration points to.

Secrets come from an environment variable (``token_env``) or a file
(``token_file``, ``private_key_file``); their values are stripped of
surrounding whitespace, wrapped in :class:`~reconciler.secret.Secret`, and
never written into a message. A relative secret file path is taken relative
to the configuration file's directory.

``[mapping]`` is merged over :data:`~reconciler.mapping.DEFAULT_MAPPING`: a key
given in the file replaces the default mapping of that SCIM path (matched
without regard to case), a new key adds a mapping, and a key set to ``""``
removes a default mapping.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from reconciler.errors import ConfigError
from reconciler.mapping import DEFAULT_MAPPING, mapping_problems
from reconciler.secret import Secret

CONFIG_ENV: Final = "RECONCILER_CONFIG"
DEFAULT_SCOPES: Final = ("okta.apps.read", "okta.users.read", "okta.groups.read")
DEFAULT_STORE_URL: Final = "sqlite:///reconciler.db"
"""A SQLite file ``reconciler.db`` in the current directory."""
MAX_PAGE_SIZE: Final = 1000

OktaAuth = Literal["api_token", "private_key"]
UnmanagedPolicy = Literal["report", "deactivate"]
SuspendedPolicy = Literal["deactivate", "keep"]


@dataclass(frozen=True)
class OktaConfig:
    org_url: str
    app_id: str
    auth: OktaAuth
    token: Secret | None = None
    """The SSWS API token, with ``auth = "api_token"``."""
    client_id: str | None = None
    private_key: Secret | None = None
    """The PEM or JWK text read from ``private_key_file``, with ``auth = "private_key"``."""
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    timeout_s: float = 30.0


@dataclass(frozen=True)
class ScimConfig:
    base_url: str
    token: Secret
    page_size: int = 100
    timeout_s: float = 30.0


@dataclass(frozen=True)
class PolicyConfig:
    unmanaged: UnmanagedPolicy = "report"
    """What to do with platform users Okta never managed."""
    suspended: SuspendedPolicy = "keep"
    """What to do with users Okta has SUSPENDED (Okta itself sends nothing)."""


@dataclass(frozen=True)
class StoreConfig:
    url: str = field(default=DEFAULT_STORE_URL, repr=False)
    """An SQLAlchemy database URL; it may hold a database password, hence the masked repr."""

    def __repr__(self) -> str:
        return f"StoreConfig(url={_masked_url(self.url)!r})"


@dataclass(frozen=True)
class Config:
    okta: OktaConfig
    scim: ScimConfig
    mapping: Mapping[str, str]
    """``{SCIM attribute path: Okta source path}``, the defaults merged with the file's."""
    policy: PolicyConfig
    store: StoreConfig
    source_path: Path | None = None


def fingerprint(config: Config) -> str:
    """A sha256 of what identifies the pair being reconciled: no secret goes in.

    Two configurations with the same fingerprint reconcile the same Okta app
    against the same SCIM endpoint, whatever their credentials or tuning.
    """
    identity = [config.okta.org_url, config.okta.app_id, config.scim.base_url]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def load_config(path: str | Path | None, environ: Mapping[str, str] = os.environ) -> Config:
    """Read and validate the configuration at ``path`` (else ``$RECONCILER_CONFIG``).

    Raises ConfigError with one line per problem found.
    """
    config_path = _config_path(path, environ)
    document = _read_toml(config_path)
    return _build(document, config_path, environ)


# --- the file ---------------------------------------------------------------------------------


def _config_path(path: str | Path | None, environ: Mapping[str, str]) -> Path:
    if path is not None and str(path):
        return Path(path).expanduser().absolute()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser().absolute()
    raise ConfigError([f"no configuration file: pass --config FILE or set {CONFIG_ENV}"])


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such configuration file"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot read the configuration file: {_os_reason(error)}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not valid TOML: the file is not UTF-8 text"]) from None


SECTIONS: Final = ("okta", "scim", "mapping", "policy", "store")


def _build(document: Mapping[str, Any], source_path: Path, environ: Mapping[str, str]) -> Config:
    problems: list[str] = []
    tables = _sections(document, problems)
    base_dir = source_path.parent
    okta = _okta(_Table("okta", tables.get("okta"), problems), environ, base_dir)
    scim = _scim(_Table("scim", tables.get("scim"), problems), environ, base_dir)
    mapping = _mapping(tables.get("mapping") or {}, problems)
    policy = _policy(_Table("policy", tables.get("policy") or {}, problems))
    store = _store(_Table("store", tables.get("store") or {}, problems))
    if problems:
        raise ConfigError(problems)
    assert okta and scim and mapping is not None and policy and store
    return Config(okta, scim, mapping, policy, store, source_path)


def _sections(document: Mapping[str, Any], problems: list[str]) -> dict[str, Mapping[str, Any]]:
    """The known top-level tables; a problem for each unknown or mistyped one."""
    tables: dict[str, Mapping[str, Any]] = {}
    for name, value in document.items():
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section{_did_you_mean(name, SECTIONS)}")
        elif not isinstance(value, dict):
            problems.append(f"{name}: expected a table [{name}], got {_show(value)}")
        else:
            tables[name] = value
    for required in ("okta", "scim"):
        if required not in document:
            problems.append(f"{required}: missing section — add an [{required}] table (see config.example.toml)")
    return tables


# --- reading one table ------------------------------------------------------------------------


class _Table:
    """One table of the file, read key by key; each problem is noted, not raised.

    Each reader returns the value, its default when the key is absent, or
    None when the value is unusable (the problem is noted).
    """

    def __init__(self, name: str, values: Mapping[str, Any] | None, problems: list[str]) -> None:
        self.name = name
        self.present = values is not None
        self.values: Mapping[str, Any] = values or {}
        self.problems = problems
        self._problems_before = len(problems)

    @property
    def clean(self) -> bool:
        """No problem noted for this table so far."""
        return len(self.problems) == self._problems_before

    def note(self, key: str, text: str) -> None:
        self.problems.append(f"{self.name}.{key}: {text}")

    def has(self, key: str) -> bool:
        return key in self.values

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.values:
            if key in SECTIONS:
                self.note(key, f"unknown key — is the [{key}] header missing?")
            elif key not in allowed:
                self.note(key, f"unknown key{_did_you_mean(key, allowed)}")

    def string(self, key: str, missing: str | None = None) -> str | None:
        """A non-empty string; ``missing`` (a hint) makes the key required."""
        value = self.values.get(key)
        if value is None or value == "":
            if missing is not None:
                self.note(key, f"missing — {missing}")
            return None
        if not isinstance(value, str):
            self.note(key, f"expected a string, got {_show(value)}")
            return None
        return value

    def http_url(self, key: str, missing: str, example: str) -> str | None:
        value = self.string(key, missing)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.note(key, f'expected an http(s) URL, e.g. "{example}", got {_show(value)}')
            return None
        return value.rstrip("/")

    def integer(self, key: str, default: int, low: int, high: int) -> int | None:
        value = self.values.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            self.note(key, f"expected an integer, got {_show(value)}")
            return None
        if not low <= value <= high:
            self.note(key, f"expected an integer from {low} to {high}, got {value}")
            return None
        return value

    def seconds(self, key: str, default: float) -> float | None:
        value = self.values.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.note(key, f"expected a number of seconds, got {_show(value)}")
            return None
        if not value > 0:
            self.note(key, f"expected a number of seconds greater than 0, got {value}")
            return None
        return float(value)

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str | None:
        value = self.values.get(key, default)
        if value not in options:
            expected = " or ".join(f'"{option}"' for option in options)
            self.note(key, f"expected {expected}, got {_show(value)}")
            return None
        return cast(str, value)

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...] | None:
        value = self.values.get(key, list(default))
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.note(key, f"expected a non-empty list of strings, e.g. {_show(list(default))}, got {_show(value)}")
            return None
        return tuple(value)


# --- secrets ----------------------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONVENTIONAL_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def _token(table: _Table, environ: Mapping[str, str], base_dir: Path, example_env: str) -> Secret | None:
    """The token from exactly one of ``token_env`` / ``token_file``."""
    from_env, from_file = table.has("token_env"), table.has("token_file")
    if from_env and from_file:
        table.note("token_file", "set together with token_env — keep only one of them")
        return None
    if from_file:
        text = _read_secret_file(table, "token_file", base_dir)
        return None if text is None else Secret(text)
    if from_env:
        return _secret_env(table, "token_env", environ, example_env)
    table.note("token_env", f'missing — set token_env = "{example_env}" (and export it), or token_file = "/path"')
    return None


def _secret_env(table: _Table, key: str, environ: Mapping[str, str], example_env: str) -> Secret | None:
    name = table.string(key, missing=f'set it to the name of an environment variable, e.g. "{example_env}"')
    if name is None:
        return None
    if not _ENV_NAME.match(name):
        # The value is not echoed: a token pasted here by mistake must not be printed.
        table.note(key, "expected the NAME of an environment variable (letters, digits, _), not the token itself")
        return None
    value = environ.get(name, "").strip()
    if not value:
        shown = f"environment variable {name}" if _CONVENTIONAL_ENV_NAME.match(name) else "the environment variable"
        state = "is empty" if name in environ else "is not set"
        table.note(key, f"{shown} {state} — export it or use {table.name}.{key.removesuffix('_env')}_file")
        return None
    return Secret(value)


def _secret_path(table: _Table, key: str, base_dir: Path) -> Path | None:
    name = table.string(key, missing='set it to the path of a file holding the secret, e.g. "/etc/reconciler/token"')
    return None if name is None else base_dir / Path(name).expanduser()


def _read_secret_file(table: _Table, key: str, base_dir: Path) -> str | None:
    """The file's text, stripped; a problem naming the key and the path when unusable."""
    path = _secret_path(table, key, base_dir)
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        table.note(key, f"cannot read {path}: {_os_reason(error)}")
        return None
    except UnicodeDecodeError:
        table.note(key, f"{path} is not UTF-8 text")
        return None
    if not text:
        table.note(key, f"{path} is empty")
        return None
    return text


def _private_key(table: _Table, base_dir: Path) -> Secret | None:
    """The PEM or JWK text; a public key or a certificate given by mistake is caught here."""
    text = _read_secret_file(table, "private_key_file", base_dir)
    if text is None:
        return None
    if "PRIVATE KEY-----" not in text and not text.startswith("{"):
        path = _secret_path(table, "private_key_file", base_dir)
        table.note("private_key_file", f"{path} holds no private key: expected a PEM private key or a JWK")
        return None
    return Secret(text)


# --- the sections -----------------------------------------------------------------------------

OKTA_KEYS: Final = (
    "org_url", "app_id", "auth", "token_env", "token_file", "client_id", "private_key_file", "scopes", "timeout_s",
)  # fmt: skip
SCIM_KEYS: Final = ("base_url", "token_env", "token_file", "page_size", "timeout_s")
POLICY_KEYS: Final = ("unmanaged", "suspended")
STORE_KEYS: Final = ("url",)


def _okta(table: _Table, environ: Mapping[str, str], base_dir: Path) -> OktaConfig | None:
    if not table.present:
        return None
    table.check_keys(OKTA_KEYS)
    org_url = table.http_url(
        "org_url", 'set it to your Okta org, e.g. "https://example.okta.com"', "https://example.okta.com"
    )
    if org_url is not None:
        _check_org_url(table, org_url)
    app_id = table.string("app_id", missing='set it to the id of the SCIM app in Okta, e.g. "0oa1b2c3d4e5f6g7h8i9"')
    auth = table.choice("auth", ("api_token", "private_key"), "api_token")
    scopes = table.strings("scopes", DEFAULT_SCOPES)
    timeout_s = table.seconds("timeout_s", 30.0)
    token = client_id = private_key = None
    if auth == "api_token":
        _reject_keys(table, ("client_id", "private_key_file"), 'only used with auth = "private_key"')
        token = _token(table, environ, base_dir, "OKTA_API_TOKEN")
    elif auth == "private_key":
        _reject_keys(table, ("token_env", "token_file"), 'only used with auth = "api_token"')
        client_id = table.string("client_id", missing="set it to the client id of the Okta API service app")
        private_key = _private_key(table, base_dir)
    if not table.clean:
        return None
    assert org_url and app_id and scopes and timeout_s
    return OktaConfig(org_url, app_id, cast(OktaAuth, auth), token, client_id, private_key, scopes, timeout_s)


def _check_org_url(table: _Table, org_url: str) -> None:
    parts = urlsplit(org_url)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        table.note("org_url", f'expected the org URL alone, without a path, e.g. "{parts.scheme}://{parts.netloc}"')
    if "-admin." in (parts.hostname or ""):
        table.note("org_url", 'use the org URL, not the admin console URL: remove "-admin"')


def _reject_keys(table: _Table, keys: tuple[str, ...], why: str) -> None:
    for key in keys:
        if table.has(key):
            table.note(key, f"{why} — remove it or change auth")


def _scim(table: _Table, environ: Mapping[str, str], base_dir: Path) -> ScimConfig | None:
    if not table.present:
        return None
    table.check_keys(SCIM_KEYS)
    base_url = table.http_url(
        "base_url",
        'set it to the platform\'s SCIM base URL, e.g. "https://scim-api.example.com/scim"',
        "https://scim-api.example.com/scim",
    )
    page_size = table.integer("page_size", 100, 1, MAX_PAGE_SIZE)
    timeout_s = table.seconds("timeout_s", 30.0)
    token = _token(table, environ, base_dir, "SCIM_TOKEN")
    if not table.clean:
        return None
    assert base_url and token and page_size and timeout_s
    return ScimConfig(base_url, token, page_size, timeout_s)


def _policy(table: _Table) -> PolicyConfig | None:
    table.check_keys(POLICY_KEYS)
    unmanaged = table.choice("unmanaged", ("report", "deactivate"), "report")
    suspended = table.choice("suspended", ("deactivate", "keep"), "keep")
    if not table.clean:
        return None
    return PolicyConfig(cast(UnmanagedPolicy, unmanaged), cast(SuspendedPolicy, suspended))


def _store(table: _Table) -> StoreConfig | None:
    table.check_keys(STORE_KEYS)
    url = table.string("url") or DEFAULT_STORE_URL
    if not table.clean:
        return None
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        backend = None
    if backend not in ("sqlite", "postgresql"):
        table.note("url", f'expected a sqlite:/// or postgresql:// URL, e.g. "{DEFAULT_STORE_URL}"')
        return None
    return StoreConfig(url)


def _mapping(values: Mapping[str, Any], problems: list[str]) -> Mapping[str, str] | None:
    """The default mapping with the file's ``[mapping]`` merged over it."""
    merged: dict[str, Any] = dict(DEFAULT_MAPPING)
    default_by_folded = {path.casefold(): path for path in DEFAULT_MAPPING}
    for target, source in _flatten(values).items():
        default_path = default_by_folded.get(target.casefold())
        if source == "":
            if default_path is None:
                problems.append(f'mapping.{target!r}: set to "" to remove a default mapping, but there is none')
            merged.pop(default_path or target, None)
        else:
            merged[default_path or target] = source
    found = mapping_problems(merged)
    problems.extend(found)
    return None if found else MappingProxyType(merged)


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Unquoted dotted keys (``name.givenName = ...``) are nested tables in TOML: join them back."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- wording ----------------------------------------------------------------------------------


def _did_you_mean(key: str, allowed: tuple[str, ...]) -> str:
    matches = difflib.get_close_matches(key.lower(), allowed, n=1)
    if matches:
        return f" — did you mean {matches[0]}?"
    return f" — expected one of {', '.join(allowed)}"


def _show(value: Any) -> str:
    """A value as TOML would spell it, cut short: for "got ..." in a message."""
    if isinstance(value, dict):
        return "a table"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _masked_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"
