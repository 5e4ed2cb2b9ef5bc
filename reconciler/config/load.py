"""The configuration file: read, validated as a whole, secrets wrapped.

Validation collects every problem before it raises, so that one run of
``reconcile`` shows everything to fix, one line per problem, each naming its
key. It does no network I/O; it only reads the file, the environment and the
secret files the configuration points to.

Secrets come from an environment variable (``token_env``) or a file
(``token_file``, ``private_key_file``); their values are stripped of
surrounding whitespace, wrapped in :class:`~reconciler.secret.Secret`, and
never written into a message. A relative secret file path (and a relative
``ca_bundle``) is taken relative to the configuration file's directory. A
secret file that its group or others may access is refused, with the ``chmod``
to run; systemd credentials (``*_credential``) are not checked: systemd keeps
them in a directory only the service can read, and may grant the service
access through an ACL, which shows in the group bits of the mode.

Transport: plain ``http://`` is refused for any host but a loopback one (the
token would cross the network in clear), TLS is verified against the system's
trust store, or against ``ca_bundle`` alone when it is set (a private CA), and
each answer is read up to ``max_response_mb``.

``[mapping]`` is merged over :data:`~reconciler.mapping.DEFAULT_MAPPING`: a key
given in the file replaces the default mapping of that SCIM path (matched
without regard to case), a new key adds a mapping, and a key set to ``""``
removes a default mapping. A value is an Okta source path or an inline table
(``{ source = ... }``, ``{ constant = ... }``, ``{ join = [...] }``, with
``transform`` and ``default``; transforms run first, then the default fills an
empty result; see :mod:`reconciler.mapping`). A table is kept read-only (its
lists as tuples); it is told apart from the nested tables of unquoted dotted
keys (``name.givenName = ...``) by its keys, and a near miss (``sorce``) is
refused rather than read as a sub-attribute. ``externalId`` and ``active`` are
the reconciler's own and cannot be mapped.

Many tenants: a file with ``[[tenants]]`` reconciles several Okta apps, each
to its own SCIM tenant (:func:`load_fleet`). Each entry has a unique ``name``
and its own ``[tenants.okta]``, ``[tenants.scim]``, ``[tenants.mapping]``, ...;
the top-level tables of those names are then defaults, merged under each
tenant's key by key (``[mapping]`` by attribute path). A tenant that names any
of a set of alternatives (a token or key source, the alert URLs, interval or
cron) takes none of that set from the defaults, so that a default never clashes
with the tenant's choice. ``[store]``, ``[metrics]`` and ``[service]`` are shared
by every tenant and allowed only at the top level. Each tenant's problems are
named ``tenants[NAME].section.key``, with ``(from the top-level [section])`` when
the value came from the defaults; two tenants reconciling the same pair are
refused, as they would race.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, cast
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from reconciler.config.mapping import (
    DEFAULT_MAPPING,
    SPEC_KEYS,
    SourceSpec,
    looks_like_spec_typo,
    mapping_key,
    mapping_problems,
    unknown_spec_key_problem,
)
from reconciler.config.model import (
    DEFAULT_LIMITS,
    DEFAULT_SCOPES,
    DEFAULT_STORE_URL,
    GROUP_LIMITS,
    MAX_PAGE_SIZE,
    AlertsConfig,
    Config,
    FleetConfig,
    GroupsConfig,
    KindLimit,
    MetricsConfig,
    OktaAuth,
    OktaConfig,
    OnThreshold,
    PolicyConfig,
    ScheduleConfig,
    ScimConfig,
    ServiceConfig,
    StoreConfig,
    SuspendedPolicy,
    ThresholdsConfig,
    UnmanagedPolicy,
    fingerprint,
    tenant_names,
    no_tenants_problem,
)
from reconciler.config.wording import did_you_mean, show
from reconciler.errors import ConfigError
from reconciler.net.limits import DEFAULT_MAX_RESPONSE_MB, MIB
from reconciler.net.transport import ca_bundle_problem, is_loopback_host
from reconciler.secret import Secret

CONFIG_ENV: Final = "RECONCILER_CONFIG"
CREDENTIALS_DIRECTORY_ENV: Final = "CREDENTIALS_DIRECTORY"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"6h"`` or ``"1d"``; None if unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match[1]) * _UNIT_SECONDS[match[2]] if match else None


def load_config(
    path: str | Path | None,
    environ: Mapping[str, str] = os.environ,
    *,
    read_secrets: bool = True,
    tenant: str | None = None,
) -> Config:
    """Read and validate the configuration at ``path`` (else ``$RECONCILER_CONFIG``).

    Raises ConfigError with one line per problem found. With ``read_secrets=False``
    (commands that only read the store: history, show, db) no secret is read and
    every Secret in the result is empty: a service's credentials, which only
    systemd hands to the service, are not needed to look at its history.

    A file with ``[[tenants]]`` needs ``tenant``: the whole file is validated, but
    only that tenant's secrets are read (an operator working on one customer
    need not hold every customer's tokens).
    """
    config_path = _config_path(path, environ)
    document = _read_toml(config_path)
    secrets_environ = environ if read_secrets else NO_SECRETS
    if "tenants" not in document:
        if tenant is not None:
            raise ConfigError([no_tenants_problem(config_path, tenant)])
        return _single_tenant(document, config_path, secrets_environ)
    if tenant is None:
        fleet = _build_fleet(document, config_path, NO_SECRETS)
        raise ConfigError(
            [
                f"this file has {len(fleet.tenants)} tenants ([[tenants]]: {tenant_names(fleet.tenants)}): pass --tenant NAME"
            ]
        )
    return _build_fleet(document, config_path, secrets_environ, only=tenant).tenant(tenant)


def load_fleet(
    path: str | Path | None, environ: Mapping[str, str] = os.environ, *, read_secrets: bool = True
) -> FleetConfig:
    """Read and validate a whole file, single- or multi-tenant, with every tenant's secrets.

    A file without ``[[tenants]]`` gives one tenant, named None, as :func:`load_config` reads it.
    """
    config_path = _config_path(path, environ)
    document = _read_toml(config_path)
    secrets_environ = environ if read_secrets else NO_SECRETS
    if "tenants" not in document:
        config = _single_tenant(document, config_path, secrets_environ)
        return FleetConfig((config,), config.store, config.metrics, ServiceConfig(), config_path, False)
    return _build_fleet(document, config_path, secrets_environ)


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
        raise ConfigError([f"{path}: cannot read the configuration file: {os_reason(error)}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not valid TOML: the file is not UTF-8 text"]) from None


SECTIONS: Final = (
    "okta", "scim", "mapping", "policy", "store", "thresholds", "alerts", "schedule", "metrics", "groups", "service",
)  # fmt: skip
TENANT_SECTIONS: Final = ("okta", "scim", "mapping", "policy", "thresholds", "alerts", "schedule", "groups")
"""The tables a ``[[tenants]]`` entry may have; at the top level, they are every tenant's defaults."""
SHARED_SECTIONS: Final = ("store", "metrics", "service")
"""The tables every tenant shares: one database, one /metrics endpoint, one way to serve."""
TENANT_KEYS: Final = ("name", *TENANT_SECTIONS)
TENANT_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
EXCLUSIVE_KEYS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "okta": frozenset(
            ("token_env", "token_file", "token_credential", "client_id", "private_key_file", "private_key_credential")
        ),
        "scim": frozenset(("token_env", "token_file", "token_credential")),
        "alerts": frozenset(("urls", "urls_file", "urls_credential")),
        "schedule": frozenset(("interval", "cron")),
    }
)
"""Alternatives: a tenant that sets any key of a set inherits none of that set from the defaults.

Without this a default ``token_env`` and a tenant's ``token_file`` would be "set
together", and a default interval would clash with a tenant's cron.
"""


