"""Attribute mapping: which Okta value feeds which SCIM attribute, and how to compare them.

A mapping is ``{SCIM attribute path: Okta source path}``, as in the
``[mapping]`` table of the configuration. Pure: no I/O.

SCIM paths (RFC 7644 §3.10, the subset a user mapping needs):
  ``userName``, ``displayName``             a top-level attribute
  ``name.givenName``                        a sub-attribute of a complex attribute
  ``emails[type eq "work"].value``          the entry of a given type of a multi-valued attribute
  ``urn:...:enterprise:2.0:User:department`` an attribute of an extension schema

Okta source paths:
  ``credentials.userName``   the app user's userName
  ``profile.NAME``           the app user's profile (what Okta's SCIM app pushes)
  ``user.profile.NAME``      the Okta user's own profile (needs ``expand=user``)
  ``id``                     the Okta user id
"""

from __future__ import annotations

import copy
import functools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from reconciler.records import OktaAssignment, ProfileFields

DEFAULT_MAPPING: Final[Mapping[str, str]] = {
    "userName": "credentials.userName",
    "name.givenName": "profile.givenName",
    "name.familyName": "profile.familyName",
    'emails[type eq "work"].value': "profile.email",
    "displayName": "profile.displayName",
    "locale": "profile.locale",
}
"""What Okta's "SCIM 2.0 Test App" sends on a create (see DESIGN.md)."""

RESERVED_PATHS: Final = frozenset({"id", "externalId", "active", "meta", "schemas"})
"""Attributes the reconciler itself owns: the link and the lifecycle, never mapped."""

CASE_INSENSITIVE_PATHS: Final = frozenset({"username", "emails.value"})
"""RFC 7643 marks these ``caseExact: false``: compared without regard to case."""

ENTERPRISE_URN: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:User"

_TYPED_ENTRY = re.compile(r'^(?P<attr>\w+)\[type eq "(?P<type>[^"]+)"\]\.(?P<sub>\w+)$')
_PLAIN = re.compile(r"^(?P<attr>\w+)(?:\.(?P<sub>\w+))?$")
_SOURCE = re.compile(r"^(credentials\.userName|id|profile\.\w+|user\.profile\.\w+)$")


class _Unknown:
    """The Okta side did not say: such an attribute is neither compared nor written."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


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

    Cached: the planner reads the same few paths for every user.
    """
    schema = None
    rest = text
    if text.startswith("urn:"):
        schema, sep, rest = text.rpartition(":")
        if not sep or not schema or not rest:
            raise ValueError(f"{text!r}: an extension path is URN:attribute, e.g. {ENTERPRISE_URN}:department")
    if match := _TYPED_ENTRY.match(rest):
        insensitive = _case_insensitive(match["attr"], match["sub"], schema)
        return TargetPath(text, match["attr"], match["sub"], match["type"], schema, insensitive)
    if match := _PLAIN.match(rest):
        if match["attr"] in RESERVED_PATHS:
            raise ValueError(f"{text!r} is managed by the reconciler itself and cannot be mapped")
        insensitive = _case_insensitive(match["attr"], match["sub"], schema)
        return TargetPath(text, match["attr"], match["sub"], None, schema, insensitive)
    raise ValueError(f'{text!r} is not a supported SCIM path: use attr, attr.sub, attr[type eq "work"].sub or URN:attr')


def mapping_problems(mapping: Mapping[str, Any]) -> list[str]:
    """Every problem with a ``[mapping]`` table, one line each; empty when usable."""
    problems = []
    for target, source in mapping.items():
        try:
            parse_target_path(target)
        except ValueError as error:
            problems.append(f"mapping: {error}")
        if not isinstance(source, str) or not _SOURCE.match(source):
            problems.append(
                f"mapping.{target!r}: source {source!r} is not one of credentials.userName, id, "
                "profile.NAME, user.profile.NAME"
            )
    if "userName" not in mapping:
        problems.append('mapping: userName must be mapped (Okta sends "credentials.userName")')
    return problems


