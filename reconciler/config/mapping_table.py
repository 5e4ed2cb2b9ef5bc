"""The file's ``[mapping]`` table: its dotted keys joined back, merged over the default mapping, checked.

A key given in the file replaces the default mapping of that SCIM path (matched
without regard to case), a new key adds a mapping, and a key set to ``""``
removes a default mapping (the language itself: :mod:`reconciler.config.mapping`).
A source table is kept read-only (its lists as tuples); it is told apart from
the nested tables of unquoted dotted keys (``name.givenName = ...``) by its
keys, and a near miss (``sorce``) is refused rather than read as a sub-attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from reconciler.config.mapping import (
    DEFAULT_MAPPING,
    SPEC_KEYS,
    SourceSpec,
    looks_like_spec_typo,
    mapping_key,
    mapping_problems,
    unknown_spec_key_problem,
)


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