class NoSecrets(dict[str, str]):
    """The environment seen with ``read_secrets=False``: secret readers return "" instead of reading."""


NO_SECRETS: Final = NoSecrets()


def _single_tenant(document: Mapping[str, Any], source_path: Path, environ: Mapping[str, str]) -> Config:
    """A single-tenant file."""
    problems: list[str] = []
    tables = _top_level_tables(document, problems, multi_tenant=False)
    parts = tenant_parts(tables, {}, "", source_path.parent, environ, problems)
    store = read_store(Table("store", tables.get("store") or {}, problems))
    metrics = read_metrics(Table("metrics", tables.get("metrics") or {}, problems))
    if problems:
        raise ConfigError(problems)
    assert parts is not None and store and metrics
    return Config(**parts, store=store, metrics=metrics, source_path=source_path)


def tenant_parts(
    tables: Mapping[str, Mapping[str, Any] | None],
    inherited: Mapping[str, frozenset[str]],
    prefix: str,
    base_dir: Path,
    environ: Mapping[str, str],
    problems: list[str],
) -> dict[str, Any] | None:
    """The sections of one tenant as Config's keyword arguments; None when a problem was noted.

    ``prefix`` (``"tenants[acme]."``) starts the name of every key in a message;
    ``inherited`` names, per section, the keys that came from the top-level defaults.
    """
    before = len(problems)

    def table(name: str, *, required: bool = False) -> Table:
        values = tables.get(name)
        return Table(prefix + name, values if required else values or {}, problems, inherited.get(name))

    okta = read_okta(table("okta", required=True), environ, base_dir)
    scim = read_scim(table("scim", required=True), environ, base_dir)
    found: list[str] = []
    mapping = read_mapping(tables.get("mapping") or {}, found)
    problems.extend(prefix + problem for problem in found)
    parts = {
        "okta": okta,
        "scim": scim,
        "mapping": mapping,
        "policy": read_policy(table("policy")),
        "thresholds": read_thresholds(table("thresholds")),
        "alerts": read_alerts(table("alerts"), base_dir, environ),
        "schedule": read_schedule(table("schedule")),
        "groups": read_groups(table("groups")),
    }
    return None if len(problems) > before else parts