def profile_fields(mapping: Mapping[str, str]) -> ProfileFields:
    """The Okta profile fields the mapping reads: all a run needs to keep of each profile."""
    sources = set(mapping.values())
    user = frozenset(s.removeprefix("user.profile.") for s in sources if s.startswith("user.profile."))
    app = frozenset(s.removeprefix("profile.") for s in sources if s.startswith("profile."))
    return ProfileFields(app=app, user=user)


def resource_attributes(mapping: Mapping[str, str]) -> frozenset[str]:
    """The top-level attributes (or extension URNs) of a SCIM user that the mapping compares."""
    paths = [parse_target_path(text) for text in mapping]
    return frozenset(path.attribute if path.schema in (None, CORE_USER_URN) else path.schema for path in paths)


def read_source(assignment: OktaAssignment, source: str) -> Any:
    """The Okta value at ``source``, or UNKNOWN when Okta's listing does not carry it."""
    if source == "credentials.userName":
        return assignment.user_name
    if source == "id":
        return assignment.okta_user_id
    if source.startswith("user.profile."):
        if assignment.user_profile is None:
            return UNKNOWN
        return assignment.user_profile.get(source.removeprefix("user.profile."), UNKNOWN)
    return assignment.app_profile.get(source.removeprefix("profile."), UNKNOWN)


def source_reader(source: str) -> Callable[[OktaAssignment], Any]:
    """A function reading ``source`` of an assignment (see :func:`read_source`), decided once."""
    if source == "credentials.userName":
        return operator.attrgetter("user_name")
    if source == "id":
        return operator.attrgetter("okta_user_id")
    if source.startswith("user.profile."):
        name = source.removeprefix("user.profile.")

        def read_user_profile(assignment: OktaAssignment) -> Any:
            profile = assignment.user_profile
            return UNKNOWN if profile is None else profile.get(name, UNKNOWN)

        return read_user_profile
    name = source.removeprefix("profile.")
    return lambda assignment: assignment.app_profile.get(name, UNKNOWN)


@dataclass(frozen=True, slots=True)
class MappedAttribute:
    """One mapping entry, parsed: where it goes on the platform and how it is read from Okta."""

    text: str
    path: TargetPath
    read: Callable[[OktaAssignment], Any]
    """Okta's value (UNKNOWN when its listing does not carry it)."""
    read_current: Callable[[Mapping[str, Any]], Any]
    """The platform's value, from a SCIM resource (None when absent)."""


CompiledMapping = tuple[MappedAttribute, ...]


def compile_mapping(mapping: Mapping[str, str]) -> CompiledMapping:
    """The mapping with its paths parsed and its sources resolved, for reading many users fast."""
    paths = {text: parse_target_path(text) for text in mapping}
    return tuple(
        MappedAttribute(text, paths[text], source_reader(source), target_reader(paths[text]))
        for text, source in mapping.items()
    )


def desired_attributes(assignment: OktaAssignment, mapping: Mapping[str, str] | CompiledMapping) -> dict[str, Any]:
    """The mapped SCIM attributes Okta wants for this user; unknown sources left out."""
    compiled = mapping if isinstance(mapping, tuple) else compile_mapping(mapping)
    wanted = {}
    for attribute in compiled:
        value = attribute.read(assignment)
        if value is not UNKNOWN:
            wanted[attribute.text] = value
    return wanted


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
    in_extension = path.schema is not None and path.schema != CORE_USER_URN

    def container(resource: Mapping[str, Any]) -> Mapping[str, Any]:
        return _container(resource, path) if in_extension else resource

    if entry_type is not None:
        wanted = sub_attribute or "value"

        def read_typed_entry(resource: Mapping[str, Any]) -> Any:
            entry = find_typed_entry(container(resource).get(attribute), entry_type)
            return None if entry is None else entry.get(wanted)

        return read_typed_entry
    if sub_attribute is not None:

        def read_sub_attribute(resource: Mapping[str, Any]) -> Any:
            value = container(resource).get(attribute)
            return value.get(sub_attribute) if _is_mapping(value) else None

        return read_sub_attribute
    if in_extension:
        return lambda resource: container(resource).get(attribute)
    return operator.methodcaller("get", attribute)


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
