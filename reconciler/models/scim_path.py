"""SCIM attribute paths (RFC 7644 §3.10, the subset a user mapping needs): parsed, read from a resource,
compared and set."""

from __future__ import annotations

import copy
import functools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

RESERVED_PATHS: Final[Mapping[str, str]] = {
    "externalid": (
        "the reconciler always sets externalId to the Okta user id (the link between the two sides); "
        "it cannot be mapped: it is how platform users are matched to Okta users and how the safety gate "
        "counts the users it manages"
    ),
    "active": (
        "the reconciler sets active to follow the user's assignment status in Okta; it cannot be mapped: "
        "assigned and active is true, unassigned or deactivated is false (suspended: see policy.suspended)"
    ),
    "id": "the platform assigns id; it cannot be mapped",
    "meta": "the platform keeps meta; it cannot be mapped",
    "schemas": "the reconciler writes schemas from the attributes mapped; it cannot be mapped",
}
"""Core attributes the reconciler or the platform owns (by lowercased name), with why they are never mapped."""


CASE_INSENSITIVE_PATHS: Final = frozenset({"username", "emails.value"})
"""RFC 7643 marks these ``caseExact: false``: compared without regard to case."""


ENTERPRISE_URN: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


CORE_USER_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:User"


_TYPED_ENTRY = re.compile(r'^(?P<attr>\w+)\[type eq "(?P<type>[^"]+)"\]\.(?P<sub>\w+)$')


_PLAIN = re.compile(r"^(?P<attr>\w+)(?:\.(?P<sub>\w+))?$")


@dataclass(frozen=True, slots=True)
class TargetPath:
    """A parsed SCIM attribute path."""

    text: str
    attribute: str
    sub_attribute: str | None = None
    entry_type: str | None = None
    """For ``emails[type eq "work"].value``: ``work``."""
    schema: str | None = None
    """An extension schema URN, or None for the core User schema."""
    case_insensitive: bool = False
    """RFC 7643 ``caseExact: false`` (see CASE_INSENSITIVE_PATHS)."""


def _case_insensitive(attribute: str, sub_attribute: str | None, schema: str | None) -> bool:
    key = attribute.lower() + (f".{sub_attribute.lower()}" if sub_attribute else "")
    return schema is None and key in CASE_INSENSITIVE_PATHS


@functools.lru_cache(maxsize=1024)
def parse_target_path(text: str) -> TargetPath:
    """Parse a SCIM attribute path, or raise ValueError saying what is accepted.

    Cached: the planner reads the same few paths for every user. Attribute
    names are case-insensitive in SCIM, so ``ExternalId`` is as reserved as
    ``externalId``; an extension schema may use any of those names.
    """
    schema = None
    rest = text
    if text.startswith("urn:"):
        schema, sep, rest = text.rpartition(":")
        if not sep or not schema or not rest:
            raise ValueError(f"an extension path is URN:attribute, e.g. {ENTERPRISE_URN}:department")
    if match := _TYPED_ENTRY.match(rest):
        insensitive = _case_insensitive(match["attr"], match["sub"], schema)
        return TargetPath(text, match["attr"], match["sub"], match["type"], schema, insensitive)
    if match := _PLAIN.match(rest):
        reserved = RESERVED_PATHS.get(match["attr"].lower())
        if reserved is not None and schema in (None, CORE_USER_URN):
            raise ValueError(reserved)
        insensitive = _case_insensitive(match["attr"], match["sub"], schema)
        return TargetPath(text, match["attr"], match["sub"], None, schema, insensitive)
    raise ValueError('not a supported SCIM path: use attr, attr.sub, attr[type eq "work"].sub or URN:attr')


def _container(resource: Mapping[str, Any], path: TargetPath) -> Mapping[str, Any]:
    if path.schema is None or path.schema == CORE_USER_URN:
        return resource
    extension = resource.get(path.schema)
    return extension if isinstance(extension, Mapping) else {}


def find_typed_entry(entries: Any, entry_type: str) -> Mapping[str, Any] | None:
    """The entry of a multi-valued attribute with the given type.

    Some servers drop ``type``; then the primary entry, or a lone entry, stands for it.
    """
    if not isinstance(entries, list):
        return None
    folded = entry_type.lower()
    for entry in entries:  # the common case, one pass: an entry of that very type
        if _is_mapping(entry):
            found = entry.get("type")
            if found == entry_type or (found is not None and str(found).lower() == folded):
                return entry  # type: ignore[no-any-return]
    dicts = [e for e in entries if _is_mapping(e)]
    untyped = [e for e in dicts if not e.get("type")]
    for entry in untyped:
        if entry.get("primary"):
            return entry  # type: ignore[no-any-return]
    return untyped[0] if len(untyped) == 1 and len(dicts) == 1 else None