def _top_level_tables(
    document: Mapping[str, Any], problems: list[str], *, multi_tenant: bool
) -> dict[str, Mapping[str, Any]]:
    """The known top-level tables; a problem for each unknown or mistyped one."""
    tables: dict[str, Mapping[str, Any]] = {}
    for name, value in document.items():
        if name == "tenants" and multi_tenant:
            continue
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section{did_you_mean(name, (*SECTIONS, 'tenants'))}")
        elif name == "service" and not multi_tenant:
            problems.append(
                "service: only used with [[tenants]] (it tells how a replica serves many tenants) — remove it, "
                "or move this file's Okta app into a [[tenants]] entry"
            )
        elif not isinstance(value, dict):
            problems.append(f"{name}: expected a table [{name}], got {show(value)}")
        else:
            tables[name] = value
    for required in () if multi_tenant else ("okta", "scim"):
        if required not in document:
            problems.append(f"{required}: missing section — add an [{required}] table (see config.example.toml)")
    return tables


# --- many tenants -----------------------------------------------------------------------------


def _build_fleet(
    document: Mapping[str, Any], source_path: Path, environ: Mapping[str, str], *, only: str | None = None
) -> FleetConfig:
    """A file with ``[[tenants]]``: every tenant validated, all problems raised together.

    With ``only``, the other tenants are validated without reading their secrets.
    """
    problems: list[str] = []
    defaults = _top_level_tables(document, problems, multi_tenant=True)
    store = read_store(Table("store", defaults.get("store") or {}, problems))
    metrics = read_metrics(Table("metrics", defaults.get("metrics") or {}, problems))
    service = read_service(Table("service", defaults.get("service") or {}, problems))
    default_mapping = flatten_dotted_keys(defaults.get("mapping") or {}, problems)
    tenants: list[Config] = []
    for label, name, entry in _tenant_entries(document["tenants"], problems):
        tenant_environ = environ if only is None or name == only else NO_SECRETS
        parts = _tenant(label, entry, defaults, default_mapping, source_path.parent, tenant_environ, problems)
        if parts is not None and name is not None and store and metrics:
            tenants.append(Config(**parts, store=store, metrics=metrics, source_path=source_path, tenant=name))
    _check_distinct_pairs(tenants, problems)
    if problems:
        raise ConfigError(problems)
    assert store and metrics and service
    return FleetConfig(tuple(tenants), store, metrics, service, source_path, True)


def _tenant_entries(value: Any, problems: list[str]) -> list[tuple[str, str | None, Mapping[str, Any]]]:
    """``(label, name, table)`` of each ``[[tenants]]`` entry; the label names it in messages.

    The label is ``tenants[NAME]``, or ``tenants[INDEX]`` (from 1) when the name is
    missing, invalid or already taken; the name is None then.
    """
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        problems.append(f"tenants: expected an array of tables, one [[tenants]] header per tenant, got {show(value)}")
        return []
    if not value:
        problems.append("tenants: empty — add a [[tenants]] table per tenant, or remove it for a single-tenant file")
        return []
    entries: list[tuple[str, str | None, Mapping[str, Any]]] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(value, start=1):
        name = entry.get("name")
        label = f"tenants[{index}]"
        if name is None or name == "":
            problems.append(f'{label}.name: missing — give each tenant a unique name, e.g. name = "acme"')
            name = None
        elif not isinstance(name, str) or not TENANT_NAME.match(name):
            problems.append(
                f"{label}.name: expected up to 63 lower-case letters, digits, _ . or -, starting with a letter "
                f'or digit, e.g. "acme", got {show(name)}'
            )
            name = None
        elif name in first_index:
            problems.append(
                f'{label}.name: "{name}" is already the name of tenants[{first_index[name]}] — '
                "each tenant needs its own name"
            )
            name = None
        else:
            first_index[name] = index
            label = f"tenants[{name}]"
        entries.append((label, name, entry))
    return entries


