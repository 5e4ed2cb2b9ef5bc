"""Many tenants: each ``[[tenants]]`` entry read over the top-level defaults, named in its problems.

A file with ``[[tenants]]`` reconciles several Okta apps, each to its own SCIM
tenant. Each entry has a unique ``name`` and its own ``[tenants.okta]``,
``[tenants.scim]``, ``[tenants.mapping]``, ...; the top-level tables of those
names are then defaults, merged under each tenant's key by key (``[mapping]``
by attribute path). A tenant that names any of a set of alternatives (a token
or key source, the alert URLs, interval or cron) takes none of that set from
the defaults, so that a default never clashes with the tenant's choice.
``[store]``, ``[metrics]`` and ``[service]`` are shared by every tenant and
allowed only at the top level. Each tenant's problems are named
``tenants[NAME].section.key``, with ``(from the top-level [section])`` when the
value came from the defaults; two tenants reconciling the same pair are
refused, as they would race.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from reconciler.config.keys import table_keys
from reconciler.config.mapping import DEFAULT_MAPPING
from reconciler.config.mapping_table import flatten_dotted_keys
from reconciler.config.model import SHARED_SECTIONS, TENANT_SECTIONS, Config, fingerprint
from reconciler.config.sections import tenant_parts
from reconciler.config.wording import did_you_mean, show

TENANT_KEYS: Final = (*table_keys(Config), *TENANT_SECTIONS)
"""What a ``[[tenants]]`` entry may hold: its ``name`` (declared on :attr:`Config.tenant`) and its tables."""


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


def tenant_entries(value: Any, problems: list[str]) -> list[tuple[str, str | None, Mapping[str, Any]]]:
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


def read_tenant(
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


def check_distinct_pairs(tenants: list[Config], problems: list[str]) -> None:
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