def _is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, without the ABC check for the plain dicts JSON decodes to."""
    return type(value) is dict or isinstance(value, Mapping)


def read_attribute(resource: Mapping[str, Any], path: TargetPath) -> Any:
    """The whole attribute that ``path`` points into (e.g. every ``emails`` entry)."""
    return _container(resource, path).get(path.attribute)


def read_target(resource: Mapping[str, Any], path: TargetPath) -> Any:
    """The value at ``path`` in a SCIM resource; None when absent."""
    return target_reader(path)(resource)


@functools.lru_cache(maxsize=1024)
def target_reader(path: TargetPath) -> Callable[[Mapping[str, Any]], Any]:
    """A function reading ``path`` of a SCIM resource (see :func:`read_target`), shaped once for the path.

    The planner reads each mapped path of every user; deciding the path's shape
    once, rather than per user, halves the cost of a comparison.
    """
    attribute, sub_attribute, entry_type = path.attribute, path.sub_attribute, path.entry_type
    if path.schema is not None and path.schema != CORE_USER_URN:
        return _extension_reader(path)
    if entry_type is not None:
        wanted = sub_attribute or "value"

        def read_typed_entry(resource: Mapping[str, Any]) -> Any:
            entry = find_typed_entry(resource.get(attribute), entry_type)
            return None if entry is None else entry.get(wanted)

        return read_typed_entry
    if sub_attribute is not None:

        def read_sub_attribute(resource: Mapping[str, Any]) -> Any:
            value = resource.get(attribute)
            if type(value) is dict or isinstance(value, Mapping):
                return value.get(sub_attribute)
            return None

        return read_sub_attribute
    return operator.methodcaller("get", attribute)


def _extension_reader(path: TargetPath) -> Callable[[Mapping[str, Any]], Any]:
    """A reader of a path inside an extension schema's object (``urn:...:enterprise:2.0:User:department``)."""
    inner = target_reader(replace(path, schema=None, text=path.text.rpartition(":")[2]))

    def read_in_extension(resource: Mapping[str, Any]) -> Any:
        return inner(_container(resource, path))

    return read_in_extension


def _normalise(value: Any, case_insensitive: bool) -> Any:
    if value == "" or value == []:
        return None
    if case_insensitive and isinstance(value, str):
        return value.casefold()
    if isinstance(value, list):
        return sorted((_normalise(v, case_insensitive) for v in value), key=repr)
    return value


def values_equal(path: TargetPath, desired: Any, actual: Any) -> bool:
    """Equal as SCIM compares them: case-insensitively where RFC 7643 says so,
    regardless of order in multi-valued attributes, and "" the same as absent."""
    insensitive = path.case_insensitive
    return _normalise(desired, insensitive) == _normalise(actual, insensitive)


def set_value(resource: dict[str, Any], path: TargetPath, value: Any) -> None:
    """Write ``value`` at ``path`` into a SCIM resource dict, in place.

    Other entries of a multi-valued attribute and other sub-attributes are kept,
    so that a whole-resource write does not lose what the platform owns.
    """
    if path.schema is not None and path.schema != CORE_USER_URN:
        container = resource.setdefault(path.schema, {})
        schemas = resource.setdefault("schemas", [CORE_USER_URN])
        if path.schema not in schemas:
            schemas.append(path.schema)
    else:
        container = resource
    if path.entry_type is not None:
        _set_typed_entry(container, path, value)
    elif path.sub_attribute is not None:
        complex_value = container.get(path.attribute)
        complex_value = dict(complex_value) if isinstance(complex_value, Mapping) else {}
        complex_value[path.sub_attribute] = value
        container[path.attribute] = complex_value
    else:
        container[path.attribute] = value


def _set_typed_entry(container: dict[str, Any], path: TargetPath, value: Any) -> None:
    entries = [dict(e) for e in container.get(path.attribute) or [] if isinstance(e, Mapping)]
    assert path.entry_type is not None
    current = find_typed_entry(entries, path.entry_type)
    if current is None:
        if value is None:
            return
        entry: dict[str, Any] = {"type": path.entry_type}
        if not any(e.get("primary") for e in entries):
            entry["primary"] = True
        entries.append(entry)
    else:
        entry = current  # type: ignore[assignment]
    entry[path.sub_attribute or "value"] = value
    entry.setdefault("type", path.entry_type)
    container[path.attribute] = [e for e in entries if e.get(path.sub_attribute or "value") is not None]


def build_resource(attributes: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A SCIM User resource: ``base`` (deep-copied) with each mapped attribute set."""
    resource: dict[str, Any] = copy.deepcopy(dict(base)) if base else {"schemas": [CORE_USER_URN]}
    for text, value in attributes.items():
        if text in ("active", "externalId"):
            resource[text] = value
        else:
            set_value(resource, parse_target_path(text), value)
    return resource