def _tenant(
    label: str,
    entry: Mapping[str, Any],
    defaults: Mapping[str, Mapping[str, Any]],
    default_mapping: Mapping[str, Any],
    base_dir: Path,
    environ: Mapping[str, str],
    problems: list[str],
) -> dict[str, Any] | None:
    """One tenant's sections, its own tables merged over the top-level defaults.

    ``default_mapping`` is the top-level ``[mapping]`` flattened (its problems noted once, by the caller).
    """
    before = len(problems)
    own: dict[str, Mapping[str, Any]] = {}
    for key, value in entry.items():
        if key == "name":
            continue
        if key in SHARED_SECTIONS:
            problems.append(
                f"{label}.{key}: [{key}] is shared by every tenant and belongs at the top level — "
                f"move it out of [[tenants]], above the first [[tenants]] header"
            )
        elif key not in TENANT_SECTIONS:
            problems.append(f"{label}.{key}: unknown key{did_you_mean(key, TENANT_KEYS)}")
        elif not isinstance(value, dict):
            problems.append(f"{label}.{key}: expected a table [tenants.{key}], got {show(value)}")
        else:
            own[key] = value
    tables: dict[str, Mapping[str, Any] | None] = {}
    inherited: dict[str, frozenset[str]] = {}
    for section in TENANT_SECTIONS:
        if section == "mapping":
            found: list[str] = []
            tables[section] = _merged_mapping(default_mapping, flatten_dotted_keys(own.get(section) or {}, found))
            problems.extend(f"{label}.{problem}" for problem in found)
        else:
            tables[section], inherited[section] = _merged(section, defaults.get(section), own.get(section))
    for section, keys in (("okta", "org_url, app_id and a token"), ("scim", "base_url and a token")):
        if tables[section] is None:
            problems.append(
                f"{label}.{section}: missing — add {keys} under [tenants.{section}] "
                f"or a top-level [{section}] of defaults"
            )
    parts = tenant_parts(tables, inherited, f"{label}.", base_dir, environ, problems)
    return None if len(problems) > before else parts


def _merged(
    section: str, default: Mapping[str, Any] | None, own: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, frozenset[str]]:
    """A tenant's table over the defaults, key by key, and the keys it took from the defaults.

    None when neither has the table.
    """
    if default is None and own is None:
        return None, frozenset()
    default, own = default or {}, own or {}
    exclusive = EXCLUSIVE_KEYS.get(section, frozenset())
    dropped = exclusive if exclusive & own.keys() else frozenset()
    taken = {key: value for key, value in default.items() if key not in own and key not in dropped}
    return {**taken, **own}, frozenset(taken)


def _merged_mapping(default: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """The tenant's flattened ``[mapping]`` over the defaults' by SCIM path (matched without regard to case).

    A tenant's ``""`` removes a path the defaults added as well as one of DEFAULT_MAPPING;
    the result, flat already, goes through :func:`read_mapping` like a single-tenant file's.
    """
    merged = dict(default)
    builtin = {path.casefold() for path in DEFAULT_MAPPING}
    for path, source in own.items():
        replaced = [known for known in merged if known.casefold() == path.casefold()]
        for known in replaced:
            del merged[known]
        if source == "" and replaced and path.casefold() not in builtin:
            continue
        merged[path] = source
    return merged


def _check_distinct_pairs(tenants: list[Config], problems: list[str]) -> None:
    """Two tenants reconciling one Okta app into one SCIM endpoint would race: refuse the second."""
    first: dict[str, Config] = {}
    for config in tenants:
        seen = first.setdefault(fingerprint(config), config)
        if seen is not config:
            problems.append(
                f"tenants[{config.tenant}]: reconciles the same Okta app ({config.okta.org_url}, app_id "
                f"{config.okta.app_id}) into the same SCIM base URL ({config.scim.base_url}) as "
                f"tenants[{seen.tenant}] — two tenants would reconcile the same pair and race; keep one of them"
            )


# --- reading one table ------------------------------------------------------------------------


class Table:
    """One table of the file, read key by key; each problem is noted, not raised.

    Each reader returns the value, its default when the key is absent, or
    None when the value is unusable (the problem is noted).
    """

    def __init__(
        self,
        name: str,
        values: Mapping[str, Any] | None,
        problems: list[str],
        inherited: frozenset[str] | None = None,
    ) -> None:
        self.name = name
        self.present = values is not None
        self.values: Mapping[str, Any] = values or {}
        self.problems = problems
        self.inherited = inherited or frozenset()
        """Keys whose value came from the top-level defaults of a multi-tenant file: a message says so."""
        self._problems_before = len(problems)

    @property
    def clean(self) -> bool:
        """No problem noted for this table so far."""
        return len(self.problems) == self._problems_before

    def note(self, key: str, text: str) -> None:
        origin = f" (from the top-level [{self.name.rpartition('.')[2]}])" if key in self.inherited else ""
        self.problems.append(f"{self.name}.{key}{origin}: {text}")

    def has(self, key: str) -> bool:
        return key in self.values

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.values:
            if key in SECTIONS:
                self.note(key, f"unknown key — is the [{key}] header missing?")
            elif key not in allowed:
                self.note(key, f"unknown key{did_you_mean(key, allowed)}")

    def string(self, key: str, missing: str | None = None) -> str | None:
        """A non-empty string; ``missing`` (a hint) makes the key required."""
        value = self.values.get(key)
        if value is None or value == "":
            if missing is not None:
                self.note(key, f"missing — {missing}")
            return None
        if not isinstance(value, str):
            self.note(key, f"expected a string, got {show(value)}")
            return None
        return value

    def http_url(self, key: str, missing: str, example: str) -> str | None:
        value = self.string(key, missing)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.note(key, f'expected an http(s) URL, e.g. "{example}", got {show(value)}')
            return None
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            self.note(
                key,
                f"plain http:// to {parts.hostname} would send the credentials unencrypted — use https:// "
                "(http:// is accepted only for a loopback host such as 127.0.0.1)",
            )
            return None
        return value.rstrip("/")

    def ca_bundle(self, base_dir: Path) -> Path | None:
        """``ca_bundle``: a readable PEM file, relative to the configuration's directory; None when not set."""
        name = self.string("ca_bundle")
        if name is None:
            return None
        path = base_dir / Path(name).expanduser()
        problem = ca_bundle_problem(path)
        if problem is not None:
            self.note("ca_bundle", f"{problem} — set it to the PEM file of the CA that signed the server's certificate")
            return None
        return path

    def response_cap(self) -> int | None:
        """``max_response_mb`` in bytes."""
        megabytes = self.integer("max_response_mb", DEFAULT_MAX_RESPONSE_MB, 1, 4096)
        return None if megabytes is None else megabytes * MIB

    def integer(self, key: str, default: int, low: int, high: int) -> int | None:
        value = self.values.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            self.note(key, f"expected an integer, got {show(value)}")
            return None
        if not low <= value <= high:
            self.note(key, f"expected an integer from {low} to {high}, got {value}")
            return None
        return value

    def seconds(self, key: str, default: float) -> float | None:
        value = self.values.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.note(key, f"expected a number of seconds, got {show(value)}")
            return None
        if not value > 0:
            self.note(key, f"expected a number of seconds greater than 0, got {value}")
            return None
        return float(value)

    def ratio(self, key: str, default: float) -> float | None:
        """A share from 0 to 1, e.g. 0.05 for 5 %."""
        value = self.values.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
            self.note(key, f"expected a share from 0 to 1 (0.05 is 5 %), got {show(value)}")
            return None
        return float(value)

    def duration(self, key: str, default: float) -> float | None:
        """Seconds, from a number or a string like "90s", "30m", "6h", "1d"."""
        value = self.values.get(key, default)
        seconds = parse_duration(value)
        if seconds is None or seconds <= 0:
            self.note(key, f'expected a duration such as "30m", "6h" or "1d", got {show(value)}')
        return seconds

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str | None:
        value = self.values.get(key, default)
        if value not in options:
            expected = " or ".join(f'"{option}"' for option in options)
            self.note(key, f"expected {expected}, got {show(value)}")
            return None
        return cast(str, value)

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...] | None:
        value = self.values.get(key, list(default))
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.note(key, f"expected a non-empty list of strings, e.g. {show(list(default))}, got {show(value)}")
            return None
        return tuple(value)


