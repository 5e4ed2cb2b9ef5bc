"""The configuration file: read, validated as a whole, for one tenant or many.

Validation collects every problem before it raises, so that one run of
``reconcile`` shows everything to fix, one line per problem, each naming its
key. It does no network I/O; it only reads the file, the environment and the
secret files the configuration points to (:mod:`.secrets`).

Each table has its reader (:mod:`.connections` for ``[okta]`` and ``[scim]``,
:mod:`.mapping_table` for ``[mapping]``, :mod:`.sections` for the others); a
file with ``[[tenants]]`` is read tenant by tenant over the top-level defaults
(:mod:`.tenants`). ``[store]``, ``[metrics]`` and ``[service]`` are the whole
file's, read here.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from reconciler.config.mapping_table import flatten_dotted_keys
from reconciler.config.model import SECTIONS, Config, FleetConfig, no_tenants_problem, tenant_names
from reconciler.config.secrets import NO_SECRETS
from reconciler.config.sections import read_metrics, read_service, read_store, tenant_parts
from reconciler.config.service_model import ServiceConfig
from reconciler.config.table import Table, os_reason
from reconciler.config.tenants import check_distinct_pairs, read_tenant, tenant_entries
from reconciler.config.wording import did_you_mean, show
from reconciler.errors import ConfigError

CONFIG_ENV: Final = "RECONCILER_CONFIG"


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
        names = tenant_names(fleet.tenants)
        raise ConfigError([f"this file has {len(fleet.tenants)} tenants ([[tenants]]: {names}): pass --tenant NAME"])
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


def _single_tenant(document: Mapping[str, Any], source_path: Path, environ: Mapping[str, str]) -> Config:
    """A single-tenant file."""
    problems: list[str] = []
    tables = _top_level_tables(document, problems, multi_tenant=False)
    parts = tenant_parts(tables, {}, "", source_path.parent, environ, problems)
    store = read_store(Table("store", tables.get("store") or {}, problems), source_path.parent)
    metrics = read_metrics(Table("metrics", tables.get("metrics") or {}, problems))
    if problems:
        raise ConfigError(problems)
    assert parts is not None and store and metrics
    return Config(**parts, store=store, metrics=metrics, source_path=source_path)


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
    store = read_store(Table("store", defaults.get("store") or {}, problems), source_path.parent)
    metrics = read_metrics(Table("metrics", defaults.get("metrics") or {}, problems))
    service = read_service(Table("service", defaults.get("service") or {}, problems))
    default_mapping = flatten_dotted_keys(defaults.get("mapping") or {}, problems)
    tenants: list[Config] = []
    for label, name, entry in tenant_entries(document["tenants"], problems):
        tenant_environ = environ if only is None or name == only else NO_SECRETS
        parts = read_tenant(label, entry, defaults, default_mapping, source_path.parent, tenant_environ, problems)
        if parts is not None and name is not None and store and metrics:
            tenants.append(Config(**parts, store=store, metrics=metrics, source_path=source_path, tenant=name))
    check_distinct_pairs(tenants, problems)
    if problems:
        raise ConfigError(problems)
    assert store and metrics and service
    return FleetConfig(tuple(tenants), store, metrics, service, source_path, True)