# --- secrets ----------------------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONVENTIONAL_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def read_token(table: Table, environ: Mapping[str, str], base_dir: Path, example_env: str) -> Secret | None:
    """The token from exactly one of ``token_env`` / ``token_file`` / ``token_credential``."""
    given = [key for key in ("token_env", "token_file", "token_credential") if table.has(key)]
    if len(given) > 1:
        table.note(given[1], f"set together with {given[0]} — keep only one of them")
        return None
    if not given:
        table.note("token_env", f'missing — set token_env = "{example_env}" (and export it), or token_file = "/path"')
        return None
    if given[0] == "token_env":
        return _secret_env(table, "token_env", environ, example_env)
    text = read_secret_file(table, given[0], base_dir, environ)
    return None if text is None else Secret(text)


def _secret_env(table: Table, key: str, environ: Mapping[str, str], example_env: str) -> Secret | None:
    if isinstance(environ, NoSecrets):
        return Secret("")
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


def _secret_path(table: Table, key: str, base_dir: Path, environ: Mapping[str, str]) -> Path | None:
    """Where a ``*_file`` or ``*_credential`` key points.

    A credential is a file systemd's ``LoadCredential=`` placed in ``$CREDENTIALS_DIRECTORY``.
    """
    if key.endswith("_credential"):
        return _credential_path(table, key, environ)
    name = table.string(key, missing='set it to the path of a file holding the secret, e.g. "/etc/reconciler/token"')
    return None if name is None else base_dir / Path(name).expanduser()


def _credential_path(table: Table, key: str, environ: Mapping[str, str]) -> Path | None:
    name = table.string(key, missing='set it to the name given to LoadCredential=, e.g. "scim-token"')
    if name is None:
        return None
    if "/" in name or name in (".", ".."):
        table.note(key, f"expected a credential name as given to LoadCredential=, not a path: {show(name)}")
        return None
    directory = environ.get(CREDENTIALS_DIRECTORY_ENV)
    if not directory:
        file_key = key.removesuffix("_credential") + "_file"
        table.note(
            key,
            f"${CREDENTIALS_DIRECTORY_ENV} is not set (systemd sets it for LoadCredential=); outside systemd use "
            f"{table.name}.{file_key}",
        )
        return None
    return Path(directory) / name


def read_secret_file(table: Table, key: str, base_dir: Path, environ: Mapping[str, str]) -> str | None:
    """The file's text, stripped; a problem naming the key and the path when unusable."""
    if isinstance(environ, NoSecrets):
        return ""
    path = _secret_path(table, key, base_dir, environ)
    if path is None:
        return None
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not key.endswith("_credential") and (problem := _loose_permissions(path, mode)):
                table.note(key, problem)
                return None
            text = file.read().decode("utf-8").strip()
    except OSError as error:
        table.note(key, f"cannot read {path}: {os_reason(error)}")
        return None
    except UnicodeDecodeError:
        table.note(key, f"{path} is not UTF-8 text")
        return None
    if not text:
        table.note(key, f"{path} is empty")
        return None
    return text


SECRET_FILE_MODE: Final = 0o600


def _loose_permissions(path: Path, mode: int) -> str | None:
    """Why a secret file's mode is unsafe (its group or others may access it), with the fix; None if it is safe.

    As ssh does for private keys: any permission for the group or others is
    refused, since whoever can read the file can act as the reconciler.
    """
    if os.name != "posix" or not stat.S_ISREG(mode) or not mode & 0o077:
        return None
    who = " and ".join(name for name, bits in (("its group", 0o070), ("others", 0o007)) if mode & bits)
    return (
        f"{path} is accessible to {who} (mode {stat.S_IMODE(mode):04o}): a secret file must be private to "
        f"its owner — run: chmod {SECRET_FILE_MODE:o} {shlex.quote(str(path))}"
    )


def read_private_key(table: Table, base_dir: Path, environ: Mapping[str, str]) -> Secret | None:
    """The PEM or JWK text; a public key or a certificate given by mistake is caught here."""
    given = [key for key in ("private_key_file", "private_key_credential") if table.has(key)]
    if len(given) > 1:
        table.note(given[1], f"set together with {given[0]} — keep only one of them")
        return None
    key = given[0] if given else "private_key_file"
    text = read_secret_file(table, key, base_dir, environ)
    if text is None:
        return None
    if text and "PRIVATE KEY-----" not in text and not text.startswith("{"):
        path = _secret_path(table, key, base_dir, environ)
        table.note(key, f"{path} holds no private key: expected a PEM private key or a JWK")
        return None
    return Secret(text)


# --- the sections -----------------------------------------------------------------------------

OKTA_KEYS: Final = (
    "org_url", "app_id", "auth", "token_env", "token_file", "token_credential", "client_id", "private_key_file",
    "private_key_credential", "scopes", "timeout_s", "rate_limit_share", "ca_bundle", "max_response_mb",
)  # fmt: skip
SCIM_KEYS: Final = (
    "base_url", "token_env", "token_file", "token_credential", "page_size", "timeout_s", "read_concurrency",
    "write_concurrency", "ca_bundle", "max_response_mb",
)  # fmt: skip
MAX_CONCURRENCY: Final = 64
POLICY_KEYS: Final = ("unmanaged", "suspended")
STORE_KEYS: Final = ("url",)
THRESHOLD_KEYS: Final = (
    *(key for kind in (*DEFAULT_LIMITS, *GROUP_LIMITS) for key in (f"max_{kind}", f"max_{kind}_ratio")),
    "min_count_for_ratio",
    "max_source_drop_ratio",
    "on_threshold",
    "max_error_ratio",
    "quarantine_after",
    "quarantine_interval",
)
SCHEDULE_KEYS: Final = ("interval", "cron", "jitter", "run_at_start", "stop_timeout")
METRICS_KEYS: Final = ("listen",)
GROUPS_KEYS: Final = ("push", "push_assigned", "delete_unpushed", "member_batch")
ALERT_KEYS: Final = (
    "urls",
    "urls_file",
    "urls_credential",
    "alert_drift",
    "alert_drift_by_kind",
    "consecutive_failures",
    "realert_after",
)


def read_okta(table: Table, environ: Mapping[str, str], base_dir: Path) -> OktaConfig | None:
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
    ca_bundle = table.ca_bundle(base_dir)
    max_response_bytes = table.response_cap()
    rate_limit_share = table.ratio("rate_limit_share", 0.5)
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
    table.check_keys(SCIM_KEYS)
    base_url = table.http_url(
        "base_url",
        'set it to the platform\'s SCIM base URL, e.g. "https://scim-api.example.com/scim"',
        "https://scim-api.example.com/scim",
    )
    page_size = table.integer("page_size", 100, 1, MAX_PAGE_SIZE)
    timeout_s = table.seconds("timeout_s", 30.0)
    read_concurrency = table.integer("read_concurrency", 4, 1, MAX_CONCURRENCY)
    write_concurrency = table.integer("write_concurrency", 4, 1, MAX_CONCURRENCY)
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


def read_policy(table: Table) -> PolicyConfig | None:
    table.check_keys(POLICY_KEYS)
    unmanaged = table.choice("unmanaged", ("report", "deactivate"), "report")
    suspended = table.choice("suspended", ("deactivate", "keep"), "keep")
    if not table.clean:
        return None
    return PolicyConfig(cast(UnmanagedPolicy, unmanaged), cast(SuspendedPolicy, suspended))


def read_store(table: Table) -> StoreConfig | None:
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


def _kind_limits(table: Table, defaults: Mapping[str, KindLimit]) -> dict[str, KindLimit]:
    limits = {}
    for kind, default in defaults.items():
        count = table.integer(f"max_{kind}", default.count, 0, 10_000_000)
        ratio = table.ratio(f"max_{kind}_ratio", default.ratio)
        if count is not None and ratio is not None:
            limits[kind] = KindLimit(count, ratio)
    return limits


def read_thresholds(table: Table) -> ThresholdsConfig | None:
    table.check_keys(THRESHOLD_KEYS)
    limits = _kind_limits(table, DEFAULT_LIMITS)
    group_limits = _kind_limits(table, GROUP_LIMITS)
    min_for_ratio = table.integer("min_count_for_ratio", 10, 0, 10_000_000)
    drop = table.ratio("max_source_drop_ratio", 0.2)
    on_threshold = table.choice("on_threshold", ("stop", "skip_gated"), "stop")
    error_ratio = table.ratio("max_error_ratio", 0.2)
    quarantine_after = table.integer("quarantine_after", 3, 1, 1000)
    quarantine_interval = table.duration("quarantine_interval", 6 * 3600.0)
    if not table.clean:
        return None
    assert drop is not None and error_ratio is not None and quarantine_after and quarantine_interval
    assert min_for_ratio is not None
    return ThresholdsConfig(
        MappingProxyType(limits),
        MappingProxyType(group_limits),
        min_for_ratio,
        drop,
        cast(OnThreshold, on_threshold),
        error_ratio,
        quarantine_after,
        quarantine_interval,
    )


def read_groups(table: Table) -> GroupsConfig | None:
    table.check_keys(GROUPS_KEYS)
    push = _group_names(table)
    flags = {key: table.values.get(key, False) for key in ("push_assigned", "delete_unpushed")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            table.note(key, f"expected true or false, got {show(value)}")
    member_batch = table.integer("member_batch", 100, 1, 1000)
    if flags["delete_unpushed"] is True and not push and flags["push_assigned"] is not True:
        table.note(
            "delete_unpushed",
            "set without push or push_assigned: with no group pushed, every group Okta once pushed would be "
            "deleted — list the groups to push, or set push_assigned = true",
        )
    if not table.clean:
        return None
    assert push is not None and member_batch
    return GroupsConfig(push, bool(flags["push_assigned"]), bool(flags["delete_unpushed"]), member_batch)


def _group_names(table: Table) -> tuple[str, ...] | None:
    """``push``: Okta group names or ids, each once."""
    value = table.values.get("push", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        table.note(
            "push",
            f'expected a list of Okta group names or ids, e.g. ["Engineering", "00g1a2b3c4d5e6f7g8h9"], '
            f"got {show(value)}",
        )
        return None
    names = tuple(dict.fromkeys(v.strip() for v in value))
    return names


def read_alerts(table: Table, base_dir: Path, environ: Mapping[str, str]) -> AlertsConfig | None:
    table.check_keys(ALERT_KEYS)
    urls = _alert_urls(table, base_dir, environ)
    drift = table.integer("alert_drift", 50, 1, 10_000_000)
    by_kind = _drift_by_kind(table)
    failures = table.integer("consecutive_failures", 3, 1, 1000)
    realert = table.duration("realert_after", 24 * 3600.0)
    if not table.clean:
        return None
    assert urls is not None and drift and by_kind is not None and failures and realert
    return AlertsConfig(urls, drift, MappingProxyType(by_kind), failures, realert)


def _alert_urls(table: Table, base_dir: Path, environ: Mapping[str, str]) -> tuple[Secret, ...] | None:
    """apprise URLs from ``urls``, ``urls_file`` and ``urls_credential`` (one per line, # comments)."""
    inline = table.values.get("urls", [])
    if not isinstance(inline, list) or not all(isinstance(u, str) and "://" in u for u in inline):
        table.note("urls", 'expected a list of apprise URLs, e.g. ["json://alerts.example.com/hook"]')
        return None
    lines: list[str] = []
    from_files = [key for key in ("urls_file", "urls_credential") if table.has(key)]
    for key in from_files:
        text = read_secret_file(table, key, base_dir, environ)
        if text is None:
            return None
        lines += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return tuple(Secret(url) for url in (*inline, *lines))


def read_schedule(table: Table) -> ScheduleConfig | None:
    table.check_keys(SCHEDULE_KEYS)
    if table.has("interval") and table.has("cron"):
        table.note("cron", "set together with interval — keep only one of them")
    interval = table.duration("interval", 1800.0)
    cron = _cron(table)
    jitter = table.values.get("jitter", 60.0)
    jitter_s = 0.0 if jitter in (0, "0") else table.duration("jitter", 60.0)
    run_at_start = table.values.get("run_at_start", True)
    if not isinstance(run_at_start, bool):
        table.note("run_at_start", f"expected true or false, got {show(run_at_start)}")
    stop_timeout = table.duration("stop_timeout", 30.0)
    if not table.clean:
        return None
    assert interval and jitter_s is not None and stop_timeout
    return ScheduleConfig(interval, cron, jitter_s, bool(run_at_start), stop_timeout)


def _cron(table: Table) -> str | None:
    expression = table.string("cron")
    if expression is None:
        return None
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression)
    except ValueError as error:
        table.note("cron", f'expected a 5-field crontab expression such as "*/30 * * * *": {error}')
        return None
    return expression


def read_metrics(table: Table) -> MetricsConfig | None:
    table.check_keys(METRICS_KEYS)
    listen = table.values.get("listen", "127.0.0.1:9464")
    if listen == "":
        return MetricsConfig(None)
    host, _, port = str(listen).rpartition(":")
    if not isinstance(listen, str) or not host or not port.isdigit() or not 0 < int(port) < 65536:
        table.note("listen", f'expected host:port such as "127.0.0.1:9464" (or "" to turn it off), got {show(listen)}')
        return None
    return MetricsConfig(listen)


SERVICE_KEYS: Final = ("concurrency", "tick", "replica")
_REPLICA_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


def valid_replica_name(name: str) -> bool:
    """1 to 128 printable characters: it is shown in ``reconcile status`` and kept with every run."""
    return bool(_REPLICA_NAME.match(name))


def read_service(table: Table) -> ServiceConfig | None:
    table.check_keys(SERVICE_KEYS)
    concurrency = table.integer("concurrency", 4, 1, MAX_CONCURRENCY)
    tick_s = table.duration("tick", 5.0)
    replica = table.string("replica")
    if replica is not None and not valid_replica_name(replica):
        table.note("replica", f"expected a name of 1 to 128 printable characters, got {show(replica)}")
    if not table.clean:
        return None
    assert concurrency and tick_s
    return ServiceConfig(concurrency, tick_s, replica)


def _drift_by_kind(table: Table) -> dict[str, int] | None:
    value = table.values.get("alert_drift_by_kind", {})
    kinds = ("create", "update", "deactivate", "reactivate", "link", "conflict", "unmanaged", *GROUP_LIMITS)
    if not isinstance(value, dict) or not all(
        k in kinds and isinstance(v, int) and not isinstance(v, bool) and v >= 1 for k, v in value.items()
    ):
        table.note("alert_drift_by_kind", f"expected a table of kind = count >= 1, kinds: {', '.join(kinds)}")
        return None
    return dict(value)


def read_mapping(values: Mapping[str, Any], problems: list[str]) -> Mapping[str, SourceSpec] | None:
    """The default mapping with the file's ``[mapping]`` merged over it."""
    merged: dict[str, Any] = dict(DEFAULT_MAPPING)
    default_by_folded = {path.casefold(): path for path in DEFAULT_MAPPING}
    found: list[str] = []
    for target, source in flatten_dotted_keys(values, found).items():
        default_path = default_by_folded.get(target.casefold())
        if source == "":
            if default_path is None:
                found.append(f'mapping.{mapping_key(target)}: set to "" to remove a default mapping, but there is none')
            merged.pop(default_path or target, None)
        else:
            merged[default_path or target] = _frozen(source)
    found.extend(mapping_problems(merged))
    problems.extend(found)
    return None if found else MappingProxyType(merged)


def _is_spec_table(value: Mapping[str, Any]) -> bool:
    """An inline table such as ``{ source = ... }``, as opposed to the nesting of a dotted key."""
    return not value or any(key in SPEC_KEYS for key in value)


def _frozen(value: Any) -> Any:
    """A mapping table read-only, its lists as tuples; anything else as it is."""
    if isinstance(value, dict):
        return MappingProxyType({k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    return value


def flatten_dotted_keys(values: Mapping[str, Any], problems: list[str], prefix: str = "") -> dict[str, Any]:
    """Unquoted dotted keys (``name.givenName = ...``) are nested tables in TOML: join them back.

    A table with a mapping-table key (``source``, ``join``, ...) is a value, not a nesting.
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and not _is_spec_table(value):
            typos = [k for k in value if not isinstance(value[k], dict) and looks_like_spec_typo(k)]
            if typos:
                problems.append(f"mapping.{mapping_key(prefix + key)}: {unknown_spec_key_problem(typos[0])}")
                continue
            flat.update(flatten_dotted_keys(value, problems, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__
